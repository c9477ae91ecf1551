"""Acknowledgements of one channel, sent as few frames as the ack policy allows.

A quorum queue turns every ``basic.ack`` frame into an entry of its Raft log, and the
client writes a frame per ack: at a few thousand messages a second that is a large part
of the broker's and the consumer's CPU. ``basic.ack`` with ``multiple`` settles every
outstanding delivery up to a tag in one frame, but it is only correct when every one of
them is finished: with several batches in flight, an early batch still running must not
be acked by a later one. This tracker knows which deliveries are still running; a
finished batch is acked with one frame when nothing before it is still running, and
message by message otherwise (a long handler never holds back the others' acks).

A message is "finished" once its fate is settled: its effect committed, or its copy
confirmed on the retry or dead-letter queue. A message left unacked on purpose is never
finished; it blocks only the single-frame shortcut, not the acks of other messages.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Sequence
from typing import Protocol


class Ackable(Protocol):
    @property
    def delivery_tag(self) -> int | None: ...

    async def ack(self, multiple: bool = False) -> None: ...


class AckTracker:
    """Delivery tags of one channel: ``delivered`` when a message arrives, ``finish`` to ack."""

    def __init__(self) -> None:
        self._running: list[int] = []  # min-heap of delivered tags; finished ones are dropped lazily
        self._finished: set[int] = set()
        self._lock = asyncio.Lock()  # decide and send together, or a late single ack could follow a multiple one
        self.frames_sent = 0

    def delivered(self, message: Ackable) -> None:
        if message.delivery_tag is not None:
            heapq.heappush(self._running, message.delivery_tag)

    async def finish(self, messages: Sequence[Ackable]) -> None:
        """Ack ``messages``; raises what the channel raises (the broker then redelivers them)."""
        tagged = [(message.delivery_tag, message) for message in messages if message.delivery_tag is not None]
        if not tagged:
            return
        async with self._lock:
            self._finished.update(tag for tag, _ in tagged)
            while self._running and self._running[0] in self._finished:
                self._finished.discard(heapq.heappop(self._running))
            last_tag, last = max(tagged, key=lambda pair: pair[0])
            if not self._running or self._running[0] > last_tag:
                self.frames_sent += 1
                await last.ack(multiple=True)
                return
            for _, message in tagged:
                self.frames_sent += 1
                await message.ack()
