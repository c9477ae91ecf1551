"""Composition of the reports service. Run: ``python -m reports_service.main``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI

from reports_service import models
from reports_service.handlers import build_subscriptions
from reports_service.routes import router
from reports_service.settings import ReportsSettings
from shared.messaging.consumer import Subscription
from shared.runtime import ServiceRuntime
from shared.serve import serve
from shared.settings import load_settings
from shared.web.app import create_app

MIGRATIONS = Path(__file__).parent / "migrations"


def build_app(settings: ReportsSettings | None = None) -> FastAPI:
    settings = settings or load_settings(ReportsSettings)

    def subscribe(runtime: ServiceRuntime[ReportsSettings]) -> list[Subscription]:
        assert runtime.outbox is not None
        return build_subscriptions(session_factory=runtime.session_factory, outbox=runtime.outbox, tz=settings.timezone)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with ServiceRuntime(
            settings, outbox_table=models.outbox, processed_events_table=models.processed_events, subscribe=subscribe
        ) as runtime:
            runtime.attach(app)
            yield

    return create_app(
        title="Reports service",
        service_name=settings.service_name,
        internal_token=settings.internal_token_value,
        routers=[router],
        lifespan=lifespan,
        description="Daily order reports built set-based from order.created facts; on demand and on schedule.",
    )


if __name__ == "__main__":
    serve(build_app, ReportsSettings, MIGRATIONS, outbox_table=models.outbox)
