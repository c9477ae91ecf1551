"""``GET /orders/days`` and ``POST /admin/orders/republish``: the orders' own day counts, in any time zone, and a day sent again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.integration.orders_service.conftest import order_body

CALLER = {"X-Caller-Name": "shop-a", "X-Caller-Roles": "shop"}


async def test_days_are_counted_in_the_time_zone_asked_for_and_a_shop_counts_its_own(orders_api: httpx.AsyncClient) -> None:
    # 22:30 UTC on 2026-03-28 is already the 29th in Kyiv (UTC+2 until 01:00 UTC on the 29th)
    for created_at, headers in (("2026-03-28T22:30:00Z", CALLER), ("2026-03-29T10:00:00Z", {}), ("2026-03-29T23:00:00Z", CALLER)):
        assert (await orders_api.post("/orders", json=order_body(created_at=created_at), headers=headers)).status_code == 201
    span = {"from": "2026-03-28", "to": "2026-03-30"}
    utc = (await orders_api.get("/orders/days", params=span)).json()
    kyiv = (await orders_api.get("/orders/days", params=span | {"tz": "Europe/Kyiv"})).json()
    assert [(day["day"], day["orders"], day["products"]) for day in utc] == [("2026-03-28", 1, 5), ("2026-03-29", 2, 10)]
    assert [(day["day"], day["orders"]) for day in kyiv] == [("2026-03-29", 2), ("2026-03-30", 1)]
    own = (await orders_api.get("/orders/days", params=span, headers=CALLER)).json()
    assert [(day["day"], day["orders"]) for day in own] == [("2026-03-28", 1), ("2026-03-29", 1)]


@pytest.mark.parametrize(
    "params",
    [
        {"tz": "Mars/Olympus"},
        {"from": "2026-02-02", "to": "2026-02-01"},
        {"from": "2024-01-01", "to": "2026-01-01"},
        {"from": "2026-02-30"},
        {"tz": "UTC\x00"},
    ],
)
async def test_bad_day_ranges_are_422(orders_api: httpx.AsyncClient, params: dict[str, str]) -> None:
    assert (await orders_api.get("/orders/days", params=params)).status_code == 422


async def test_a_republish_of_a_day_to_come_or_in_no_zone_is_refused(orders_api: httpx.AsyncClient) -> None:
    future = (datetime.now(UTC).date() + timedelta(days=2)).isoformat()
    refused = await orders_api.post("/admin/orders/republish", params={"day": future})
    assert refused.status_code == 422
    assert "in the future" in refused.json()["detail"]
    assert (await orders_api.post("/admin/orders/republish", params={"day": "2026-01-01", "tz": "Nowhere"})).status_code == 422
    assert (await orders_api.post("/admin/orders/republish")).status_code == 422, "day is required"
    assert (await orders_api.post("/admin/orders/republish", params={"day": "2026-01-01"})).json() == {"republished": 0}
