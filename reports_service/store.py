"""The reports database as the use cases write to it: one ``ReportsStore`` per unit of work.

Concurrency rules, enforced with transaction-scoped advisory locks keyed by day:
generation takes the day's lock exclusively (two generations of one day never overlap;
different days run in parallel), ingestion takes the locks of its days shared. So an
order stored while its day is being generated waits for the generation to commit and
then joins the report itself: a report is never silently incomplete.

The work is set-based SQL (a day of a million orders is one statement), so the store
speaks in days, facts and tasks; the use cases in ``reports.py`` decide what they mean.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from reports_service.models import UNFINISHED, report_tasks, reports
from shared.contracts.orders import OrderCancelled, OrderCreated
from shared.contracts.reports import ReportCancelRequested, ReportRequested


@dataclass(frozen=True, slots=True)
class DaySummary:
    """What this service holds of one local day: its facts, and its report if it has one."""

    facts: int = 0
    fact_products: int = 0
    reported_orders: int = 0
    reported_products: int = 0
    generated_at: datetime | None = None


class ReportsStore(Protocol):
    async def add_facts(self, facts: Sequence[OrderCreated], *, tz: str) -> None:
        """Store order facts once each; those of an already reported day join its report."""

    async def cancel_facts(self, cancellations: Sequence[OrderCancelled], *, tz: str) -> None:
        """Mark each order's fact cancelled (stored as a tombstone if it is not there yet) and take the
        order out of its day's report, if that day has one."""

    async def add_task(self, task_id: uuid.UUID, report_date: date, *, requested_by: str) -> None:
        """A task ``scheduled`` for the consumer to run."""

    async def add_backfill(self, backfill_id: uuid.UUID, tasks: Sequence[tuple[uuid.UUID, date]]) -> None:
        """Tasks ``scheduled`` for a backfill, one per (task id, day)."""

    async def unfinished_tasks(self, first: date, last: date) -> dict[date, uuid.UUID]:
        """The days between ``first`` and ``last`` with a task still to finish, and that task;
        serialises the callers that go on to request days (one backfill decides at a time)."""

    async def day_summaries(self, first: date, last: date, *, tz: str) -> dict[date, DaySummary]:
        """Each day from ``first`` to ``last`` with facts or a report (local days of ``tz``)."""

    async def task_running(self, request: ReportRequested) -> bool:
        """The task is ``running`` (created if its id is new) with one more attempt; False (nothing
        changed) for a task cancelled before it could run."""

    async def task_cancelled(self, request: ReportCancelRequested) -> bool:
        """An unfinished task (or one not seen yet) is ``cancelled`` with the reason; False if it had finished."""

    async def build_day(self, report_date: date, *, tz: str) -> tuple[int, int]:
        """The day's rows exactly the facts of that local day; answers (orders, products)."""

    async def task_succeeded(self, task_id: uuid.UUID, *, orders: int, products: int) -> bool:
        """``succeeded`` with the totals; False for a task cancelled meanwhile, which stays so."""

    async def task_failed(self, task_id: uuid.UUID, error: str) -> bool:
        """``failed`` with the error; False if it had failed already."""

    async def task_retrying(self, task_id: uuid.UUID, reason: str, *, next_attempt_at: datetime) -> None:
        """A ``running`` task is ``retrying``, with why and when, while it waits for its next attempt."""


DAY_LOCK_CLASS = 7001  # advisory lock namespace: (DAY_LOCK_CLASS, days since 1970-01-01)
BACKFILL_LOCK = (7002, 0)  # one backfill request decides which days to ask for at a time

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

# A cancellation keeps the order's fact as a tombstone (inserted when order.created has not come
# yet: the late one then conflicts with it) and takes the order out of its day's report, so the
# report is what a fresh generation of the day would build. Both writers meet on the fact's
# primary key, so a cancellation and its order.created in flight together never both miss.
CANCEL_FACTS = text(
    """
    WITH tombstoned AS (
        INSERT INTO order_facts (order_id, created_at, count_product, total_amount, cancelled_at)
        SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:created AS timestamptz[]),
                             CAST(:counts AS int[]), CAST(:totals AS numeric[]), CAST(:cancelled AS timestamptz[]))
        ON CONFLICT (order_id) DO UPDATE SET cancelled_at = coalesce(order_facts.cancelled_at, EXCLUDED.cancelled_at)
        RETURNING order_id, created_at
    )
    DELETE FROM reports AS row USING tombstoned
    WHERE row.report_at = (tombstoned.created_at AT TIME ZONE :tz)::date AND row.order_id = tombstoned.order_id
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
    SELECT CAST(:day AS date), order_id, count_product FROM order_facts WHERE {DAY_WINDOW} AND cancelled_at IS NULL
    ON CONFLICT (report_at, order_id) DO UPDATE SET count_product = EXCLUDED.count_product
    WHERE reports.count_product IS DISTINCT FROM EXCLUDED.count_product
    """
)

