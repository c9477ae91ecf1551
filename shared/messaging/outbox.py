"""Transactional outbox: events are rows written with the state change, published by a relay.

The relay locks a batch with ``FOR UPDATE SKIP LOCKED`` (so any number of relays can
run), publishes it with confirms, and marks the confirmed rows sent. While events keep
coming it comes back for more after each batch; once it finds nothing it registers in
``outbox_waiters`` and waits for ``NOTIFY outbox``, which the outbox trigger sends only
while some relay is registered: a NOTIFYing transaction holds a cluster-wide lock until
its commit is durable, which made every committing writer wait for the one before it. It
also polls, so a lost notification only delays an event, never loses it. While the
broker is away it backs off and keeps trying.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from typing import Any, Protocol

import asyncpg
import orjson
from aiormq.exceptions import DeliveryError, PublishError
from pydantic import BaseModel
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared import metrics, tracing
from shared.correlation import current_correlation_id
from shared.db import driver_connection, listen_forever
from shared.db_gate import DatabaseGate
from shared.messaging.envelope import Envelope
from shared.messaging.publisher import BrokerUnavailable, OutgoingMessage, Publisher

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "outbox"
# a lane that finds nothing waits for NOTIFY only when no lane has found events for this long
IDLE_AFTER_S = 0.1


def define_outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("event_id", Uuid, nullable=False, unique=True),
        Column("routing_key", String(255), nullable=False),
        Column("event_type", String(255), nullable=False),
        Column("body", LargeBinary, nullable=False),
        Column("correlation_id", String(255)),
        Column("headers", JSONB),
        Column("occurred_at", DateTime(timezone=True), nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("available_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True)),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("last_error", Text),
        Index("ix_outbox_pending", "id", postgresql_where=text("published_at IS NULL")),
    )


def new_event(
    event_type: str, source: str, data: BaseModel, *, correlation_id: str | None = None, event_id: uuid.UUID | None = None
) -> Envelope[Any]:
    """An envelope carrying the correlation id of the request or event being handled; ``event_id``
    for an event whose id is derived from what it reports, so that publishing it again is a duplicate."""
    correlation = correlation_id or current_correlation_id()
    if event_id is None:
        return Envelope[Any](type=event_type, source=source, data=data, correlation_id=correlation)
    return Envelope[Any](id=event_id, type=event_type, source=source, data=data, correlation_id=correlation)


def outbox_row(envelope: Envelope[Any], *, routing_key: str | None = None, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    """The one definition of what an event's outbox row holds; the routing key is its type unless given.

    While tracing, the row is the event's publish (the relay only carries it): a producer span, a child of
    the current one, whose ``traceparent`` goes into the headers the relay sends."""
    routing_key = routing_key or envelope.type
    if tracing.tracer() is not None:
        headers = tracing.published(routing_key, str(envelope.id), headers)
    return {
        "event_id": envelope.id,
        "routing_key": routing_key,
        "event_type": envelope.type,
        "body": envelope.to_json(),
        "correlation_id": envelope.correlation_id,
        "headers": headers,
        "occurred_at": envelope.occurred_at,
    }


class EventsOut(Protocol):
    """Where a use case puts the events it emits: the outbox of its unit of work (or a fake)."""

    async def add(self, envelope: Envelope[Any], *, routing_key: str | None = None, headers: dict[str, Any] | None = None) -> None: ...


class Outbox:
    """Writes events into the outbox table inside the caller's transaction."""

    def __init__(self, table: Table) -> None:
        self.table = table

    async def add(
        self, session: AsyncSession, envelope: Envelope[Any], *, routing_key: str | None = None, headers: dict[str, Any] | None = None
    ) -> None:
        await session.execute(insert(self.table).values(self.row(envelope, routing_key=routing_key, headers=headers)))

    def row(self, envelope: Envelope[Any], *, routing_key: str | None = None, headers: dict[str, Any] | None = None) -> dict[str, Any]:
        return outbox_row(envelope, routing_key=routing_key, headers=headers)

    def within(self, session: AsyncSession) -> SessionOutbox:
        """This outbox bound to one transaction: what a use case writes its events to."""
        return SessionOutbox(self, session)


