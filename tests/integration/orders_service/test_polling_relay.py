"""``ORDERS_DATABASE_LISTEN=false``: behind a transaction-mode pooler the relay never LISTENs; it polls."""

from __future__ import annotations

import asyncio
import json

import httpx
from sqlalchemy import text

from orders_service import models
from orders_service.main import build_app
from orders_service.settings import OrdersSettings
from shared.db import create_engine
from shared.messaging.outbox import Outbox
from shared.relay_app import build_relay_app
from shared.testing.broker import bound_queue, drain
from shared.testing.fixtures import eventually, serving
from tests.integration.orders_service.conftest import order_body

ORDERS = 30


async def _listen_sessions_and_waiters(database_url: str) -> tuple[int, int]:
    """Sessions of this database that ran LISTEN, and relays registered for a NOTIFY."""
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            listening = await connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND (query ILIKE 'LISTEN%' OR query ILIKE '%outbox_waiters%') AND pid <> pg_backend_pid()"
                )
            )
            waiters = await connection.scalar(text("SELECT count(*) FROM outbox_waiters"))
            return int(listening or 0), int(waiters or 0)
    finally:
        await engine.dispose()


async def test_a_relay_that_may_not_listen_publishes_every_event_by_polling(orders_settings: OrdersSettings) -> None:
    settings = orders_settings.model_copy(update={"outbox_relay": "external", "database_listen": False, "outbox_poll_interval_s": 0.2})
    database_url = settings.database_url.get_secret_value()
    async with (
        bound_queue(settings.broker_url.get_secret_value(), settings.events_exchange, "order.created") as queue,
        serving(build_app(settings)) as orders_url,
        serving(build_relay_app(settings, Outbox(models.outbox))) as relay_url,
        httpx.AsyncClient(base_url=orders_url, timeout=10) as orders,
        httpx.AsyncClient(base_url=relay_url, timeout=10) as relay,
    ):
        await eventually(lambda: _ready(relay), timeout_s=10, what="the relay ready")
        first = [await orders.post("/orders", json=order_body()) for _ in range(ORDERS // 2)]
        received = await drain(queue, ORDERS // 2, timeout_s=10)
        # idle for a while: a relay that LISTENs registers for a NOTIFY within its first idle pass
        await asyncio.sleep(1.0)
        during_idle = await _listen_sessions_and_waiters(database_url)
        second = [await orders.post("/orders", json=order_body()) for _ in range(ORDERS - ORDERS // 2)]
        received += await drain(queue, ORDERS - ORDERS // 2, timeout_s=10)
        after = await _listen_sessions_and_waiters(database_url)
    created = first + second
    assert [response.status_code for response in created] == [201] * ORDERS
    assert {json.loads(message.body)["data"]["order_id"] for message in received} == {r.json()["id"] for r in created}
    assert during_idle == (0, 0)
    assert after == (0, 0)


async def _ready(client: httpx.AsyncClient) -> bool:
    return bool((await client.get("/health/ready")).json()["status"] == "healthy")
