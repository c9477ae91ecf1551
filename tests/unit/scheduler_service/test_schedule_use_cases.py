"""The schedules use cases on the in-memory store: when the next fire is, what a change
resets, what a trigger emits, and what is refused without leaving anything behind."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from scheduler_service import schedules
from scheduler_service.schemas import ScheduleIn, SchedulePatch
from scheduler_service.settings import ScheduleLimits
from shared.domain_errors import Conflict, InvalidRequest, NotFound
from shared.messaging.topology import REPORT_REQUESTED
from tests.unit.fakes import RecordingOutbox
from tests.unit.scheduler_service.fakes import InMemorySchedulesStore

# 2026-03-29 00:30 UTC: 01:30 in Berlin, half an hour before the clocks jump from 02:00 to 03:00
NOW = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)


def nightly(**overrides: object) -> ScheduleIn:
    return ScheduleIn.model_validate({"name": "nightly", "cron": "30 2 * * *", "timezone": "Europe/Berlin"} | overrides)


async def test_a_new_schedule_fires_next_at_its_local_time_even_across_a_dst_jump() -> None:
    store = InMemorySchedulesStore(NOW)
    created = await schedules.create_schedule(store, nightly(), ScheduleLimits(), now=NOW)
    # 02:30 does not exist on that day in Berlin: as Debian's cron does, it fires when the clocks jump, 03:00 local
    assert created.next_fire_at == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert created.next_fire_local is not None
    assert created.next_fire_local.isoformat() == "2026-03-29T03:00:00+02:00"
    assert store.changes_announced == 1, "the tickers are woken"


async def test_a_disabled_schedule_has_no_next_fire() -> None:
    store = InMemorySchedulesStore(NOW)
    created = await schedules.create_schedule(store, nightly(enabled=False), ScheduleLimits(), now=NOW)
    assert created.next_fire_at is None


async def test_a_taken_name_and_a_full_deployment_are_conflicts() -> None:
    store = InMemorySchedulesStore(NOW)
    await schedules.create_schedule(store, nightly(), ScheduleLimits(max_schedules=2), now=NOW)
    with pytest.raises(Conflict, match="exists already"):
        await schedules.create_schedule(store, nightly(), ScheduleLimits(max_schedules=2), now=NOW)
    await schedules.create_schedule(store, nightly(name="hourly", cron="0 * * * *"), ScheduleLimits(max_schedules=2), now=NOW)
    with pytest.raises(Conflict, match="has 2 schedules") as full:
        await schedules.create_schedule(store, nightly(name="third"), ScheduleLimits(max_schedules=2), now=NOW)
    assert full.value.code == "schedule_limit_reached"
    assert sorted(store.schedules) == ["hourly", "nightly"]


async def test_enabling_again_clears_what_disabled_it_and_starts_from_now() -> None:
    store = InMemorySchedulesStore(NOW)
    await schedules.create_schedule(store, nightly(), ScheduleLimits(), now=NOW)
    disabled = await schedules.update_schedule(store, "nightly", SchedulePatch(enabled=False), ScheduleLimits(), now=NOW)
    assert disabled.next_fire_at is None
    # as the ticker leaves a schedule it disabled after failing fires
    store.schedules["nightly"] = replace(store.schedules["nightly"], failures=5, last_error="boom", disabled_reason="payload broke")
    later = datetime(2026, 4, 2, 12, tzinfo=UTC)
    enabled = await schedules.update_schedule(store, "nightly", SchedulePatch(enabled=True), ScheduleLimits(), now=later)
    assert (enabled.failures, enabled.last_error, enabled.disabled_reason) == (0, None, None)
    assert enabled.next_fire_at == datetime(2026, 4, 3, 0, 30, tzinfo=UTC), "the next 02:30 in Berlin after now, not the missed ones"


async def test_a_change_that_breaks_a_rule_is_refused_and_the_schedule_is_unchanged() -> None:
    store = InMemorySchedulesStore(NOW)
    await schedules.create_schedule(store, nightly(), ScheduleLimits(), now=NOW)
    before = store.schedules["nightly"]
    with pytest.raises(InvalidRequest, match="cron: fires 60 s apart"):
        await schedules.update_schedule(store, "nightly", SchedulePatch(cron="* * * * *"), ScheduleLimits(min_interval_s=300), now=NOW)
    with pytest.raises(InvalidRequest, match="days_before"):
        await schedules.update_schedule(store, "nightly", SchedulePatch(payload={"days_before": -1}), ScheduleLimits(), now=NOW)
    assert store.schedules["nightly"] == before


async def test_a_trigger_records_a_manual_run_and_its_report_request_for_the_local_day_before() -> None:
    store, events = InMemorySchedulesStore(NOW), RecordingOutbox()
    await schedules.create_schedule(store, nightly(), ScheduleLimits(), now=NOW)
    run = await schedules.trigger(store, events, "nightly", now=NOW)
    assert (run.status, run.reason, run.scheduled_for) == ("manual", "triggered through the API", NOW)
    [requested] = events.published(REPORT_REQUESTED)
    assert requested["report_date"] == "2026-03-28", "the day before 2026-03-29 in Berlin"
    assert requested["requested_by"] == "scheduler:nightly"
    assert run.event_id == str(events.rows[0]["event_id"])
    assert run.task_id == requested["task_id"], "the run links to the task it requested"


async def test_an_unknown_schedule_is_not_found_for_every_use_case() -> None:
    store, events = InMemorySchedulesStore(NOW), RecordingOutbox()
    with pytest.raises(NotFound, match="'ghost' not found"):
        await schedules.get_schedule(store, "ghost")
    with pytest.raises(NotFound):
        await schedules.update_schedule(store, "ghost", SchedulePatch(enabled=False), ScheduleLimits(), now=NOW)
    with pytest.raises(NotFound):
        await schedules.delete_schedule(store, "ghost")
    with pytest.raises(NotFound):
        await schedules.trigger(store, events, "ghost", now=NOW)
    with pytest.raises(NotFound):
        await schedules.preview(store, "ghost", 3, now=NOW)
    assert events.rows == []


async def test_a_deleted_schedule_is_gone_and_the_tickers_are_told() -> None:
    store = InMemorySchedulesStore(NOW)
    await schedules.create_schedule(store, nightly(), ScheduleLimits(), now=NOW)
    await schedules.delete_schedule(store, "nightly")
    assert store.schedules == {}
    assert store.changes_announced == 2


async def test_a_preview_shows_the_shifted_fire_of_the_dst_day() -> None:
    store = InMemorySchedulesStore(NOW)
    await schedules.create_schedule(store, nightly(), ScheduleLimits(), now=NOW)
    [first, second] = await schedules.preview(store, "nightly", 2, now=NOW)
    assert (first.utc, first.shifted_by_dst) == (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), True)
    assert (second.utc, second.shifted_by_dst) == (datetime(2026, 3, 30, 0, 30, tzinfo=UTC), False)
