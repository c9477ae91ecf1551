from __future__ import annotations

import pytest

from gateway.rate_limit import RateLimiter


class ManualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_granted_then_the_next_call_learns_when_to_return() -> None:
    clock = ManualClock()
    limiter = RateLimiter(rate_per_s=2.0, burst=3, clock=clock)
    assert [limiter.acquire("web") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("web") == pytest.approx(0.5)


def test_tokens_refill_at_the_rate_up_to_the_burst() -> None:
    clock = ManualClock()
    limiter = RateLimiter(rate_per_s=2.0, burst=3, clock=clock)
    for _ in range(3):
        limiter.acquire("web")
    clock.now += 0.5
    assert limiter.acquire("web") == 0.0
    clock.now += 100.0
    assert [limiter.acquire("web") for _ in range(4)][-1] > 0, "never more than the burst"


def test_clients_have_their_own_buckets() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=1, clock=ManualClock())
    assert limiter.acquire("web") == 0.0
    assert limiter.acquire("web") > 0
    assert limiter.acquire("batch") == 0.0
