import asyncio
import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from scheduler_service import cron
from scheduler_service.models import outbox, schedule_runs, schedules
from scheduler_service.schedules import create_schedule
from scheduler_service.schemas import ScheduleIn
from scheduler_service.settings import ScheduleLimits
from scheduler_service.store import SqlSchedulesStore
from scheduler_service.ticker import Ticker
from shared.db import create_engine, create_session_factory
from shared.messaging.outbox import Outbox
from shared.testing.clock import utc
from shared.testing.fixtures import eventually
from shared.testing.tcp_proxy import TcpProxy


@pytest.fixture
async def sessions(scheduler_db: str) -> Any:
    engine = create_engine(scheduler_db)
    yield create_session_factory(engine)
    await engine.dispose()


def _ticker(sessions: Any, **options: Any) -> Ticker:
    return Ticker(sessions, Outbox(outbox), **options)


async def _create(sessions: Any, now: datetime, **fields: Any) -> None:
    async with sessions() as session:
        await create_schedule(SqlSchedulesStore(session), ScheduleIn(**fields), ScheduleLimits(), now=now)


async def _runs(sessions: Any, name: str) -> list[Any]:
    async with sessions() as session:
        return list(
            (
                await session.execute(
                    select(schedule_runs.c.scheduled_for, schedule_runs.c.status, schedule_runs.c.reason, schedule_runs.c.event_id)
                    .join(schedules)
                    .where(schedules.c.name == name)
                    .order_by(schedule_runs.c.scheduled_for)
                )
            ).all()
        )


async def test_three_tickers_over_48_simulated_hours_fire_each_instant_exactly_once(sessions: Any) -> None:
    start, end = utc(2026, 10, 24, 0), utc(2026, 10, 26, 0)  # the Berlin and the (earlier) fall-back night inside
    plans = {
        "daily-berlin": ("30 2 * * *", "Europe/Berlin"),
        "hourly-berlin": ("0 * * * *", "Europe/Berlin"),
        "half-hourly-new-york": ("*/30 * * * *", "America/New_York"),
        "every-10-seconds": ("*/10 * * * * *", "UTC"),
    }
    for name, (expression, zone) in plans.items():
        await _create(sessions, start, name=name, cron=expression, timezone=zone, catch_up="all")
    tickers = [_ticker(sessions) for _ in range(3)]
    rng = random.Random(48)
    now = start
    while now < end:
        now = min(now + timedelta(seconds=rng.randint(1, 900)), end)
        await asyncio.gather(*(ticker.tick(now) for ticker in tickers))
    fired_total = 0
    for name, (expression, zone) in plans.items():
        runs = await _runs(sessions, name)
        expected = cron.instants_between(expression, zone, start + timedelta(microseconds=1), end)
        assert [run.scheduled_for for run in runs] == expected, name
        assert {run.status for run in runs} == {"fired"}, name
        fired_total += len(runs)
    async with sessions() as session:
        event_ids = (await session.execute(select(outbox.c.event_id))).scalars().all()
    assert len(event_ids) == fired_total
    assert len(set(event_ids)) == fired_total


async def test_a_stale_cursor_never_fires_an_instant_twice(sessions: Any) -> None:
    start = utc(2026, 1, 1)
    await _create(sessions, start, name="hourly", cron="0 * * * *", catch_up="all")
    ticker = _ticker(sessions)
    await ticker.tick(utc(2026, 1, 1, 3))
    async with sessions() as session, session.begin():  # as if another replica still believed 01:00 was next
        await session.execute(update(schedules).values(next_fire_at=utc(2026, 1, 1, 1)))
    await ticker.tick(utc(2026, 1, 1, 3))
    runs = await _runs(sessions, "hourly")
    assert [run.scheduled_for.hour for run in runs] == [1, 2, 3]
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(outbox)) == 3


