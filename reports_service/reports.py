"""Use cases of the reports service: ingest order facts (and take back cancelled ones), request, run and fail report tasks.

Each takes the store and the outbox of its unit of work (the consumer's transaction for an
event, the request's for HTTP), so the decisions here run the same on PostgreSQL and on the
in-memory fakes of the unit tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from reports_service.store import ReportsStore
from shared.contracts.orders import OrderCancelled, OrderCreated
from shared.contracts.reports import ReportBackfillRequested, ReportCancelRequested, ReportFailed, ReportGenerated, ReportRequested
from shared.domain_errors import InvalidRequest
from shared.messaging.envelope import Envelope
from shared.messaging.outbox import EventsOut, new_event
from shared.messaging.topology import REPORT_BACKFILL_REQUESTED, REPORT_FAILED, REPORT_GENERATED, REPORT_REQUESTED

SOURCE = "reports_service"


def local_today(tz: str, now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(ZoneInfo(tz)).date()


async def ingest_orders(store: ReportsStore, events: Sequence[Envelope[OrderCreated]], *, tz: str) -> None:
    """Store a batch of ``order.created`` facts; orders of already reported days join their report."""
    await store.add_facts([event.data for event in events], tz=tz)


async def cancel_orders(store: ReportsStore, events: Sequence[Envelope[OrderCancelled]], *, tz: str) -> None:
    """Compensate ``order.cancelled``: the orders leave their days' facts and reports, and an
    ``order.created`` of theirs that comes later adds nothing."""
    await store.cancel_facts([event.data for event in events], tz=tz)


async def request_report(store: ReportsStore, events: EventsOut, report_date: date, *, tz: str, now: datetime | None = None) -> uuid.UUID:
    """A ``scheduled`` task and its ``report.requested`` event; a day still to come is refused."""
    today = local_today(tz, now)
    if report_date > today:
        raise InvalidRequest(f"report_date: {report_date} is in the future (today is {today} in {tz})")
    task_id = uuid.uuid4()
    await store.add_task(task_id, report_date, requested_by="api")
    await events.add(new_event(REPORT_REQUESTED, SOURCE, ReportRequested(task_id=task_id, report_date=report_date, requested_by="api")))
    return task_id


MAX_BACKFILL_DAYS = 366


@dataclass(frozen=True, slots=True)
class Backfill:
    backfill_id: uuid.UUID
    requested: dict[date, uuid.UUID]  # the days this backfill asked for, and their tasks
    already_requested: dict[date, uuid.UUID]  # the days with a task still to finish, left to it


async def request_backfill(
    store: ReportsStore, events: EventsOut, first: date, last: date, *, tz: str, now: datetime | None = None
) -> Backfill:
    """Every day from ``first`` to ``last`` requested at once, through the backfill queue (behind
    every other request); a day whose task is still to finish is not requested again."""
    today = local_today(tz, now)
    if first > last:
        raise InvalidRequest(f"from ({first}) must not be after to ({last})")
    if (last - first).days >= MAX_BACKFILL_DAYS:
        raise InvalidRequest(f"at most {MAX_BACKFILL_DAYS} days at once; {first} to {last} is {(last - first).days + 1}")
    if last > today:
        raise InvalidRequest(f"to: {last} is in the future (today is {today} in {tz})")
    already = await store.unfinished_tasks(first, last)
    backfill_id = uuid.uuid4()
    days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
    requested = {day: uuid.uuid4() for day in days if day not in already}
    await store.add_backfill(backfill_id, [(task_id, day) for day, task_id in requested.items()])
    for day, task_id in requested.items():
        request = ReportBackfillRequested(task_id=task_id, report_date=day, requested_by=f"backfill:{backfill_id}", backfill_id=backfill_id)
        await events.add(new_event(REPORT_BACKFILL_REQUESTED, SOURCE, request))
    return Backfill(backfill_id, requested, already)


async def start_task(store: ReportsStore, request: ReportRequested) -> bool:
    """``running``, with its attempt counted; the reports consumer commits this in a unit of work of
    its own before the generation, so readers see the task running and a failed attempt still counts.
    False: the task was cancelled, and is not to run."""
    return await store.task_running(request)


async def cancel_task(store: ReportsStore, request: ReportCancelRequested) -> bool:
    """``cancelled``, unless it has finished; a cancellation that overtakes its request is kept, so the request does nothing."""
    return await store.task_cancelled(request)


async def generate_report(store: ReportsStore, events: EventsOut, request: ReportRequested, *, tz: str) -> ReportGenerated:
    """Build the day's rows, mark the task succeeded and emit ``report.generated`` with the totals
    (not for a task cancelled while it ran: the rows stand, as a fresh generation would build them)."""
    orders, products = await store.build_day(request.report_date, tz=tz)
    generated = ReportGenerated(
        task_id=request.task_id, report_date=request.report_date, orders=orders, total_products=products, generated_at=datetime.now(UTC)
    )
    if await store.task_succeeded(request.task_id, orders=orders, products=products):
        await events.add(new_event(REPORT_GENERATED, SOURCE, generated))
    return generated


async def retry_later(
    store: ReportsStore,
    request: ReportRequested,
    error: str,
    *,
    attempts: int,
    max_attempts: int,
    retry_in_s: float,
    now: datetime | None = None,
) -> None:
    """An attempt failed and another comes: the task reads ``retrying``, naming the attempt, why, and when the next is due."""
    next_attempt_at = (now or datetime.now(UTC)) + timedelta(seconds=retry_in_s)
    await store.task_retrying(request.task_id, f"attempt {attempts} of {max_attempts} failed: {error}", next_attempt_at=next_attempt_at)


async def record_failure(store: ReportsStore, events: EventsOut, request: ReportRequested, error: str) -> None:
    """The retries are exhausted: ``failed`` with the error, and ``report.failed`` once."""
    if await store.task_failed(request.task_id, error):
        await events.add(
            new_event(REPORT_FAILED, SOURCE, ReportFailed(task_id=request.task_id, report_date=request.report_date, error=error))
        )
