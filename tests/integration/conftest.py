"""Databases for the integration tests: migrated once per session, emptied per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from orders_service.main import MIGRATIONS as ORDERS_MIGRATIONS
from orders_service.settings import OrdersSettings
from reports_service.main import MIGRATIONS as REPORTS_MIGRATIONS
from shared.testing.fixtures import migrated_database, truncate_all
from shared.testing.infrastructure import Infrastructure


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
