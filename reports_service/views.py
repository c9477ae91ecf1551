"""What the reports service answers: the read side, queries straight on the session."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from reports_service.models import UNFINISHED, report_tasks, reports
from reports_service.peers import FiredTask
from reports_service.schemas import BackfillProgress, DayTotals, ReportRow, ReportTask
from shared.db import count_up_to, equal_to, newest_first


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


class FiredTasks(Protocol):
    async def fired_task(self, task_id: uuid.UUID) -> FiredTask | None:
        """The task as the schedule run that fired it recorded it; None when no schedule fired it."""


async def task_seen_anywhere(session: AsyncSession, fired: FiredTasks | None, task_id: uuid.UUID) -> ReportTask | None:
    """A task of this service, or one a schedule fired whose request is still on its way here: ``scheduled``
    from the moment the fire committed, as the scheduler recorded it."""
    found = await get_task(session, task_id)
    if found is not None or fired is None:
        return found
    task = await fired.fired_task(task_id)
    if task is None:
        return None
    # the request may have arrived while the scheduler answered
    return await get_task(session, task_id) or ReportTask(
        task_id=task_id,
        report_date=task.report_date,
        status=task.status or "scheduled",
        requested_by=f"scheduler:{task.schedule}",
        scheduled_for=task.scheduled_for,
        attempts=0,
        rows=None,
        total_products=None,
        error=None,
        created_at=task.fired_at,
        started_at=None,
        finished_at=None,
    )


async def list_tasks(
    session: AsyncSession,
    *,
    requested_by: str | None,
    status: str | None,
    report_date: date | None,
    backfill: uuid.UUID | None = None,
    page: int,
    count: int,
    count_limit: int,
) -> tuple[list[ReportTask], int, bool]:
    """Newest first, counted up to ``count_limit``: (tasks, total, exact); how a caller finds
    what a schedule (``requested_by=scheduler:<name>``) produced."""
    conditions = equal_to(
        (report_tasks.c.requested_by, requested_by),
        (report_tasks.c.status, status),
        (report_tasks.c.report_date, report_date),
        (report_tasks.c.backfill_id, backfill),
    )
    rows, total, exact = await newest_first(session, report_tasks, conditions, page=page, count=count, count_limit=count_limit)
    return [_task(row) for row in rows], total, exact


async def backfill_progress(session: AsyncSession, backfill_id: uuid.UUID) -> BackfillProgress | None:
    result = await session.execute(
        select(report_tasks.c.status, func.count()).where(report_tasks.c.backfill_id == backfill_id).group_by(report_tasks.c.status)
    )
    by_status: dict[str, int] = {status: int(count) for status, count in result}
    if not by_status:
        return None
    pending = sum(by_status.get(status, 0) for status in UNFINISHED)
    total = sum(by_status.values())
    return BackfillProgress(
        backfill_id=backfill_id,
        total=total,
        done=total - pending,
        succeeded=by_status.get("succeeded", 0),
        failed=by_status.get("failed", 0),
        cancelled=by_status.get("cancelled", 0),
        pending=pending,
    )


def _task(row: Any) -> ReportTask:
    return ReportTask.model_validate({**row._mapping, "task_id": row.id})


async def day_totals(session: AsyncSession, first: date, last: date) -> list[DayTotals]:
    result = await session.execute(
        select(reports.c.report_at, func.count(), func.sum(reports.c.count_product))
        .where(reports.c.report_at >= first, reports.c.report_at <= last)
        .group_by(reports.c.report_at)
        .order_by(reports.c.report_at)
    )
    return [DayTotals(report_at=day, orders=orders, products=products) for day, orders, products in result]
