"""Consumer wrapper: the one place that decides when a message is acked, retried or parked.

Acknowledgement policy
----------------------
* The message cannot be parsed, fails its schema, carries a version newer than its
  subscription knows, or is larger than ``max_message_bytes``: published to
  ``<queue>.dlq`` with the reason, then acked. It is never retried.
* The event id is already in ``processed_events`` for this consumer: acked, no effect.
* The handler succeeds: its transaction (which also records the event id) commits,
  then the message is acked. A crash between commit and ack only causes a duplicate,
  which the previous rule absorbs.
* The handler raises: the message is republished to the retry tier of its attempt
  (``<queue>.retry.1s``, ``.retry.10s``, ...: one queue per delay, ``RETRY_TIERS_MS``) with
  the attempt count in the ``x-attempts`` header; after
  ``max_attempts`` it goes to ``<queue>.dlq`` with the error and count. Only after the
  broker confirms that copy is the original acked.
* The database is out of reach (``shared.db_gate``): nothing is decided and no attempt is
  spent. The consumer pauses: every worker waits, the messages it holds stay unacked, and
  once a probe finds the database answering they are handled again.
* Nothing is decided (process dies, broker connection lost): the broker redelivers;
  quorum queues park a message after ``DELIVERY_LIMIT`` such redeliveries.

Messages are handled in batches: a worker takes up to ``batch_size`` messages, waiting at
most ``batch_linger_s`` for the batch to fill, and they share one transaction; if any
handler in it fails, the batch is rolled back and each message is handled again in a
transaction of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange
from aiormq.abc import DeliveredMessage
from aiormq.exceptions import ChannelInvalidStateError
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind
from pydantic import BaseModel, ValidationError
from sqlalchemy import ARRAY, Column, DateTime, MetaData, PrimaryKeyConstraint, String, Table, Uuid, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningInsert

from shared import metrics, tracing
from shared.contracts.owners import producers_of
from shared.correlation import correlation_id
from shared.db import SessionFactory
from shared.db_gate import DatabaseGate
from shared.messaging.acks import AckTracker
from shared.messaging.envelope import Envelope
from shared.messaging.received import ReceivedMessage, persistent_copy
from shared.messaging.topology import (
    DEFAULT_RETRY_TIERS_MS,
    ConsumerQueue,
    QueueType,
    declare_consumer_queue,
    declare_exchange,
    declare_requeue_exchange,
)

log = logging.getLogger(__name__)

ATTEMPTS_HEADER = "x-attempts"
# between tries to reach the broker again, doubling from 0.5 s; aio-pika's robust connection waits 5 s
RECONNECT_MAX_WAIT_S = 5.0
BACKGROUND_PREFETCH = 2  # unacked messages of a background subscription's queue at once
MAX_MESSAGE_BYTES = 1 << 20  # far above any event of the suite; a larger body is parked unread
Handler = Callable[[Envelope[Any], AsyncSession], Awaitable[None]]
BatchHandler = Callable[[Sequence[Envelope[Any]], AsyncSession], Awaitable[None]]
GiveUpHandler = Callable[[Envelope[Any], str, AsyncSession], Awaitable[None]]
# (envelope, error, failed attempts so far, seconds until the next one, session)
RetryHandler = Callable[[Envelope[Any], str, int, float, AsyncSession], Awaitable[None]]


def define_processed_events_table(metadata: MetaData) -> Table:
    return Table(
        "processed_events",
        metadata,
        Column("consumer", String(255), nullable=False),
        Column("event_id", Uuid, nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("consumer", "event_id"),
    )


def claim_statement(processed_events: Table) -> ReturningInsert[Any]:
    """INSERT ... SELECT FROM unnest(consumers, ids) ON CONFLICT DO NOTHING RETURNING the new ids."""
    arrays = bindparam("consumers", type_=ARRAY(String)), bindparam("event_ids", type_=ARRAY(Uuid))
    claimed = func.unnest(*arrays).table_valued("consumer", "event_id").render_derived(name="claimed")
    return (
        pg_insert(processed_events)
        .from_select(["consumer", "event_id"], select(claimed.c.consumer, claimed.c.event_id))
        .on_conflict_do_nothing()
        .returning(processed_events.c.event_id)
    )


def attempts_so_far(headers: Mapping[str, Any] | None) -> int:
    """Failed attempts recorded on the message; a missing or garbled header counts as none."""
    value = (headers or {}).get(ATTEMPTS_HEADER, 0)
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


@dataclass(frozen=True, slots=True)
class Subscription:
    """A routing key, the payload model it carries, and the handler that reacts to it.

    ``batch_handler`` takes every new event of a batch at once, so a handler can write
    them with one set-based statement; on failure the wrapper calls it again with one
    event per transaction, exactly as it does for ``handler``.

    ``on_give_up`` runs in its own transaction when the retries are exhausted, before the
    message is parked, so a service can record the failure (and publish it) atomically.
    ``on_retry`` runs likewise when a failed message is sent to wait for its next attempt,
    so what a reader sees meanwhile can say so (a task waiting, with the error).

    ``alone``: each message gets a transaction of its own, never shared with a batch; for
    long handlers that take locks, so two batches can never wait on each other.

    ``background``: work that must never delay the rest (a backfill of a year of reports):
    its messages are handled alone by one worker of their own, and the broker hands its
    queue's consumer at most ``BACKGROUND_PREFETCH`` at a time, so thousands of them queued
    never stand in front of another subscription's message.

    ``producers``: the envelope sources accepted; by default the routing key's producers in
    ``shared.contracts.owners``. A message from any other source is dead-lettered unhandled.

    ``max_version``: the newest envelope ``version`` the handler understands; a message of a
    later version (a breaking change this consumer predates) is dead-lettered unhandled.
    """

    routing_key: str
    data_model: type[BaseModel]
    handler: Handler | None = None
    batch_handler: BatchHandler | None = None
    on_give_up: GiveUpHandler | None = None
    on_retry: RetryHandler | None = None
    alone: bool = False
    background: bool = False
    producers: frozenset[str] = frozenset()
    max_version: int = 1

    @classmethod
    def to(
        cls,
        contract: type[BaseModel],
        *,
        handler: Handler | None = None,
        batch_handler: BatchHandler | None = None,
        on_give_up: GiveUpHandler | None = None,
        on_retry: RetryHandler | None = None,
        alone: bool = False,
        background: bool = False,
        max_version: int = 1,
    ) -> Subscription:
        """A subscription to the event a contract class carries: the routing key is the contract's ``event_type``."""
        routing_key = getattr(contract, "event_type", None)
        if not isinstance(routing_key, str):
            raise TypeError(f"{contract.__name__} has no event_type: it is not an event contract of shared.contracts")
        return cls(
            routing_key,
            contract,
            handler=handler,
            batch_handler=batch_handler,
            on_give_up=on_give_up,
            on_retry=on_retry,
            alone=alone or background,
            background=background,
            max_version=max_version,
        )

    def __post_init__(self) -> None:
        if (self.handler is None) == (self.batch_handler is None):
            raise ValueError(f"{self.routing_key}: give exactly one of handler or batch_handler")
        if not self.producers:
            object.__setattr__(self, "producers", producers_of(self.routing_key))
        if self.background:
            object.__setattr__(self, "alone", True)

    async def handle(self, events: Sequence[Envelope[Any]], session: AsyncSession) -> None:
        if self.batch_handler is not None:
            await self.batch_handler(events, session)
            return
        assert self.handler is not None
        for event in events:
            token = correlation_id.set(event.correlation_id)
            try:
                await self.handler(event, session)
            finally:
                correlation_id.reset(token)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``max_attempts`` tries in all; the n-th failure waits ``tiers_ms[n - 1]`` (the last tier once past them)."""

    max_attempts: int = 5
    tiers_ms: tuple[int, ...] = DEFAULT_RETRY_TIERS_MS

    def __post_init__(self) -> None:
        if not self.tiers_ms or any(delay < 1 for delay in self.tiers_ms) or list(self.tiers_ms) != sorted(set(self.tiers_ms)):
            raise ValueError(f"retry tiers must be distinct delays of at least 1 ms, shortest first; got {self.tiers_ms}")


Delivery = tuple[ReceivedMessage, ConsumerQueue]


@dataclass(slots=True, eq=False)
class _Inbox:
    """Delivered messages waiting for a worker, and the gathering of the next batch from them.

    One worker gathers at a time while the others commit theirs: workers gathering side by side
    split the arrivals into batches of one or two, each its own commit and ack.
    """

    messages: asyncio.Queue[Delivery] = field(default_factory=asyncio.Queue)
    gathering: asyncio.Lock = field(default_factory=asyncio.Lock)
    _wanted: int = field(default=0, init=False)  # how many waiting messages wake the gatherer (0: none waits)
    _enough: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    def put(self, delivery: Delivery) -> None:
        self.messages.put_nowait(delivery)
        if self._wanted and self.messages.qsize() >= self._wanted:
            self._enough.set()

    async def wait_for(self, wanted: int, timeout_s: float) -> None:
        """Return once ``wanted`` messages are waiting, or after ``timeout_s``."""
        if self.messages.qsize() >= wanted:
            return
        self._wanted = wanted
        self._enough.clear()
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await self._enough.wait()
        finally:
            self._wanted = 0


@dataclass(slots=True)
class _Parsed:
    message: ReceivedMessage
    queue: ConsumerQueue
    subscription: Subscription
    envelope: Envelope[Any]


class Consumer:
    def __init__(
        self,
        *,
        service: str,
        broker_url: str,
        exchange_name: str,
        session_factory: SessionFactory,
        processed_events: Table,
        subscriptions: Sequence[Subscription],
        queue_type: QueueType = "quorum",
        prefetch: int = 200,
        batch_size: int = 100,
        concurrency: int = 4,
        retry: RetryPolicy | None = None,
        batch_linger_s: float = 0.05,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self._service = service
        self._max_message_bytes = max_message_bytes
        self._broker_url = broker_url
        self._exchange_name = exchange_name
        self._session_factory = session_factory
        self._subscriptions = {subscription.routing_key: subscription for subscription in subscriptions}
        self._envelope_models: dict[str, type[Envelope[Any]]] = {
            subscription.routing_key: Envelope[subscription.data_model]  # type: ignore[name-defined]
            for subscription in subscriptions
        }
        self._queue_type: QueueType = queue_type
        self._prefetch = prefetch
        self._batch_size = batch_size
        self._concurrency = concurrency
        self._batch_linger_s = batch_linger_s
        self._retry = retry or RetryPolicy()
        self._claim_statement = claim_statement(processed_events)
        # batchable messages, and ``alone`` ones taken one at a time (a long one blocks one worker only)
        self._inbox = _Inbox()
        self._alone_inbox = _Inbox()
        self._background_inbox = _Inbox()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._channel: AbstractChannel | None = None
        self._requeue: AbstractExchange | None = None  # the live channel's <service>.requeue exchange
        self._acks: dict[object, AckTracker] = {}  # the live channel's deliveries, by its underlying channel
        self._attached = False
        self.database = DatabaseGate(f"{service}-consumer", self._probe_database)

    @property
    def queues(self) -> list[ConsumerQueue]:
        return [ConsumerQueue(self._service, routing_key, self._retry.tiers_ms) for routing_key in self._subscriptions]

    @property
    def attached(self) -> bool:
        """True while subscribed on a live channel (readiness)."""
        return self._attached and self._channel is not None and not self._channel.is_closed

    @property
    def paused(self) -> bool:
        """True while the workers wait for the database (readiness)."""
        return self.database.paused

    async def _probe_database(self) -> None:
        async with self._session_factory() as session:
            await session.execute(text("SELECT 1"))

    # lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._supervise(), name=f"{self._service}-consumer")]
        self._tasks += [asyncio.create_task(self._work(self._inbox, self._batch_size)) for _ in range(self._concurrency)]
        if any(subscription.alone and not subscription.background for subscription in self._subscriptions.values()):
            self._tasks += [asyncio.create_task(self._work(self._alone_inbox, 1)) for _ in range(self._concurrency)]
        if any(subscription.background for subscription in self._subscriptions.values()):
            self._tasks.append(asyncio.create_task(self._work(self._background_inbox, 1)))

    async def stop(self, drain_timeout_s: float = 10.0) -> None:
        """Stop taking messages, finish those already taken, then close; the rest are redelivered."""
        self._stopping.set()
        supervisor, workers = self._tasks[0], self._tasks[1:]
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._drained(), drain_timeout_s)
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        await asyncio.gather(supervisor, return_exceptions=True)
        await self.database.close()

    async def _supervise(self) -> None:
        backoff_s = 0.5
        while not self._stopping.is_set():
            try:
                await self._consume_until_closed()
                backoff_s = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any broker failure: reconnect with backoff
                log.warning("consumer disconnected; reconnecting", extra={"error": repr(exc), "retry_in_s": backoff_s})
            self._set_attached(False)
            if self._stopping.is_set():
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), backoff_s * random.uniform(0.5, 1.5))
            backoff_s = min(backoff_s * 2, RECONNECT_MAX_WAIT_S)

    async def _consume_until_closed(self) -> None:
        """Connect, declare, subscribe, and return when the connection closes or we stop.

        Consumers are re-created here on every connection instead of relying on
        aio-pika's robust connection to restore them.
        """
        connection = await aio_pika.connect(self._broker_url, timeout=5)
        closed = asyncio.Event()
        connection.close_callbacks.add(lambda *_: closed.set())
        try:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            await channel.set_qos(prefetch_count=self._prefetch)
            acks = AckTracker()
            underlay = await channel.get_underlay_channel()
            self._acks = {underlay: acks}
            exchange = await declare_exchange(channel, self._exchange_name)
            self._requeue = await declare_requeue_exchange(channel, self._service)
            consumer_tags = []
            # background queues last: the prefetch set for them applies to the consumers made after it
            background = {key for key, subscription in self._subscriptions.items() if subscription.background}
            for queue in sorted(self.queues, key=lambda queue: queue.routing_key in background):
                if queue.routing_key in background:
                    await channel.set_qos(prefetch_count=BACKGROUND_PREFETCH)
                await declare_consumer_queue(channel, exchange, queue, self._queue_type)
                # on aiormq's channel, not aio-pika's queue: see shared/messaging/received.py
                subscribed = await underlay.basic_consume(queue.name, self._enqueue_for(queue, acks))
                assert subscribed.consumer_tag is not None  # the broker names the consumer in ConsumeOk
                consumer_tags.append(subscribed.consumer_tag)
            self._channel = channel
            self._set_attached(True)
            log.info("consumer attached", extra={"queues": [queue.name for queue in self.queues]})
            stop_waiter = asyncio.create_task(self._stopping.wait())
            closed_waiter = asyncio.create_task(closed.wait())
            await asyncio.wait({stop_waiter, closed_waiter}, return_when=asyncio.FIRST_COMPLETED)
            stop_waiter.cancel()
            closed_waiter.cancel()
            if self._stopping.is_set() and not channel.is_closed:
                for tag in consumer_tags:
                    with contextlib.suppress(Exception):
                        await underlay.basic_cancel(tag)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._drained(), 10)
        finally:
            self._set_attached(False)
            if not connection.is_closed:
                with contextlib.suppress(Exception):
                    await connection.close()

    def _set_attached(self, attached: bool) -> None:
        self._attached = attached
        metrics.CONSUMER_ATTACHED.set(1 if attached else 0)

    def _enqueue_for(self, queue: ConsumerQueue, acks: AckTracker) -> Callable[[DeliveredMessage], Coroutine[Any, Any, None]]:
        subscription = self._subscriptions.get(queue.routing_key)
        inbox = self._inbox
        if subscription is not None and subscription.alone:
            inbox = self._background_inbox if subscription.background else self._alone_inbox

        async def enqueue(delivered: DeliveredMessage) -> None:
            message = ReceivedMessage(delivered)
            acks.delivered(message)
            inbox.put((message, queue))

        return enqueue

    # processing ----------------------------------------------------------------

    async def _drained(self) -> None:
        await self._inbox.messages.join()
        await self._alone_inbox.messages.join()
        await self._background_inbox.messages.join()

    async def _work(self, inbox: _Inbox, batch_size: int) -> None:
        messages = inbox.messages
        while True:
            async with inbox.gathering:
                batch = [await messages.get()]
                if batch_size > 1 and self._batch_linger_s > 0:
                    # messages arrive one frame at a time, even from a backlog, and a steady stream
                    # spreads them out: each batch is a commit and an ack, so waiting (until the
                    # batch is full, at most the linger) for more costs latency and saves CPU
                    # (docs/architecture.md); no more than the prefetch can be on their way
                    await inbox.wait_for(min(batch_size, self._prefetch) - 1, self._batch_linger_s)
                while len(batch) < batch_size and not messages.empty():
                    batch.append(messages.get_nowait())
            try:
                await self.process(batch)
            except Exception:
                log.exception("unexpected error while processing a batch; messages will be redelivered")
            finally:
                for _ in batch:
                    messages.task_done()

    async def process(self, batch: Sequence[Delivery]) -> None:
        parsed: list[_Parsed] = []
        for message, queue in batch:
            item = await self._parse(message, queue)
            if item is not None:
                parsed.append(item)
        together = [item for item in parsed if not item.subscription.alone]
        if together:
            await self._handle_group(together)
        for item in parsed:
            if item.subscription.alone:
                await self._handle_group([item])

    async def _handle_group(self, parsed: Sequence[_Parsed]) -> None:
        error = await self._attempt(parsed)
        if error is None:
            return
        if len(parsed) == 1:
            await self._on_failure(parsed[0], error)
            return
        for item in parsed:
            single_error = await self._attempt([item])
            if single_error is not None:
                await self._on_failure(item, single_error)

    async def _attempt(self, items: Sequence[_Parsed]) -> Exception | None:
        """Handle ``items`` in one transaction: None when done, else the handler's failure.

        A failure of the database itself is not returned: the gate pauses every worker until
        the database answers, and the same items are handled again.
        """
        while True:
            if self.database.paused:
                await self.database.wait_open()
            try:
                await self._handle_in_one_transaction(items)
                return None
            except Exception as exc:  # noqa: BLE001 - whatever a handler raises decides the message's fate
                if not await self.database.holds(exc):
                    return exc

    async def _parse(self, message: ReceivedMessage, queue: ConsumerQueue) -> _Parsed | None:
        routing_key = (message.headers or {}).get("x-original-routing-key") or message.routing_key or ""
        subscription = self._subscriptions.get(str(routing_key)) or self._subscriptions.get(queue.routing_key)
        if subscription is None:
            await self._dead_letter(message, queue, f"no handler for routing key {routing_key!r}", "unroutable", 0)
            return None
        if len(message.body) > self._max_message_bytes:
            reason = f"message of {len(message.body)} bytes is larger than the limit of {self._max_message_bytes}"
            await self._dead_letter(message, queue, reason, "oversized", 0)
            return None
        try:
            envelope = self._envelope_models[subscription.routing_key].model_validate_json(message.body)
        except ValidationError as exc:
            reason = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()[:10])
            await self._dead_letter(message, queue, f"invalid message: {reason}", "malformed", 0)
            return None
        if envelope.type != subscription.routing_key:
            await self._dead_letter(
                message, queue, f"invalid message: type {envelope.type!r} travels as {subscription.routing_key!r}", "malformed", 0
            )
            return None
        if envelope.version > subscription.max_version:
            reason = f"{subscription.routing_key} version {envelope.version}: this consumer knows up to version {subscription.max_version}"
            await self._dead_letter(message, queue, reason, "unsupported_version", 0)
            return None
        if envelope.source not in subscription.producers:
            allowed = ", ".join(sorted(subscription.producers))
            reason = f"{subscription.routing_key} from {envelope.source!r}: only {allowed} may publish it"
            await self._dead_letter(message, queue, reason, "forbidden_source", 0)
            return None
        return _Parsed(message, queue, subscription, envelope)

    async def _handle_in_one_transaction(self, items: Sequence[_Parsed]) -> None:
        if tracing.tracer() is None:
            await self._handle_and_ack(items)
            return
        span = _process_span(items)
        try:
            # current while the handlers run: what they log and the events they emit belong to it
            with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                await self._handle_and_ack(items)
        except BaseException as error:
            tracing.failed(span, error)
            raise
        finally:
            span.end()

    async def _handle_and_ack(self, items: Sequence[_Parsed]) -> None:
        async with self._session_factory() as session, session.begin():
            fresh = await self._claim(session, items)
            todo: dict[str, list[Envelope[Any]]] = {}
            seen = set()
            for item in items:
                event_id = item.envelope.id
                if event_id in fresh and event_id not in seen:
                    seen.add(event_id)
                    todo.setdefault(item.subscription.routing_key, []).append(item.envelope)
            for routing_key, events in todo.items():
                await self._subscriptions[routing_key].handle(events, session)
        await self._ack([item.message for item in items])
        for item in items:
            outcome = "ok" if item.envelope.id in fresh else "duplicate"
            metrics.EVENTS_CONSUMED.labels(queue=item.queue.name, outcome=outcome).inc()

    async def _claim(self, session: AsyncSession, items: Sequence[_Parsed]) -> set[Any]:
        """Record the event ids for this consumer; the ids not seen before are returned.

        The ids travel as two arrays, so the statement is the same for every batch size:
        compiled once, prepared once (a VALUES list per size cost more than the insert).
        """
        result = await session.execute(
            self._claim_statement,
            {"consumers": [item.queue.name for item in items], "event_ids": [item.envelope.id for item in items]},
        )
        return set(result.scalars())

    async def _on_failure(self, item: _Parsed, error: BaseException) -> None:
        with _as_message(item.message):
            await self._retry_or_park(item, error)

    async def _retry_or_park(self, item: _Parsed, error: BaseException) -> None:
        failed_attempts = attempts_so_far(item.message.headers) + 1
        description = f"{type(error).__name__}: {error}"[:1000]
        if failed_attempts >= self._retry.max_attempts:
            give_up = item.subscription.on_give_up
            if give_up is not None:
                await self._run_hook(item, "give-up", lambda session: give_up(item.envelope, description, session))
            await self._dead_letter(item.message, item.queue, description, "handler_failed", failed_attempts)
            return
        retry_queue, delay_ms = item.queue.retry_tier(failed_attempts)
        note_retry = item.subscription.on_retry
        if note_retry is not None:
            await self._run_hook(
                item, "retry", lambda session: note_retry(item.envelope, description, failed_attempts, delay_ms / 1000, session)
            )
        log.warning(
            "handler failed; retrying later",
            extra={
                "queue": item.queue.name,
                "event_id": str(item.envelope.id),
                "attempts": failed_attempts,
                "retry_in_ms": delay_ms,
                "error": description,
            },
        )
        headers = {ATTEMPTS_HEADER: failed_attempts, "x-last-error": description}
        if await self._republish(item.message, item.queue, retry_queue, headers):
            await self._ack([item.message])
            metrics.EVENTS_CONSUMED.labels(queue=item.queue.name, outcome="retried").inc()

    async def _run_hook(self, item: _Parsed, name: str, hook: Callable[[AsyncSession], Awaitable[None]]) -> None:
        """A subscription's hook in a transaction of its own; its failure is logged and does not stop the retry or the parking."""
        token = correlation_id.set(item.envelope.correlation_id)
        try:
            async with self._session_factory() as session, session.begin():
                await hook(session)
        except Exception:
            log.exception(f"{name} hook failed", extra={"queue": item.queue.name, "event_id": str(item.envelope.id)})
        finally:
            correlation_id.reset(token)

    async def _dead_letter(self, message: ReceivedMessage, queue: ConsumerQueue, reason: str, kind: str, attempts: int) -> None:
        with _as_message(message):
            await self._park(message, queue, reason, kind, attempts)

    async def _park(self, message: ReceivedMessage, queue: ConsumerQueue, reason: str, kind: str, attempts: int) -> None:
        headers = {
            "x-error": reason[:2000],
            "x-error-kind": kind,
            ATTEMPTS_HEADER: attempts,
            "x-failed-at": datetime.now(UTC).isoformat(),
            "x-consumer-queue": queue.name,
        }
        if await self._republish(message, queue, queue.dlq_name, headers):
            await self._ack([message])
            metrics.EVENTS_CONSUMED.labels(queue=queue.name, outcome="dead_lettered").inc()
            log.error(
                "message parked",
                extra={
                    "queue": queue.name,
                    "dlq": queue.dlq_name,
                    "message_id": message.message_id,
                    "kind": kind,
                    "attempts": attempts,
                    "reason": reason[:300],
                },
            )

    async def _republish(self, message: ReceivedMessage, queue: ConsumerQueue, target: str, headers: dict[str, Any]) -> bool:
        """Copy the message to the retry or DLQ queue; True once the broker confirmed it."""
        channel, requeue = self._channel, self._requeue
        if channel is None or channel.is_closed or requeue is None:
            return False
        merged = {**(message.headers or {}), **headers}
        merged.setdefault("x-original-routing-key", message.routing_key or queue.routing_key)
        merged.setdefault("x-original-exchange", message.exchange or self._exchange_name)
        copy = persistent_copy(message, merged)
        try:
            await requeue.publish(copy, routing_key=target, mandatory=True, timeout=10)
        except Exception as exc:  # noqa: BLE001 - left unacked: the broker redelivers it later
            log.warning("could not move message; it stays unacked", extra={"target": target, "error": repr(exc)})
            return False
        return True

    async def _ack(self, messages: Sequence[ReceivedMessage]) -> None:
        """Ack finished messages: one frame per batch when the live channel's tracker allows it."""
        by_channel: dict[object, list[ReceivedMessage]] = {}
        for message in messages:
            try:
                by_channel.setdefault(message.channel, []).append(message)
            except ChannelInvalidStateError:
                continue  # its channel is gone: the broker redelivers it and idempotency absorbs it
        for channel, group in by_channel.items():
            try:
                tracker = self._acks.get(channel)
                if tracker is not None:
                    await tracker.finish(group)
                else:
                    for message in group:
                        await message.ack()
            except Exception as exc:  # noqa: BLE001 - the channel is gone; the broker redelivers and idempotency absorbs it
                log.debug("ack failed; messages will be redelivered", extra={"error": repr(exc)})


