"""A service's outbox relay as a process of its own: ``python -m <service>.main relay``.

With ``OUTBOX_RELAY=external`` the service's HTTP process only writes outbox rows, and
this process publishes them. Sharing a process, the relay and the request handlers take
turns on one interpreter lock: under a saturating ``POST /orders`` load that cost the
requests about a quarter of their throughput (docs/benchmarks.md). Apart, the relay runs
on the machine's other core. It is the same ``ServiceRuntime`` relay (its own loop in a
thread), with the same health checks and metrics, served on the service's port + 1000;
several relay processes may run, since each batch is locked with ``SKIP LOCKED``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from sqlalchemy import Table

from shared.runtime import ServiceRuntime
from shared.settings import BaseServiceSettings
from shared.web.app import create_app


def build_relay_app(settings: BaseServiceSettings, outbox_table: Table) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with ServiceRuntime(settings, outbox_table=outbox_table, run_relay=True) as runtime:
            runtime.attach(app)
            yield

    return create_app(
        title=f"{settings.service_name} outbox relay",
        service_name=f"{settings.service_name}-relay",
        routers=[],
        lifespan=lifespan,
        description="Publishes the service's outbox; serves only health and metrics.",
    )
