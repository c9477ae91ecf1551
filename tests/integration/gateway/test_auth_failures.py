"""Calls without a valid key are throttled per client address; a valid key is never held up by them."""

from __future__ import annotations

from gateway.rate_limit import RateLimiter
from tests.integration.gateway.conftest import HEADERS, GatewayFactory
from tests.integration.gateway.faults import UpstreamProcess


async def test_wrong_keys_from_one_address_are_slowed_down_and_a_valid_key_is_not(
    upstream: UpstreamProcess, gateway_for: GatewayFactory
) -> None:
    async with gateway_for(orders=[upstream.url], auth_failures_burst=5, auth_failures_per_s=1) as (client, clock):
        answers = [(await client.get("/orders", headers={"X-API-Key": f"guess-{n:04d}"})).status_code for n in range(8)]
        throttled = await client.get("/orders")
        valid = await client.get("/orders", headers=HEADERS)
        clock.advance(2)
        after_a_while = await client.get("/orders", headers={"X-API-Key": "guess-again"})
    assert answers == [401] * 5 + [429] * 3
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "too_many_failed_keys"
    assert int(throttled.headers["retry-after"]) >= 1
    assert valid.status_code == 200
    assert after_a_while.status_code == 401


def test_the_table_of_addresses_stays_within_its_bound() -> None:
    limiter = RateLimiter(1.0, 1, clock=lambda: 0.0, max_keys=100)
    for n in range(10_000):
        limiter.acquire(f"10.0.{n // 256}.{n % 256}")
    assert len(limiter) == 100
