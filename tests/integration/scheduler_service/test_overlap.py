"""Overlap policy per schedule (``concurrency``): an instant whose previous task is unfinished, allowed, skipped or replacing it.

The ticker runs on the real database; the task's end reaches the scheduler as ``report.generated``
on the real broker, consumed by the service itself.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select

from scheduler_service.handlers import TASKS_ENDED
from scheduler_service.main import build_app
from scheduler_service.models import outbox, schedule_runs, schedules
from shared.contracts.reports import ReportGenerated
from shared.db import create_engine, create_session_factory
from shared.messaging.envelope import Envelope
from shared.testing.clock import utc
from shared.testing.fixtures import eventually, serving, wait_until_consuming
from tests.integration.scheduler_service.test_schedules_api import _settings
from tests.integration.scheduler_service.test_ticker import _create, _ticker

HOURLY = {"cron": "0 * * * *", "catch_up": "skip", "lookback_s": 0}


@pytest.fixture
async def sessions(scheduler_db: str) -> Any:
    engine = create_engine(scheduler_db)
    yield create_session_factory(engine)
    await engine.dispose()


async def _runs(sessions: Any, name: str) -> list[dict[str, Any]]:
    async with sessions() as session:
        rows = await session.execute(
            select(schedule_runs).join(schedules).where(schedules.c.name == name).order_by(schedule_runs.c.scheduled_for)
        )
        return [dict(row._mapping) for row in rows]


async def _sent(sessions: Any, routing_key: str) -> list[dict[str, Any]]:
    async with sessions() as session:
        bodies = (await session.execute(select(outbox.c.body).where(outbox.c.routing_key == routing_key).order_by(outbox.c.id))).scalars()
        return [orjson.loads(body)["data"] for body in bodies]


async def test_forbid_skips_an_instant_while_the_previous_task_runs_and_fires_once_it_ended(sessions: Any) -> None:
    await _create(sessions, utc(2026, 1, 1, 0, 30), name="slow", concurrency="forbid", **HOURLY)
    ticker = _ticker(sessions)
    await ticker.tick(utc(2026, 1, 1, 1, 0, 1))
    await ticker.tick(utc(2026, 1, 1, 2, 0, 1))
    first, second = await _runs(sessions, "slow")
    assert (first["status"], second["status"]) == ("fired", "skipped")
    assert second["reason"] == f"previous run still running (task {first['task_id']})"

    async with sessions() as session, session.begin():
        await session.execute(TASKS_ENDED, {"status": "succeeded", "ids": [first["task_id"]]})
    await ticker.tick(utc(2026, 1, 1, 3, 0, 1))
    assert [run["status"] for run in await _runs(sessions, "slow")] == ["fired", "skipped", "fired"]


async def test_replace_cancels_the_unfinished_task_and_records_it(sessions: Any) -> None:
    await _create(sessions, utc(2026, 1, 1, 0, 30), name="latest-wins", concurrency="replace", **HOURLY)
    ticker = _ticker(sessions)
    await ticker.tick(utc(2026, 1, 1, 1, 0, 1))
    await ticker.tick(utc(2026, 1, 1, 2, 0, 1))
    first, second = await _runs(sessions, "latest-wins")
    assert (first["status"], first["task_status"]) == ("fired", "cancelled")
    assert (second["status"], second["task_status"]) == ("fired", None)
    assert second["reason"] == f"replaced the unfinished task {first['task_id']}"
    (cancel,) = await _sent(sessions, "report.cancel_requested")
    assert cancel["task_id"] == str(first["task_id"])
    assert cancel["report_date"] == "2025-12-31"  # the day the cancelled task reports on
    assert cancel["requested_by"] == "scheduler:latest-wins"
    assert len(await _sent(sessions, "report.requested")) == 2


async def test_allow_fires_whatever_the_previous_task_does(sessions: Any) -> None:
    await _create(sessions, utc(2026, 1, 1, 0, 30), name="eager", **HOURLY)
    ticker = _ticker(sessions)
    await ticker.tick(utc(2026, 1, 1, 1, 0, 1))
    await ticker.tick(utc(2026, 1, 1, 2, 0, 1))
    assert [run["status"] for run in await _runs(sessions, "eager")] == ["fired", "fired"]


async def test_the_scheduler_learns_a_tasks_end_from_report_generated(
    scheduler_db: str, broker_url: str, exchange_name: str, publish: Any
) -> None:
    async with serving(build_app(_settings(scheduler_db, broker_url, exchange_name))) as base, httpx.AsyncClient(base_url=base) as api:
        await wait_until_consuming(api)
        created = await api.post("/schedules", json={"name": "nightly", "cron": "@daily", "concurrency": "forbid"})
        assert created.json()["concurrency"] == "forbid"
        run = (await api.post("/schedules/nightly/trigger")).json()
        assert run["task_status"] is None
        generated = ReportGenerated(
            task_id=uuid.UUID(run["task_id"]),
            report_date=datetime.now(UTC).date(),
            orders=0,
            total_products=0,
            generated_at=datetime.now(UTC),
        )
        await publish(Envelope[ReportGenerated](type="report.generated", source="reports_service", data=generated))

        async def ended() -> bool:
            (listed,) = (await api.get("/schedules/nightly/runs")).json()["items"]
            return bool(listed["task_status"] == "succeeded")

        await eventually(ended, what="the run's task learned to have succeeded")
        refused = await api.patch("/schedules/nightly", json={"concurrency": "sometimes"})
        assert refused.status_code == 422
