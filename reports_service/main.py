"""Composition root of the reports service. Run: ``python -m reports_service.main``."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from reports_service import models
from reports_service.handlers import build_subscriptions
from reports_service.peers import HttpFiredTasks, HttpOrdersDays
from reports_service.reconciliation import OrdersDays, scheduled_reconciliation
from reports_service.reports import local_today
from reports_service.routes import router
from reports_service.settings import ReportsSettings
from reports_service.views import FiredTasks
from shared.messaging.outbox import Outbox
from shared.runtime import ServiceRuntime
from shared.serve import serve
from shared.service import service_app
from shared.settings import load_settings
from shared.workers import Periodic

MIGRATIONS = Path(__file__).parent / "migrations"


def build_app(settings: ReportsSettings | None = None, *, orders: OrdersDays | None = None, fired: FiredTasks | None = None) -> FastAPI:
    """``orders``: where reconciliation reads the orders' day counts, ``fired``: where a task a schedule fired is
    found before its request arrives (a test's fakes); ``REPORTS_ORDERS_URL`` and ``REPORTS_SCHEDULER_URL`` otherwise."""
    settings = settings or load_settings(ReportsSettings)
    token, timeout_s = settings.internal_token_value, settings.peer_timeout_s
    if orders is None and settings.orders_url:
        orders = HttpOrdersDays(settings.orders_url, internal_token=token, timeout_s=timeout_s)
    if fired is None and settings.scheduler_url:
        fired = HttpFiredTasks(settings.scheduler_url, internal_token=token, timeout_s=timeout_s)
    outbox = Outbox(models.outbox)
    runtime = ServiceRuntime(settings, outbox=outbox)
    runtime.consume(
        build_subscriptions(
            session_factory=runtime.session_factory, outbox=outbox, tz=settings.timezone, max_attempts=settings.retry_max_attempts
        ),
        processed_events=models.processed_events,
    )
    if orders is not None:
        tz = settings.timezone
        job = scheduled_reconciliation(runtime.session_factory, orders, tz=tz, days=settings.reconcile_days, today=lambda: local_today(tz))
        runtime.run("reconciliation", Periodic("reconciliation", job, every_s=settings.reconcile_every_s))
    app = service_app(
        runtime,
        title="Reports service",
        description="Daily order reports built set-based from order.created facts; on demand and on schedule.",
        routers=[router],
    )
    app.state.orders_days = orders
    app.state.fired_tasks = fired
    return app


if __name__ == "__main__":
    serve(build_app, ReportsSettings, MIGRATIONS, outbox_table=models.outbox)
