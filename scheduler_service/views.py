"""What the schedules API lists: schedules and a schedule's runs, queries straight on the session."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from scheduler_service.models import schedule_runs, schedules
from scheduler_service.schedules import run_out, schedule_out
from scheduler_service.schemas import FiredTask, RunPage, ScheduleOut
from scheduler_service.store import RUN_COLUMNS, Run, Schedule
from shared.db import count_up_to
from shared.domain_errors import NotFound


async def list_schedules(session: AsyncSession) -> list[ScheduleOut]:
    return [schedule_out(Schedule(**row._mapping)) for row in await session.execute(select(schedules).order_by(schedules.c.name))]


async def runs(session: AsyncSession, name: str, *, page: int, count: int, count_limit: int) -> RunPage:
    """Newest first; ``total`` counts the schedule's runs up to ``count_limit`` (a schedule
    firing every minute records over half a million runs a year)."""
    schedule_id = await session.scalar(select(schedules.c.id).where(schedules.c.name == name))
    if schedule_id is None:
        raise NotFound(f"schedule {name!r} not found")
    where = schedule_runs.c.schedule_id == schedule_id
    total, exact = await count_up_to(session, schedule_runs, [where], count_limit)
    rows = await session.execute(
        select(*RUN_COLUMNS).where(where).order_by(schedule_runs.c.scheduled_for.desc()).limit(count).offset((page - 1) * count)
    )
    return RunPage(items=[run_out(Run(**row._mapping)) for row in rows], total=total, total_exact=exact, page=page, count=count)


async def fired_task(session: AsyncSession, task_id: uuid.UUID) -> FiredTask:
    """The run that fired ``task_id``, for the reports service to answer a task it has not consumed yet."""
    row = (
        await session.execute(
            select(schedules.c.name, schedule_runs.c.scheduled_for, schedule_runs.c.task_report_date)
            .add_columns(schedule_runs.c.task_status, schedule_runs.c.recorded_at)
            .join(schedules, schedules.c.id == schedule_runs.c.schedule_id)
            .where(schedule_runs.c.task_id == task_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"no schedule fired task {task_id}")
    name, scheduled_for, report_date, status, recorded_at = row
    return FiredTask(
        task_id=str(task_id),
        schedule=name,
        scheduled_for=scheduled_for,
        report_date=report_date,
        task_status=status,
        recorded_at=recorded_at,
    )
