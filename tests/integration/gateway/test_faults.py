"""Upstream faults: stopped, slow, hanging, flaky, failing and recovering; the breaker; what is retried."""

from __future__ import annotations

import asyncio

import httpx

from shared.testing.fixtures import eventually
from tests.integration.gateway.conftest import HEADERS, GatewayFactory
from tests.integration.gateway.faults import UpstreamProcess

JSON = {**HEADERS, "Content-Type": "application/json"}


async def metric(client: httpx.AsyncClient, name: str, **labels: str) -> float:
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in (await client.get("/metrics", headers=HEADERS)).text.splitlines():
        if line.startswith(f"{name}{{") and line.split("{", 1)[1].split("}", 1)[0] == wanted:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_a_stopped_instance_is_passed_over_for_every_method(upstreams: list[UpstreamProcess], gateway_for: GatewayFactory) -> None:
    alive, stopped = upstreams
    await alive.fault("ok")
    await stopped.stop()
    async with gateway_for(orders=[alive.url, stopped.url]) as (client, _):
        statuses = [(await client.request(m, "/orders", headers=JSON, content=b"{}")).status_code for m in ["GET", "POST"] * 5]
    assert statuses == [200] * 10, "a refused connection never reached the service: safe to repeat, even a POST"
    assert (await alive.calls())["POST /orders"] == 5


async def test_a_post_is_not_repeated_after_a_read_timeout(upstream: UpstreamProcess, gateway_for: GatewayFactory) -> None:
    await upstream.fault("slow", delay_s=1.5)
    timeouts = {"orders": {"connect_s": 1.0, "read_s": 0.3}}
    async with gateway_for(orders=[upstream.url], timeouts=timeouts) as (client, _):
        keyed = await client.post("/orders", headers={**JSON, "Idempotency-Key": "k-1"}, content=b"{}")
        read = await client.get("/orders/1", headers=HEADERS)
    assert keyed.status_code == 504
    assert keyed.json()["code"] == "upstream_timeout"
    assert keyed.json()["detail"] == "the orders service did not answer within 0.3 s"
    assert read.status_code == 504
    calls = await upstream.calls()
    assert calls["POST /orders"] == 1, "the service may still be working on it: never sent twice"
    assert calls["GET /orders/1"] == 3, "an idempotent read is tried again, up to the attempt limit"


async def test_a_hanging_upstream_cannot_hold_a_request_past_the_deadline_nor_slow_other_routes(
    upstreams: list[UpstreamProcess], gateway_for: GatewayFactory
) -> None:
    hanging, healthy = upstreams
    await hanging.fault("hang")
    await healthy.fault("ok")
    async with gateway_for(orders=[hanging.url], reports=[healthy.url], request_deadline_s=1.0, timeouts={"orders": {"read_s": 30}}) as (
        client,
        _,
    ):
        stuck = asyncio.create_task(client.get("/orders/1", headers=HEADERS))

        async def reached_upstream() -> bool:
            return bool((await hanging.calls()).get("GET /orders/1"))

        await eventually(reached_upstream, what="the request waiting on the hanging upstream")
        other = await client.get("/report/all", headers=HEADERS)
        answered_while_stuck = not stuck.done()
        held = await asyncio.wait_for(stuck, 5)  # the 30 s read timeout would fail this: the 1 s deadline ends it
    assert other.status_code == 200
    assert answered_while_stuck, "another route is answered while a request waits on the hanging upstream"
    assert held.status_code == 504


async def test_half_failing_reads_are_retried_and_posts_without_a_key_are_not(
    upstream: UpstreamProcess, gateway_for: GatewayFactory
) -> None:
    await upstream.fault("flaky")
    async with gateway_for(orders=[upstream.url], breaker_min_calls=100, breaker_window=100) as (client, _):
        reads = [(await client.get("/orders", headers=HEADERS)).status_code for _ in range(6)]
        posts = [(await client.post("/orders", headers=JSON, content=b"{}")).status_code for _ in range(6)]
        keyed = [(await client.post("/orders", headers={**JSON, "Idempotency-Key": f"k{i}"}, content=b"{}")).status_code for i in range(4)]
        retries = await metric(client, "gateway_retries_total", upstream="orders", reason="503")
    assert reads == [200] * 6
    assert sorted(set(posts)) == [200, 503], "without a key a 503 is the service's answer to pass on"
    assert keyed == [200] * 4
    calls = await upstream.calls()
    assert calls["POST /orders"] == 6 + 2 * 4, "each keyed POST met one 503 and was sent again"
    assert retries >= 6


async def test_the_breaker_opens_answers_at_once_then_probes_and_closes_when_the_upstream_recovers(
    upstream: UpstreamProcess, gateway_for: GatewayFactory
) -> None:
    await upstream.fault("fail")
    settings = {"breaker_window": 10, "breaker_min_calls": 4, "breaker_open_s": 30, "breaker_half_open_calls": 1}
    async with gateway_for(orders=[upstream.url], **settings) as (client, clock):
        failures = [(await client.get("/orders", headers=HEADERS)).status_code for _ in range(4)]
        calls_when_opened = (await upstream.calls())["GET /orders"]
        refused = await client.get("/orders", headers=HEADERS)
        health_open = (await client.get("/health", headers=HEADERS)).json()["services"]["orders"]
        state_open = await metric(client, "gateway_breaker_state", upstream="orders", instance=upstream.url)
        assert (await upstream.calls())["GET /orders"] == calls_when_opened, "an open breaker sends nothing"

        await upstream.fault("ok")
        clock.advance(31)
        probe = await client.get("/orders", headers=HEADERS)
        after = [(await client.get("/orders", headers=HEADERS)).status_code for _ in range(3)]
        state_closed = await metric(client, "gateway_breaker_state", upstream="orders", instance=upstream.url)
    assert failures == [500] * 4, "a 500 is the service's answer: passed on, not retried, counted by the breaker"
    assert calls_when_opened == 4
    assert refused.status_code == 503
    assert refused.json()["code"] == "circuit_open"
    assert 1 <= int(refused.headers["retry-after"]) <= 30
    assert health_open["instances"][0]["breaker"] == "open"
    assert health_open["status"] == "unhealthy"
    assert state_open == 1.0
    assert probe.status_code == 200
    assert after == [200, 200, 200]
    assert state_closed == 0.0


async def test_client_errors_never_open_the_breaker(upstream: UpstreamProcess, gateway_for: GatewayFactory) -> None:
    async with gateway_for(orders=[upstream.url], breaker_min_calls=2, breaker_window=4) as (client, _):
        statuses = [(await client.get("/orders/x?status=404", headers=HEADERS)).status_code for _ in range(8)]
    assert statuses == [404] * 8


async def test_a_restarted_upstream_is_used_again(upstream: UpstreamProcess, gateway_for: GatewayFactory) -> None:
    async with gateway_for(orders=[upstream.url]) as (client, _):
        await upstream.stop()
        down = await client.get("/orders", headers=HEADERS)
        await upstream.start()
        up = await client.get("/orders", headers=HEADERS)
    assert down.status_code == 502
    assert down.json()["detail"] == "the orders service is unreachable", "the service's name, not its address or the library's words"
    assert up.status_code == 200
