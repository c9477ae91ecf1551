"""Dead letters of a service's queues: read, replay and purge what its consumer parked.

A parked message stays in ``<queue>.dlq`` (the broker is its store) and is handled through
the broker's own operations, each on a connection of its own:

- **Reading** takes every message of the DLQ unacknowledged, then gives each back with a
  ``nack`` in the order it came: a quorum queue puts returned messages behind the rest, so
  only a read of the whole queue leaves the order as it was. A DLQ holding more than
  ``scan_limit`` messages is not read (``TooManyToRead``): a partial read would reorder it.
- **Replay** publishes a copy to the work queue (through ``<service>.requeue``, with
  publisher confirms), its attempt count and error headers removed and ``x-replays`` /
  ``x-replayed-at`` added (and ``x-replay-run``: a replay of ``all`` stops at a copy it sent
  itself that was parked again at once), and only after the broker confirmed the copy acks the parked
  message. A process that dies half-way leaves every message either replayed or still
  parked; at most the copies confirmed but not yet acked exist twice, and the consumer's
  idempotency (``processed_events``) absorbs the second.
- **Purge** acks (drops) the chosen messages, or purges the DLQ for ``all``.

Replaying or purging ids checks them all first: if one is not parked, nothing moves.
One call at a time per queue in a process; two processes reading one DLQ at once each see
only the messages the other does not hold.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from shared.domain_errors import Conflict, InvalidRequest
from shared.messaging.received import persistent_copy
from shared.messaging.topology import ConsumerQueue

# headers of a parked message that a replay takes off: the replayed message starts its attempts afresh
PARKING_HEADERS = ("x-attempts", "x-last-error", "x-error", "x-error-kind", "x-failed-at")
REPLAY_RUN_HEADER = "x-replay-run"  # which replay sent the copy
REPLAY_BATCH = 100  # copies in flight before their originals are acked
DEFAULT_SCAN_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    type: str | None
    routing_key: str | None
    attempts: int
    error: str | None
    error_kind: str | None
    parked_at: datetime | None
    replays: int


@dataclass(frozen=True, slots=True)
class DeadLetterQueue:
    queue: str
    dead_letter_queue: str
    messages: int


class UnknownQueue(InvalidRequest):
    code = "unknown_queue"


class NotParked(InvalidRequest):
    code = "not_parked"


class TooManyToRead(Conflict):
    code = "too_many_dead_letters"


def message_key(message: AbstractIncomingMessage) -> str:
    """The message's id; a hash of its body for a message published without one."""
    return message.message_id or "sha256:" + hashlib.sha256(message.body).hexdigest()[:32]


def describe(message: AbstractIncomingMessage) -> DeadLetter:
    headers = message.headers or {}
    parked_at = headers.get("x-failed-at")
    try:
        parked = datetime.fromisoformat(str(parked_at)) if parked_at else None
    except ValueError:
        parked = None
    return DeadLetter(
        id=message_key(message),
        type=message.type,
        routing_key=_text(headers.get("x-original-routing-key")) or message.routing_key,
        attempts=_number(headers.get("x-attempts")),
        error=_text(headers.get("x-error")),
        error_kind=_text(headers.get("x-error-kind")),
        parked_at=parked,
        replays=_number(headers.get("x-replays")),
    )


def replay_copy(message: AbstractIncomingMessage, now: datetime, run: str) -> aio_pika.Message:
    """The message as its consumer first saw it, plus the record of this replay."""
    headers = {key: value for key, value in (message.headers or {}).items() if key not in PARKING_HEADERS}
    headers["x-replays"] = _number(headers.get("x-replays")) + 1
    headers["x-replayed-at"] = now.isoformat()
    headers[REPLAY_RUN_HEADER] = run
    return persistent_copy(message, headers)


