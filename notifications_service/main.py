"""Composition root of the notifications service. Run: ``python -m notifications_service.main``."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from notifications_service import models
from notifications_service.dispatcher import Dispatcher
from notifications_service.handlers import build_subscriptions
from notifications_service.routes import router
from notifications_service.senders import Sender, build_sender
from notifications_service.settings import NotificationsSettings
from shared.db import asyncpg_dsn
from shared.runtime import ServiceRuntime
from shared.serve import serve
from shared.service import service_app
from shared.settings import load_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def build_app(settings: NotificationsSettings | None = None, *, sender: Sender | None = None) -> FastAPI:
    """``sender``: how mail leaves (a test's recorder); SMTP or the log, as configured, otherwise."""
    settings = settings or load_settings(NotificationsSettings)
    runtime = ServiceRuntime(settings)
    runtime.consume(
        build_subscriptions(reports_to=str(settings.reports_to) if settings.reports_to else None),
        processed_events=models.processed_events,
    )
    dispatcher = Dispatcher(
        runtime.session_factory,
        sender or build_sender(settings),
        mail_from=str(settings.mail_from),
        listen_dsn=asyncpg_dsn(settings.database_url.get_secret_value()) if settings.database_listen else None,
        batch_size=settings.dispatch_batch_size,
        poll_interval_s=settings.dispatch_poll_interval_s,
        max_attempts=settings.max_attempts,
        retry_base_s=settings.retry_base_s,
        retry_max_s=settings.retry_max_s,
    )
    runtime.run("dispatcher", dispatcher)
    return service_app(
        runtime,
        title="Notifications service",
        description="Order confirmations and report notices by e-mail, once per event.",
        routers=[router],
    )


if __name__ == "__main__":
    serve(build_app, NotificationsSettings, MIGRATIONS)
