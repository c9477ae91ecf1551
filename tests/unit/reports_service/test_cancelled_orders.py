"""``order.cancelled`` in the reports use cases: the order leaves its day, whichever event comes first."""

from __future__ import annotations

from datetime import UTC, date, datetime

from reports_service import reports
from shared.testing.events import cancellation_of
from tests.unit.fakes import RecordingOutbox
from tests.unit.reports_service.fakes import InMemoryReportsStore
from tests.unit.reports_service.test_report_use_cases import order, requested

DAY = date(2026, 12, 5)


async def generate(store: InMemoryReportsStore, events: RecordingOutbox) -> tuple[int, int]:
    request = requested(DAY)
    await reports.start_task(store, request)
    generated = await reports.generate_report(store, events, request, tz="UTC")
    return generated.orders, generated.total_products


async def test_a_cancellation_after_the_report_takes_the_order_out_of_it_as_a_fresh_generation_would() -> None:
    store, events = InMemoryReportsStore(), RecordingOutbox()
    kept, taken_back = order(datetime(2026, 12, 5, 8, tzinfo=UTC), 2), order(datetime(2026, 12, 5, 9, tzinfo=UTC), 3)
    await reports.ingest_orders(store, [kept, taken_back], tz="UTC")
    assert await generate(store, events) == (2, 5)
    await reports.cancel_orders(store, [cancellation_of(taken_back)], tz="UTC")
    assert store.rows[DAY] == {kept.data.order_id: 2}
    summary = (await store.day_summaries(DAY, DAY, tz="UTC"))[DAY]
    assert (summary.facts, summary.fact_products, summary.reported_orders, summary.reported_products) == (1, 2, 1, 2)
    assert await generate(store, events) == (1, 2)


async def test_a_cancellation_that_comes_first_keeps_the_late_order_out_and_a_second_one_changes_nothing() -> None:
    store, events = InMemoryReportsStore(), RecordingOutbox()
    late = order(datetime(2026, 12, 5, 9, tzinfo=UTC), 3)
    await reports.cancel_orders(store, [cancellation_of(late)], tz="UTC")
    assert await generate(store, events) == (0, 0)
    await reports.ingest_orders(store, [late], tz="UTC")
    await reports.cancel_orders(store, [cancellation_of(late)], tz="UTC")
    assert store.rows[DAY] == {}
    assert (await store.day_summaries(DAY, DAY, tz="UTC"))[DAY].facts == 0
