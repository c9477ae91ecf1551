"""The service defaults: one call gives a service its app with health, readiness, metrics,
request ids, caller identity, problem+json errors, the lifecycle of its runtime and, with an
outbox, its operators' ``/admin/<service>/outbox``, and, with a consumer,
``/admin/<service>/dead-letters``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI

from shared.runtime import ServiceRuntime
from shared.web.app import create_app
from shared.web.dead_letters_admin import dead_letters_router
from shared.web.health import Check
from shared.web.outbox_admin import outbox_admin_router


def service_app(
    runtime: ServiceRuntime[Any],
    *,
    title: str,
    description: str,
    routers: Sequence[APIRouter],
    checks: Sequence[Check] = (),
    service_name: str | None = None,
    behind_gateway: bool = True,
) -> FastAPI:
    """The app serving ``routers``; its lifespan runs ``runtime`` (pools, relay, consumer, workers),
    and readiness reports the runtime's checks and the service's own ``checks``. ``behind_gateway``:
    its routes take only calls carrying the gateway's internal token (when one is configured)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with runtime:
            runtime.attach(app, *checks)
            yield

    if runtime.outbox is not None and behind_gateway:
        routers = [*routers, outbox_admin_router(runtime.settings.service_name)]
    if runtime.dead_letters is not None and behind_gateway:
        routers = [*routers, dead_letters_router(runtime.settings.service_name)]
    app = create_app(
        title=title,
        service_name=service_name or runtime.settings.service_name,
        internal_token=runtime.settings.internal_token_value if behind_gateway else None,
        routers=routers,
        lifespan=lifespan,
        description=description,
    )
    app.state.runtime = runtime  # for the command line, before the lifespan attaches it
    return app
