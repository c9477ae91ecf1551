"""Bounded work per request at the gateway: streamed bodies, body and header limits, problem details."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import httpx

from tests.integration.gateway.conftest import HEADERS, KEY, GatewayFactory
from tests.integration.gateway.faults import UpstreamProcess

PROBLEM_MEMBERS = {"type", "title", "status", "detail", "instance", "code", "request_id"}


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, object] = response.json()
    assert set(problem) >= PROBLEM_MEMBERS
    assert problem["status"] == status
    assert problem["code"] == code
    assert problem["type"] == "about:blank"
    assert problem["request_id"] == response.headers["x-request-id"]
    return problem


async def test_a_large_upstream_body_reaches_the_client_before_the_upstream_has_finished(
    upstream: UpstreamProcess, gateway_for: GatewayFactory
) -> None:
    """The last chunk is only sent once the client has read the first ones: a buffering gateway would never answer."""
    async with (
        gateway_for(orders=[upstream.url]) as (client, _),
        client.stream("GET", "/orders/_stream?chunks=8&size=65536", headers=HEADERS) as response,
    ):
        assert response.status_code == 200
        assert "content-length" not in response.headers
        chunks = response.aiter_bytes()
        received = 0
        while received < 7 * 65536:
            received += len(await asyncio.wait_for(anext(chunks), 10))
        async with httpx.AsyncClient() as control:
            await control.post(f"{upstream.url}/_release")
        rest = b"".join([chunk async for chunk in chunks])
    assert received + len(rest) == 8 * 65536
    assert rest.endswith(b"y" * 65536)


async def _raw_exchange(url: str, request: bytes, *, then: bytes = b"", pause_s: float = 0.0) -> bytes:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(request)
        await writer.drain()
        if then:
            await asyncio.sleep(pause_s)
            writer.write(then)
            await writer.drain()
        return await asyncio.wait_for(reader.read(65536), 10)
    finally:
        writer.close()


async def test_a_body_that_trickles_in_is_answered_408_and_the_connection_closed(
    upstream: UpstreamProcess, gateway_for: GatewayFactory
) -> None:
    async with gateway_for(orders=[upstream.url], body_timeout_s=0.5) as (client, _):
        head = (
            b"POST /orders HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
            + f"X-API-Key: {KEY}\r\nContent-Length: 100\r\n\r\n".encode()
        )
        answer = await _raw_exchange(str(client.base_url), head, then=b"{", pause_s=0.1)
        calls = (await httpx.AsyncClient().get(f"{upstream.url}/_calls")).json()
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 408 Request Timeout"
    assert b"connection: close" in rest.lower()
    assert b'"code":"request_timeout"' in rest
    assert "POST /orders" not in calls, "nothing reaches the service"


async def test_headers_over_the_limit_are_answered_431(upstream: UpstreamProcess, gateway_for: GatewayFactory) -> None:
    async with gateway_for(orders=[upstream.url], max_header_bytes=2048) as (client, _):
        too_many = await client.get("/orders/x", headers={**HEADERS, "X-Padding": "p" * 4096})
        within = await client.get("/orders/x", headers={**HEADERS, "X-Padding": "p" * 512})
    assert_problem(too_many, 431, "headers_too_large")
    assert within.status_code == 200


async def test_every_refusal_of_the_gateway_is_a_problem_document(upstream: UpstreamProcess, gateway_for: GatewayFactory) -> None:
    async with gateway_for(orders=[upstream.url], max_body_bytes=16) as (client, _):
        unauthorized = await client.get("/orders/x")
        too_large = await client.post("/orders", content=b"{" + b" " * 32 + b"}", headers={**HEADERS, "Content-Type": "application/json"})
        not_json = await client.post("/orders", content=b"a=1", headers={**HEADERS, "Content-Type": "text/plain"})
    problem = assert_problem(unauthorized, 401, "unauthorized")
    assert problem["title"] == "Unauthorized"
    assert problem["instance"] == "/orders/x"
    assert_problem(too_large, 413, "payload_too_large")
    assert_problem(not_json, 415, "unsupported_media_type")


async def test_an_unreachable_service_is_a_502_problem_naming_the_service(gateway_for: GatewayFactory) -> None:
    async with gateway_for() as (client, _):
        response = await client.get("/orders/x", headers=HEADERS)
    problem = assert_problem(response, 502, "upstream_unavailable")
    assert problem["detail"] == "the orders service is unreachable"
