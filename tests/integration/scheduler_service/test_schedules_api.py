import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from reports_service.models import report_tasks
from reports_service.settings import ReportsSettings
from scheduler_service.main import MIGRATIONS, build_app
from scheduler_service.settings import SchedulerSettings
from shared.db import create_engine
from shared.testing import observed
from shared.testing.clock import FixedClock
from shared.testing.fixtures import eventually, migrated_database, serving
from shared.testing.infrastructure import Infrastructure
from tests.integration.reports_service.conftest import order_created, reports_client


def _settings(db: str, broker_url: str, exchange_name: str, **overrides: Any) -> SchedulerSettings:
    values: dict[str, Any] = {
        "database_url": db,
        "broker_url": broker_url,
        "events_exchange": exchange_name,
        "environment": "test",
        "log_json": False,
        "outbox_poll_interval_s": 0.2,
        "max_sleep_s": 30,
    }
    return SchedulerSettings(**(values | overrides))


@pytest.fixture
async def scheduler_api(scheduler_db: str, broker_url: str, exchange_name: str) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(build_app(_settings(scheduler_db, broker_url, exchange_name))) as base, httpx.AsyncClient(base_url=base) as client:
        yield client


async def test_create_read_change_delete(scheduler_api: httpx.AsyncClient) -> None:
    body = {
        "name": "weekday-mornings",
        "cron": "0 9 * * MON-FRI",
        "timezone": "Europe/Moscow",
        "payload": {"days_before": 2},
    }
    created = await scheduler_api.post("/schedules", json=body)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/schedules/weekday-mornings"
    schedule = created.json()
    assert schedule["next_fire_at"].endswith("T06:00:00Z")
    assert schedule["next_fire_local"].endswith("T09:00:00+03:00")
    assert (await scheduler_api.get("/schedules/weekday-mornings")).json() == schedule
    assert [s["name"] for s in (await scheduler_api.get("/schedules")).json()] == ["weekday-mornings"]
    changed = await scheduler_api.patch("/schedules/weekday-mornings", json={"cron": "@hourly", "catch_up": "all"})
    assert changed.status_code == 200
    assert changed.json()["cron"] == "0 * * * *"
    assert changed.json()["catch_up"] == "all"
    assert (await scheduler_api.delete("/schedules/weekday-mornings")).status_code == 204
    assert (await scheduler_api.get("/schedules/weekday-mornings")).status_code == 404


async def test_preview_shows_local_and_utc_times_and_dst_shifts(scheduler_api: httpx.AsyncClient) -> None:
    await scheduler_api.post("/schedules", json={"name": "berlin", "cron": "30 2 * * *", "timezone": "Europe/Berlin"})
    preview = (await scheduler_api.get("/schedules/berlin/preview", params={"count": 5})).json()
    assert len(preview) == 5
    for item in preview:
        local, instant = datetime.fromisoformat(item["local"]), datetime.fromisoformat(item["utc"])
        assert local == instant, "the same instant in two zones"
        assert local.utcoffset() in (timedelta(hours=1), timedelta(hours=2)), "Berlin's offset"
        assert (local.strftime("%H:%M") == "02:30") != item["shifted_by_dst"]


async def test_trigger_fires_now_and_is_recorded_as_manual(scheduler_api: httpx.AsyncClient) -> None:
    await scheduler_api.post("/schedules", json={"name": "on-demand", "cron": "@yearly"})
    run = await scheduler_api.post("/schedules/on-demand/trigger")
    assert run.status_code == 202
    assert run.json()["status"] == "manual"
    runs = (await scheduler_api.get("/schedules/on-demand/runs")).json()
    assert (runs["total"], runs["total_exact"]) == (1, True)
    assert runs["items"][0]["event_id"] == run.json()["event_id"]


async def test_runs_are_counted_up_to_the_limit(scheduler_db: str, broker_url: str, exchange_name: str) -> None:
    """Beyond SCHEDULER_LIST_COUNT_LIMIT the total is a lower bound, and says so; pages still reach every run."""
    settings = _settings(scheduler_db, broker_url, exchange_name, list_count_limit=2)
    async with serving(build_app(settings)) as base, httpx.AsyncClient(base_url=base) as client:
        await client.post("/schedules", json={"name": "on-demand", "cron": "@yearly"})
        fired = [(await client.post("/schedules/on-demand/trigger")).json()["event_id"] for _ in range(3)]
        first = (await client.get("/schedules/on-demand/runs", params={"count": 2})).json()
        last = (await client.get("/schedules/on-demand/runs", params={"page": 2, "count": 2})).json()
    assert (first["total"], first["total_exact"]) == (2, False)
    assert sorted(run["event_id"] for run in first["items"] + last["items"]) == sorted(fired)


