"""Use cases of the schedules API: create, change, delete, trigger and preview a schedule.

Each takes the store of its unit of work (and the outbox, to fire): the rules here run the
same on PostgreSQL and on the in-memory fakes of the unit tests.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import orjson

from scheduler_service import commands, cron
from scheduler_service.schemas import PreviewOut, RunOut, ScheduleIn, ScheduleOut, SchedulePatch
from scheduler_service.settings import ScheduleLimits
from scheduler_service.store import Run, Schedule, SchedulesStore
from shared.domain_errors import Conflict, InvalidRequest, NotFound
from shared.messaging.outbox import EventsOut


def schedule_out(found: Schedule) -> ScheduleOut:
    local = found.next_fire_at.astimezone(cron.zone(found.timezone)) if found.next_fire_at else None
    return ScheduleOut.model_validate({**asdict(found), "next_fire_local": local})


def run_out(run: Run) -> RunOut:
    return RunOut(
        scheduled_for=run.scheduled_for,
        status=run.status,
        reason=run.reason,
        event_id=str(run.event_id) if run.event_id else None,
        task_id=str(run.task_id) if run.task_id else None,
        task_status=run.task_status,
        recorded_at=run.recorded_at,
    )


async def _find(store: SchedulesStore, name: str, *, for_update: bool = False) -> Schedule:
    found = await store.find(name, for_update=for_update)
    if found is None:
        raise NotFound(f"schedule {name!r} not found")
    return found


async def get_schedule(store: SchedulesStore, name: str) -> ScheduleOut:
    return schedule_out(await _find(store, name))


def _within_limits(limits: ScheduleLimits, expression: str, timezone: str, payload: dict[str, Any], now: datetime) -> None:
    size = len(orjson.dumps(payload))
    if size > limits.max_payload_bytes:
        raise InvalidRequest(f"payload: {size} bytes as JSON, more than the limit of {limits.max_payload_bytes}")
    gap = cron.shortest_interval(expression, timezone, now)
    if gap is not None and gap.total_seconds() < limits.min_interval_s:
        raise InvalidRequest(
            f"cron: fires {gap.total_seconds():g} s apart, more often than the limit of one fire every {limits.min_interval_s:g} s"
        )


async def create_schedule(store: SchedulesStore, body: ScheduleIn, limits: ScheduleLimits, *, now: datetime | None = None) -> ScheduleOut:
    now = now or datetime.now(UTC)
    _within_limits(limits, body.cron, body.timezone, body.payload, now)
    values = body.model_dump() | {
        "id": uuid.uuid4(),
        "next_fire_at": cron.next_after(body.cron, body.timezone, now) if body.enabled else None,
    }
    async with store.transaction():
        existing = await store.count_for_creation()
        if existing >= limits.max_schedules:
            raise Conflict(f"the deployment has {existing} schedules, its limit (SCHEDULER_MAX_SCHEDULES)", code="schedule_limit_reached")
        created = await store.add(values)
    return schedule_out(created)


async def update_schedule(
    store: SchedulesStore, name: str, patch: SchedulePatch, limits: ScheduleLimits, *, now: datetime | None = None
) -> ScheduleOut:
    now = now or datetime.now(UTC)
    changes = patch.model_dump(exclude_unset=True)
    if not changes:
        return await get_schedule(store, name)
    nulls = sorted(field for field, value in changes.items() if value is None)
    if nulls:
        raise InvalidRequest(f"{', '.join(nulls)}: may be left out, not null")
    async with store.transaction():
        current = await _find(store, name, for_update=True)
        expression = changes.get("cron", current.cron)
        timezone = changes.get("timezone", current.timezone)
        try:
            changes["cron"] = cron.validate(expression, timezone)
            commands.validate_payload(changes.get("routing_key", current.routing_key), changes.get("payload", current.payload))
        except (cron.CronError, commands.CommandError) as exc:
            raise InvalidRequest(str(exc)) from exc
        _within_limits(limits, changes["cron"], timezone, changes.get("payload", current.payload), now)
        enabled = changes.get("enabled", current.enabled)
        if enabled:
            # a schedule enabled (again) under rules it meets starts afresh
            changes |= {"disabled_reason": None, "failures": 0, "last_error": None}
        # time moves on from now: instants missed while disabled or under the old rule are not owed
        changes["next_fire_at"] = cron.next_after(expression, timezone, now) if enabled else None
        changed = await store.change(current.id, changes)
    return schedule_out(changed)


async def delete_schedule(store: SchedulesStore, name: str) -> None:
    async with store.transaction():
        current = await _find(store, name, for_update=True)
        await store.remove(current.id)


async def trigger(store: SchedulesStore, events: EventsOut, name: str, *, now: datetime | None = None) -> RunOut:
    """Fire now, outside the cron rule; recorded as ``manual``, its event in the same unit of work."""
    now = now or datetime.now(UTC)
    async with store.transaction():
        current = await _find(store, name)
        try:
            event = commands.build_event(current.name, current.routing_key, current.payload, current.timezone, now)
        except commands.CommandError as exc:
            raise InvalidRequest(f"schedule {name!r} cannot fire: {exc}") from exc
        task_id = commands.task_of(event)
        task = (task_id, commands.report_date_of(event)) if task_id else None
        run = await store.add_run(current.id, now, "manual", event.id, "triggered through the API", task)
        await events.add(event, routing_key=current.routing_key)
    return run_out(run)


async def preview(store: SchedulesStore, name: str, count: int, *, now: datetime | None = None) -> list[PreviewOut]:
    current = await _find(store, name)
    upcoming = cron.preview(current.cron, current.timezone, now or datetime.now(UTC), count)
    return [PreviewOut(local=item.local, utc=item.utc, shifted_by_dst=item.shifted) for item in upcoming]
