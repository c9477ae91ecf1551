"""Cancelling an order through the gateway, on the running suite: the shop takes an order back after
its day's report was generated; the report drops it, the customer gets one notice, the day still
reconciles, and the answers to a second cancellation, another shop and an unknown order are clean."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared.testing.fixtures import eventually
from tests.e2e.conftest import CLIENT_KEYS, RunningSuite

pytestmark = pytest.mark.slow

DAY = datetime.now(UTC).date() - timedelta(days=2)


async def _report(suite: RunningSuite) -> dict[str, int]:
    response = await suite.gateway.post(f"/report/generate?report_date={DAY}")
    assert response.status_code == 202, response.text
    task_id = response.json()["task_id"]

    async def finished() -> dict[str, Any] | None:
        task = dict((await suite.gateway.get(f"/report/tasks/{task_id}")).json())
        return task if task["status"] in ("succeeded", "failed") else None

    task = await eventually(finished, timeout_s=30, interval_s=0.2, what=f"the report of {DAY}")
    assert task["status"] == "succeeded"
    rows = (await suite.gateway.get("/report/", params={"report_date": DAY.isoformat()})).json()
    return {row["order_id"]: row["count_product"] for row in rows}


async def _reconciled(suite: RunningSuite) -> str:
    (day,) = (await suite.gateway.get("/report/reconciliation", params={"from": DAY.isoformat(), "to": DAY.isoformat()})).json()
    return str(day["status"])


async def test_a_shop_cancels_an_order_after_its_report_and_every_service_compensates(suite: RunningSuite) -> None:
    base = str(suite.gateway.base_url)
    async with (
        httpx.AsyncClient(base_url=base, headers={"X-API-Key": CLIENT_KEYS["shop-a"][0]}, timeout=30) as shop_a,
        httpx.AsyncClient(base_url=base, headers={"X-API-Key": CLIENT_KEYS["shop-b"][0]}, timeout=30) as shop_b,
    ):
        placed = []
        for index, quantity in enumerate((2, 3)):
            body = {
                "customer_email": f"cancel-{index}@example.com",
                "items": [{"sku": "SKU-C", "quantity": quantity, "unit_price": "4.00"}],
                "created_at": datetime.combine(DAY, datetime.min.time(), UTC).replace(hour=9 + index).isoformat(),
            }
            response = await shop_a.post("/orders", json=body)
            assert response.status_code == 201, response.text
            placed.append(response.json())
        kept, taken_back = placed

        async def reported_both() -> dict[str, int] | None:
            rows = await _report(suite)
            return rows if len(rows) == 2 else None

        await eventually(reported_both, timeout_s=60, interval_s=0.5, what="both orders in the day's report")
        assert await _reconciled(suite) == "ok"

        assert (await shop_b.post(f"/orders/{taken_back['id']}/cancel", json={"reason": "not mine"})).status_code == 404
        assert (await shop_a.post(f"/orders/{uuid.uuid4()}/cancel")).status_code == 404
        cancelled = await shop_a.post(f"/orders/{taken_back['id']}/cancel", json={"reason": "customer changed their mind"})
        assert cancelled.status_code == 200, cancelled.text
        again = await shop_a.post(f"/orders/{taken_back['id']}/cancel")
        assert (again.status_code, again.json()) == (200, cancelled.json())
        assert cancelled.json()["status"] == "cancelled"
        listed = (await shop_a.get("/orders", params={"status": "cancelled"})).json()
        assert [order["id"] for order in listed["items"]] == [taken_back["id"]]

    async def only_kept_reported() -> list[Any] | None:
        rows = (await suite.gateway.get("/report/", params={"report_date": DAY.isoformat()})).json()
        return rows if [row["order_id"] for row in rows] == [kept["id"]] else None

    await eventually(only_kept_reported, timeout_s=30, interval_s=0.3, what="the cancelled order out of its day's report")
    days = (await suite.gateway.get("/report/days", params={"from": DAY.isoformat(), "to": DAY.isoformat()})).json()
    assert [(day["orders"], day["products"]) for day in days] == [(1, 2)]
    assert await _reconciled(suite) == "ok"
    assert await _report(suite) == {kept["id"]: 2}, "a fresh generation builds the same report"

    def notices() -> list[str]:
        return [mail["To"] for mail in suite.mails() if mail["Subject"] == f"Order cancelled {taken_back['id']}"]

    async def noticed() -> bool:
        return len(notices()) >= 1

    await eventually(noticed, timeout_s=30, interval_s=0.3, what="the cancellation notice")
    assert notices() == ["cancel-1@example.com"]
