"""Use cases of the reports service: ingest order facts, request, generate and read reports.

Concurrency rules, enforced with transaction-scoped advisory locks keyed by day:
generation takes the day's lock exclusively (two generations of one day never overlap;
different days run in parallel), ingestion takes the locks of its days shared. So an
order stored while its day is being generated waits for the generation to commit and
then joins the report itself: a report is never silently incomplete.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from reports_service.models import report_tasks, reports
from reports_service.schemas import DayTotals, ReportRow, ReportTask
from shared.contracts.orders import OrderCreated
from shared.contracts.reports import ReportFailed, ReportGenerated, ReportRequested
from shared.db import SessionFactory, count_up_to
from shared.domain_errors import InvalidRequest
from shared.messaging.envelope import Envelope
from shared.messaging.outbox import Outbox, new_event
from shared.messaging.topology import REPORT_FAILED, REPORT_GENERATED, REPORT_REQUESTED

SOURCE = "reports_service"
DAY_LOCK_CLASS = 7001  # advisory lock namespace: (DAY_LOCK_CLASS, days since 1970-01-01)

LOCK_DAYS_SHARED = text(
    """
    SELECT pg_advisory_xact_lock_shared(:lock_class, day) FROM (
        SELECT DISTINCT (created_at AT TIME ZONE :tz)::date - DATE '1970-01-01' AS day
        FROM unnest(CAST(:created AS timestamptz[])) AS incoming(created_at)
        ORDER BY 1
    ) AS days
    """
)

INGEST_FACTS = text(
    """
    WITH inserted AS (
        INSERT INTO order_facts (order_id, created_at, count_product, total_amount)
        SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:created AS timestamptz[]),
                             CAST(:counts AS int[]), CAST(:totals AS numeric[]))
        ON CONFLICT (order_id) DO NOTHING
        RETURNING order_id, created_at, count_product
    )
    INSERT INTO reports (report_at, order_id, count_product)
    SELECT reported.report_at, inserted.order_id, inserted.count_product
    FROM inserted JOIN reported_days AS reported
      ON reported.report_at = (inserted.created_at AT TIME ZONE :tz)::date
    ON CONFLICT (report_at, order_id) DO UPDATE SET count_product = EXCLUDED.count_product
    """
)

LOCK_DAY = text("SELECT pg_advisory_xact_lock(:lock_class, CAST(:day AS date) - DATE '1970-01-01')")

# The day runs from local midnight to the next local midnight (23 or 25 hours on DST days).
DAY_WINDOW = """
    created_at >= (CAST(:day AS date)::timestamp AT TIME ZONE :tz)
    AND created_at < ((CAST(:day AS date) + 1)::timestamp AT TIME ZONE :tz)
