"""The scheduler database as the schedules API writes to it; every change wakes the tickers.

``transaction()`` is the unit of work of one API call: what a use case writes inside it,
outbox rows included, commits together or not at all.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from scheduler_service.models import schedule_runs, schedules
from scheduler_service.ticker import CHANGED_CHANNEL
from shared.domain_errors import Conflict


@dataclass(frozen=True, slots=True)
class Schedule:
    id: uuid.UUID
    name: str
    cron: str
    timezone: str
    routing_key: str
    payload: dict[str, Any]
    enabled: bool
    catch_up: str
    lookback_s: int
    concurrency: str
    next_fire_at: datetime | None
    failures: int
    last_error: str | None
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Run:
    scheduled_for: datetime
    status: str
    reason: str | None
    event_id: uuid.UUID | None
    recorded_at: datetime
    task_id: uuid.UUID | None = None
    task_status: str | None = None


class SchedulesStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[None]: ...

    async def count_for_creation(self) -> int:
        """How many schedules there are, held so that two creations cannot both pass a limit."""

    async def add(self, values: dict[str, Any]) -> Schedule:
        """The new schedule; ``Conflict`` when its name is taken."""

    async def find(self, name: str, *, for_update: bool = False) -> Schedule | None: ...

    async def change(self, schedule_id: uuid.UUID, changes: dict[str, Any]) -> Schedule: ...

    async def remove(self, schedule_id: uuid.UUID) -> None: ...

    async def add_run(
        self,
        schedule_id: uuid.UUID,
        scheduled_for: datetime,
        status: str,
        event_id: uuid.UUID,
        reason: str,
        task: tuple[uuid.UUID, date | None] | None,
    ) -> Run: ...


NOTIFY_CHANGED = text(f"SELECT pg_notify('{CHANGED_CHANNEL}', '')")
# creations take this lock, so two of them at once cannot both pass the count limit
CREATE_LOCK = text("SELECT pg_advisory_xact_lock(7003, 0)")


RUN_COLUMNS = (
    schedule_runs.c.scheduled_for,
    schedule_runs.c.status,
    schedule_runs.c.reason,
    schedule_runs.c.event_id,
    schedule_runs.c.recorded_at,
    schedule_runs.c.task_id,
    schedule_runs.c.task_status,
)


class SqlSchedulesStore:
    """``SchedulesStore`` on one session; ``transaction()`` is its ``begin()``."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        async with self._session.begin():
            yield

    async def count_for_creation(self) -> int:
        await self._session.execute(CREATE_LOCK)
        return int(await self._session.scalar(select(func.count()).select_from(schedules)) or 0)

    async def add(self, values: dict[str, Any]) -> Schedule:
        try:  # the unit of work rolls back on the way out
            row = (await self._session.execute(insert(schedules).values(values).returning(*schedules.c))).one()
        except IntegrityError as exc:
            raise Conflict(f"a schedule named {values['name']!r} exists already", code="schedule_exists") from exc
        await self._session.execute(NOTIFY_CHANGED)
        return Schedule(**row._mapping)

    async def find(self, name: str, *, for_update: bool = False) -> Schedule | None:
        query = select(schedules).where(schedules.c.name == name)
        row = (await self._session.execute(query.with_for_update() if for_update else query)).first()
        return None if row is None else Schedule(**row._mapping)

    async def change(self, schedule_id: uuid.UUID, changes: dict[str, Any]) -> Schedule:
        row = (
            await self._session.execute(
                update(schedules).where(schedules.c.id == schedule_id).values(**changes, updated_at=func.now()).returning(*schedules.c)
            )
        ).one()
        await self._session.execute(NOTIFY_CHANGED)
        return Schedule(**row._mapping)

    async def remove(self, schedule_id: uuid.UUID) -> None:
        await self._session.execute(delete(schedules).where(schedules.c.id == schedule_id))
        await self._session.execute(NOTIFY_CHANGED)

    async def add_run(
        self,
        schedule_id: uuid.UUID,
        scheduled_for: datetime,
        status: str,
        event_id: uuid.UUID,
        reason: str,
        task: tuple[uuid.UUID, date | None] | None,
    ) -> Run:
        row = (
            await self._session.execute(
                insert(schedule_runs)
                .values(
                    schedule_id=schedule_id,
                    scheduled_for=scheduled_for,
                    status=status,
                    event_id=event_id,
                    reason=reason,
                    task_id=task[0] if task else None,
                    task_report_date=task[1] if task else None,
                )
                .returning(*RUN_COLUMNS)
            )
        ).one()
        return Run(**row._mapping)
