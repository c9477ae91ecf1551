"""Circuit breaker per upstream instance: closed, open, half-open, on a sliding window of calls.

Closed: calls flow; the last ``window`` outcomes are kept and, once at least
``min_calls`` are in, a failure share at or over ``failure_rate`` opens the breaker.
Open: every call is refused until ``open_s`` has passed, then the breaker is half-open.
Half-open: at most ``half_open_calls`` probes go through; when that many have succeeded
the breaker closes with an empty window; one failed probe opens it again.

Each permit carries the generation it was issued in, so the outcome of a call that
started before a transition cannot close or open the breaker afterwards.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]


class BreakerState(enum.IntEnum):
    """Values are what the ``gateway_breaker_state`` gauge shows."""

    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    window: int = 20
    min_calls: int = 10
    failure_rate: float = 0.5
    open_s: float = 10.0
    half_open_calls: int = 2


@dataclass(frozen=True, slots=True)
class Permit:
    generation: int
    probe: bool


class CircuitBreaker:
    def __init__(
        self,
        policy: BreakerPolicy,
        *,
        clock: Clock = time.monotonic,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._generation = 0
        self._outcomes: deque[bool] = deque(maxlen=policy.window)
        self._failures = 0
        self._opened_at = 0.0
        self._probes_in_flight = 0
        self._probe_successes = 0

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.policy.open_s:
            self._move_to(BreakerState.HALF_OPEN)
        return self._state

    def retry_after_s(self) -> float:
        """Seconds until an open breaker lets a probe through (0 when it would now)."""
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self.policy.open_s - (self._clock() - self._opened_at))

    def acquire(self) -> Permit | None:
        """A permit to call the instance, or None while the breaker refuses calls."""
        state = self.state
        if state is BreakerState.CLOSED:
            return Permit(self._generation, probe=False)
        if state is BreakerState.HALF_OPEN and self._probes_in_flight + self._probe_successes < self.policy.half_open_calls:
            self._probes_in_flight += 1
            return Permit(self._generation, probe=True)
        return None

    def release(self, permit: Permit) -> None:
        """The call ended without an outcome worth counting (the client went away)."""
        if permit.probe and permit.generation == self._generation:
            self._probes_in_flight -= 1

    def record(self, permit: Permit, *, success: bool) -> None:
        if permit.generation != self._generation:
            return
        if self._state is BreakerState.HALF_OPEN:
            self._probes_in_flight -= 1
            if not success:
                self._open()
                return
            self._probe_successes += 1
            if self._probe_successes >= self.policy.half_open_calls:
                self._move_to(BreakerState.CLOSED)
            return
        if self._state is not BreakerState.CLOSED:
            return
        if len(self._outcomes) == self._outcomes.maxlen and not self._outcomes[0]:
            self._failures -= 1
        self._outcomes.append(success)
        if not success:
            self._failures += 1
            calls = len(self._outcomes)
            if calls >= self.policy.min_calls and self._failures >= self.policy.failure_rate * calls:
                self._open()

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._move_to(BreakerState.OPEN)

    def _move_to(self, state: BreakerState) -> None:
        self._state = state
        self._generation += 1
        self._outcomes.clear()
        self._failures = 0
        self._probes_in_flight = 0
        self._probe_successes = 0
        if self._on_change is not None:
            self._on_change(state)
