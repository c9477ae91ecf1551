"""Placing an order on the in-memory store: what is refused, what the order and its event
hold, and how an Idempotency-Key replays, refuses a changed body, and belongs to one client."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest

from orders_service import orders
from orders_service.schemas import OrderIn
from shared.correlation import correlation_id
from shared.domain_errors import Conflict, InvalidRequest
from shared.messaging.topology import ORDER_CREATED
from tests.unit.orders_service.fakes import InMemoryOrdersStore

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)


def order_in(**overrides: Any) -> OrderIn:
    body: dict[str, Any] = {
        "customer_email": "ada@example.com",
        "currency": "EUR",
        "items": [{"sku": "BOOK-1", "quantity": 2, "unit_price": "12.5"}, {"sku": "PEN", "quantity": 3, "unit_price": "0.99"}],
    }
    return OrderIn.model_validate(body | overrides)


async def test_an_order_is_stored_with_its_totals_and_its_order_created_row() -> None:
    store = InMemoryOrdersStore()
    token = correlation_id.set("req-7")
    try:
        placed, created = await orders.place_order(store, order_in(), None, client="shop-a", now=NOW)
    finally:
        correlation_id.reset(token)
    assert created
    assert (placed.count_product, placed.total_amount, placed.created_at, placed.client) == (5, Decimal("27.97"), NOW, "shop-a")
    assert store.orders == {placed.id: placed}
    [row] = store.outbox
    assert (row["routing_key"], row["event_type"], row["correlation_id"]) == (ORDER_CREATED, ORDER_CREATED, "req-7")
    data = orjson.loads(row["body"])["data"]
    assert data["order_id"] == str(placed.id)
    assert (data["count_product"], data["total_amount"], data["client"]) == (5, "27.97", "shop-a")
    assert [item["sku"] for item in data["items"]] == ["BOOK-1", "PEN"]


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"created_at": (NOW + timedelta(minutes=6)).isoformat()}, "created_at: must not be in the future"),
        ({"created_at": "0001-01-01T00:00:00+01:00"}, "created_at: must be within the years 1 to 9999 in UTC"),
        ({"items": [{"sku": "GOLD", "quantity": 10_000, "unit_price": "9999999999.99"}]}, "is more than 999,999,999,999.99"),
    ],
)
async def test_an_order_that_cannot_be_stored_is_refused_and_nothing_is_written(overrides: dict[str, Any], reason: str) -> None:
    store = InMemoryOrdersStore()
    with pytest.raises(InvalidRequest, match=reason):
        await orders.place_order(store, order_in(**overrides), "key-1", client="shop-a", now=NOW)
    assert (store.orders, store.keys, store.outbox) == ({}, {}, [])


async def test_a_clock_a_few_minutes_ahead_is_accepted() -> None:
    store = InMemoryOrdersStore()
    placed, _ = await orders.place_order(store, order_in(created_at=(NOW + timedelta(minutes=4)).isoformat()), None, now=NOW)
    assert placed.created_at == NOW + timedelta(minutes=4)


async def test_the_same_key_and_body_replays_the_first_order_without_a_second_event() -> None:
    store = InMemoryOrdersStore()
    first, created = await orders.place_order(store, order_in(), "key-1", client="shop-a", now=NOW)
    # the same meaning written differently (price 12.50, not 12.5) is the same request
    again = order_in(items=[{"sku": "BOOK-1", "quantity": 2, "unit_price": "12.50"}, {"sku": "PEN", "quantity": 3, "unit_price": "0.99"}])
    replayed, created_again = await orders.place_order(store, again, "key-1", client="shop-a", now=NOW + timedelta(hours=1))
    assert (created, created_again) == (True, False)
    assert replayed == first
    assert len(store.outbox) == 1


async def test_a_key_used_again_with_another_body_is_refused() -> None:
    store = InMemoryOrdersStore()
    await orders.place_order(store, order_in(), "key-1", client="shop-a", now=NOW)
    with pytest.raises(InvalidRequest, match="already used with a different request body") as refused:
        await orders.place_order(store, order_in(currency="USD"), "key-1", client="shop-a", now=NOW)
    assert refused.value.code == "idempotency_key_reused"
    assert len(store.orders) == 1


async def test_two_clients_may_use_the_same_key_for_different_orders() -> None:
    store = InMemoryOrdersStore()
    mine, _ = await orders.place_order(store, order_in(), "key-1", client="shop-a", now=NOW)
    theirs, created = await orders.place_order(store, order_in(), "key-1", client="shop-b", now=NOW)
    assert created
    assert mine.id != theirs.id


async def test_a_key_another_request_holds_is_a_conflict_to_retry() -> None:
    store = InMemoryOrdersStore()
    store.in_flight.add(("shop-a", "key-1"))
    with pytest.raises(Conflict) as refused:
        await orders.place_order(store, order_in(), "key-1", client="shop-a", now=NOW)
    assert (refused.value.code, refused.value.retry_after_s) == ("idempotency_in_progress", 1)
    assert store.orders == {}
