"""Throwaway databases and vhosts for a benchmark run, on the local servers (127.0.0.1 only)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from shared.db import drop_database, migrate
from shared.testing.infrastructure import Infrastructure, provide_infrastructure


@asynccontextmanager
async def bench_infrastructure() -> AsyncIterator[Infrastructure]:
    with provide_infrastructure() as infrastructure:
        yield infrastructure


@asynccontextmanager
async def scratch_vhost(infrastructure: Infrastructure) -> AsyncIterator[str]:
    vhost = f"bench-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(infrastructure.create_vhost, vhost)
    try:
        yield infrastructure.vhost_url(vhost)
    finally:
        await asyncio.to_thread(infrastructure.delete_vhost, vhost)


@asynccontextmanager
async def scratch_database(infrastructure: Infrastructure, prefix: str, migrations: Path | None = None) -> AsyncIterator[str]:
    url = infrastructure.database_url(f"bench_{prefix}_{uuid.uuid4().hex[:8]}")
    if migrations is not None:
        await migrate(migrations, url)
    else:
        from shared.db import ensure_database

        await ensure_database(url)
    try:
        yield url
    finally:
        await drop_database(url)
