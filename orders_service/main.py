"""Composition of the orders service: settings, runtime, routes. Run: ``python -m orders_service.main``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from orders_service import models, orders
from orders_service.routes import router
from orders_service.settings import OrdersSettings
from shared.runtime import ServiceRuntime
from shared.serve import serve
from shared.settings import load_settings
from shared.web.app import create_app

MIGRATIONS = Path(__file__).parent / "migrations"


def build_app(settings: OrdersSettings | None = None) -> FastAPI:
    settings = settings or load_settings(OrdersSettings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with ServiceRuntime(settings, outbox_table=models.outbox) as runtime:
            runtime.attach(app)
            purger = asyncio.create_task(
                orders.purge_expired_keys_forever(runtime.session_factory, timedelta(hours=settings.idempotency_ttl_hours))
            )
            yield
            purger.cancel()

    return create_app(
        title="Orders service",
        service_name=settings.service_name,
        internal_token=settings.internal_token_value,
        routers=[router],
        lifespan=lifespan,
        description="Accepts orders and publishes order.created through a transactional outbox.",
    )


if __name__ == "__main__":
    serve(build_app, OrdersSettings, MIGRATIONS, outbox_table=models.outbox)
