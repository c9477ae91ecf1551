"""Reconciliation on the in-memory store: each way a day's report can disagree with the orders, named."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime

import pytest

from reports_service import reconciliation, reports
from shared.domain_errors import InvalidRequest
from tests.unit.reports_service.fakes import InMemoryReportsStore
from tests.unit.reports_service.test_report_use_cases import order

DAY = date(2026, 4, 10)
TZ = "UTC"


class Orders:
    """What the orders service would answer."""

    def __init__(self, counts: Mapping[date, tuple[int, int]]) -> None:
        self.counts = dict(counts)

    async def day_counts(self, first: date, last: date, *, tz: str) -> Mapping[date, tuple[int, int]]:
        return {day: counted for day, counted in self.counts.items() if first <= day <= last}


async def _day(store: InMemoryReportsStore, orders: Orders) -> reconciliation.DayReconciliation:
    (day,) = await reconciliation.reconcile(store, orders, DAY, DAY, tz=TZ)
    return day


async def test_a_report_of_every_order_is_ok_and_a_quiet_day_too() -> None:
    store = InMemoryReportsStore()
    await reports.ingest_orders(
        store, [order(datetime(2026, 4, 10, 9, tzinfo=UTC), 2), order(datetime(2026, 4, 10, 17, tzinfo=UTC), 3)], tz=TZ
    )
    await store.build_day(DAY, tz=TZ)
    judged = await reconciliation.reconcile(store, Orders({DAY: (2, 5)}), DAY, date(2026, 4, 11), tz=TZ)
    assert [(day.day, day.status, day.orders, day.facts, day.reported_orders) for day in judged] == [
        (DAY, "ok", 2, 2, 2),
        (date(2026, 4, 11), "ok", 0, 0, None),
    ]


async def test_each_disagreement_is_named() -> None:
    store = InMemoryReportsStore()
    first = order(datetime(2026, 4, 10, 9, tzinfo=UTC), 2)
    await reports.ingest_orders(store, [first], tz=TZ)
    assert (await _day(store, Orders({DAY: (1, 2)}))).status == "not_generated"
    assert (await _day(store, Orders({DAY: (2, 5)}))).status == "missing_orders"
    assert (await _day(store, Orders({}))).status == "extra_orders"
    await store.build_day(DAY, tz=TZ)
    store.rows[DAY][first.data.order_id] = 7  # a row that no longer matches its fact
    assert (await _day(store, Orders({DAY: (1, 2)}))).status == "stale"


async def test_a_missing_order_that_arrives_late_joins_the_report_and_the_day_reconciles() -> None:
    store = InMemoryReportsStore()
    await reports.ingest_orders(store, [order(datetime(2026, 4, 10, 9, tzinfo=UTC), 2)], tz=TZ)
    await store.build_day(DAY, tz=TZ)
    orders = Orders({DAY: (2, 5)})
    assert (await _day(store, orders)).status == "missing_orders"
    await reports.ingest_orders(store, [order(datetime(2026, 4, 10, 11, tzinfo=UTC), 3)], tz=TZ)
    assert (await _day(store, orders)).status == "ok"


@pytest.mark.parametrize(
    ("first", "last", "reason"), [(date(2026, 4, 2), date(2026, 4, 1), "after"), (date(2025, 1, 1), date(2026, 4, 1), "366")]
)
async def test_a_bad_range_is_refused(first: date, last: date, reason: str) -> None:
    with pytest.raises(InvalidRequest, match=reason):
        await reconciliation.reconcile(InMemoryReportsStore(), Orders({}), first, last, tz=TZ)