"""

BUILD_DAY = text(
    f"""
    INSERT INTO reports (report_at, order_id, count_product)
    SELECT CAST(:day AS date), order_id, count_product FROM order_facts WHERE {DAY_WINDOW}
    ON CONFLICT (report_at, order_id) DO UPDATE SET count_product = EXCLUDED.count_product
    WHERE reports.count_product IS DISTINCT FROM EXCLUDED.count_product
    """
)

# Rows of orders that no longer belong to the day (REPORTS_TIMEZONE changed): the report is
# exact. An anti-join on the facts' primary key; NOT IN over a large day degrades to a scan per row.
PRUNE_DAY = text(
    """
    DELETE FROM reports WHERE report_at = CAST(:day AS date) AND NOT EXISTS (
        SELECT 1 FROM order_facts AS fact
        WHERE fact.order_id = reports.order_id
          AND fact.created_at >= (CAST(:day AS date)::timestamp AT TIME ZONE :tz)
          AND fact.created_at < ((CAST(:day AS date) + 1)::timestamp AT TIME ZONE :tz)
    )
    """
)

DAY_HAS_ROWS = text("SELECT EXISTS (SELECT 1 FROM reports WHERE report_at = CAST(:day AS date))")

MARK_DAY_REPORTED = text(
    """
    INSERT INTO reported_days (report_at, generated_at) VALUES (CAST(:day AS date), now())
    ON CONFLICT (report_at) DO UPDATE SET generated_at = EXCLUDED.generated_at
    """
)


def local_today(tz: str, now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(ZoneInfo(tz)).date()


# ingestion -------------------------------------------------------------------------


async def ingest_orders(events: Sequence[Envelope[Any]], session: AsyncSession, *, tz: str) -> None:
    """Store a batch of ``order.created`` facts; orders of already reported days join their report."""
    facts: list[OrderCreated] = [event.data for event in events]
    created = [fact.created_at for fact in facts]
    await session.execute(LOCK_DAYS_SHARED, {"lock_class": DAY_LOCK_CLASS, "tz": tz, "created": created})
    await session.execute(
        INGEST_FACTS,
        {
            "ids": [fact.order_id for fact in facts],
            "created": created,
            "counts": [fact.count_product for fact in facts],
            "totals": [fact.total_amount for fact in facts],
            "tz": tz,
        },
    )


# requesting and generating -----------------------------------------------------------


async def request_report(session: AsyncSession, outbox: Outbox, report_date: date, *, tz: str, now: datetime | None = None) -> uuid.UUID:
    """Record a ``scheduled`` task and its ``report.requested`` event in one transaction."""
    today = local_today(tz, now)
    if report_date > today:
        raise InvalidRequest(f"report_date: {report_date} is in the future (today is {today} in {tz})")
    task_id = uuid.uuid4()
    async with session.begin():
        await session.execute(insert(report_tasks).values(id=task_id, report_date=report_date, status="scheduled", requested_by="api"))
        requested = ReportRequested(task_id=task_id, report_date=report_date, requested_by="api")
        await outbox.add(session, new_event(REPORT_REQUESTED, SOURCE, requested))
    return task_id


async def mark_running(session_factory: SessionFactory, request: ReportRequested) -> None:
    """Committed on its own, before the work, so readers see ``running`` while it lasts.

    Task times use ``clock_timestamp()``: ``now()`` is the start of the transaction, and
    the generation's transaction starts before this one.

    A task id not seen before (the scheduler makes its own) is created here.
    """
    statement = text(
        """
        INSERT INTO report_tasks (id, report_date, status, requested_by, scheduled_for, attempts, started_at)
        VALUES (:id, :day, 'running', :requested_by, :scheduled_for, 1, clock_timestamp())
        ON CONFLICT (id) DO UPDATE SET status = 'running', attempts = report_tasks.attempts + 1, started_at = clock_timestamp()
        """
    )
    async with session_factory() as session, session.begin():
        await session.execute(
            statement,
            {
                "id": request.task_id,
                "day": request.report_date,
                "requested_by": request.requested_by,
                "scheduled_for": request.scheduled_for,
            },
        )


async def generate_report(session: AsyncSession, outbox: Outbox, request: ReportRequested, *, tz: str) -> ReportGenerated:
    """Build the day's rows set-based, mark the task succeeded and publish ``report.generated``."""
    day = {"day": request.report_date, "tz": tz}
    await session.execute(LOCK_DAY, {"lock_class": DAY_LOCK_CLASS, "day": request.report_date})
    regenerating = bool(await session.scalar(DAY_HAS_ROWS, {"day": request.report_date}))
    await session.execute(BUILD_DAY, day)
    if regenerating:  # only a day built before can hold rows that no longer belong to it
        await session.execute(PRUNE_DAY, day)
    await session.execute(MARK_DAY_REPORTED, {"day": request.report_date})
    totals = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(reports.c.count_product), 0)).where(reports.c.report_at == request.report_date)
        )
    ).one()
    generated = ReportGenerated(
        task_id=request.task_id, report_date=request.report_date, orders=totals[0], total_products=totals[1], generated_at=datetime.now(UTC)
    )
    await session.execute(
        update(report_tasks)
        .where(report_tasks.c.id == request.task_id)
        .values(
            status="succeeded",
            rows=generated.orders,
            total_products=generated.total_products,
            error=None,
            finished_at=func.clock_timestamp(),
        )
    )
    await outbox.add(session, new_event(REPORT_GENERATED, SOURCE, generated))
    return generated


