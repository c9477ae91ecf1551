"""Cancelling an order: its state and its ``order.cancelled`` row together, once, only for its owner."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import orjson
import pytest

from orders_service import orders
from shared.domain_errors import NotFound
from shared.messaging.topology import ORDER_CANCELLED, ORDER_CREATED
from tests.unit.orders_service.fakes import InMemoryOrdersStore
from tests.unit.orders_service.test_place_order import order_in

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)


async def test_a_cancellation_marks_the_order_and_writes_order_cancelled_with_what_consumers_need() -> None:
    store = InMemoryOrdersStore()
    placed, _ = await orders.place_order(store, order_in(created_at="2026-12-05T22:30:00Z"), None, client="shop-a", now=NOW)
    cancelled, now_cancelled = await orders.cancel_order(store, placed.id, "changed their mind", owner="shop-a", now=NOW)
    assert now_cancelled
    assert (cancelled.status, cancelled.cancelled_at, cancelled.cancel_reason) == ("cancelled", NOW, "changed their mind")
    row = store.outbox[-1]
    assert (row["routing_key"], row["event_id"]) == (ORDER_CANCELLED, uuid.uuid5(orders.CANCELLATION_EVENTS, str(placed.id)))
    data = orjson.loads(row["body"])["data"]
    assert data["order_id"] == str(placed.id)
    assert data["created_at"].startswith("2026-12-05T22:30:00")
    carried = (data["count_product"], data["customer_email"], data["client"], data["reason"])
    assert carried == (5, "ada@example.com", "shop-a", "changed their mind")


async def test_cancelling_again_answers_the_first_cancellation_and_writes_nothing() -> None:
    store = InMemoryOrdersStore()
    placed, _ = await orders.place_order(store, order_in(), None, now=NOW)
    first, _ = await orders.cancel_order(store, placed.id, "first", now=NOW)
    rows = len(store.outbox)
    again, now_cancelled = await orders.cancel_order(store, placed.id, "second", now=datetime(2026, 12, 8, tzinfo=UTC))
    assert not now_cancelled
    assert again == first
    assert len(store.outbox) == rows


async def test_an_unknown_order_or_another_shops_is_not_found() -> None:
    store = InMemoryOrdersStore()
    placed, _ = await orders.place_order(store, order_in(), None, client="shop-a", now=NOW)
    with pytest.raises(NotFound):
        await orders.cancel_order(store, uuid.uuid4(), None, now=NOW)
    with pytest.raises(NotFound):
        await orders.cancel_order(store, placed.id, None, owner="shop-b", now=NOW)
    assert (await store.get(placed.id)).status == "placed"  # type: ignore[union-attr]


async def test_a_day_published_again_carries_the_cancellations_after_the_orders() -> None:
    store = InMemoryOrdersStore()
    kept, _ = await orders.place_order(store, order_in(created_at="2026-12-05T08:00:00Z"), None, now=NOW)
    taken_back, _ = await orders.place_order(store, order_in(created_at="2026-12-05T09:00:00Z"), None, now=NOW)
    await orders.cancel_order(store, taken_back.id, None, now=NOW)
    first_cancellation = store.outbox[-1]["event_id"]
    before = len(store.outbox)
    assert await orders.republish_day(store, date(2026, 12, 5), tz="UTC", now=NOW) == 2
    again = [(row["routing_key"], orjson.loads(row["body"])["data"]["order_id"]) for row in store.outbox[before:]]
    assert again == [(ORDER_CREATED, str(kept.id)), (ORDER_CREATED, str(taken_back.id)), (ORDER_CANCELLED, str(taken_back.id))]
    assert store.outbox[-1]["event_id"] == first_cancellation
