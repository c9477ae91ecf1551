from __future__ import annotations

import asyncio

import pytest

from gateway.retry import Failure, Outcome, RetryPolicy, UpstreamFailure, UpstreamResponse, call_with_retries, is_safe_to_repeat

UNREACHABLE = UpstreamFailure(Failure.UNREACHABLE, "")
DROPPED = UpstreamFailure(Failure.DROPPED, "")
TIMEOUT = UpstreamFailure(Failure.TIMEOUT, "")
BREAKER_OPEN = UpstreamFailure(Failure.BREAKER_OPEN, "")


def response(status: int) -> UpstreamResponse:
    return UpstreamResponse(status, [], b"")


@pytest.mark.parametrize(
    ("method", "key", "outcome", "safe"),
    [
        ("GET", False, UNREACHABLE, True),
        ("GET", False, DROPPED, True),
        ("GET", False, TIMEOUT, True),
        ("GET", False, response(503), True),
        ("GET", False, response(500), False),
        ("GET", False, response(404), False),
        ("DELETE", False, response(502), True),
        ("POST", False, UNREACHABLE, True),
        ("POST", False, DROPPED, False),
        ("POST", False, response(503), False),
        ("POST", True, DROPPED, True),
        ("POST", True, response(504), True),
        ("POST", True, TIMEOUT, False),
        ("POST", False, TIMEOUT, False),
        ("GET", False, BREAKER_OPEN, False),
        ("POST", True, BREAKER_OPEN, False),
    ],
)
def test_what_is_safe_to_repeat(method: str, key: bool, outcome: Outcome, safe: bool) -> None:
    assert is_safe_to_repeat(method, key, outcome) is safe


async def run(outcomes: list[Outcome], method: str, *, key: bool = False, policy: RetryPolicy | None = None) -> tuple[Outcome, int]:
    calls = 0

    async def attempt() -> Outcome:
        nonlocal calls
        calls += 1
        return outcomes[min(calls, len(outcomes)) - 1]

    policy = policy or RetryPolicy(attempts=3, base_delay_s=0.001, max_delay_s=0.002, deadline_s=5)
    return await call_with_retries(attempt, policy=policy, method=method, has_idempotency_key=key), calls


async def test_a_safe_failure_is_repeated_until_an_answer() -> None:
    outcome, calls = await run([UNREACHABLE, response(503), response(200)], "GET")
    assert outcome == response(200)
    assert calls == 3


async def test_attempts_are_bounded_and_the_last_outcome_is_returned() -> None:
    outcome, calls = await run([response(503)], "GET")
    assert outcome == response(503)
    assert calls == 3


async def test_a_post_after_a_read_timeout_is_not_repeated() -> None:
    outcome, calls = await run([TIMEOUT, response(201)], "POST", key=True)
    assert outcome is TIMEOUT
    assert calls == 1


async def test_the_deadline_stops_retries_that_would_sleep_past_it() -> None:
    policy = RetryPolicy(attempts=10, base_delay_s=1.0, max_delay_s=1.0, deadline_s=0.5)
    outcome, calls = await run([UNREACHABLE], "GET", policy=policy)
    assert outcome is UNREACHABLE
    assert calls == 1


async def test_each_repeat_is_reported_once_and_a_first_answer_not_at_all() -> None:
    reported: list[Outcome] = []

    async def once(outcomes: list[Outcome]) -> Outcome:
        queue = list(outcomes)

        async def attempt() -> Outcome:
            return queue.pop(0)

        policy = RetryPolicy(attempts=3, base_delay_s=0.001, max_delay_s=0.002, deadline_s=5)
        return await call_with_retries(attempt, policy=policy, method="GET", has_idempotency_key=False, on_retry=reported.append)

    assert await once([response(200)]) == response(200)
    assert reported == []
    assert await once([UNREACHABLE, response(502), response(200)]) == response(200)
    assert reported == [UNREACHABLE, response(502)]


async def test_the_deadline_counts_the_first_attempt_too() -> None:
    calls = 0

    async def slow_attempt() -> Outcome:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.3)
        return UNREACHABLE

    policy = RetryPolicy(attempts=3, base_delay_s=0.3, max_delay_s=0.3, deadline_s=0.5)
    outcome = await call_with_retries(slow_attempt, policy=policy, method="GET", has_idempotency_key=False)
    assert outcome is UNREACHABLE
    assert calls == 1, "0.3 s spent and a 0.3 s wait would end past the 0.5 s deadline"
