"""This suite's end-to-end runs in the peers benchmark, on the real database and broker: a run
ends when its last event was recorded, as a peer's does, not when the benchmark's poll saw it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest

from bench.peers import compare
from shared.testing.infrastructure import Infrastructure

EVENTS, SERIAL_EVENTS = 300, 30
LATE_S = 3.0  # each wait sees its condition this long after it held


@pytest.fixture
def late_waits(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float]]:
    """Small runs whose waits return LATE_S after their condition held; when each send_all began and ended."""
    monkeypatch.setattr(compare, "EVENTS", EVENTS)
    wait_for = compare._wait_for

    async def late(probe: Callable[[], Awaitable[Any]], what: str) -> Any:
        found = await wait_for(probe, what, timeout_s=30)
        await asyncio.sleep(LATE_S)
        return found

    monkeypatch.setattr(compare, "_wait_for", late)
    sent: list[tuple[float, float]] = []
    send_all = compare.send_all

    async def timed(send: Callable[[Any], Awaitable[object]], items: Sequence[Any], window: int) -> None:
        began = time.time()
        await send_all(send, items, window)
        sent.append((began, time.time()))

    monkeypatch.setattr(compare, "send_all", timed)
    return sent


async def test_a_run_ends_when_its_last_event_was_recorded_not_when_the_poll_saw_it(
    infrastructure: Infrastructure, late_waits: list[tuple[float, float]]
) -> None:
    end_to_end, serial = await compare.suite_run(infrastructure, drain=False, serial_events=SERIAL_EVENTS)

    # the late waits are not counted: each run took well under LATE_S
    assert end_to_end > EVENTS / (LATE_S - 1)
    assert serial > SERIAL_EVENTS / (LATE_S - 1)
    # nor does a run end before its last event was sent (each run's clock starts just before its sends)
    (began, ended), (serial_began, serial_ended) = late_waits
    assert end_to_end < EVENTS / (ended - began)
    assert serial < SERIAL_EVENTS / (serial_ended - serial_began)
