"""Use cases of the schedules API: create, change, delete, trigger, history, preview."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from scheduler_service import commands, cron
from scheduler_service.models import schedule_runs, schedules
from scheduler_service.schemas import PreviewOut, RunOut, RunPage, ScheduleIn, ScheduleOut, SchedulePatch
from scheduler_service.settings import ScheduleLimits
from scheduler_service.ticker import CHANGED_CHANNEL
from shared.db import count_up_to
from shared.domain_errors import Conflict, InvalidRequest, NotFound
from shared.messaging.outbox import Outbox

NOTIFY_CHANGED = text(f"SELECT pg_notify('{CHANGED_CHANNEL}', '')")
# creations take this lock, so two of them at once cannot both pass the count limit
CREATE_LOCK = text("SELECT pg_advisory_xact_lock(7003, 0)")


def _out(row: Any) -> ScheduleOut:
    local = row.next_fire_at.astimezone(cron.zone(row.timezone)) if row.next_fire_at else None
    return ScheduleOut(
        name=row.name,
        cron=row.cron,
        timezone=row.timezone,
        routing_key=row.routing_key,
        payload=row.payload,
        enabled=row.enabled,
        catch_up=row.catch_up,
        lookback_s=row.lookback_s,
        next_fire_at=row.next_fire_at,
        next_fire_local=local,
        failures=row.failures,
        last_error=row.last_error,
        disabled_reason=row.disabled_reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def _find(session: AsyncSession, name: str, *, lock: bool = False) -> Any:
    query = select(schedules).where(schedules.c.name == name)
    row = (await session.execute(query.with_for_update() if lock else query)).first()
    if row is None:
        raise NotFound(f"schedule {name!r} not found")
    return row


async def list_schedules(session: AsyncSession) -> list[ScheduleOut]:
    return [_out(row) for row in await session.execute(select(schedules).order_by(schedules.c.name))]


async def get_schedule(session: AsyncSession, name: str) -> ScheduleOut:
    return _out(await _find(session, name))


def _within_limits(limits: ScheduleLimits, expression: str, timezone: str, payload: dict[str, Any], now: datetime) -> None:
    size = len(orjson.dumps(payload))
    if size > limits.max_payload_bytes:
        raise InvalidRequest(f"payload: {size} bytes as JSON, more than the limit of {limits.max_payload_bytes}")
    gap = cron.shortest_interval(expression, timezone, now)
    if gap is not None and gap.total_seconds() < limits.min_interval_s:
        raise InvalidRequest(
            f"cron: fires {gap.total_seconds():g} s apart, more often than the limit of one fire every {limits.min_interval_s:g} s"
        )


async def create_schedule(session: AsyncSession, body: ScheduleIn, limits: ScheduleLimits, *, now: datetime | None = None) -> ScheduleOut:
    now = now or datetime.now(UTC)
    _within_limits(limits, body.cron, body.timezone, body.payload, now)
    values = body.model_dump() | {
        "id": uuid.uuid4(),
        "next_fire_at": cron.next_after(body.cron, body.timezone, now) if body.enabled else None,
    }
    try:
        async with session.begin():
            await session.execute(CREATE_LOCK)
            existing = await session.scalar(select(func.count()).select_from(schedules))
            if (existing or 0) >= limits.max_schedules:
                raise Conflict(
                    f"the deployment has {existing} schedules, its limit (SCHEDULER_MAX_SCHEDULES)", code="schedule_limit_reached"
                )
            row = (await session.execute(insert(schedules).values(values).returning(*schedules.c))).one()
            await session.execute(NOTIFY_CHANGED)
    except IntegrityError as exc:
        raise Conflict(f"a schedule named {body.name!r} exists already", code="schedule_exists") from exc
    return _out(row)


async def update_schedule(
    session: AsyncSession, name: str, patch: SchedulePatch, limits: ScheduleLimits, *, now: datetime | None = None
) -> ScheduleOut:
    now = now or datetime.now(UTC)
    changes = patch.model_dump(exclude_unset=True)
    if not changes:
        return await get_schedule(session, name)
    nulls = sorted(field for field, value in changes.items() if value is None)
    if nulls:
        raise InvalidRequest(f"{', '.join(nulls)}: may be left out, not null")
    async with session.begin():
        current = await _find(session, name, lock=True)
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
        row = (
            await session.execute(
                update(schedules).where(schedules.c.id == current.id).values(**changes, updated_at=func.now()).returning(*schedules.c)
            )
        ).one()
        await session.execute(NOTIFY_CHANGED)
    return _out(row)


async def delete_schedule(session: AsyncSession, name: str) -> None:
    async with session.begin():
        current = await _find(session, name, lock=True)
        await session.execute(delete(schedules).where(schedules.c.id == current.id))
        await session.execute(NOTIFY_CHANGED)


async def trigger(session: AsyncSession, outbox: Outbox, name: str, *, now: datetime | None = None) -> RunOut:
    """Fire now, outside the cron rule; recorded as ``manual``."""
    now = now or datetime.now(UTC)
    async with session.begin():
        current = await _find(session, name)
        try:
            event = commands.build_event(current.name, current.routing_key, current.payload, current.timezone, now)
        except commands.CommandError as exc:
            raise InvalidRequest(f"schedule {name!r} cannot fire: {exc}") from exc
        row = (
            await session.execute(
                insert(schedule_runs)
                .values(schedule_id=current.id, scheduled_for=now, status="manual", event_id=event.id, reason="triggered through the API")
                .returning(*schedule_runs.c)
            )
        ).one()
        await outbox.add(session, event, routing_key=current.routing_key)
    return _run(row)


def _run(row: Any) -> RunOut:
    return RunOut(
        scheduled_for=row.scheduled_for,
        status=row.status,
        reason=row.reason,
        event_id=str(row.event_id) if row.event_id else None,
        recorded_at=row.recorded_at,
    )


async def runs(session: AsyncSession, name: str, *, page: int, count: int, count_limit: int) -> RunPage:
    """Newest first; ``total`` counts the schedule's runs up to ``count_limit`` (a schedule
    firing every minute records over half a million runs a year)."""
    current = await _find(session, name)
    where = schedule_runs.c.schedule_id == current.id
    total, exact = await count_up_to(session, schedule_runs, [where], count_limit)
    rows = await session.execute(
        select(schedule_runs).where(where).order_by(schedule_runs.c.scheduled_for.desc()).limit(count).offset((page - 1) * count)
    )
    return RunPage(items=[_run(row) for row in rows], total=total, total_exact=exact, page=page, count=count)


async def preview(session: AsyncSession, name: str, count: int, *, now: datetime | None = None) -> list[PreviewOut]:
    current = await _find(session, name)
    upcoming = cron.preview(current.cron, current.timezone, now or datetime.now(UTC), count)
    return [PreviewOut(local=item.local, utc=item.utc, shifted_by_dst=item.shifted) for item in upcoming]