async def test_an_edit_takes_effect_without_a_restart(scheduler_api: httpx.AsyncClient) -> None:
    await scheduler_api.post("/schedules", json={"name": "soon", "cron": "@yearly"})
    await asyncio.sleep(0.3)  # the loop now sleeps for up to max_sleep_s (30 s)
    await scheduler_api.patch("/schedules/soon", json={"cron": "* * * * * *"})

    async def fired() -> bool:
        return bool((await scheduler_api.get("/schedules/soon/runs")).json()["total"] >= 2)

    await eventually(fired, timeout_s=5, what="the edited schedule firing every second")


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "cron": "61 * * * *"},
        {"name": "x", "cron": "* * *"},
        {"name": "x", "cron": "0 0 * * *", "timezone": "Mars/Olympus"},
        {"name": "Not Url Safe", "cron": "@daily"},
        {"name": "x", "cron": "@daily", "catch_up": "sometimes"},
        {"name": "x", "cron": "@daily", "lookback_s": -1},
        {"name": "x", "cron": "@daily", "routing_key": "Bad Key!"},
        {"name": "x", "cron": "@daily", "payload": [1, 2]},
        {"name": "x", "cron": "@daily", "colour": "red"},
        {"cron": "@daily"},
    ],
)
async def test_bad_schedules_are_422_with_the_reason(scheduler_api: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await scheduler_api.post("/schedules", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]


async def test_conflicts_and_unknown_names(scheduler_api: httpx.AsyncClient) -> None:
    assert (await scheduler_api.post("/schedules", json={"name": "dup", "cron": "@daily"})).status_code == 201
    duplicate = await scheduler_api.post("/schedules", json={"name": "dup", "cron": "@hourly"})
    assert duplicate.status_code == 409
    assert (await scheduler_api.patch("/schedules/dup", json={"cron": "99 * * * *"})).status_code == 422
    assert (await scheduler_api.patch("/schedules/dup", json={"timezone": "Nowhere/Land"})).status_code == 422
    for call in (
        scheduler_api.get("/schedules/nope"),
        scheduler_api.delete("/schedules/nope"),
        scheduler_api.post("/schedules/nope/trigger"),
        scheduler_api.get("/schedules/nope/runs"),
        scheduler_api.get("/schedules/nope/preview"),
    ):
        assert (await call).status_code == 404


async def test_the_default_schedule_requests_yesterdays_report_and_the_reports_service_makes_it(
    infrastructure: Infrastructure, run_id: str, reports_db: str, broker_url: str, exchange_name: str, publish: Any
) -> None:
    async with migrated_database(infrastructure, f"scheduler_default_{run_id}", MIGRATIONS) as scheduler_url:
        engine = create_engine(scheduler_url, pool_size=1)
        async with engine.begin() as connection:  # midnight of 11 March is due
            await connection.execute(text("UPDATE schedules SET next_fire_at = '2026-03-11T00:00:00Z' WHERE name = 'daily-orders-report'"))
        await engine.dispose()
        reports_settings = ReportsSettings(database_url=reports_db, broker_url=broker_url, events_exchange=exchange_name, log_json=False)
        scheduler = build_app(
            _settings(scheduler_url, broker_url, exchange_name), clock=FixedClock(datetime(2026, 3, 11, 0, 0, 5, tzinfo=UTC))
        )
        async with reports_client(reports_settings):
            acked = observed.acked("reports.order.created")
            await publish(*(order_created(datetime(2026, 3, 10, hour, tzinfo=UTC), (hour + 1,)) for hour in range(3)))

            async def stored() -> bool:
                return observed.acked("reports.order.created") >= acked + 3

            await eventually(stored, what="the day's orders stored by the reports service")
            async with serving(scheduler) as scheduler_url, httpx.AsyncClient(base_url=scheduler_url) as client:
                reports_engine = create_engine(reports_db, pool_size=1)

                async def done() -> Any:
                    async with reports_engine.connect() as connection:
                        row = (await connection.execute(select(report_tasks).where(report_tasks.c.status == "succeeded"))).first()
                    return row

                task = await eventually(done, timeout_s=20, what="the scheduled report")
                await reports_engine.dispose()
                runs = (await client.get("/schedules/daily-orders-report/runs")).json()["items"]
    assert [run["task_id"] for run in runs if run["status"] == "fired"] == [str(task.id)], "the run links to the task it requested"
    assert task.requested_by == "scheduler:daily-orders-report"
    assert task.report_date == date(2026, 3, 10)
    assert task.scheduled_for == datetime(2026, 3, 11, tzinfo=UTC)
    assert (task.rows, task.total_products) == (3, 6)