class SessionOutbox:
    """The outbox rows of one session's transaction, committed with the state change."""

    def __init__(self, outbox: Outbox, session: AsyncSession) -> None:
        self._outbox = outbox
        self._session = session

    async def add(self, envelope: Envelope[Any], *, routing_key: str | None = None, headers: dict[str, Any] | None = None) -> None:
        await self._outbox.add(self._session, envelope, routing_key=routing_key, headers=headers)


def _is_per_message_failure(error: BaseException) -> bool:
    """Returned (unroutable) or nacked: the broker is fine, this message is not."""
    return isinstance(error, PublishError | DeliveryError)


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        table: Table,
        publisher: Publisher,
        *,
        listen_dsn: str | None = None,
        batch_size: int = 1_000,
        poll_interval_s: float = 1.0,
        retention_hours: int = 72,
        max_backoff_s: float = 5.0,
        lanes: int = 2,
        linger_s: float = 0.05,
        housekeeping_every_s: float = 5.0,
        max_attempts: int = 20,
    ) -> None:
        """``max_attempts``: an event the broker keeps refusing (no queue bound to its routing key,
        nacked) is parked after that many tries, about an hour with the backoff: it stays in the
        table, out of the relay's way, until an operator makes it due again."""
        self._engine = engine
        self._max_attempts = max_attempts
        self._table = table
        self._publisher = publisher
        self._listen_dsn = listen_dsn
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._retention_hours = retention_hours
        self._max_backoff_s = max_backoff_s
        self._lanes = lanes
        self._linger_s = linger_s
        self._housekeeping_every_s = housekeeping_every_s
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_housekeeping = 0.0
        self._last_found = 0.0
        self._registered = False
        self._listener: asyncpg.Connection | None = None
        self._listener_lock = asyncio.Lock()
        self.database = DatabaseGate(f"{table.name}-relay", self._probe_database)

    async def _probe_database(self) -> None:
        async with self._engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def relay_once(self) -> int:
        """Publish one batch; the number of rows confirmed and marked sent.

        Plain SQL on the pool's asyncpg connection: these three statements run for every
        batch, and building SQLAlchemy rows for a thousand events cost as much as
        publishing them.
        """
        name = self._table.name
        async with driver_connection(self._engine) as connection, connection.transaction():
            rows = await connection.fetch(
                "SELECT id, event_id, routing_key, event_type, body, correlation_id, headers::text AS headers, occurred_at, attempts "
                f"FROM {name} "
                "WHERE published_at IS NULL AND available_at <= now() ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                self._batch_size,
            )
            if not rows:
                return 0
            messages = [
                OutgoingMessage(
                    routing_key=row["routing_key"],
                    body=row["body"],
                    message_id=str(row["event_id"]),
                    type=row["event_type"],
                    timestamp=row["occurred_at"],
                    correlation_id=row["correlation_id"],
                    headers=orjson.loads(row["headers"]) if row["headers"] else {},
                )
                for row in rows
            ]
            outcomes = await self._publisher.publish_many(messages)
            sent = [row["id"] for row, outcome in zip(rows, outcomes, strict=True) if outcome is None]
            rejected = [
                (row, outcome)
                for row, outcome in zip(rows, outcomes, strict=True)
                if outcome is not None and _is_per_message_failure(outcome)
            ]
            if sent:
                await connection.execute(f"UPDATE {name} SET published_at = now() WHERE id = ANY($1::bigint[])", sent)
            for row, error in rejected:
                attempts = row["attempts"] + 1
                metrics.EVENTS_PUBLISH_FAILED.labels(reason=type(error).__name__).inc()
                if attempts >= self._max_attempts:
                    await self._park(connection, row, attempts, error)
                    continue
                delay_s = min(2 ** min(row["attempts"], 16), 300) * (0.5 + random.random() / 2)
                await connection.execute(
                    f"UPDATE {name} SET attempts = $2, last_error = $3, available_at = now() + make_interval(secs => $4) WHERE id = $1",
                    row["id"],
                    attempts,
                    str(error)[:2000],
                    delay_s,
                )
        if rejected:
            log.warning(
                "events not accepted by the broker; each is retried after its backoff",
                extra={"count": len(rejected), "first_event_id": str(rejected[0][0]["event_id"]), "error": str(rejected[0][1])},
            )
        for message, outcome in zip(messages, outcomes, strict=True):
            if outcome is None:
                metrics.EVENTS_PUBLISHED.labels(routing_key=message.routing_key).inc()
        if len(sent) + len(rejected) < len(rows):
            raise BrokerUnavailable(f"{len(rows) - len(sent) - len(rejected)} of {len(rows)} events not confirmed")
        return len(sent)

    async def _park(self, connection: asyncpg.Connection, row: asyncpg.Record, attempts: int, error: BaseException) -> None:
        """Out of the relay's way for good (``available_at`` infinity), with why; counted and logged."""
        reason = f"parked after {attempts} attempts: {error}"[:2000]
        await connection.execute(
            f"UPDATE {self._table.name} SET attempts = $2, last_error = $3, available_at = 'infinity' WHERE id = $1",
            row["id"],
            attempts,
            reason,
        )
        metrics.OUTBOX_PARKED.inc()
        log.error(
            "outbox event parked: the broker refused it every time",
            extra={"event_id": str(row["event_id"]), "routing_key": row["routing_key"], "attempts": attempts, "error": str(error)},
        )

    async def run(self) -> None:
        """Listen for NOTIFY and run the lanes: each locks its own batch (SKIP LOCKED), so one
        lane's database work overlaps another's wait for confirms."""
        listener = asyncio.create_task(self._listen())
        try:
            await asyncio.gather(*(self._lane() for _ in range(self._lanes)))
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def _lane(self) -> None:
        backoff_s = 0.1
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                published = await self.relay_once()
                backoff_s = 0.1
            except Exception as exc:
                if await self.database.holds(exc):
                    await self.database.wait_open(self._stopping)
                    continue
                if not isinstance(exc, TimeoutError | BrokerUnavailable | OSError):
                    log.exception("outbox relay failed; retrying")
                    await self._sleep(backoff_s)
                    backoff_s = min(backoff_s * 2, self._max_backoff_s)
                    continue
                metrics.EVENTS_PUBLISH_FAILED.labels(reason="broker_unavailable").inc()
                log.warning("outbox relay cannot publish; retrying", extra={"error": str(exc), "retry_in_s": backoff_s})
                await self._sleep(backoff_s * (0.5 + random.random()))
                backoff_s = min(backoff_s * 2, self._max_backoff_s)
                continue
            now = time.monotonic()
            if published:
                self._last_found = now
                if self._registered:  # busy now: writers need not NOTIFY
                    await self._register(waiting=False)
            if published >= self._batch_size:
                continue
            await self._housekeeping()
            if now - self._last_found < IDLE_AFTER_S:
                # events are flowing (another lane may have taken this pass's share): come back
                # after the linger, without asking writers to NOTIFY
                await self._sleep(self._linger_s)
                continue
            await self._wait_for_events()
            # let a burst of commits accumulate: one pass per burst, not one per NOTIFY
            await self._sleep(self._linger_s)

    async def _wait_for_events(self) -> None:
        """Register as waiting (writers then NOTIFY), look once more, and wait for a NOTIFY or the poll.

        The registration stays across polls that find nothing; the first pass that publishes
        removes it."""
        if not self._registered:
            await self._register(waiting=True)
            # a writer whose commit was under way as we registered did not see us: look again
            if await self._any_due():
                return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._poll_interval_s)

    async def _register(self, *, waiting: bool) -> None:
        """Add or remove this relay's LISTEN session in ``outbox_waiters``; without a LISTEN session the lanes poll."""
        connection = self._listener
        if connection is None or connection.is_closed():
            self._registered = False
            return
        waiters = f"{self._table.name}_waiters"
        statement = (
            f"INSERT INTO {waiters} (backend_pid) VALUES (pg_backend_pid()) ON CONFLICT DO NOTHING"
            if waiting
            else f"DELETE FROM {waiters} WHERE backend_pid = pg_backend_pid()"
        )
        try:
            async with self._listener_lock:
                await connection.execute(statement)
        except Exception as exc:  # noqa: BLE001 - the poll still finds every event
            log.debug("outbox waiter registration failed", extra={"error": str(exc)})
            return
        self._registered = waiting

    async def _any_due(self) -> bool:
        """Whether an event is due now; False when the database cannot say (the next pass backs off)."""
        name = self._table.name
        try:
            async with driver_connection(self._engine) as connection:
                due = await connection.fetchval(
                    f"SELECT EXISTS (SELECT 1 FROM {name} WHERE published_at IS NULL AND available_at <= now())"
                )
        except Exception as exc:  # noqa: BLE001
            log.debug("outbox check failed", extra={"error": str(exc)})
            return False
        return bool(due)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _housekeeping(self) -> None:
        """Backlog gauge, pruning of old sent rows and a broker connection, at most every few seconds.

        An idle relay connects again after the broker went away, not at its next publish:
        readiness reports the connection, and would say ``degraded`` until then.
        """
        now = time.monotonic()
        if now - self._last_housekeeping < self._housekeeping_every_s:
            return
        self._last_housekeeping = now
        if not self._publisher.connected:
            with contextlib.suppress(BrokerUnavailable):
                await self._publisher.connect()
        table = self._table
        try:
            async with self._engine.begin() as connection:
                unpublished = table.c.published_at.is_(None)
                parked = table.c.available_at == text("'infinity'::timestamptz")
                backlog, oldest = (
                    await connection.execute(
                        select(func.count(), func.extract("epoch", func.now() - func.min(table.c.created_at))).where(unpublished, ~parked)
                    )
                ).one()
                metrics.OUTBOX_BACKLOG.set(backlog or 0)
                metrics.OUTBOX_OLDEST_AGE.set(float(oldest or 0))
                metrics.OUTBOX_PARKED_ROWS.set(
                    await connection.scalar(select(func.count()).select_from(table).where(unpublished, parked)) or 0
                )
                await connection.execute(
                    table.delete().where(table.c.published_at < func.now() - text(f"interval '{int(self._retention_hours)} hours'"))
                )
        except Exception:
            log.warning("outbox housekeeping failed", exc_info=True)

    async def _listen(self) -> None:
        if self._listen_dsn is not None:
            await listen_forever(self._listen_dsn, NOTIFY_CHANNEL, self._wake.set, self._stopping, on_connect=self._listening)

    async def _listening(self, connection: asyncpg.Connection | None) -> None:
        """The LISTEN session started (drop waiters whose sessions are gone: a crashed relay's row
        would make writers NOTIFY for nothing) or is ending (unregister). A new session starts
        unregistered; ``listen_forever`` then wakes the lanes, and one that finds nothing registers."""
        if connection is None:
            await self._register(waiting=False)
            self._listener = None
            return
        self._listener, self._registered = connection, False
        try:
            async with self._listener_lock:
                await connection.execute(
                    f"DELETE FROM {self._table.name}_waiters WHERE backend_pid NOT IN (SELECT pid FROM pg_stat_activity)"
                )
        except Exception as exc:  # noqa: BLE001 - LISTEN still works; writers may NOTIFY more than needed
            log.debug("stale outbox waiters not removed", extra={"error": str(exc)})

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="outbox-relay")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            await self._task
        await self.database.close()
