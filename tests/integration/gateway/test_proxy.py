"""Pass-through, keys, limits and request ids, against a real upstream process."""

from __future__ import annotations

import logging

import pytest

from tests.integration.gateway.conftest import HEADERS, KEY, OTHER_KEY, GatewayFactory
from tests.integration.gateway.faults import UpstreamProcess


async def test_method_path_query_body_and_end_to_end_headers_pass_through(upstream: UpstreamProcess, gateway_for: GatewayFactory) -> None:
    async with gateway_for(orders=[upstream.url]) as (client, _):
        response = await client.put(
            "/orders/a%20b/items?x=1&y=%C3%A9",
            content=b'{"n": 1}',
            headers={**HEADERS, "Content-Type": "application/json", "X-Custom": "kept", "Connection": "x-hop", "X-Hop": "dropped"},
        )
    assert response.status_code == 200
    echoed = response.json()
    assert echoed["method"] == "PUT"
    assert echoed["path"] == "/orders/a b/items"
    assert echoed["query"] == "x=1&y=%C3%A9"
    assert echoed["body"] == '{"n": 1}'
    assert echoed["headers"]["x-custom"] == "kept"
    assert "x-hop" not in echoed["headers"], "a header named by Connection is hop-by-hop"
    assert "x-api-key" not in echoed["headers"], "the gateway's credentials stay at the gateway"
    assert echoed["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert response.headers["x-upstream"] == "fault"
    assert "keep-alive" not in response.headers.get("connection", "")


async def test_head_keeps_the_length_a_get_would_have(upstream: UpstreamProcess, gateway_for: GatewayFactory) -> None:
    async with gateway_for(orders=[upstream.url]) as (client, _):
        head = await client.head("/orders/same", headers={**HEADERS, "X-Request-ID": "same-id"})
        get = await client.get("/orders/same", headers={**HEADERS, "X-Request-ID": "same-id"})
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) == len(get.content.replace(b'"GET"', b'"HEAD"'))


async def test_upstream_4xx_answers_pass_through_unchanged(upstream: UpstreamProcess, gateway_for: GatewayFactory) -> None:
    async with gateway_for(orders=[upstream.url]) as (client, _):
        response = await client.get("/orders/x?status=422", headers=HEADERS)
    assert response.status_code == 422
    assert response.json()["path"] == "/orders/x"


async def test_the_request_id_is_accepted_passed_upstream_and_returned(upstream: UpstreamProcess, gateway_for: GatewayFactory) -> None:
    async with gateway_for(orders=[upstream.url]) as (client, _):
        given = await client.get("/orders", headers={**HEADERS, "X-Request-ID": "trace-42"})
        created = await client.get("/orders", headers=HEADERS)
    assert given.headers["x-request-id"] == "trace-42"
    assert given.json()["headers"]["x-request-id"] == "trace-42"
    assert len(created.headers["x-request-id"]) == 32
    assert created.json()["headers"]["x-request-id"] == created.headers["x-request-id"]
    assert given.headers.get_list("x-request-id") == ["trace-42"], "one id, not the upstream's copy as well"


async def test_keys_guard_every_route_but_health_and_docs(
    upstream: UpstreamProcess, gateway_for: GatewayFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with gateway_for(orders=[upstream.url]) as (client, _):
        missing = await client.get("/orders")
        wrong = await client.get("/orders", headers={"X-API-Key": "wrong-key-999"})
        wrong_bearer = await client.get("/orders", headers={"Authorization": "Bearer wrong-key-999"})
        bearer = await client.get("/orders", headers={"Authorization": f"Bearer {KEY}"})
        header = await client.get("/orders", headers={"X-API-Key": OTHER_KEY})
        unknown = await client.get("/nowhere", headers=HEADERS)
        open_routes = [await client.get(path) for path in ("/health/live", "/docs")]
    for refused in (missing, wrong, wrong_bearer):
        assert refused.status_code == 401
        assert refused.json()["code"] == "unauthorized"
        assert refused.headers["www-authenticate"].startswith("Bearer")
    assert bearer.status_code == 200
    assert header.status_code == 200
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "not_found"
    assert [r.status_code for r in open_routes] == [200, 200]
    assert await upstream.calls() == {"GET /orders": 2}
    logged = " ".join(record.getMessage() + str(record.__dict__) for record in caplog.records)
    assert KEY not in logged
    assert "wrong-key-999" not in logged


async def test_each_key_has_its_own_rate_limit(upstream: UpstreamProcess, gateway_for: GatewayFactory) -> None:
    async with gateway_for(orders=[upstream.url], rate_limit_per_s=0.5, rate_limit_burst=3) as (client, _):
        statuses = [(await client.get("/orders", headers=HEADERS)).status_code for _ in range(4)]
        limited = await client.get("/orders", headers=HEADERS)
        other = await client.get("/orders", headers={"X-API-Key": OTHER_KEY})
    assert statuses == [200, 200, 200, 429]
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 2
    assert other.status_code == 200


async def test_oversized_bodies_get_413_and_other_media_types_415(upstream: UpstreamProcess, gateway_for: GatewayFactory) -> None:
    async def chunks() -> object:
        for _ in range(4):
            yield b"x" * 400

    async with gateway_for(orders=[upstream.url], max_body_bytes=1000) as (client, _):
        declared = await client.post("/orders", content=b"{" + b" " * 1200 + b"}", headers={**HEADERS, "Content-Type": "application/json"})
        streamed = await client.post("/orders", content=chunks(), headers={**HEADERS, "Content-Type": "application/json"})  # type: ignore[arg-type]
        form = await client.post("/orders", data={"a": "b"}, headers=HEADERS)
        text = await client.post("/orders", content=b"hello", headers={**HEADERS, "Content-Type": "text/plain"})
        no_body = await client.post("/orders?report_date=2024-01-15", headers=HEADERS)
        json_utf8 = await client.post("/orders", content=b"{}", headers={**HEADERS, "Content-Type": "application/json; charset=utf-8"})
    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert declared.json()["code"] == "payload_too_large"
    assert form.status_code == 415
    assert text.status_code == 415
    assert "text/plain" in text.json()["detail"]
    assert no_body.status_code == 200, "a POST without a body (the lab's /report/generate) needs no content type"
    assert json_utf8.status_code == 200
    assert await upstream.calls() == {"POST /orders": 2}


async def test_lab_calls_reach_the_reports_upstream_as_written(upstream: UpstreamProcess, gateway_for: GatewayFactory) -> None:
    async with gateway_for(reports=[upstream.url]) as (client, _):
        generate = await client.post("/report/generate?report_date=2024-01-15", headers=HEADERS)
        by_day = await client.get("/report/?report_date=2024-01-15", headers=HEADERS)
        page = await client.get("/report/all?page=1&count=10", headers=HEADERS)
    assert [r.json()["path"] for r in (generate, by_day, page)] == ["/report/generate", "/report/", "/report/all"]
    assert by_day.json()["query"] == "report_date=2024-01-15"


async def test_no_500_reaches_the_client_when_no_upstream_is_listening(gateway_for: GatewayFactory) -> None:
    async with gateway_for() as (client, _):
        responses = [await client.request(method, "/orders", headers=HEADERS) for method in ("GET", "POST", "DELETE")]
    assert [r.status_code for r in responses] == [502, 502, 502]
    assert all(r.json()["code"] == "upstream_unavailable" for r in responses)
