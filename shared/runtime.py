"""The shared parts of a running service: pools, outbox relay, consumer, background workers.

A service's composition root (``build_app`` in its ``main.py``) creates one ``ServiceRuntime``
with its settings and outbox, hands it the subscriptions (``consume``) and workers (``run``)
it wires from the runtime's session factory, and gives it to ``service_app``. Nothing
connects until the app's lifespan enters the runtime, and start-up never waits for the
broker: the relay and the consumer reach it in the background and readiness reports it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Generic, TypeVar

import asyncpg
from fastapi import FastAPI
from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import SessionFactory, asyncpg_dsn, create_driver_pool, create_engine, create_session_factory
from shared.messaging.consumer import Consumer, RetryPolicy, Subscription
from shared.messaging.dead_letters import DeadLetters
from shared.messaging.outbox import Outbox, OutboxRelay, SessionOutbox
from shared.messaging.publisher import Publisher
from shared.messaging.relay_thread import RelayParts, RelayThread
from shared.settings import BaseServiceSettings
from shared.web.health import Check
from shared.workers import Worker

log = logging.getLogger(__name__)

RELAY_LANES = 2

SettingsT = TypeVar("SettingsT", bound=BaseServiceSettings)


def _running(worker: Worker) -> Callable[[], Awaitable[bool]]:
    async def running() -> bool:
        return worker.running

    return running


class ServiceRuntime(Generic[SettingsT]):
    """Typed by the service's settings class, so a route reads ``runtime.settings.timezone`` checked by mypy."""

    def __init__(self, settings: SettingsT, *, outbox: Outbox | None = None, run_relay: bool | None = None) -> None:
        self.settings = settings
        database_url = settings.database_url.get_secret_value()
        broker_url = settings.broker_url.get_secret_value()
        self.engine = create_engine(database_url, pool_size=settings.database_pool_size, max_overflow=settings.database_max_overflow)
        self.session_factory: SessionFactory = create_session_factory(self.engine)
        self._database_url = database_url
        self._driver_pool: asyncpg.Pool | None = None
        self.outbox = outbox
        self.relay: RelayThread | None = None
        self.consumer: Consumer | None = None
        self.dead_letters: DeadLetters | None = None
        self._workers: dict[str, Worker] = {}
        self._entered = False
        if run_relay is None:
            run_relay = settings.outbox_relay == "embedded"
        if outbox is not None and run_relay:
            table = outbox.table

            def build_relay() -> RelayParts:
                # the relay has its own small pool (a bulkhead): under HTTP load, requests waiting
                # for connections must not starve publishing, or the outbox grows without bound
                engine = create_engine(database_url, pool_size=RELAY_LANES + 1, max_overflow=0)
                publisher = Publisher(broker_url, settings.events_exchange, batched=settings.publish_batched)
                relay = OutboxRelay(
                    engine,
                    table,
                    publisher,
                    lanes=RELAY_LANES,
                    listen_dsn=asyncpg_dsn(database_url) if settings.database_listen else None,
                    batch_size=settings.outbox_batch_size,
                    poll_interval_s=settings.outbox_poll_interval_s,
                    linger_s=settings.outbox_linger_ms / 1000,
                    retention_hours=settings.outbox_retention_hours,
                    max_attempts=settings.outbox_max_attempts,
                )
                return RelayParts(engine, publisher, relay)

            self.relay = RelayThread(build_relay)

    def consume(self, subscriptions: Sequence[Subscription], *, processed_events: Table) -> None:
        """Consume these subscriptions from the service's queues, each event once (``processed_events``)."""
        settings = self.settings
        self.consumer = Consumer(
            service=settings.service_name,
            broker_url=settings.broker_url.get_secret_value(),
            exchange_name=settings.events_exchange,
            session_factory=self.session_factory,
            processed_events=processed_events,
            subscriptions=subscriptions,
            queue_type=settings.queue_type,
            prefetch=settings.consumer_prefetch,
            batch_size=settings.consumer_batch_size,
            concurrency=settings.consumer_concurrency,
            batch_linger_s=settings.consumer_batch_linger_ms / 1000,
            retry=RetryPolicy(settings.retry_max_attempts, settings.retry_tiers_ms),
        )
        self.dead_letters = DeadLetters(
            settings.broker_url.get_secret_value(), self.consumer.queues, scan_limit=settings.dead_letter_scan_limit
        )

    def run(self, name: str, worker: Worker) -> None:
        """Run ``worker`` while the service runs; readiness is down (critical) when it has stopped."""
        self._workers[name] = worker

    def events(self, session: AsyncSession) -> SessionOutbox:
        """The outbox of ``session``'s transaction: where a use case writes the events it emits."""
        if self.outbox is None:
            raise RuntimeError(f"{self.settings.service_name} has no outbox")
        return self.outbox.within(session)

    @property
    def driver_pool(self) -> asyncpg.Pool:
        """asyncpg's pool for request paths of one hand-written statement (``create_driver_pool``)."""
        if self._driver_pool is None:
            raise RuntimeError("the runtime has not been started")
        return self._driver_pool

    def attach(self, app: FastAPI, *extra_checks: Check) -> None:
        """Hand the runtime to the routes (``RuntimeDep``) and its checks, plus the service's own, to readiness."""
        app.state.runtime = self
        app.state.health_checks = [*self.health_checks(), *extra_checks]

    def health_checks(self) -> list[Check]:
        checks = [Check("database", self._database_ok, critical=True)]
        if self.relay is not None:
            checks.append(Check("broker", self._broker_ok, critical=False))
        elif self.outbox is not None:
            checks.append(Check("outbox", self._outbox_flowing, critical=False))
        if self.consumer is not None:
            checks.append(Check("consumers", self._consumer_ok, critical=False))
        checks.extend(Check(name, _running(worker), critical=True) for name, worker in self._workers.items())
        return checks

    async def _consumer_ok(self) -> bool:
        assert self.consumer is not None
        if self.consumer.paused:
            raise RuntimeError("paused: waiting for the database to answer")
        return self.consumer.attached

    async def _database_ok(self) -> bool:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return True

    async def _broker_ok(self) -> bool:
        # the relay reconnects by itself, with backoff, while the broker is away
        return self.relay is not None and self.relay.connected

    async def _outbox_flowing(self) -> bool:
        """With an external relay (``OUTBOX_RELAY=external``) this process never talks to the
        broker; what readiness can see is whether the relay keeps up: no event waiting for its
        first publish longer than ``OUTBOX_STALE_AFTER_S``."""
        assert self.outbox is not None
        async with self.driver_pool.acquire() as connection:
            stale = await connection.fetchval(
                f"SELECT now() - created_at > make_interval(secs => $1) FROM {self.outbox.table.name} "
                "WHERE published_at IS NULL AND attempts = 0 ORDER BY id LIMIT 1",
                self.settings.outbox_stale_after_s,
            )
        if stale:
            raise RuntimeError(f"events have waited more than {self.settings.outbox_stale_after_s:g} s for the outbox relay")
        return True

    async def __aenter__(self) -> ServiceRuntime[SettingsT]:
        if self._entered:
            raise RuntimeError("a ServiceRuntime runs once: build a new app to serve again")
        self._entered = True
        # connections are opened on first use (min_size=0): start-up does not wait for the database
        self._driver_pool = await create_driver_pool(self._database_url, max_size=self.settings.database_pool_size)
        if self.relay is not None:
            await self.relay.start()
        if self.consumer is not None:
            self.consumer.start()
        for worker in self._workers.values():
            worker.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for worker in reversed(self._workers.values()):
            await worker.stop()
        if self.consumer is not None:
            await self.consumer.stop()
        if self.relay is not None:
            await self.relay.stop()
        if self._driver_pool is not None:
            await self._driver_pool.close()
        await self.engine.dispose()