async def record_failure(session: AsyncSession, outbox: Outbox, request: ReportRequested, error: str) -> None:
    """The retries are exhausted: ``failed`` with the error, and ``report.failed`` once."""
    changed = await session.execute(
        update(report_tasks)
        .where(report_tasks.c.id == request.task_id, report_tasks.c.status != "failed")
        .values(status="failed", error=error, finished_at=func.clock_timestamp())
        .returning(report_tasks.c.id)
    )
    if changed.first() is not None:
        failed = ReportFailed(task_id=request.task_id, report_date=request.report_date, error=error)
        await outbox.add(session, new_event(REPORT_FAILED, SOURCE, failed))


# reading -----------------------------------------------------------------------------


def _row(row: Any) -> ReportRow:
    return ReportRow(id=row.id, report_at=row.report_at, order_id=row.order_id, count_product=row.count_product)


async def day_rows(session: AsyncSession, report_date: date, *, after: uuid.UUID | None = None, limit: int) -> list[ReportRow]:
    """A day's rows by order id, from past ``after``: a keyset page, as cheap at the end of a day as at its start."""
    conditions = [reports.c.report_at == report_date]
    if after is not None:
        conditions.append(reports.c.order_id > after)
    result = await session.execute(select(reports).where(*conditions).order_by(reports.c.order_id).limit(limit))
    return [_row(row) for row in result]


async def all_rows(session: AsyncSession, *, page: int, count: int, count_limit: int) -> tuple[list[ReportRow], int, bool]:
    """Newest day first, with the rows counted up to ``count_limit``: (rows, total, exact)."""
    total, exact = await count_up_to(session, reports, [], count_limit)
    result = await session.execute(
        select(reports).order_by(reports.c.report_at.desc(), reports.c.order_id).limit(count).offset((page - 1) * count)
    )
    return [_row(row) for row in result], total, exact


async def get_task(session: AsyncSession, task_id: uuid.UUID) -> ReportTask | None:
    row = (await session.execute(select(report_tasks).where(report_tasks.c.id == task_id))).first()
    return None if row is None else _task(row)


async def list_tasks(
    session: AsyncSession,
    *,
    requested_by: str | None,
    status: str | None,
    report_date: date | None,
    page: int,
    count: int,
    count_limit: int,
) -> tuple[list[ReportTask], int, bool]:
    """Newest first, counted up to ``count_limit``: (tasks, total, exact); how a caller finds
    what a schedule (``requested_by=scheduler:<name>``) produced."""
    conditions = []
    if requested_by is not None:
        conditions.append(report_tasks.c.requested_by == requested_by)
    if status is not None:
        conditions.append(report_tasks.c.status == status)
    if report_date is not None:
        conditions.append(report_tasks.c.report_date == report_date)
    total, exact = await count_up_to(session, report_tasks, conditions, count_limit)
    rows = await session.execute(
        select(report_tasks)
        .where(*conditions)
        .order_by(report_tasks.c.created_at.desc(), report_tasks.c.id)
        .limit(count)
        .offset((page - 1) * count)
    )
    return [_task(row) for row in rows], total, exact


def _task(row: Any) -> ReportTask:
    return ReportTask(
        task_id=row.id,
        report_date=row.report_date,
        status=row.status,
        requested_by=row.requested_by,
        scheduled_for=row.scheduled_for,
        attempts=row.attempts,
        rows=row.rows,
        total_products=row.total_products,
        error=row.error,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


async def day_totals(session: AsyncSession, first: date, last: date) -> list[DayTotals]:
    result = await session.execute(
        select(reports.c.report_at, func.count(), func.sum(reports.c.count_product))
        .where(reports.c.report_at >= first, reports.c.report_at <= last)
        .group_by(reports.c.report_at)
        .order_by(reports.c.report_at)
    )
    return [DayTotals(report_at=day, orders=orders, products=products) for day, orders, products in result]
