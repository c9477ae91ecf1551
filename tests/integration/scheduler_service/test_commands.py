"""Schedules publish commands of the scheduler's catalogue only, within the limits an operator sets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alembic import command

from scheduler_service.main import MIGRATIONS, build_app
from scheduler_service.settings import SchedulerSettings
from shared.db import alembic_config, create_engine, drop_database, migrate
from shared.testing.fixtures import eventually, serving, wait_until_consuming
from shared.testing.infrastructure import Infrastructure
from tests.integration.scheduler_service.test_schedules_api import _settings


@asynccontextmanager
async def _serving_api(settings: SchedulerSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(build_app(settings)) as base, httpx.AsyncClient(base_url=base) as client:
        await wait_until_consuming(client)  # readiness is degraded until the consumer attaches
        yield client


@pytest.fixture
def api_with(scheduler_db: str, broker_url: str, exchange_name: str) -> Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]:
    """``async with api_with(**settings) as client``: the scheduler's API with those settings."""
    return lambda **overrides: _serving_api(_settings(scheduler_db, broker_url, exchange_name, **overrides))


@pytest.fixture
async def api(api_with: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]) -> AsyncIterator[httpx.AsyncClient]:
    async with api_with() as client:
        yield client


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"routing_key": "order.created", "payload": {"order_id": "x"}}, "not a command the scheduler may publish"),
        ({"routing_key": "report.generated"}, "not a command the scheduler may publish"),
        ({"routing_key": "demo.heartbeat"}, "not a command the scheduler may publish"),
        ({"payload": {"scheduled_for": "2026-01-01T00:00:00Z"}}, "scheduled_for: Extra inputs are not permitted"),
        ({"payload": {"days_before": 400}}, "days_before"),
        ({"payload": {"days_before": "one"}}, "days_before"),
    ],
)
async def test_a_schedule_names_a_command_of_the_catalogue_with_its_payload(
    api: httpx.AsyncClient, body: dict[str, Any], reason: str
) -> None:
    response = await api.post("/schedules", json={"name": "x", "cron": "@daily"} | body)
    assert response.status_code == 422, response.text
    assert reason in response.json()["detail"]


async def test_a_change_is_held_to_the_same_rules(api: httpx.AsyncClient) -> None:
    assert (await api.post("/schedules", json={"name": "nightly", "cron": "@daily", "payload": {"days_before": 2}})).status_code == 201
    for patch, reason in [
        ({"routing_key": "order.created"}, "not a command"),
        ({"payload": {"scheduled_for": "x"}}, "scheduled_for"),
        ({"enabled": None}, "enabled: may be left out, not null"),
        ({"cron": None, "payload": None}, "cron, payload: may be left out, not null"),
    ]:
        response = await api.patch("/schedules/nightly", json=patch)
        assert response.status_code == 422, response.text
        assert reason in response.json()["detail"]
    assert (await api.get("/schedules/nightly")).json()["payload"] == {"days_before": 2}


async def test_the_operators_limits_are_422_or_409_with_the_reason(
    api_with: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]],
) -> None:
    async with api_with(max_schedules=2, min_interval_s=10, max_payload_bytes=12) as api:
        often = await api.post("/schedules", json={"name": "often", "cron": "*/5 * * * * *"})
        assert often.status_code == 422
        assert "5 s apart" in often.json()["detail"]
        large = await api.post("/schedules", json={"name": "large", "cron": "@daily", "payload": {"days_before": 1}})
        assert large.status_code == 422
        assert "more than the limit of 12" in large.json()["detail"]
        for name in ("one", "two"):
            assert (await api.post("/schedules", json={"name": name, "cron": "@daily"})).status_code == 201
        third = await api.post("/schedules", json={"name": "three", "cron": "@daily"})
        assert (third.status_code, third.json()["code"]) == (409, "schedule_limit_reached")
        assert (await api.patch("/schedules/one", json={"cron": "* * * * * *"})).status_code == 422


async def test_rows_that_break_the_rule_are_disabled_by_the_migration_with_the_reason(infrastructure: Infrastructure, run_id: str) -> None:
    url = infrastructure.database_url(f"scheduler_rules_{run_id}")
    await migrate(MIGRATIONS, url)  # creates the database at head; then back to before the rule
    try:
        config = alembic_config(MIGRATIONS, url)
        await asyncio.to_thread(command.downgrade, config, "scheduler_0002")
        engine = create_engine(url, pool_size=1)
        rows = [
            ("forged-orders", "order.created", '{"order_id": "x"}'),
            ("forged-report", "report.generated", "{}"),
            ("stops-every-tick", "report.requested", '{"scheduled_for": "x"}'),
            ("fractional", "report.requested", '{"days_before": 1.5}'),
            ("two-days-back", "report.requested", '{"days_before": 2}'),
        ]
        async with engine.begin() as connection:
            for name, routing_key, payload in rows:
                await connection.execute(
                    sa.text(
                        "INSERT INTO schedules (id, name, cron, timezone, routing_key, payload, next_fire_at) "
                        "VALUES (gen_random_uuid(), :name, '* * * * *', 'UTC', :routing_key, CAST(:payload AS jsonb), now())"
                    ),
                    {"name": name, "routing_key": routing_key, "payload": payload},
                )
        await asyncio.to_thread(command.upgrade, config, "head")
        async with engine.connect() as connection:
            found = {
                row.name: row
                for row in await connection.execute(sa.text("SELECT name, enabled, next_fire_at, disabled_reason FROM schedules"))
            }
        await engine.dispose()
    finally:
        await drop_database(url)
    for name in ("forged-orders", "forged-report", "stops-every-tick", "fractional"):
        assert (found[name].enabled, found[name].next_fire_at) == (False, None), name
    assert "'order.created' is not a command" in found["forged-orders"].disabled_reason
    assert "takes only days_before" in found["stops-every-tick"].disabled_reason
    assert "whole number" in found["fractional"].disabled_reason
    for name in ("two-days-back", "daily-orders-report"):
        assert (found[name].enabled, found[name].disabled_reason) == (True, None), name


async def test_readiness_is_degraded_while_a_schedule_keeps_failing(api: httpx.AsyncClient, scheduler_db: str) -> None:
    assert (await api.post("/schedules", json={"name": "every-second", "cron": "* * * * * *"})).status_code == 201
    engine = create_engine(scheduler_db, pool_size=1)
    async with engine.begin() as connection:  # a row written around the API, as an old version could have
        await connection.execute(sa.text("""UPDATE schedules SET payload = '{"scheduled_for": "x"}' WHERE name = 'every-second'"""))
    await engine.dispose()

    async def degraded() -> Any:
        health = (await api.get("/health/ready")).json()
        return health if health["status"] == "degraded" else None

    health = await eventually(degraded, timeout_s=10, what="readiness degraded by the failing schedule")
    assert health["checks"]["schedules"]["status"] == "down"
    assert "every-second" in health["checks"]["schedules"]["error"]
    schedule = (await api.get("/schedules/every-second")).json()
    assert schedule["failures"] >= 1
    assert "scheduled_for" in schedule["last_error"]
    assert "failed" in {run["status"] for run in (await api.get("/schedules/every-second/runs")).json()["items"]}
    assert (await api.post("/schedules/every-second/trigger")).status_code == 422

    mended = await api.patch("/schedules/every-second", json={"payload": {}})
    assert (mended.status_code, mended.json()["failures"]) == (200, 0)

    async def healthy() -> bool:
        return bool((await api.get("/health/ready")).json()["status"] == "healthy")

    await eventually(healthy, timeout_s=10, what="readiness healthy once the schedule fires again")
