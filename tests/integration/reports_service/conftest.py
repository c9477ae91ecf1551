import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from reports_service.main import build_app
from reports_service.settings import ReportsSettings
from shared.contracts.orders import OrderCreated, OrderItemData
from shared.messaging.envelope import Envelope
from shared.testing.fixtures import serving, wait_until_consuming


@pytest.fixture
def make_settings(reports_db: str, broker_url: str, exchange_name: str) -> Callable[..., ReportsSettings]:
    def make(**overrides: Any) -> ReportsSettings:
        values: dict[str, Any] = {
            "database_url": reports_db,
            "broker_url": broker_url,
            "events_exchange": exchange_name,
            "environment": "test",
            "outbox_poll_interval_s": 0.2,
            "log_json": False,
            "retry_tiers_ms": (50, 100, 200),
        }
        return ReportsSettings(**(values | overrides))

    return make


@asynccontextmanager
async def reports_client(settings: ReportsSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(build_app(settings)) as base_url, httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        await wait_until_consuming(client)
        yield client


@pytest.fixture
async def reports_api(make_settings: Callable[..., ReportsSettings]) -> AsyncIterator[httpx.AsyncClient]:
    async with reports_client(make_settings()) as client:
        yield client


def order_created(created_at: datetime, quantities: tuple[int, ...] = (1,), order_id: uuid.UUID | None = None) -> Envelope[OrderCreated]:
    items = [OrderItemData(sku=f"SKU-{n}", quantity=q, unit_price=Decimal("2.00")) for n, q in enumerate(quantities)]
    data = OrderCreated(
        order_id=order_id or uuid.uuid4(),
        customer_email="ada@example.com",
        created_at=created_at,
        items=items,
        count_product=sum(quantities),
        total_amount=Decimal(2 * sum(quantities)),
        currency="EUR",
    )
    return Envelope[OrderCreated](type="order.created", source="orders_service", data=data)