@pytest.mark.parametrize(
    ("policy", "fired", "skipped"),
    [("all", [1, 2, 3, 4, 5], []), ("latest", [5], [1, 2, 3, 4]), ("skip", [], [1, 2, 3, 4, 5])],
)
async def test_downtime_follows_the_catch_up_policy(sessions: Any, policy: str, fired: list[int], skipped: list[int]) -> None:
    await _create(sessions, utc(2026, 1, 1, 0, 30), name="hourly", cron="0 * * * *", catch_up=policy)
    await _ticker(sessions).tick(utc(2026, 1, 1, 5, 30))  # down from 00:30 to 05:30
    runs = await _runs(sessions, "hourly")
    assert [run.scheduled_for.hour for run in runs if run.status == "fired"] == fired
    assert [run.scheduled_for.hour for run in runs if run.status == "skipped"] == skipped
    assert all(policy in run.reason for run in runs if run.status == "skipped")


async def test_instants_older_than_the_look_back_are_recorded_once(sessions: Any) -> None:
    await _create(sessions, utc(2026, 1, 1, 0, 30), name="hourly", cron="0 * * * *", catch_up="all", lookback_s=7200)
    await _ticker(sessions).tick(utc(2026, 1, 1, 10, 30))
    runs = await _runs(sessions, "hourly")
    assert [(run.scheduled_for.hour, run.status) for run in runs] == [(1, "skipped"), (9, "fired"), (10, "fired")]
    assert "older than the look-back" in runs[0].reason


@pytest.mark.parametrize("catch_up", ["skip", "latest", "all"])
async def test_a_look_back_of_zero_fires_each_instant_on_time_and_catches_nothing_up(sessions: Any, catch_up: str) -> None:
    """``lookback_s: 0`` as a user writes "catch nothing up": each instant, seen a moment after it is due, fires."""
    await _create(sessions, utc(2026, 1, 1, 0, 30), name="hourly", cron="0 * * * *", catch_up=catch_up, lookback_s=0)
    ticker = _ticker(sessions)
    await ticker.tick(utc(2026, 1, 1, 1) + timedelta(milliseconds=300))  # 0.3 s after the instant
    await ticker.tick(utc(2026, 1, 1, 2, 0, 1))
    await ticker.tick(utc(2026, 1, 1, 6, 0, 30))  # after an outage: 03:00 to 05:00 were missed
    runs = await _runs(sessions, "hourly")
    assert [(run.scheduled_for.hour, run.status) for run in runs if run.status == "fired"] == [(1, "fired"), (2, "fired"), (6, "fired")]
    assert {run.status for run in runs if run.scheduled_for.hour in (3, 4, 5)} <= {"skipped"}


async def test_an_on_time_instant_fires_with_any_policy_and_the_next_one_is_planned(sessions: Any) -> None:
    await _create(sessions, utc(2026, 1, 1, 0, 30), name="hourly", cron="0 * * * *", catch_up="skip")
    ticker = _ticker(sessions)
    await ticker.tick(utc(2026, 1, 1, 1, 0, 20))
    assert [run.status for run in await _runs(sessions, "hourly")] == ["fired"]
    assert await ticker.next_due() == utc(2026, 1, 1, 2)


async def test_many_due_schedules_are_handled_in_batches(sessions: Any) -> None:
    async with sessions() as session, session.begin():
        await session.execute(
            schedules.insert(),
            [
                {
                    "id": uuid.uuid4(),
                    "name": f"s{i}",
                    "cron": "* * * * *",
                    "timezone": "UTC",
                    "routing_key": "report.requested",
                    "payload": {},
                    "catch_up": "latest",
                    "lookback_s": 3600,
                    "next_fire_at": utc(2026, 1, 1, 0, 1),
                }
                for i in range(1200)
            ],
        )
    fired = await _ticker(sessions, batch_size=500).tick(utc(2026, 1, 1, 0, 1, 1))
    assert fired == 1200
    async with sessions() as session:
        counts = Counter((await session.execute(select(schedule_runs.c.status))).scalars())
    assert counts == {"fired": 1200}


