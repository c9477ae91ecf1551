"""``OUTBOX_RELAY=external``: the HTTP process only writes outbox rows; a relay process publishes them."""

from __future__ import annotations

import json
from typing import Any

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

ORDERS = 20


async def _unpublished(database_url: str) -> int:
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            return int((await connection.scalar(text("SELECT count(*) FROM outbox WHERE published_at IS NULL"))) or 0)
    finally:
        await engine.dispose()


async def test_the_relay_process_publishes_what_the_service_only_wrote(orders_settings: OrdersSettings) -> None:
    settings = orders_settings.model_copy(update={"outbox_relay": "external", "outbox_stale_after_s": 0.3})
    database_url = settings.database_url.get_secret_value()
    async with (
        bound_queue(settings.broker_url.get_secret_value(), settings.events_exchange, "order.created") as queue,
        serving(build_app(settings)) as orders_url,
        httpx.AsyncClient(base_url=orders_url, timeout=10) as orders,
    ):
        created = [await orders.post("/orders", json=order_body()) for _ in range(ORDERS)]
        assert [response.status_code for response in created] == [201] * ORDERS
        assert await _unpublished(database_url) == ORDERS, "the service itself publishes nothing"

        fresh = (await orders.get("/health/ready")).json()
        assert "broker" not in fresh["checks"]

        async def stale_reported() -> dict[str, Any] | None:
            ready = dict((await orders.get("/health/ready")).json())
            return ready if ready["status"] == "degraded" else None

        stale = await eventually(stale_reported, timeout_s=10, what="readiness degraded once the events waited past 0.3 s")
        assert stale["checks"]["outbox"]["status"] == "down"
        assert "waited more than 0.3 s" in stale["checks"]["outbox"]["error"]

        async with serving(build_relay_app(settings, Outbox(models.outbox))) as relay_url, httpx.AsyncClient(base_url=relay_url) as relay:
            received = await drain(queue, ORDERS, timeout_s=30)
            await eventually(lambda: _status(orders, "healthy"), timeout_s=10, what="orders ready once the relay caught up")
            relay_health = (await relay.get("/health/ready")).json()
            assert relay_health["service"] == "orders-relay"
            assert relay_health["checks"]["broker"]["status"] == "up"
            assert 'events_published_total{routing_key="order.created"}' in (await relay.get("/metrics")).text
    assert {json.loads(message.body)["data"]["order_id"] for message in received} == {r.json()["id"] for r in created}
    assert await _unpublished(database_url) == 0


async def _status(client: httpx.AsyncClient, expected: str) -> bool:
    return bool((await client.get("/health/ready")).json()["status"] == expected)