def _process_span(items: Sequence[_Parsed]) -> Span:
    """The consumer span of one transaction: for one message a child of its publish; for a batch one span
    linked to each message's publish, its name the routing key they share."""
    traced = tracing.tracer()
    assert traced is not None
    routing_keys = {item.subscription.routing_key for item in items}
    name = f"process {routing_keys.pop()}" if len(routing_keys) == 1 else "process batch"
    attributes: dict[str, str | int] = {"messaging.system": "rabbitmq", "messaging.destination.name": items[0].queue.name}
    if len(items) == 1:
        attributes["messaging.message.id"] = str(items[0].envelope.id)
        return traced.start_span(name, context=tracing.extract(items[0].message.headers), kind=SpanKind.CONSUMER, attributes=attributes)
    links = [Link(parent) for item in items if (parent := tracing.remote_parent(item.message.headers)) is not None]
    attributes["messaging.batch.message_count"] = len(items)
    return traced.start_span(name, kind=SpanKind.CONSUMER, attributes=attributes, links=links)


@contextlib.contextmanager
def _as_message(message: ReceivedMessage) -> Iterator[None]:
    """What is logged meanwhile names this message's correlation id and trace, one message of a batch at a time."""
    correlation = correlation_id.set(message.correlation_id)
    traced = otel_context.attach(tracing.extract(message.headers)) if "traceparent" in (message.headers or {}) else None
    try:
        yield
    finally:
        if traced is not None:
            otel_context.detach(traced)
        correlation_id.reset(correlation)
