"""The reports use cases on the in-memory store and outbox: which day an order belongs to,
what a generation emits, and that a failure is announced once."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from reports_service import reports
from shared.contracts.orders import OrderCreated, OrderItemData
from shared.contracts.reports import ReportCancelRequested, ReportRequested
from shared.correlation import correlation_id
from shared.domain_errors import InvalidRequest
from shared.messaging.envelope import Envelope
from shared.messaging.topology import ORDER_CREATED, REPORT_BACKFILL_REQUESTED, REPORT_FAILED, REPORT_GENERATED, REPORT_REQUESTED
from tests.unit.fakes import RecordingOutbox
from tests.unit.reports_service.fakes import InMemoryReportsStore

KYIV = "Europe/Kyiv"
# Kyiv moves to summer time at 2026-03-29 01:00 UTC: that local day has 23 hours.
SPRING_DAY = date(2026, 3, 29)


def order(created_at: datetime, count: int = 2, order_id: uuid.UUID | None = None) -> Envelope[OrderCreated]:
    data = OrderCreated(
        order_id=order_id or uuid.uuid4(),
        customer_email="buyer@example.com",
        created_at=created_at,
        items=[OrderItemData(sku="SKU-1", quantity=count, unit_price=Decimal("1.50"))],
        count_product=count,
        total_amount=Decimal("1.50") * count,
        currency="EUR",
    )
    return Envelope[OrderCreated](type=ORDER_CREATED, source="orders_service", data=data)


def requested(day: date) -> ReportRequested:
    return ReportRequested(task_id=uuid.uuid4(), report_date=day, requested_by="api")


async def test_a_day_still_to_come_is_refused_and_nothing_is_written() -> None:
    store, events = InMemoryReportsStore(), RecordingOutbox()
    now = datetime(2026, 3, 28, 21, 30, tzinfo=UTC)  # already 2026-03-28 23:30 in Kyiv, not yet the 29th
    with pytest.raises(InvalidRequest, match="2026-03-29 is in the future"):
        await reports.request_report(store, events, SPRING_DAY, tz=KYIV, now=now)
    assert store.tasks == {}
    assert events.rows == []


async def test_a_request_records_a_scheduled_task_and_its_event_with_the_requests_correlation_id() -> None:
    store, events = InMemoryReportsStore(), RecordingOutbox()
    token = correlation_id.set("req-42")
    try:
        task_id = await reports.request_report(store, events, SPRING_DAY, tz=KYIV, now=datetime(2026, 3, 29, 12, tzinfo=UTC))
    finally:
        correlation_id.reset(token)
    assert store.tasks[task_id]["status"] == "scheduled"
    assert events.published(REPORT_REQUESTED) == [
        {"task_id": str(task_id), "report_date": "2026-03-29", "requested_by": "api", "scheduled_for": None}
    ]
    assert events.rows[0]["correlation_id"] == "req-42"


async def test_orders_count_on_their_local_day_and_the_generation_emits_the_totals() -> None:
    store, events = InMemoryReportsStore(), RecordingOutbox()
    await reports.ingest_orders(
        store,
        [
            order(datetime(2026, 3, 28, 21, 59, tzinfo=UTC), count=1),  # 23:59 on the 28th in Kyiv
            order(datetime(2026, 3, 28, 22, 0, tzinfo=UTC), count=2),  # 00:00 on the 29th
            order(datetime(2026, 3, 29, 20, 59, tzinfo=UTC), count=3),  # 23:59 on the 29th, summer time
            order(datetime(2026, 3, 29, 21, 0, tzinfo=UTC), count=4),  # 00:00 on the 30th
        ],
        tz=KYIV,
    )
    request = requested(SPRING_DAY)
    await reports.start_task(store, request)
    generated = await reports.generate_report(store, events, request, tz=KYIV)
    assert (generated.orders, generated.total_products) == (2, 5)
    assert (
        store.tasks[request.task_id] | {"status": "succeeded", "rows": 2, "total_products": 5, "attempts": 1}
        == store.tasks[request.task_id]
    )
    [announced] = events.published(REPORT_GENERATED)
    assert (announced["task_id"], announced["orders"], announced["total_products"]) == (str(request.task_id), 2, 5)


async def test_an_order_of_a_reported_day_joins_its_report_and_a_redelivered_one_counts_once() -> None:
    store, events = InMemoryReportsStore(), RecordingOutbox()
    request = requested(SPRING_DAY)
    await reports.start_task(store, request)
    assert (await reports.generate_report(store, events, request, tz=KYIV)).orders == 0
    late = order(datetime(2026, 3, 29, 10, tzinfo=UTC), count=7)
    await reports.ingest_orders(store, [late, order(datetime(2026, 3, 30, 10, tzinfo=UTC))], tz=KYIV)
    await reports.ingest_orders(store, [late], tz=KYIV)
    assert store.rows[SPRING_DAY] == {late.data.order_id: 7}
    assert date(2026, 3, 30) not in store.rows, "a day not reported yet gets its rows when it is generated"


async def test_a_scheduled_task_the_service_has_not_seen_starts_running_and_counts_each_attempt() -> None:
    store = InMemoryReportsStore()
    request = ReportRequested(task_id=uuid.uuid4(), report_date=SPRING_DAY, requested_by="scheduler:daily")
    await reports.start_task(store, request)
    await reports.start_task(store, request)
    assert store.tasks[request.task_id] == {
        "report_date": SPRING_DAY,
        "requested_by": "scheduler:daily",
        "status": "running",
        "attempts": 2,
    }


async def test_a_task_that_gives_up_is_failed_and_announced_once() -> None:
    store, events = InMemoryReportsStore(), RecordingOutbox()
    request = requested(SPRING_DAY)
    await reports.start_task(store, request)
    await reports.record_failure(store, events, request, "disk full")
    await reports.record_failure(store, events, request, "disk full")
    assert store.tasks[request.task_id]["status"] == "failed"
    assert events.published(REPORT_FAILED) == [{"task_id": str(request.task_id), "report_date": "2026-03-29", "error": "disk full"}]


async def test_a_task_waiting_for_another_attempt_reads_retrying_with_the_attempt_and_when_the_next_is_due() -> None:
    store, events = InMemoryReportsStore(), RecordingOutbox()
    request = requested(SPRING_DAY)
    now = datetime(2026, 3, 29, 12, tzinfo=UTC)
    await reports.start_task(store, request)
    await reports.retry_later(store, request, "disk full", attempts=1, max_attempts=5, retry_in_s=2.5, now=now)
    task = store.tasks[request.task_id]
    assert (task["status"], task["error"]) == ("retrying", "attempt 1 of 5 failed: disk full")
    assert task["next_attempt_at"] == datetime(2026, 3, 29, 12, 0, 2, 500_000, tzinfo=UTC)
    await reports.start_task(store, request)
    assert (task["status"], task["attempts"], task.get("next_attempt_at")) == ("running", 2, None)
    await reports.generate_report(store, events, request, tz=KYIV)
    await reports.retry_later(store, request, "late", attempts=2, max_attempts=5, retry_in_s=1)
    assert task["status"] == "succeeded", "only a running task goes back to waiting"


NOON_APRIL = datetime(2026, 4, 10, 12, tzinfo=UTC)


async def test_a_backfill_requests_every_day_through_its_own_event_and_leaves_unfinished_days_alone() -> None:
    store, events = InMemoryReportsStore(), RecordingOutbox()
    running = requested(date(2026, 4, 2))
    await store.task_running(running)
    accepted = await reports.request_backfill(store, events, date(2026, 4, 1), date(2026, 4, 5), tz=KYIV, now=NOON_APRIL)
    assert sorted(accepted.requested) == [date(2026, 4, day) for day in (1, 3, 4, 5)]
    assert accepted.already_requested == {date(2026, 4, 2): running.task_id}
    sent = events.published(REPORT_BACKFILL_REQUESTED)
    assert [event["report_date"] for event in sent] == ["2026-04-01", "2026-04-03", "2026-04-04", "2026-04-05"]
    assert {event["backfill_id"] for event in sent} == {str(accepted.backfill_id)}
    assert events.published(REPORT_REQUESTED) == [], "a backfill never joins the queue of people's and schedules' requests"
    for day, task_id in accepted.requested.items():
        assert store.tasks[task_id] | {"attempts": 0} == {
            "report_date": day,
            "status": "scheduled",
            "requested_by": f"backfill:{accepted.backfill_id}",
            "attempts": 0,
            "backfill_id": accepted.backfill_id,
        }


@pytest.mark.parametrize(
    ("first", "last", "reason"),
    [
        (date(2026, 4, 5), date(2026, 4, 1), "must not be after"),
        (date(2025, 3, 31), date(2026, 4, 1), "at most 366 days"),
        (date(2026, 4, 1), date(2026, 4, 11), "2026-04-11 is in the future"),
    ],
)
async def test_a_backfill_out_of_bounds_is_refused_and_writes_nothing(first: date, last: date, reason: str) -> None:
    store, events = InMemoryReportsStore(), RecordingOutbox()
    with pytest.raises(InvalidRequest, match=reason):
        await reports.request_backfill(store, events, first, last, tz=KYIV, now=NOON_APRIL)
    assert store.tasks == {}
    assert events.rows == []


async def test_a_full_year_of_366_days_is_one_backfill() -> None:
    store, events = InMemoryReportsStore(), RecordingOutbox()
    accepted = await reports.request_backfill(store, events, date(2025, 4, 10), date(2026, 4, 10), tz=KYIV, now=NOON_APRIL)
    assert len(accepted.requested) == 366


def cancellation(request: ReportRequested) -> ReportCancelRequested:
    return ReportCancelRequested(
        task_id=request.task_id, report_date=request.report_date, requested_by=request.requested_by, reason="replaced by the 10:00 run"
    )


async def test_a_cancelled_task_is_not_run_and_a_cancellation_that_arrives_first_is_kept() -> None:
    store = InMemoryReportsStore()
    waiting = requested(date(2026, 4, 2))
    await store.add_task(waiting.task_id, waiting.report_date, requested_by="api")
    assert await reports.cancel_task(store, cancellation(waiting))
    assert not await reports.start_task(store, waiting), "the queued request of a cancelled task does nothing"
    assert store.tasks[waiting.task_id]["status"] == "cancelled"

    overtaken = requested(date(2026, 4, 3))  # the cancellation consumed before its request
    assert await reports.cancel_task(store, cancellation(overtaken))
    assert not await reports.start_task(store, overtaken)
    assert store.tasks[overtaken.task_id]["error"] == "replaced by the 10:00 run"


async def test_a_task_cancelled_while_it_ran_stays_cancelled_and_announces_nothing() -> None:
    store, events = InMemoryReportsStore(), RecordingOutbox()
    running = requested(date(2026, 4, 2))
    assert await reports.start_task(store, running)
    await reports.cancel_task(store, cancellation(running))
    await reports.generate_report(store, events, running, tz=KYIV)
    assert store.tasks[running.task_id]["status"] == "cancelled"
    assert events.published(REPORT_GENERATED) == []
    await reports.record_failure(store, events, running, "late failure")
    assert store.tasks[running.task_id]["status"] == "cancelled"
    assert events.published(REPORT_FAILED) == []


async def test_a_finished_task_is_not_cancelled() -> None:
    store, events = InMemoryReportsStore(), RecordingOutbox()
    done = requested(date(2026, 4, 2))
    await reports.start_task(store, done)
    await reports.generate_report(store, events, done, tz=KYIV)
    assert not await reports.cancel_task(store, cancellation(done))
    assert store.tasks[done.task_id]["status"] == "succeeded"
