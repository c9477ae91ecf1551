"""Composition root of the scheduler service. Run: ``python -m scheduler_service.main``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from scheduler_service import models
from scheduler_service.handlers import build_subscriptions
from scheduler_service.routes import admin_router, router
from scheduler_service.settings import SchedulerSettings
from scheduler_service.ticker import Clock, Ticker
from shared.db import asyncpg_dsn
from shared.messaging.outbox import Outbox
from shared.runtime import ServiceRuntime
from shared.serve import serve
from shared.service import service_app
from shared.settings import load_settings
from shared.web.health import Check
from shared.workers import Periodic

MIGRATIONS = Path(__file__).parent / "migrations"


def build_app(settings: SchedulerSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """``clock``: the ticker's time (tests move it); the system clock otherwise."""
    settings = settings or load_settings(SchedulerSettings)
    outbox = Outbox(models.outbox)
    runtime = ServiceRuntime(settings, outbox=outbox)
    ticker = Ticker(
        runtime.session_factory,
        outbox,
        clock=clock,
        listen_dsn=asyncpg_dsn(settings.database_url.get_secret_value()),
        grace=timedelta(seconds=settings.misfire_grace_s),
        max_sleep_s=settings.max_sleep_s,
        batch_size=settings.tick_batch_size,
        max_catch_up=settings.max_catch_up,
        failure_backoff_max_s=settings.failure_backoff_max_s,
    )
    runtime.run("ticker", ticker)
    runtime.run("schedule-gauges", Periodic("schedule-gauges", ticker.observe, every_s=settings.gauges_every_s))
    runtime.consume(build_subscriptions(), processed_events=models.processed_events)

    async def schedules_firing() -> bool:
        failing = await ticker.failing_schedules()
        if failing:
            raise RuntimeError("failing schedules: " + "; ".join(failing))
        return True

    return service_app(
        runtime,
        title="Scheduler service",
        description="Cron schedules in any time zone; each instant fired exactly once by any number of replicas.",
        routers=[router, admin_router],
        checks=[Check("schedules", schedules_firing, critical=False)],
    )


if __name__ == "__main__":
    serve(build_app, SchedulerSettings, MIGRATIONS, outbox_table=models.outbox)
