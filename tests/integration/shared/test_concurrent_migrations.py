"""Replicas that migrate as they start (an init container each, under Kubernetes) may run the
migrations at the same moment on a fresh database: they take turns and every one succeeds."""

from __future__ import annotations

import asyncio
import sys
import time

from sqlalchemy import text

from shared.db import create_engine, drop_database, ensure_database
from shared.testing.infrastructure import Infrastructure

# one process per replica, as in a cluster (Alembic's context is global to a process); each imports
# everything first, then waits for the same instant so the migrations really overlap
MIGRATE = """
import asyncio, sys, time
from orders_service.main import MIGRATIONS
from shared.db import migrate
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
asyncio.run(migrate(MIGRATIONS, sys.argv[1], create=False))
"""
REPLICAS = 4


async def test_four_replicas_migrating_together_on_a_fresh_database_all_succeed(infrastructure: Infrastructure, run_id: str) -> None:
    url = infrastructure.database_url(f"orders_concurrent_{run_id}")
    await ensure_database(url)
    try:
        start_at = str(time.time() + 5)
        processes = [
            await asyncio.create_subprocess_exec(sys.executable, "-c", MIGRATE, url, start_at, stderr=asyncio.subprocess.PIPE)
            for _ in range(REPLICAS)
        ]
        outcomes = await asyncio.wait_for(asyncio.gather(*(process.communicate() for process in processes)), timeout=120)
        failures = [stderr.decode()[-2000:] for process, (_, stderr) in zip(processes, outcomes, strict=True) if process.returncode]
        assert failures == []
        engine = create_engine(url, pool_size=1)
        try:
            async with engine.connect() as connection:
                versions = (await connection.execute(text("SELECT version_num FROM alembic_version_orders"))).scalars().all()
        finally:
            await engine.dispose()
        assert len(versions) == 1
    finally:
        await drop_database(url)
