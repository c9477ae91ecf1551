"""Databases for the integration tests: migrated once per session, emptied per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from deploy.broker_users import users_for_run
from notifications_service.main import MIGRATIONS as NOTIFICATIONS_MIGRATIONS
from orders_service.main import MIGRATIONS as ORDERS_MIGRATIONS
from orders_service.settings import OrdersSettings
from reports_service.main import MIGRATIONS as REPORTS_MIGRATIONS
from scheduler_service.main import MIGRATIONS as SCHEDULER_MIGRATIONS
from shared.messaging.envelope import Envelope
from shared.messaging.publisher import OutgoingMessage, Publisher
from shared.ports import free_port
from shared.testing import observed
from shared.testing.fixtures import eventually, migrated_database, truncate_all
from shared.testing.infrastructure import Infrastructure
from tests.integration.notifications_service.conftest import RecordingSmtp


@pytest.fixture(scope="session")
async def orders_database(infrastructure: Infrastructure, run_id: str) -> AsyncIterator[str]:
    async with migrated_database(infrastructure, f"orders_{run_id}", ORDERS_MIGRATIONS) as url:
        yield url


@pytest.fixture
async def orders_db(orders_database: str) -> str:
    await truncate_all(orders_database)
    return orders_database


@pytest.fixture
def orders_settings(orders_db: str, broker_url: str, exchange_name: str) -> OrdersSettings:
    return OrdersSettings(
        database_url=orders_db,
        broker_url=broker_url,
        events_exchange=exchange_name,
        environment="test",
        outbox_poll_interval_s=0.2,
        log_json=False,
    )


@pytest.fixture(scope="session")
async def reports_database(infrastructure: Infrastructure, run_id: str) -> AsyncIterator[str]:
    async with migrated_database(infrastructure, f"reports_{run_id}", REPORTS_MIGRATIONS) as url:
        yield url


@pytest.fixture
async def reports_db(reports_database: str) -> str:
    await truncate_all(reports_database)
    return reports_database


@pytest.fixture(scope="session")
async def scheduler_database(infrastructure: Infrastructure, run_id: str) -> AsyncIterator[str]:
    async with migrated_database(infrastructure, f"scheduler_{run_id}", SCHEDULER_MIGRATIONS) as url:
        yield url


@pytest.fixture
async def scheduler_db(scheduler_database: str) -> str:
    """Emptied, the default schedule included: each test makes the schedules it needs."""
    await truncate_all(scheduler_database)
    return scheduler_database


@pytest.fixture(scope="session")
async def notifications_database(infrastructure: Infrastructure, run_id: str) -> AsyncIterator[str]:
    async with migrated_database(infrastructure, f"notifications_{run_id}", NOTIFICATIONS_MIGRATIONS) as url:
        yield url


@pytest.fixture
async def publish(broker_url: str, exchange_name: str) -> AsyncIterator[Callable[..., Any]]:
    """Publish envelopes as the orders service would."""
    publisher = Publisher(broker_url, exchange_name)

    async def send(*envelopes: Envelope[Any]) -> None:
        for start in range(0, len(envelopes), 500):
            outcomes = await publisher.publish_many([OutgoingMessage.from_envelope(e) for e in envelopes[start : start + 500]])
            assert not any(outcomes), outcomes

    yield send
    await publisher.close()


@pytest.fixture
def broker_users(infrastructure: Infrastructure, broker_url: str, exchange_name: str) -> Iterator[dict[str, str]]:
    """The AMQP URL of each service's own user in the test's vhost, made (and deleted) as ``make run`` makes them."""
    with users_for_run(broker_url, exchange_name, infrastructure.management_url) as (urls, made):
        assert urls, f"the broker users could not be made: {made}"
        yield urls


@pytest.fixture
def smtp() -> Iterator[RecordingSmtp]:
    """A real SMTP server that keeps what it receives (``RecordingSmtp``), on a free port."""
    server = RecordingSmtp(free_port())
    server.start()
    yield server
    server.stop()


async def publish_handled(publish: Callable[..., Any], queue: str, *events: Envelope[Any]) -> None:
    """Publish ``events`` (the ``publish`` fixture) and wait until this process's consumer of ``queue``
    has handled every one: the next event published then arrives after them, whatever its queue."""
    before = observed.acked(queue)
    await publish(*events)

    async def handled() -> bool:
        return observed.acked(queue) >= before + len(events)

    await eventually(handled, what=f"{len(events)} event(s) handled from {queue}")
