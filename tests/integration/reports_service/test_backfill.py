"""``POST /report/backfill``: a year of days in one call, behind the reports people and schedules ask for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared.testing.fixtures import eventually
from tests.integration.reports_service.conftest import order_created

TODAY = datetime.now(UTC).date()


async def _task(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    return dict((await client.get(f"/report/tasks/{task_id}")).json())


async def test_a_manual_request_finishes_while_a_year_is_still_being_backfilled(reports_api: httpx.AsyncClient, publish: Any) -> None:
    day = TODAY - timedelta(days=3)
    await publish(order_created(datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=12), (2,)))
    first, last = TODAY - timedelta(days=365), TODAY
    accepted = await reports_api.post("/report/backfill", json={"from": first.isoformat(), "to": last.isoformat()})
    assert accepted.status_code == 202, accepted.text
    backfill = accepted.json()
    assert backfill["total"] == 366
    assert [task["report_date"] for task in backfill["tasks"]] == [(first + timedelta(days=n)).isoformat() for n in range(366)]
    manual = (await reports_api.post("/report/generate", params={"report_date": day.isoformat()})).json()["task_id"]

    async def manual_done() -> dict[str, Any] | None:
        task = await _task(reports_api, manual)
        return task if task["status"] == "succeeded" else None

    await eventually(manual_done, timeout_s=30, what="the manual request's report")
    progress = (await reports_api.get(f"/report/backfills/{backfill['backfill_id']}")).json()
    # behind the backfill, it would have waited for the days the consumer had taken (its prefetch, 200) to finish
    assert progress["done"] < 366 // 3, "the manual request did not wait behind the backfill"

    async def backfilled() -> dict[str, Any] | None:
        found = dict((await reports_api.get(f"/report/backfills/{backfill['backfill_id']}")).json())
        return found if found["done"] == found["total"] else None

    finished = await eventually(backfilled, timeout_s=240, interval_s=0.5, what="the whole year backfilled")
    assert finished | {"backfill_id": None} == {
        "backfill_id": None,
        "total": 366,
        "done": 366,
        "succeeded": 366,
        "failed": 0,
        "cancelled": 0,
        "pending": 0,
    }
    listed = await reports_api.get("/report/tasks", params={"backfill": backfill["backfill_id"], "count": 5})
    assert listed.headers["X-Backfill-Done"] == "366"
    assert listed.headers["X-Backfill-Total"] == "366"
    assert {task["backfill_id"] for task in listed.json()} == {backfill["backfill_id"]}
    (row,) = (await reports_api.get("/report/", params={"report_date": day.isoformat()})).json()
    assert row["count_product"] == 2


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"from": "2024-01-01", "to": "2025-01-01"}, "at most 366 days"),
        ({"from": "2026-01-05", "to": "2026-01-01"}, "must not be after"),
        ({"from": TODAY.isoformat(), "to": (TODAY + timedelta(days=1)).isoformat()}, "is in the future"),
        ({"from": "2026-01-01"}, "to"),
        ({"from": "2026-01-01", "to": "2026-02-30"}, "to"),
        ({"from": "2026-01-01", "to": "2026-01-02", "days": 3}, "days"),
    ],
)
async def test_a_bad_range_is_422_with_the_reason(reports_api: httpx.AsyncClient, body: dict[str, Any], reason: str) -> None:
    response = await reports_api.post("/report/backfill", json=body)
    assert response.status_code == 422
    assert reason in response.text


async def test_an_unknown_backfill_is_404(reports_api: httpx.AsyncClient) -> None:
    assert (await reports_api.get("/report/backfills/00000000-0000-0000-0000-000000000000")).status_code == 404
