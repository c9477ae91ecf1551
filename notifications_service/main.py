"""Composition of the notifications service. Run: ``python -m notifications_service.main``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI

from notifications_service import models
from notifications_service.dispatcher import Dispatcher
from notifications_service.handlers import build_subscriptions
from notifications_service.routes import router
from notifications_service.senders import build_sender
from notifications_service.settings import NotificationsSettings
from shared.db import asyncpg_dsn
from shared.messaging.consumer import Subscription
from shared.runtime import ServiceRuntime
from shared.serve import serve
from shared.settings import load_settings
from shared.web.app import create_app
from shared.web.health import Check

MIGRATIONS = Path(__file__).parent / "migrations"


def build_app(settings: NotificationsSettings | None = None) -> FastAPI:
    settings = settings or load_settings(NotificationsSettings)

    def subscribe(_: ServiceRuntime[NotificationsSettings]) -> list[Subscription]:
        return build_subscriptions(reports_to=str(settings.reports_to) if settings.reports_to else None)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with ServiceRuntime(settings, processed_events_table=models.processed_events, subscribe=subscribe) as runtime:
            dispatcher = Dispatcher(
                runtime.session_factory,
                build_sender(settings),
                mail_from=str(settings.mail_from),
                listen_dsn=asyncpg_dsn(settings.database_url.get_secret_value()),
                batch_size=settings.dispatch_batch_size,
                poll_interval_s=settings.dispatch_poll_interval_s,
                max_attempts=settings.max_attempts,
                retry_base_s=settings.retry_base_s,
                retry_max_s=settings.retry_max_s,
            )

            async def dispatching() -> bool:
                return dispatcher.running

            runtime.attach(app, Check("dispatcher", dispatching, critical=True))
            dispatcher.start()
            try:
                yield
            finally:
                await dispatcher.stop()

    return create_app(
        title="Notifications service",
        service_name=settings.service_name,
        internal_token=settings.internal_token_value,
        routers=[router],
        lifespan=lifespan,
        description="Order confirmations and report notices by e-mail, once per event.",
    )


if __name__ == "__main__":
    serve(build_app, NotificationsSettings, MIGRATIONS)
