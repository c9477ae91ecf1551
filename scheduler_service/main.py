"""Composition of the scheduler service. Run: ``python -m scheduler_service.main``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from scheduler_service import models
from scheduler_service.routes import router
from scheduler_service.settings import SchedulerSettings
from scheduler_service.ticker import Clock, Ticker
from shared.db import asyncpg_dsn
from shared.runtime import ServiceRuntime
from shared.serve import serve
from shared.settings import load_settings
from shared.web.app import create_app
from shared.web.health import Check

MIGRATIONS = Path(__file__).parent / "migrations"


def build_app(settings: SchedulerSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or load_settings(SchedulerSettings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with ServiceRuntime(settings, outbox_table=models.outbox) as runtime:
            assert runtime.outbox is not None
            ticker = Ticker(
                runtime.session_factory,
                runtime.outbox,
                clock=clock,
                listen_dsn=asyncpg_dsn(settings.database_url.get_secret_value()),
                grace=timedelta(seconds=settings.misfire_grace_s),
                max_sleep_s=settings.max_sleep_s,
                batch_size=settings.tick_batch_size,
                max_catch_up=settings.max_catch_up,
                failure_backoff_max_s=settings.failure_backoff_max_s,
            )

            async def ticking() -> bool:
                return ticker.running

            async def schedules_firing() -> bool:
                failing = await ticker.failing_schedules()
                if failing:
                    raise RuntimeError("failing schedules: " + "; ".join(failing))
                return True

            runtime.attach(app, Check("ticker", ticking, critical=True), Check("schedules", schedules_firing, critical=False))
            app.state.ticker = ticker
            ticker.start()
            try:
                yield
            finally:
                await ticker.stop()

    return create_app(
        title="Scheduler service",
        service_name=settings.service_name,
        internal_token=settings.internal_token_value,
        routers=[router],
        lifespan=lifespan,
        description="Cron schedules in any time zone; each instant fired exactly once by any number of replicas.",
    )


if __name__ == "__main__":
    serve(build_app, SchedulerSettings, MIGRATIONS, outbox_table=models.outbox)
