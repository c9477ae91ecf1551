"""``/admin/orders/outbox``: an operator lists the events the relay parked and sends them again."""

from __future__ import annotations

import uuid

import asyncpg
import httpx

from orders_service.models import outbox as outbox_table
from shared.db import asyncpg_dsn
from shared.messaging.outbox import new_event, outbox_row
from shared.testing.broker import bound_queue, drain
from tests.unit.shared.test_envelope import _order_created


async def _park_one(url: str) -> uuid.UUID:
    """An order.created row as the relay leaves it after its last refusal."""
    row = outbox_row(new_event("order.created", "orders_service", _order_created()))
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await connection.execute(
            f"INSERT INTO {outbox_table.name} (event_id, routing_key, event_type, body, occurred_at, attempts, last_error, available_at) "
            "VALUES ($1, $2, $3, $4, $5, 20, 'parked after 20 attempts: NO_ROUTE', 'infinity')",
            row["event_id"],
            row["routing_key"],
            row["event_type"],
            row["body"],
            row["occurred_at"],
        )
    finally:
        await connection.close()
    event_id: uuid.UUID = row["event_id"]
    return event_id


async def test_a_parked_event_is_listed_refused_ids_are_named_and_a_republish_publishes_it(
    orders_api: httpx.AsyncClient, orders_db: str, broker_url: str, exchange_name: str
) -> None:
    parked = await _park_one(orders_db)
    listed = (await orders_api.get("/admin/orders/outbox", params={"status": "unroutable"})).json()
    assert listed["total"] == 1
    assert listed["items"][0] | {"event_id": str(parked)} == listed["items"][0]
    assert (listed["items"][0]["attempts"], listed["items"][0]["routing_key"]) == (20, "order.created")
    assert "NO_ROUTE" in listed["items"][0]["last_error"]

    stranger = uuid.uuid4()
    refused = await orders_api.post("/admin/orders/outbox/republish", json={"ids": [str(parked), str(stranger)]})
    assert refused.status_code == 422
    assert (refused.json()["code"], str(stranger) in refused.json()["detail"]) == ("not_parked", True)
    assert (await orders_api.post("/admin/orders/outbox/republish", json={})).status_code == 422
    assert (await orders_api.post("/admin/orders/outbox/republish", json={"ids": [str(parked)], "all": True})).status_code == 422
    assert (await orders_api.get("/admin/orders/outbox", params={"status": "sent"})).status_code == 422

    async with bound_queue(broker_url, exchange_name, "order.created") as queue:
        answer = await orders_api.post("/admin/orders/outbox/republish", json={"ids": [str(parked)]})
        assert answer.json() == {"republished": 1}
        (message,) = await drain(queue, 1, timeout_s=15)
    assert message.message_id == str(parked)
    assert (await orders_api.get("/admin/orders/outbox")).json()["total"] == 0
    assert (await orders_api.post("/admin/orders/outbox/republish", json={"all": True})).json() == {"republished": 0}
