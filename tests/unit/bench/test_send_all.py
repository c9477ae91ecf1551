"""The peers' producers keep their window of sends in flight: a slow send holds up only itself."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from bench.peers.compare import send_all


class InFlight:
    """Counts the sends under way, and the most there were at once."""

    def __init__(self) -> None:
        self.now = self.peak = 0

    @contextlib.contextmanager
    def one(self) -> Iterator[None]:
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            yield
        finally:
            self.now -= 1


async def test_a_new_send_starts_as_soon_as_one_ends() -> None:
    # "slow" ends only once "c" has been sent: sends in waves of two ("slow" with "a", then "b"
    # with "c") would wait for "slow" forever; a sliding window sends a, b and c beside it
    released = asyncio.Event()
    finished: list[str] = []
    in_flight = InFlight()

    async def send(item: str) -> None:
        with in_flight.one():
            if item == "slow":
                await released.wait()
            else:
                await asyncio.sleep(0)
            if item == "c":
                released.set()
        finished.append(item)

    await asyncio.wait_for(send_all(send, ["slow", "a", "b", "c"], 2), timeout=5)

    assert finished == ["a", "b", "c", "slow"]
    assert in_flight.peak == 2


async def test_each_item_is_sent_once_with_no_more_in_flight_than_the_window() -> None:
    sent: list[int] = []
    in_flight = InFlight()

    async def send(item: int) -> None:
        with in_flight.one():
            await asyncio.sleep(0.001 * (item % 3))
        sent.append(item)

    await send_all(send, list(range(50)), 8)

    assert sorted(sent) == list(range(50))
    assert in_flight.peak == 8


async def test_a_window_of_one_sends_one_at_a_time_in_order() -> None:
    sent: list[int] = []

    async def send(item: int) -> None:
        await asyncio.sleep(0)
        sent.append(item)

    await send_all(send, [3, 1, 2], 1)

    assert sent == [3, 1, 2]
