"""Reconciliation on the real services: the orders' day counts against the report, a lost event found, and its repair."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any

import httpx
from sqlalchemy import text

from orders_service.main import build_app as build_orders
from orders_service.settings import OrdersSettings
from reports_service.settings import ReportsSettings
from shared.db import create_engine
from shared.testing.fixtures import eventually, serving
from tests.integration.orders_service.conftest import order_body
from tests.integration.reports_service.conftest import reports_client

DAY = datetime.now(UTC).date() - timedelta(days=2)


async def _sql(url: str, statement: str, **values: Any) -> None:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(statement), values)
    finally:
        await engine.dispose()


async def _day(reports: httpx.AsyncClient) -> dict[str, Any]:
    response = await reports.get("/report/reconciliation", params={"from": DAY.isoformat(), "to": DAY.isoformat()})
    assert response.status_code == 200, response.text
    (day,) = response.json()
    return dict(day)


async def _mismatched_days(reports: httpx.AsyncClient) -> float | None:
    found = re.search(r"^report_reconciliation_mismatched_days (\S+)$", (await reports.get("/metrics")).text, re.MULTILINE)
    return float(found.group(1)) if found else None


async def test_a_lost_order_event_is_found_and_a_republish_of_its_day_repairs_the_report(
    orders_settings: OrdersSettings, make_settings: Callable[..., ReportsSettings]
) -> None:
    async with serving(build_orders(orders_settings)) as orders_url, httpx.AsyncClient(base_url=orders_url, timeout=10) as orders:
        settings = make_settings(orders_url=orders_url, reconcile_every_s=0.2, reconcile_days=3)
        reports_db = settings.database_url.get_secret_value()
        async with reports_client(settings) as reports:
            noon = datetime.combine(DAY, time(12), UTC)
            placed = []
            for minute in range(3):
                body = order_body(created_at=(noon + timedelta(minutes=minute)).isoformat())
                placed.append((await orders.post("/orders", json=body)).json())
            counted = (await orders.get("/orders/days", params={"from": DAY.isoformat(), "to": DAY.isoformat()})).json()
            assert counted == [{"day": DAY.isoformat(), "orders": 3, "products": 15}]

            async def facts_in() -> bool:
                return bool((await _day(reports))["facts"] == 3)

            await eventually(facts_in, what="the three orders' facts")
            assert (await _day(reports))["status"] == "not_generated"
            task = (await reports.post("/report/generate", params={"report_date": DAY.isoformat()})).json()["task_id"]

            async def reconciled() -> dict[str, Any] | None:
                day = await _day(reports)
                return day if day["status"] == "ok" else None

            await eventually(reconciled, what=f"the report of {DAY} (task {task}) agreeing with the orders")
            await eventually(lambda: _is(_mismatched_days(reports), 0), what="the scheduled reconciliation finding nothing")

            # the reports service never saw the last order's event: no fact, no row, no claim
            lost = placed[-1]["id"]
            await _sql(reports_db, "DELETE FROM reports WHERE order_id = :id", id=lost)
            await _sql(reports_db, "DELETE FROM order_facts WHERE order_id = :id", id=lost)
            await _sql(reports_db, "DELETE FROM processed_events")
            missing = await _day(reports)
            assert (missing["status"], missing["orders"], missing["facts"], missing["reported_orders"]) == ("missing_orders", 3, 2, 2)
            await eventually(lambda: _is(_mismatched_days(reports), 1), what="the mismatched day published as a metric")

            republished = await orders.post("/admin/orders/republish", params={"day": DAY.isoformat()})
            assert republished.json() == {"republished": 3}, "every order of the day; the two the reports had are absorbed"
            repaired = await eventually(reconciled, what="the day reconciled after the republish")
            assert (repaired["reported_orders"], repaired["reported_products"]) == (3, 15)
            await eventually(lambda: _is(_mismatched_days(reports), 0), what="the metric back to 0")
            rows = (await reports.get("/report/", params={"report_date": DAY.isoformat()})).json()
            assert sorted(row["order_id"] for row in rows) == sorted(order["id"] for order in placed)


async def _is(value: Any, expected: float) -> bool:
    return bool(await value == expected)


async def test_bad_ranges_and_an_orders_service_away_are_answered_with_the_reason(
    make_settings: Callable[..., ReportsSettings],
) -> None:
    async with reports_client(make_settings(orders_url="http://127.0.0.1:9")) as reports:
        away = await reports.get("/report/reconciliation")
        assert away.status_code == 503
        assert away.json()["code"] == "dependency_unavailable"
        backwards = await reports.get("/report/reconciliation", params={"from": "2026-02-02", "to": "2026-02-01"})
        assert backwards.status_code == 422
    async with reports_client(make_settings()) as reports:
        unconfigured = await reports.get("/report/reconciliation")
        assert unconfigured.status_code == 503
        assert "REPORTS_ORDERS_URL" in unconfigured.json()["detail"]
