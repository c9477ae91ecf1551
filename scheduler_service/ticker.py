"""The scheduling loop: claim due instants, publish through the outbox, sleep until the next one.

Any number of tickers (replicas) may run. Each locks the due schedules it handles with
``FOR UPDATE SKIP LOCKED`` and claims every instant by inserting ``(schedule, instant)``
into ``schedule_runs`` under a unique key, in the same transaction as the outbox row; the
loser of any race inserts nothing and publishes nothing. There is no leader and no lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from scheduler_service import cron
from scheduler_service.commands import build_event, cancel_event, report_date_of, task_of
from scheduler_service.firing import decide
from scheduler_service.models import schedule_runs, schedules
from shared import metrics
from shared.db import SessionFactory, listen_forever
from shared.db_gate import DatabaseGate
from shared.messaging.outbox import Outbox
from shared.messaging.topology import REPORT_CANCEL_REQUESTED

log = logging.getLogger(__name__)

CHANGED_CHANNEL = "schedules_changed"
# the tasks a `replace` fire cancelled: their runs say so at once (report.failed / .generated may never come)
MARK_CANCELLED = text(
    "UPDATE schedule_runs SET task_status = 'cancelled', task_finished_at = now() "
    "WHERE task_id = ANY(CAST(:ids AS uuid[])) AND task_status IS NULL"
)


@dataclass(slots=True)
class Fire:
    """What one fired instant publishes, once its transaction claims it: the cancellations it makes, then its command."""

    events: list[tuple[Any, str]] = field(default_factory=list)
    cancels: list[Any] = field(default_factory=list)


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def _run(
    schedule_id: Any,
    scheduled_for: datetime,
    status: str,
    *,
    reason: str | None = None,
    event_id: Any = None,
    task_id: Any = None,
    task_report_date: Any = None,
) -> dict[str, Any]:
    """A ``schedule_runs`` row; every row of one insert has the same columns."""
    return {
        "schedule_id": schedule_id,
        "scheduled_for": scheduled_for,
        "status": status,
        "event_id": event_id,
        "task_id": task_id,
        "task_report_date": task_report_date,
        "reason": reason,
    }


class Ticker:
    def __init__(
        self,
        session_factory: SessionFactory,
        outbox: Outbox,
        *,
        clock: Clock | None = None,
        listen_dsn: str | None = None,
        grace: timedelta = timedelta(seconds=60),
        max_sleep_s: float = 60.0,
        batch_size: int = 500,
        max_catch_up: int | None = None,
        failure_backoff_max_s: float = 300.0,
        sleep: Callable[[float], Any] | None = None,
    ) -> None:
        self._sessions = session_factory
        self._outbox = outbox
        self._clock = clock or SystemClock()
        self._listen_dsn = listen_dsn
        self._grace = grace
        self._max_sleep_s = max_sleep_s
        self._batch_size = batch_size
        self._max_catch_up = max_catch_up
        self._failure_backoff_max_s = failure_backoff_max_s
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.database = DatabaseGate("scheduler-ticker", self._probe_database)

    async def _probe_database(self) -> None:
        async with self._sessions() as session:
            await session.execute(text("SELECT 1"))

    async def tick(self, now: datetime | None = None) -> int:
        """Handle every schedule due at ``now``; the number of instants fired."""
        now = now or self._clock.now()
        fired = 0
        while True:
            handled, fired_now = await self._tick_batch(now)
            fired += fired_now
            if handled < self._batch_size:
                return fired

    async def _tick_batch(self, now: datetime) -> tuple[int, int]:
        async with self._sessions() as session, session.begin():
            due = (
                await session.execute(
                    select(schedules)
                    .where(schedules.c.enabled, (schedules.c.next_fire_at.is_(None)) | (schedules.c.next_fire_at <= now))
                    .order_by(schedules.c.next_fire_at.nulls_first())
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            unfinished = await self._unfinished_tasks(session, [schedule.id for schedule in due if schedule.concurrency != "allow"])
            runs: list[dict[str, Any]] = []
            events: dict[tuple[Any, datetime], Fire] = {}
            # (id, next fire, failures in a row, last error): what each schedule looks like after this tick
            planned: list[tuple[Any, datetime | None, int, str | None]] = []
            for schedule in due:
                try:
                    # planned into lists of its own: a schedule that fails adds nothing but its failure
                    own_runs: list[dict[str, Any]] = []
                    own_events: dict[tuple[Any, datetime], Fire] = {}
                    if schedule.next_fire_at is not None:
                        self._plan(schedule, now, own_runs, own_events, unfinished.get(schedule.id, []))
                    next_fire = cron.next_after(schedule.cron, schedule.timezone, now)
                except Exception as exc:  # noqa: BLE001 - one schedule's failure is recorded, never the others' problem
                    runs.append(self._failed_run(schedule, now, exc))
                    failures = schedule.failures + 1
                    backoff_s = min(2.0 ** (failures - 1), self._failure_backoff_max_s)
                    planned.append((schedule.id, now + timedelta(seconds=backoff_s), failures, runs[-1]["reason"]))
                    continue
                runs += own_runs
                events |= own_events
                planned.append((schedule.id, next_fire, 0, schedule.last_error))
            fired = await self._record(session, runs, events)

            if planned:
                await session.execute(
                    text(
                        "UPDATE schedules SET next_fire_at = planned.next_fire_at, failures = planned.failures, "
                        "last_error = planned.last_error "
                        "FROM unnest(CAST(:ids AS uuid[]), CAST(:times AS timestamptz[]), CAST(:failures AS int[]), "
                        "CAST(:errors AS text[])) AS planned(id, next_fire_at, failures, last_error) "
                        "WHERE schedules.id = planned.id"
                    ),
                    {
                        "ids": [entry[0] for entry in planned],
                        "times": [entry[1] for entry in planned],
                        "failures": [entry[2] for entry in planned],
                        "errors": [entry[3] for entry in planned],
                    },
                )
        return len(due), fired

    @staticmethod
    async def _unfinished_tasks(session: AsyncSession, schedule_ids: list[Any]) -> dict[Any, list[tuple[Any, Any]]]:
        """For each schedule, its runs' tasks not known to have ended, as (task id, report date), oldest first."""
        if not schedule_ids:
            return {}
        rows = await session.execute(
            select(schedule_runs.c.schedule_id, schedule_runs.c.task_id, schedule_runs.c.task_report_date)
            .where(
                schedule_runs.c.schedule_id.in_(schedule_ids), schedule_runs.c.task_id.is_not(None), schedule_runs.c.task_status.is_(None)
            )
            .order_by(schedule_runs.c.scheduled_for)
        )
        found: dict[Any, list[tuple[Any, Any]]] = {}
        for schedule_id, task_id, report_date in rows:
            found.setdefault(schedule_id, []).append((task_id, report_date))
        return found

    def _plan(
        self,
        schedule: Any,
        now: datetime,
        runs: list[dict[str, Any]],
        events: dict[tuple[Any, datetime], Fire],
        unfinished: list[tuple[Any, Any]],
    ) -> None:
        first = schedule.next_fire_at
        # the look-back bounds the catch-up of missed instants; an instant within the grace is on time,
        # not missed, so a look-back shorter than the grace (0: "catch nothing up") never cuts into it
        horizon = now - max(timedelta(seconds=schedule.lookback_s), self._grace)
        if first < horizon:
            # older than the look-back: one row says so instead of one per instant
            reason = f"instants from {first.isoformat()} until {horizon.isoformat()} are older than the look-back ({schedule.lookback_s} s)"
            runs.append(_run(schedule.id, first, "skipped", reason=reason))
            first = cron.next_after(schedule.cron, schedule.timezone, horizon - timedelta(microseconds=1)) or now
        instants = cron.instants_between(schedule.cron, schedule.timezone, first, now)
        decision = decide(instants, now, catch_up=schedule.catch_up, grace=self._grace, max_fires=self._max_catch_up)
        unfinished = list(unfinished)
        for instant in decision.fire:
            if schedule.concurrency == "forbid" and unfinished:
                runs.append(_run(schedule.id, instant, "skipped", reason=f"previous run still running (task {unfinished[-1][0]})"))
                continue
            event = build_event(schedule.name, schedule.routing_key, schedule.payload, schedule.timezone, instant)
            note: str | None = None
            fire = Fire()
            if schedule.concurrency == "replace" and unfinished:
                why = f"replaced by the run of {instant.isoformat()}"
                fire.events += [(cancel_event(schedule.name, task_id, day, why), REPORT_CANCEL_REQUESTED) for task_id, day in unfinished]
                fire.cancels += [task_id for task_id, _ in unfinished]
                note = "replaced the unfinished task " + ", ".join(str(task_id) for task_id, _ in unfinished)
                unfinished = []
            fire.events.append((event, schedule.routing_key))
            events[(schedule.id, instant)] = fire
            task, day = task_of(event), report_date_of(event)
            runs.append(_run(schedule.id, instant, "fired", reason=note, event_id=event.id, task_id=task, task_report_date=day))
            if task is not None:
                unfinished.append((task, day))
        for instant, reason in decision.skip:
            runs.append(_run(schedule.id, instant, "skipped", reason=reason))

    @staticmethod
    def _failed_run(schedule: Any, now: datetime, error: BaseException) -> dict[str, Any]:
        reason = f"{type(error).__name__}: {error}"[:1000]
        log.warning("schedule failed to fire; backing off", extra={"schedule": schedule.name, "error": reason})
        instant = schedule.next_fire_at if schedule.next_fire_at is not None and schedule.next_fire_at <= now else now
        return _run(schedule.id, instant, "failed", reason=reason)

    async def observe(self) -> None:
        """The schedules' gauges: failing (their last fire failed) and late (an instant past by more than the grace,
        which no replica fired: every ticker down or stuck)."""
        async with self._sessions() as session:
            failing, late = (
                await session.execute(
                    select(
                        func.count().filter(schedules.c.failures > 0),
                        func.count().filter(schedules.c.next_fire_at < func.now() - self._grace),
                    ).where(schedules.c.enabled)
                )
            ).one()
        metrics.SCHEDULES_FAILING.set(failing)
        metrics.SCHEDULES_LATE.set(late)

    async def failing_schedules(self) -> list[str]:
        """Enabled schedules whose last fire failed (readiness shows them as degraded)."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(schedules.c.name, schedules.c.last_error)
                .where(schedules.c.enabled, schedules.c.failures > 0)
                .order_by(schedules.c.name)
                .limit(5)
            )
            return [f"{name}: {error}" for name, error in rows]

    async def _record(self, session: AsyncSession, runs: list[dict[str, Any]], events: dict[tuple[Any, datetime], Fire]) -> int:
        """Insert the runs; publish only the instants this transaction claimed."""
        if not runs:
            return 0
        claimed = await session.execute(
            pg_insert(schedule_runs)
            .values(runs)
            .on_conflict_do_nothing(index_elements=["schedule_id", "scheduled_for"])
            .returning(schedule_runs.c.schedule_id, schedule_runs.c.scheduled_for, schedule_runs.c.status)
        )
        rows: list[dict[str, Any]] = []
        cancelled: list[Any] = []
        fired = 0
        for schedule_id, scheduled_for, status in claimed:
            if status == "fired":
                fired += 1
                fire = events[(schedule_id, scheduled_for)]
                rows += [self._outbox.row(envelope, routing_key=routing_key) for envelope, routing_key in fire.events]
                cancelled += fire.cancels
        if rows:
            await session.execute(self._outbox.table.insert(), rows)
        if cancelled:
            await session.execute(MARK_CANCELLED, {"ids": cancelled})
        return fired

    # the loop -------------------------------------------------------------------------

    async def next_due(self) -> datetime | None:
        async with self._sessions() as session:
            value: datetime | None = await session.scalar(select(func.min(schedules.c.next_fire_at)).where(schedules.c.enabled))
            return value

    async def run(self) -> None:
        listener = asyncio.create_task(self._listen())
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                try:
                    fired = await self.tick()
                    if fired:
                        log.info("fired scheduled instants", extra={"count": fired})
                    due = await self.next_due()
                except Exception as exc:
                    if await self.database.holds(exc):
                        await self.database.wait_open(self._stopping)
                        continue
                    log.exception("scheduler tick failed; retrying")
                    due = None
                now = self._clock.now()
                delay = self._max_sleep_s if due is None else min(max((due - now).total_seconds(), 0.0), self._max_sleep_s)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def _listen(self) -> None:
        """Wake at once when a schedule changes (the API sends NOTIFY); timed wake-ups cover the gaps."""
        if self._listen_dsn is not None:
            await listen_forever(self._listen_dsn, CHANGED_CHANNEL, self._wake.set, self._stopping)

    def wake(self) -> None:
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="scheduler-ticker")

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            await self._task
        await self.database.close()
