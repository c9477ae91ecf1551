"""Composition root of the orders service. Run: ``python -m orders_service.main``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from orders_service import models, orders
from orders_service.routes import admin_router, router
from orders_service.settings import OrdersSettings
from shared.messaging.outbox import Outbox
from shared.runtime import ServiceRuntime
from shared.serve import serve
from shared.service import service_app
from shared.settings import load_settings
from shared.workers import Periodic

MIGRATIONS = Path(__file__).parent / "migrations"
KEY_PURGE_EVERY_S = 3600.0


def build_app(settings: OrdersSettings | None = None) -> FastAPI:
    settings = settings or load_settings(OrdersSettings)
    runtime = ServiceRuntime(settings, outbox=Outbox(models.outbox))
    ttl = timedelta(hours=settings.idempotency_ttl_hours)

    async def purge_keys() -> None:
        await orders.purge_expired_keys(runtime.session_factory, ttl)

    # every replica purges; concurrent purges are harmless (a plain DELETE)
    runtime.run("key_purge", Periodic("idempotency-key-purge", purge_keys, every_s=KEY_PURGE_EVERY_S))
    return service_app(
        runtime,
        title="Orders service",
        description="Accepts orders and publishes order.created through a transactional outbox.",
        routers=[router, admin_router],
    )


if __name__ == "__main__":
    serve(build_app, OrdersSettings, MIGRATIONS, outbox_table=models.outbox)
