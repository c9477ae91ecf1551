"""``SchedulesStore`` in memory; a transaction that raises leaves the schedules as they were."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Any

from scheduler_service.store import Run, Schedule
from shared.domain_errors import Conflict


class InMemorySchedulesStore:
    def __init__(self, now: datetime | None = None) -> None:
        self.schedules: dict[str, Schedule] = {}
        self.runs: list[tuple[uuid.UUID, Run]] = []
        self.changes_announced = 0  # the NOTIFY that wakes the tickers
        self.now = now or datetime.now(UTC)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        before = (dict(self.schedules), list(self.runs), self.changes_announced)
        try:
            yield
        except BaseException:
            self.schedules, self.runs, self.changes_announced = dict(before[0]), list(before[1]), before[2]
            raise

    async def count_for_creation(self) -> int:
        return len(self.schedules)

    async def add(self, values: dict[str, Any]) -> Schedule:
        if values["name"] in self.schedules:
            raise Conflict(f"a schedule named {values['name']!r} exists already", code="schedule_exists")
        created = Schedule(**values, failures=0, last_error=None, disabled_reason=None, created_at=self.now, updated_at=self.now)
        self.schedules[created.name] = created
        self.changes_announced += 1
        return created

    async def find(self, name: str, *, for_update: bool = False) -> Schedule | None:
        return self.schedules.get(name)

    async def change(self, schedule_id: uuid.UUID, changes: dict[str, Any]) -> Schedule:
        [current] = [s for s in self.schedules.values() if s.id == schedule_id]
        changed = dataclasses.replace(current, **changes, updated_at=self.now)
        self.schedules[changed.name] = changed
        self.changes_announced += 1
        return changed

    async def remove(self, schedule_id: uuid.UUID) -> None:
        self.schedules = {name: s for name, s in self.schedules.items() if s.id != schedule_id}
        self.changes_announced += 1

    async def add_run(
        self,
        schedule_id: uuid.UUID,
        scheduled_for: datetime,
        status: str,
        event_id: uuid.UUID,
        reason: str,
        task: tuple[uuid.UUID, date | None] | None,
    ) -> Run:
        task_id = task[0] if task else None
        run = Run(scheduled_for=scheduled_for, status=status, reason=reason, event_id=event_id, recorded_at=self.now, task_id=task_id)
        self.runs.append((schedule_id, run))
        return run