# Rows of orders that no longer belong to the day (REPORTS_TIMEZONE changed, or cancelled): the report is
# exact. An anti-join on the facts' primary key; NOT IN over a large day degrades to a scan per row.
PRUNE_DAY = text(
    """
    DELETE FROM reports WHERE report_at = CAST(:day AS date) AND NOT EXISTS (
        SELECT 1 FROM order_facts AS fact
        WHERE fact.order_id = reports.order_id AND fact.cancelled_at IS NULL
          AND fact.created_at >= (CAST(:day AS date)::timestamp AT TIME ZONE :tz)
          AND fact.created_at < ((CAST(:day AS date) + 1)::timestamp AT TIME ZONE :tz)
    )
    """
)

DAY_HAS_ROWS = text("SELECT EXISTS (SELECT 1 FROM reports WHERE report_at = CAST(:day AS date))")

MARK_RUNNING = text(
    """
    INSERT INTO report_tasks (id, report_date, status, requested_by, scheduled_for, attempts, started_at)
    VALUES (:id, :day, 'running', :requested_by, :scheduled_for, 1, clock_timestamp())
    ON CONFLICT (id) DO UPDATE SET status = 'running', attempts = report_tasks.attempts + 1, started_at = clock_timestamp(),
        next_attempt_at = NULL
    WHERE report_tasks.status <> 'cancelled'
    RETURNING id
    """
)

# a cancellation seen before its request leaves the task behind as a tombstone: the request then does nothing
MARK_CANCELLED = text(
    """
    INSERT INTO report_tasks (id, report_date, status, requested_by, error, finished_at)
    VALUES (:id, :day, 'cancelled', :requested_by, :reason, clock_timestamp())
    ON CONFLICT (id) DO UPDATE SET status = 'cancelled', error = EXCLUDED.error, finished_at = EXCLUDED.finished_at,
        next_attempt_at = NULL
    WHERE report_tasks.status IN ('scheduled', 'running', 'retrying')
    RETURNING id
    """
)

DAY_FACTS = text(
    """
    SELECT (created_at AT TIME ZONE :tz)::date AS day, count(*) AS facts, coalesce(sum(count_product), 0) AS products
    FROM order_facts
    WHERE cancelled_at IS NULL AND created_at >= (CAST(:first AS date)::timestamp AT TIME ZONE :tz)
      AND created_at < ((CAST(:last AS date) + 1)::timestamp AT TIME ZONE :tz)
    GROUP BY 1
    """
)

DAY_REPORTS = text(
    """
    SELECT reported.report_at AS day, reported.generated_at, count(row.id) AS orders, coalesce(sum(row.count_product), 0) AS products
    FROM reported_days AS reported LEFT JOIN reports AS row ON row.report_at = reported.report_at
    WHERE reported.report_at BETWEEN CAST(:first AS date) AND CAST(:last AS date)
    GROUP BY reported.report_at, reported.generated_at
    """
)

MARK_DAY_REPORTED = text(
    """
    INSERT INTO reported_days (report_at, generated_at) VALUES (CAST(:day AS date), now())
    ON CONFLICT (report_at) DO UPDATE SET generated_at = EXCLUDED.generated_at
    """
)


