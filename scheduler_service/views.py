"""What the schedules API lists: schedules and a schedule's runs, queries straight on the session."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from scheduler_service.models import schedule_runs, schedules
from scheduler_service.schedules import run_out, schedule_out
from scheduler_service.schemas import RunPage, ScheduleOut
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
