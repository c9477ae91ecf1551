"""AMQP writes that keep coming leave in one socket write, for every aiormq connection.

aiormq's connection writer calls ``write`` once per queued frame set, so every published
message and every ack is a ``send`` of its own. Over loopback, and on a busy machine, a
send costs far more than the bytes: the kernel runs the receiver's side of TCP in the
sender's time and wakes the broker for each one. Here writes that keep coming are
gathered and leave in one ``write`` as soon as a turn of the event loop passes without
one: a message published alone leaves two turns later, a batch leaves together, and
nothing waits for a timer (the technique of amqprs's "one write for a publish sequence"
and comq's per-turn cork, stretched over the turns of aiormq's lock hand-offs).

aiormq offers no hook for its writer, so ``install`` wraps the private
``Connection.__writer`` coroutine; it checks that the method exists and leaves aiormq as
it is (slower, not wrong) if a release renames it. A test fails if that happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import aiormq.connection

log = logging.getLogger(__name__)

_PRIVATE_WRITER = "_Connection__writer"


MAX_TURNS = 16  # turns a write may wait while more keep coming
MAX_BYTES = 64 * 1024  # sent at once when this much is waiting


class TurnBatchingWriter:
    """A ``StreamWriter`` stand-in: writes that keep coming turn after turn leave together.

    What is written waits while each turn brings another write, up to ``MAX_TURNS`` turns or
    ``MAX_BYTES``; the first turn without a write sends it all with one ``write``. aiormq
    hands its channel lock from one publish to the next through the loop, so a batch of
    publishes arrives one per turn: sending at the end of each turn would still be a send
    per message. Ordering is kept (one buffer, sent before ``drain``, ``close`` and
    ``write_eof``); flow control is the real writer's, through ``drain``.
    """

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._buffer: list[bytes] = []
        self._size = 0
        self._loop = asyncio.get_running_loop()
        self._scheduled = False
        self._fresh = False  # written since the last turn ended
        self._turns = 0

    def write(self, data: bytes) -> None:
        self._buffer.append(data)
        self._size += len(data)
        self._fresh = True
        if self._size >= MAX_BYTES:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._turn_ended)

    def _turn_ended(self) -> None:
        if not self._scheduled:
            return  # sent in the meantime (drain, close, size)
        if self._fresh and self._turns < MAX_TURNS:
            self._fresh = False
            self._turns += 1
            self._loop.call_soon(self._turn_ended)
            return
        self.flush()

    def flush(self) -> None:
        self._scheduled = self._fresh = False
        self._turns = 0
        if not self._buffer:
            return
        data = b"".join(self._buffer)
        self._buffer.clear()
        self._size = 0
        if self._writer.is_closing():
            return  # the connection is going; aiormq fails the frames still waiting for an answer
        try:
            self._writer.write(data)
        except Exception as exc:  # noqa: BLE001 - no caller to raise to: drop the connection, aiormq then recovers
            log.warning("AMQP write failed; closing the connection", extra={"error": repr(exc)})
            self._writer.transport.abort()

    async def drain(self) -> None:
        self.flush()
        await self._writer.drain()

    def close(self) -> None:
        self.flush()
        self._writer.close()

    def write_eof(self) -> None:
        self.flush()
        self._writer.write_eof()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._writer, name)


def _current_writer() -> Any:
    return getattr(aiormq.connection.Connection, _PRIVATE_WRITER, None)


def is_installed() -> bool:
    """Whether connections opened now batch their writes (the wrapper keeps aiormq's writer as ``original``)."""
    return hasattr(_current_writer(), "original")


def install() -> bool:
    """Make every aiormq connection opened from now on batch its writes per turn; True if in place."""
    original: Callable[..., Coroutine[Any, Any, None]] | None = _current_writer()
    if original is None:
        log.warning("aiormq has no Connection.__writer: AMQP writes stay one per frame set")
        return False
    if is_installed():
        return True

    async def writer(self: aiormq.connection.Connection, stream_writer: asyncio.StreamWriter) -> None:
        await original(self, TurnBatchingWriter(stream_writer))

    writer.original = original  # type: ignore[attr-defined]
    setattr(aiormq.connection.Connection, _PRIVATE_WRITER, writer)
    return True


def uninstall() -> None:
    """Connections opened from now on write as aiormq does; open ones keep their writer."""
    if is_installed():
        setattr(aiormq.connection.Connection, _PRIVATE_WRITER, _current_writer().original)


@contextlib.contextmanager
def installed() -> Iterator[None]:
    """Batching for the connections opened inside the block: for a process that also runs plain
    aiormq clients beside the suite's, as the benchmarks do (the relay against bare aio-pika)."""
    already = is_installed()
    install()
    try:
        yield
    finally:
        if not already:
            uninstall()