class SqlReportsStore:
    """``ReportsStore`` on the caller's session: every write joins its transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def _lock_days_shared(self, created: list[datetime], tz: str) -> None:
        """The shared locks of the local days of ``created``: a generation of one of them waits, or is waited for."""
        await self._session.execute(LOCK_DAYS_SHARED, {"lock_class": DAY_LOCK_CLASS, "tz": tz, "created": created})

    async def add_facts(self, facts: Sequence[OrderCreated], *, tz: str) -> None:
        created = [fact.created_at for fact in facts]
        await self._lock_days_shared(created, tz)
        await self._session.execute(
            INGEST_FACTS,
            {
                "ids": [fact.order_id for fact in facts],
                "created": created,
                "counts": [fact.count_product for fact in facts],
                "totals": [fact.total_amount for fact in facts],
                "tz": tz,
            },
        )

    async def cancel_facts(self, cancellations: Sequence[OrderCancelled], *, tz: str) -> None:
        unique = list({cancellation.order_id: cancellation for cancellation in cancellations}.values())
        created = [cancellation.created_at for cancellation in unique]
        await self._lock_days_shared(created, tz)
        await self._session.execute(
            CANCEL_FACTS,
            {
                "ids": [cancellation.order_id for cancellation in unique],
                "created": created,
                "counts": [cancellation.count_product for cancellation in unique],
                "totals": [cancellation.total_amount for cancellation in unique],
                "cancelled": [cancellation.cancelled_at for cancellation in unique],
                "tz": tz,
            },
        )

    async def add_task(self, task_id: uuid.UUID, report_date: date, *, requested_by: str) -> None:
        await self._session.execute(
            insert(report_tasks).values(id=task_id, report_date=report_date, status="scheduled", requested_by=requested_by)
        )

    async def add_backfill(self, backfill_id: uuid.UUID, tasks: Sequence[tuple[uuid.UUID, date]]) -> None:
        requested_by = f"backfill:{backfill_id}"
        rows = [
            {"id": task_id, "report_date": day, "status": "scheduled", "requested_by": requested_by, "backfill_id": backfill_id}
            for task_id, day in tasks
        ]
        if rows:
            await self._session.execute(insert(report_tasks), rows)

    async def unfinished_tasks(self, first: date, last: date) -> dict[date, uuid.UUID]:
        await self._session.execute(select(func.pg_advisory_xact_lock(*BACKFILL_LOCK)))
        result = await self._session.execute(
            select(report_tasks.c.report_date, report_tasks.c.id)
            .where(report_tasks.c.report_date.between(first, last), report_tasks.c.status.in_(UNFINISHED))
            .order_by(report_tasks.c.created_at)
        )
        return {day: task_id for day, task_id in result}

    async def day_summaries(self, first: date, last: date, *, tz: str) -> dict[date, DaySummary]:
        found: dict[date, dict[str, Any]] = {}
        for row in await self._session.execute(DAY_FACTS, {"first": first, "last": last, "tz": tz}):
            found.setdefault(row.day, {}).update(facts=int(row.facts), fact_products=int(row.products))
        for row in await self._session.execute(DAY_REPORTS, {"first": first, "last": last}):
            found.setdefault(row.day, {}).update(
                reported_orders=int(row.orders), reported_products=int(row.products), generated_at=row.generated_at
            )
        return {day: DaySummary(**values) for day, values in found.items()}

    async def task_running(self, request: ReportRequested) -> bool:
        # clock_timestamp(): now() is the start of the transaction, which may have begun long before
        started = await self._session.execute(
            MARK_RUNNING,
            {
                "id": request.task_id,
                "day": request.report_date,
                "requested_by": request.requested_by,
                "scheduled_for": request.scheduled_for,
            },
        )
        return started.first() is not None

    async def task_cancelled(self, request: ReportCancelRequested) -> bool:
        cancelled = await self._session.execute(
            MARK_CANCELLED,
            {"id": request.task_id, "day": request.report_date, "requested_by": request.requested_by, "reason": request.reason},
        )
        return cancelled.first() is not None

    async def build_day(self, report_date: date, *, tz: str) -> tuple[int, int]:
        day = {"day": report_date, "tz": tz}
        await self._session.execute(LOCK_DAY, {"lock_class": DAY_LOCK_CLASS, "day": report_date})
        regenerating = bool(await self._session.scalar(DAY_HAS_ROWS, {"day": report_date}))
        await self._session.execute(BUILD_DAY, day)
        if regenerating:  # only a day built before can hold rows that no longer belong to it
            await self._session.execute(PRUNE_DAY, day)
        await self._session.execute(MARK_DAY_REPORTED, {"day": report_date})
        orders, products = (
            await self._session.execute(
                select(func.count(), func.coalesce(func.sum(reports.c.count_product), 0)).where(reports.c.report_at == report_date)
            )
        ).one()
        return int(orders), int(products)

    async def task_succeeded(self, task_id: uuid.UUID, *, orders: int, products: int) -> bool:
        changed = await self._session.execute(
            update(report_tasks)
            .where(report_tasks.c.id == task_id, report_tasks.c.status != "cancelled")
            .values(status="succeeded", rows=orders, total_products=products, error=None, finished_at=func.clock_timestamp())
            .returning(report_tasks.c.id)
        )
        return changed.first() is not None

    async def task_retrying(self, task_id: uuid.UUID, reason: str, *, next_attempt_at: datetime) -> None:
        await self._session.execute(
            update(report_tasks)
            .where(report_tasks.c.id == task_id, report_tasks.c.status == "running")
            .values(status="retrying", error=reason, next_attempt_at=next_attempt_at)
        )

    async def task_failed(self, task_id: uuid.UUID, error: str) -> bool:
        changed = await self._session.execute(
            update(report_tasks)
            .where(report_tasks.c.id == task_id, report_tasks.c.status.not_in(("failed", "cancelled")))
            .values(status="failed", error=error, finished_at=func.clock_timestamp())
            .returning(report_tasks.c.id)
        )
        return changed.first() is not None