async def test_a_schedule_that_cannot_fire_fails_alone_backs_off_and_the_others_fire_on_time(sessions: Any) -> None:
    start = utc(2026, 1, 1, 0, 0, 30)
    for name in ("broken", "healthy"):
        await _create(sessions, start, name=name, cron="* * * * *", catch_up="all")
    async with sessions() as session, session.begin():  # a row the API would refuse, written straight into the table
        await session.execute(update(schedules).where(schedules.c.name == "broken").values(payload={"scheduled_for": "x"}))
    ticker = _ticker(sessions)
    assert await ticker.tick(utc(2026, 1, 1, 0, 1, 1)) == 1
    assert [run.status for run in await _runs(sessions, "healthy")] == ["fired"]
    failed = await _runs(sessions, "broken")
    assert [run.status for run in failed] == ["failed"]
    assert "scheduled_for" in failed[0].reason
    assert await ticker.failing_schedules() == [f"broken: {failed[0].reason}"]
    async with sessions() as session:
        broken = (await session.execute(select(schedules).where(schedules.c.name == "broken"))).one()
    assert (broken.failures, broken.next_fire_at) == (1, utc(2026, 1, 1, 0, 1, 2))  # 1 s, then 2, 4, ...

    assert await ticker.tick(utc(2026, 1, 1, 0, 2, 1)) == 1
    async with sessions() as session:
        broken = (await session.execute(select(schedules).where(schedules.c.name == "broken"))).one()
    assert (broken.failures, broken.next_fire_at) == (2, utc(2026, 1, 1, 0, 2, 3))
    assert [run.status for run in await _runs(sessions, "healthy")] == ["fired", "fired"]

    async with sessions() as session, session.begin():  # mended: it fires again and stops counting failures
        await session.execute(update(schedules).where(schedules.c.name == "broken").values(payload={}))
    await ticker.tick(utc(2026, 1, 1, 0, 3, 1))
    assert [run.status for run in await _runs(sessions, "broken")][-1] == "fired"
    assert await ticker.failing_schedules() == []


async def test_one_catch_up_fires_at_most_its_limit_and_records_the_rest_skipped(sessions: Any) -> None:
    await _create(sessions, utc(2026, 1, 1, 0, 0, 30), name="minutely", cron="* * * * *", catch_up="all")
    await _ticker(sessions, max_catch_up=5).tick(utc(2026, 1, 1, 0, 20, 1))  # 20 instants missed
    runs = await _runs(sessions, "minutely")
    assert [run.scheduled_for.minute for run in runs if run.status == "fired"] == [16, 17, 18, 19, 20]
    skipped = [run for run in runs if run.status == "skipped"]
    assert len(skipped) == 15
    assert all("5 most recent" in run.reason for run in skipped)


async def test_the_ticker_pauses_while_its_database_is_cut_off_and_fires_after(scheduler_db: str) -> None:
    async with TcpProxy.in_front_of(scheduler_db) as proxy:
        engine = create_engine(proxy.url_for(scheduler_db))
        sessions = create_session_factory(engine)
        start = datetime.now(UTC)
        await _create(sessions, start - timedelta(seconds=5), name="every-second", cron="* * * * * *", catch_up="skip")
        ticker = _ticker(sessions, max_sleep_s=0.2)
        ticker.start()
        try:
            proxy.cut()
            await eventually(lambda: _true(ticker.database.paused), what="the ticker paused")
            assert ticker.running
            proxy.restore()
            await eventually(lambda: _true(not ticker.database.paused), timeout_s=10, what="the ticker resumed")
            await eventually(lambda: _fired_since(sessions, "every-second", start), timeout_s=10, what="an instant fired after the outage")
        finally:
            await ticker.stop()
            await engine.dispose()


async def _fired_since(sessions: Any, name: str, since: datetime) -> bool:
    return any(run.status == "fired" and run.scheduled_for >= since for run in await _runs(sessions, name))


async def _true(value: bool) -> bool:
    return value