class DeadLetters:
    """The dead letters of one service's consumer queues."""

    def __init__(self, broker_url: str, queues: Sequence[ConsumerQueue], *, scan_limit: int = DEFAULT_SCAN_LIMIT) -> None:
        self._broker_url = broker_url
        self._queues = {queue.name: queue for queue in queues}
        self._scan_limit = scan_limit
        self._locks = {name: asyncio.Lock() for name in self._queues}

    @property
    def queue_names(self) -> list[str]:
        return sorted(self._queues)

    def queue(self, name: str) -> ConsumerQueue:
        """The consumer queue called ``name`` (or whose DLQ is called ``name``)."""
        queue = self._queues.get(name.removesuffix(".dlq"))
        if queue is None:
            raise UnknownQueue(f"queue: {name!r} is not a queue of this service; its queues are {', '.join(self.queue_names)}")
        return queue

    async def queues(self) -> list[DeadLetterQueue]:
        """Each consumer queue with the number of messages parked in its DLQ."""
        async with self._broker_channel() as channel:
            found = []
            for name in self.queue_names:
                dlq = await self._dlq(channel, self._queues[name])
                found.append(DeadLetterQueue(name, dlq.name, dlq.declaration_result.message_count or 0))
            return found

    async def read(self, name: str, *, page: int = 1, count: int = 50) -> tuple[list[DeadLetter], int]:
        """One page of the parked messages, oldest first, and how many are parked."""
        queue = self.queue(name)
        async with self._locks[queue.name], self._broker_channel() as channel:
            held = await self._read_all(channel, queue)
            await _give_back(held)
        start = (page - 1) * count
        return [describe(message) for message in held[start : start + count]], len(held)

    async def replay(self, name: str, ids: Sequence[str] | None = None) -> int:
        """Replay the parked messages ``ids`` (every one for ``None``); how many moved."""
        queue = self.queue(name)
        async with self._locks[queue.name], self._broker_channel() as channel:
            exchange = await channel.get_exchange(queue.requeue_exchange)
            if ids is None:
                dlq = await self._dlq(channel, queue)
                run = uuid.uuid4().hex
                moved = 0
                while batch := await _take(dlq, REPLAY_BATCH):
                    # a copy this run replayed that failed again at once (a malformed one) ends the run
                    again = next((index for index, message in enumerate(batch) if _header(message, REPLAY_RUN_HEADER) == run), None)
                    if again is not None:
                        await _give_back(batch[again:])
                        batch = batch[:again]
                    await self._move(exchange, queue, batch, run)
                    moved += len(batch)
                    if again is not None:
                        break
                return moved
            chosen, others = await self._choose(channel, queue, ids)
            try:
                run = uuid.uuid4().hex
                for start in range(0, len(chosen), REPLAY_BATCH):
                    await self._move(exchange, queue, chosen[start : start + REPLAY_BATCH], run)
            finally:
                await _give_back(others)
            return len(chosen)

    async def purge(self, name: str, ids: Sequence[str] | None = None) -> int:
        """Drop the parked messages ``ids`` (every one for ``None``); how many were dropped."""
        queue = self.queue(name)
        async with self._locks[queue.name], self._broker_channel() as channel:
            if ids is None:
                dlq = await self._dlq(channel, queue)
                purged = await dlq.purge()
                return int(purged.message_count or 0)
            chosen, others = await self._choose(channel, queue, ids)
            try:
                for message in chosen:
                    await message.ack()
            finally:
                await _give_back(others)
            return len(chosen)

    async def _choose(
        self, channel: AbstractChannel, queue: ConsumerQueue, ids: Sequence[str]
    ) -> tuple[list[AbstractIncomingMessage], list[AbstractIncomingMessage]]:
        """Every parked message read and held, split into those named by ``ids`` and the rest;
        ``NotParked`` (everything given back) when an id is not among them."""
        held = await self._read_all(channel, queue)
        wanted = set(ids)
        chosen = [message for message in held if message_key(message) in wanted]
        missing = sorted(wanted - {message_key(message) for message in chosen})
        if missing:
            await _give_back(held)
            shown = ", ".join(missing[:10])
            raise NotParked(f"ids: not parked in {queue.dlq_name}: {shown}")
        return chosen, [message for message in held if message_key(message) not in wanted]

    async def _read_all(self, channel: AbstractChannel, queue: ConsumerQueue) -> list[AbstractIncomingMessage]:
        dlq = await self._dlq(channel, queue)
        parked = dlq.declaration_result.message_count or 0
        held = [] if parked > self._scan_limit else await _take(dlq, self._scan_limit + 1)
        if parked > self._scan_limit or len(held) > self._scan_limit:
            await _give_back(held)
            raise TooManyToRead(
                f"{dlq.name} holds {max(parked, len(held))} messages, more than can be read without reordering them "
                f'({self._scan_limit}); replay or purge with "all", or raise DEAD_LETTER_SCAN_LIMIT'
            )
        return held

    async def _move(
        self, exchange: aio_pika.abc.AbstractExchange, queue: ConsumerQueue, batch: list[AbstractIncomingMessage], run: str
    ) -> None:
        now = datetime.now(UTC)
        await asyncio.gather(
            *(exchange.publish(replay_copy(message, now, run), routing_key=queue.name, mandatory=True, timeout=30) for message in batch)
        )
        for message in batch:
            await message.ack()

    async def _dlq(self, channel: AbstractChannel, queue: ConsumerQueue) -> AbstractQueue:
        return await channel.declare_queue(queue.dlq_name, passive=True)

    @asynccontextmanager
    async def _broker_channel(self) -> AsyncIterator[AbstractChannel]:
        connection = await aio_pika.connect(self._broker_url, client_properties={"connection_name": "dead-letters"})
        try:
            yield await connection.channel(publisher_confirms=True, on_return_raises=True)
        finally:
            await connection.close()


async def _take(dlq: AbstractQueue, most: int) -> list[AbstractIncomingMessage]:
    """Up to ``most`` messages, held unacknowledged, in queue order."""
    taken: list[AbstractIncomingMessage] = []
    while len(taken) < most:
        message = await dlq.get(no_ack=False, fail=False)
        if message is None:
            break
        taken.append(message)
    return taken


async def _give_back(messages: Sequence[AbstractIncomingMessage]) -> None:
    """Return held messages to their queue in the order they were read."""
    for message in messages:
        await message.nack(requeue=True)


def _number(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _header(message: AbstractIncomingMessage, name: str) -> str | None:
    return _text((message.headers or {}).get(name))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)
