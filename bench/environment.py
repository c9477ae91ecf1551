"""Throwaway databases and vhosts for a benchmark run, on the local servers (127.0.0.1 only), and a check of the CPU's speed."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from shared.db import drop_database, migrate
from shared.testing.infrastructure import Infrastructure, provide_infrastructure

CPU_CHECK_ADDITIONS = 2_000_000


def cpu_check_ms() -> float:
    """Milliseconds a fixed pure-Python loop takes on the idle machine (median of three).

    A virtual machine's cores are not always as fast as the last time: here the same loop took
    from 61 to 110 ms within three minutes. Taken before a round, it tells a slow round from a slow suite.
    """
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for number in range(CPU_CHECK_ADDITIONS):
            total += number
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


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
