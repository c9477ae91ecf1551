import asyncio
import json

import httpx
import pytest

from orders_service.main import build_app
from orders_service.settings import OrdersSettings
from shared.testing.broker import bound_queue, drain
from shared.testing.fixtures import eventually, serving
from shared.testing.infrastructure import Infrastructure
from tests.integration.orders_service.conftest import order_body


@pytest.mark.slow
async def test_orders_are_accepted_while_the_broker_is_down_and_published_after(
    orders_settings: OrdersSettings, infrastructure: Infrastructure
) -> None:
    broker_url, exchange = orders_settings.broker_url.get_secret_value(), orders_settings.events_exchange
    async with bound_queue(broker_url, exchange, "order.created") as queue:
        queue_name = queue.name
    async with serving(build_app(orders_settings)) as base_url, httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        await asyncio.to_thread(infrastructure.stop_broker)
        try:
            responses = [await client.post("/orders", json=order_body()) for _ in range(20)]
            assert [r.status_code for r in responses] == [201] * 20
            degraded = await client.get("/health/ready")
            assert degraded.status_code == 200
            assert degraded.json()["status"] == "degraded"
        finally:
            await asyncio.to_thread(infrastructure.start_broker)
        async with bound_queue(broker_url, exchange, "order.created", name=queue_name) as queue:
            received = await drain(queue, 20, timeout_s=60)
        await eventually(lambda: _healthy(client), timeout_s=30, what="healthy again")
    order_ids = {r.json()["id"] for r in responses}
    assert len(received) == 20
    assert {json.loads(m.body)["data"]["order_id"] for m in received} == order_ids


async def _healthy(client: httpx.AsyncClient) -> bool:
    return bool((await client.get("/health/ready")).json()["status"] == "healthy")
