"""Composition root of the reports service. Run: ``python -m reports_service.main``."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from reports_service import models
from reports_service.handlers import build_subscriptions
from reports_service.routes import router
from reports_service.settings import ReportsSettings
from shared.messaging.outbox import Outbox
from shared.runtime import ServiceRuntime
from shared.serve import serve
from shared.service import service_app
from shared.settings import load_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def build_app(settings: ReportsSettings | None = None) -> FastAPI:
    settings = settings or load_settings(ReportsSettings)
    outbox = Outbox(models.outbox)
    runtime = ServiceRuntime(settings, outbox=outbox)
    runtime.consume(
        build_subscriptions(
            session_factory=runtime.session_factory, outbox=outbox, tz=settings.timezone, max_attempts=settings.retry_max_attempts
        ),
        processed_events=models.processed_events,
    )
    return service_app(
        runtime,
        title="Reports service",
        description="Daily order reports built set-based from order.created facts; on demand and on schedule.",
        routers=[router],
    )


if __name__ == "__main__":
    serve(build_app, ReportsSettings, MIGRATIONS, outbox_table=models.outbox)
