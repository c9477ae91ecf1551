"""``POST /orders/{id}/cancel`` on the real database: the order's state and its ``order.cancelled``
row in one transaction, the same answer when sent again, and nothing for an order a shop cannot see."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
import pytest

from orders_service.settings import OrdersSettings
from shared.db import asyncpg_dsn
from tests.integration.orders_service.conftest import order_body

SHOP_A = {"X-Caller-Name": "shop-a", "X-Caller-Roles": "shop"}
SHOP_B = {"X-Caller-Name": "shop-b", "X-Caller-Roles": "shop"}


async def _cancellation_rows(settings: OrdersSettings, order_id: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(asyncpg_dsn(settings.database_url.get_secret_value()))
    try:
        rows: list[asyncpg.Record] = await connection.fetch("SELECT event_id, body FROM outbox WHERE routing_key = 'order.cancelled'")
        return [row for row in rows if order_id in bytes(row["body"]).decode()]
    finally:
        await connection.close()


async def test_a_shop_cancels_its_order_once_and_cancelling_again_answers_the_same(
    orders_api: httpx.AsyncClient, orders_settings: OrdersSettings
) -> None:
    placed = (await orders_api.post("/orders", json=order_body(created_at="2026-03-10T09:00:00Z"), headers=SHOP_A)).json()
    assert placed["status"] == "placed"
    first = await orders_api.post(f"/orders/{placed['id']}/cancel", json={"reason": "customer changed their mind"}, headers=SHOP_A)
    assert first.status_code == 200, first.text
    assert (first.json()["status"], first.json()["cancel_reason"]) == ("cancelled", "customer changed their mind")
    again = await orders_api.post(f"/orders/{placed['id']}/cancel", headers=SHOP_A)
    assert (again.status_code, again.json()) == (200, first.json())
    (row,) = await _cancellation_rows(orders_settings, placed["id"])
    assert b'"reason":"customer changed their mind"' in bytes(row["body"])
    assert (await orders_api.get(f"/orders/{placed['id']}")).json()["status"] == "cancelled"


async def test_an_unknown_order_and_another_shops_are_404_and_nothing_changes(
    orders_api: httpx.AsyncClient, orders_settings: OrdersSettings
) -> None:
    placed = (await orders_api.post("/orders", json=order_body(), headers=SHOP_A)).json()
    assert (await orders_api.post(f"/orders/{uuid.uuid4()}/cancel")).status_code == 404
    assert (await orders_api.post(f"/orders/{placed['id']}/cancel", headers=SHOP_B)).status_code == 404
    assert (await orders_api.get(f"/orders/{placed['id']}")).json()["status"] == "placed"
    assert await _cancellation_rows(orders_settings, placed["id"]) == []


@pytest.mark.parametrize("body", [{"reason": ""}, {"reason": "x" * 501}, {"why": "no"}, {"reason": "a\x00b"}])
async def test_a_bad_reason_is_422(orders_api: httpx.AsyncClient, body: dict[str, str]) -> None:
    placed = (await orders_api.post("/orders", json=order_body())).json()
    assert (await orders_api.post(f"/orders/{placed['id']}/cancel", json=body)).status_code == 422
    assert (await orders_api.post("/orders/not-a-uuid/cancel")).status_code == 422


async def test_orders_filter_on_their_status_and_the_day_counts_leave_cancelled_ones_out(orders_api: httpx.AsyncClient) -> None:
    kept = (await orders_api.post("/orders", json=order_body(created_at="2026-03-11T09:00:00Z"))).json()
    taken_back = (await orders_api.post("/orders", json=order_body(created_at="2026-03-11T10:00:00Z"))).json()
    assert (await orders_api.post(f"/orders/{taken_back['id']}/cancel")).status_code == 200
    span = {"created_from": "2026-03-11T00:00:00Z", "created_to": "2026-03-12T00:00:00Z"}
    cancelled = (await orders_api.get("/orders", params=span | {"status": "cancelled"})).json()
    placed = (await orders_api.get("/orders", params=span | {"status": "placed"})).json()
    assert [order["id"] for order in cancelled["items"]] == [taken_back["id"]]
    assert [order["id"] for order in placed["items"]] == [kept["id"]]
    assert (await orders_api.get("/orders", params={"status": "lost"})).status_code == 422
    days = (await orders_api.get("/orders/days", params={"from": "2026-03-11", "to": "2026-03-11"})).json()
    assert [(day["orders"], day["products"]) for day in days] == [(1, kept["count_product"])]
