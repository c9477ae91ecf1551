"""When a failed upstream call may be repeated, and the tenacity policy that repeats it.

Safe means the repeat cannot do a thing twice:
- the request never reached the upstream (connection refused, connect timeout): any method;
- GET, HEAD, OPTIONS, PUT, DELETE (idempotent by HTTP's definition): also after a dropped
  connection, a read timeout, or a 502/503/504 answer;
- POST or PATCH with an ``Idempotency-Key``: also after a dropped connection or a
  502/503/504, because the service replays the first result for the same key;
- never a POST after a read timeout: the upstream may still be working on it, and a
  second call would race the first instead of replaying it;
- never into an open breaker: the instance is skipped, and when every instance of the
  upstream refuses, the gateway answers 503 at once.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
from tenacity import AsyncRetrying, RetryCallState, retry_if_result, stop_after_attempt, stop_before_delay, wait_exponential_jitter

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRYABLE_STATUSES = frozenset({502, 503, 504})


class Failure(enum.Enum):
    UNREACHABLE = "unreachable"  # connect refused or timed out: the request was not sent
    DROPPED = "dropped"  # the connection broke after the request was (maybe) sent
    TIMEOUT = "timeout"  # no answer within the read timeout
    BREAKER_OPEN = "breaker_open"  # every instance's breaker refuses calls


@dataclass(slots=True)
class UpstreamResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    stream: aiohttp.ClientResponse | None = None  # a large body still to be read, passed on as it comes


@dataclass(slots=True)
class UpstreamFailure:
    kind: Failure
    detail: str


Outcome = UpstreamResponse | UpstreamFailure


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 3
    base_delay_s: float = 0.05
    max_delay_s: float = 1.0
    deadline_s: float = 15.0


def is_safe_to_repeat(method: str, has_idempotency_key: bool, outcome: Outcome) -> bool:
    idempotent = method in IDEMPOTENT_METHODS
    if isinstance(outcome, UpstreamResponse):
        return outcome.status in RETRYABLE_STATUSES and (idempotent or has_idempotency_key)
    match outcome.kind:
        case Failure.UNREACHABLE:
            return True
        case Failure.DROPPED:
            return idempotent or has_idempotency_key
        case Failure.TIMEOUT:
            return idempotent
        case Failure.BREAKER_OPEN:
            return False


def retry_reason(outcome: Outcome) -> str:
    return str(outcome.status) if isinstance(outcome, UpstreamResponse) else outcome.kind.value


async def call_with_retries(
    attempt: Callable[[], Awaitable[Outcome]],
    *,
    policy: RetryPolicy,
    method: str,
    has_idempotency_key: bool,
    on_retry: Callable[[Outcome], None] | None = None,
) -> Outcome:
    """Run ``attempt`` until its outcome is final, unsafe to repeat, out of attempts or past the deadline.

    ``attempt`` never raises for upstream faults; it returns an ``UpstreamFailure``, so the
    last outcome is what the caller answers with.
    """

    started = time.monotonic()
    first = await attempt()
    if policy.attempts <= 1 or not is_safe_to_repeat(method, has_idempotency_key, first):
        return first  # the common case, an answer to pass on: no retry state to build
    deadline_left_s = max(policy.deadline_s - (time.monotonic() - started), 0.0)

    def before_sleep(state: RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None:
            on_retry(state.outcome.result())

    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.attempts) | stop_before_delay(deadline_left_s),  # tenacity's clock starts now
        wait=wait_exponential_jitter(multiplier=policy.base_delay_s, max=policy.max_delay_s, jitter=policy.base_delay_s),
        retry=retry_if_result(lambda outcome: is_safe_to_repeat(method, has_idempotency_key, outcome)),
        retry_error_callback=lambda state: state.outcome.result() if state.outcome is not None else None,
        before_sleep=before_sleep,
    )

    pending_first: list[Outcome] = [first]

    async def run() -> Outcome:  # a coroutine function, which tenacity needs to see to await it
        # tenacity's first attempt is the one already made, so its count, waits and callbacks are unchanged
        return pending_first.pop() if pending_first else await attempt()

    outcome: Outcome = await retrying(run)
    return outcome
