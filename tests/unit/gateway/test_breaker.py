from __future__ import annotations

from gateway.breaker import BreakerPolicy, BreakerState, CircuitBreaker


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(clock: ManualClock, **overrides: float) -> tuple[CircuitBreaker, list[BreakerState]]:
    changes: list[BreakerState] = []
    policy = BreakerPolicy(**{"window": 10, "min_calls": 4, "failure_rate": 0.5, "open_s": 5.0, "half_open_calls": 2, **overrides})  # type: ignore[arg-type]
    return CircuitBreaker(policy, clock=clock, on_change=changes.append), changes


def call(breaker: CircuitBreaker, *, success: bool) -> bool:
    permit = breaker.acquire()
    if permit is None:
        return False
    breaker.record(permit, success=success)
    return True


def test_stays_closed_below_the_minimum_number_of_calls() -> None:
    breaker, _ = make(ManualClock())
    for _ in range(3):
        assert call(breaker, success=False)
    assert breaker.state is BreakerState.CLOSED


def test_opens_when_the_failure_rate_reaches_the_threshold() -> None:
    breaker, changes = make(ManualClock())
    for success in (True, True, False, False):
        call(breaker, success=success)
    assert breaker.state is BreakerState.OPEN
    assert changes == [BreakerState.OPEN]
    assert breaker.acquire() is None


def test_failures_below_the_rate_keep_it_closed_and_old_ones_slide_out() -> None:
    breaker, _ = make(ManualClock(), window=4, min_calls=4)
    for success in (False, True, True, True, False, True, True):
        call(breaker, success=success)
    assert breaker.state is BreakerState.CLOSED


def test_open_answers_with_the_time_left_then_half_opens() -> None:
    clock = ManualClock()
    breaker, _ = make(clock)
    for _ in range(4):
        call(breaker, success=False)
    clock.now += 2.0
    assert breaker.retry_after_s() == 3.0
    clock.now += 3.0
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.retry_after_s() == 0.0


def test_half_open_lets_a_limited_number_of_probes_through_and_closes_after_them() -> None:
    clock = ManualClock()
    breaker, changes = make(clock)
    for _ in range(4):
        call(breaker, success=False)
    clock.now += 5.0
    first, second = breaker.acquire(), breaker.acquire()
    assert first is not None
    assert second is not None
    assert breaker.acquire() is None, "a third probe must wait"
    breaker.record(first, success=True)
    after_one = breaker.state
    breaker.record(second, success=True)
    after_two = breaker.state
    assert after_one is BreakerState.HALF_OPEN
    assert after_two is BreakerState.CLOSED
    assert changes == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


def test_a_failed_probe_opens_it_again_for_a_full_period() -> None:
    clock = ManualClock()
    breaker, _ = make(clock)
    for _ in range(4):
        call(breaker, success=False)
    clock.now += 5.0
    probe = breaker.acquire()
    assert probe is not None
    breaker.record(probe, success=False)
    assert breaker.state is BreakerState.OPEN
    assert breaker.retry_after_s() == 5.0


def test_outcomes_of_calls_started_before_a_transition_are_ignored() -> None:
    clock = ManualClock()
    breaker, _ = make(clock)
    slow = breaker.acquire()
    assert slow is not None
    for _ in range(4):
        call(breaker, success=False)
    clock.now += 5.0
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.record(slow, success=True)
    assert breaker.state is BreakerState.HALF_OPEN, "a success from the closed period is not a probe"


def test_a_released_probe_frees_its_slot() -> None:
    clock = ManualClock()
    breaker, _ = make(clock, half_open_calls=1)
    for _ in range(4):
        call(breaker, success=False)
    clock.now += 5.0
    probe = breaker.acquire()
    assert probe is not None
    assert breaker.acquire() is None
    breaker.release(probe)
    assert breaker.acquire() is not None
