"""``order.cancelled`` on the real broker and database: the order leaves its day's report, whether
the cancellation comes after the report or before the order's own ``order.created``."""

from datetime import UTC, date, datetime
from typing import Any

import httpx

from shared.testing.events import cancellation_of
from shared.testing.fixtures import eventually
from tests.integration.conftest import publish_handled
from tests.integration.reports_service.conftest import order_created
from tests.integration.reports_service.test_reports import _generate, _ingested

DAY = date(2026, 3, 10)


async def _rows(client: httpx.AsyncClient) -> dict[str, int]:
    rows = (await client.get("/report/", params={"report_date": DAY.isoformat()})).json()
    return {row["order_id"]: row["count_product"] for row in rows}


async def _days(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await client.get("/report/days", params={"from": DAY.isoformat(), "to": DAY.isoformat()})).json()
    return found


async def test_a_cancellation_after_the_report_takes_the_order_out_of_it(reports_api: httpx.AsyncClient, reports_db: str, publish) -> None:
    kept, taken_back = order_created(datetime(2026, 3, 10, 8, tzinfo=UTC), (2,)), order_created(datetime(2026, 3, 10, 9, tzinfo=UTC), (3,))
    await publish(kept, taken_back)
    await eventually(lambda: _ingested(reports_db, 2), what="both facts ingested")
    assert (await _generate(reports_api, DAY))["total_products"] == 5
    cancellation = cancellation_of(taken_back)
    await publish(cancellation, cancellation)  # a redelivered duplicate has no second effect

    async def one_row_left() -> dict[str, int] | None:
        rows = await _rows(reports_api)
        return rows if len(rows) == 1 else None

    assert await eventually(one_row_left, what="the cancelled order out of the report") == {str(kept.data.order_id): 2}
    assert await _days(reports_api) == [{"report_at": "2026-03-10", "orders": 1, "products": 2}]
    again = await _generate(reports_api, DAY)  # the report of the day is what a fresh generation builds
    assert (again["rows"], again["total_products"]) == (1, 2)


async def test_a_cancellation_consumed_before_its_order_keeps_the_order_out_for_good(reports_api: httpx.AsyncClient, publish) -> None:
    late = order_created(datetime(2026, 3, 10, 9, tzinfo=UTC), (4,))
    await publish_handled(publish, "reports.order.cancelled", cancellation_of(late))  # the cancellation first
    await publish_handled(publish, "reports.order.created", late)
    task = await _generate(reports_api, DAY)
    assert (task["rows"], task["total_products"]) == (0, 0)
    assert await _rows(reports_api) == {}
    assert await _days(reports_api) in ([], [{"report_at": "2026-03-10", "orders": 0, "products": 0}])
