"""Scheduler: 10,000 schedules due at one instant across 3 replicas, and CPU use when idle."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text

from bench.environment import scratch_database, scratch_vhost
from bench.http_load import wait_until_live
from bench.messaging import declare_target
from scheduler_service.main import MIGRATIONS as SCHEDULER_MIGRATIONS
from scheduler_service.models import outbox, schedule_runs, schedules
from scheduler_service.ticker import CHANGED_CHANNEL
from shared.db import create_engine
from shared.messaging.topology import REPORT_REQUESTED
from shared.ports import free_port
from shared.testing.fixtures import eventually
from shared.testing.infrastructure import Infrastructure


async def _start(url: str, broker_url: str, count: int) -> list[asyncio.subprocess.Process]:
    """``count`` scheduler processes, returned once every one answers its liveness probe."""
    env = os.environ | {"SCHEDULER_DATABASE_URL": url, "BROKER_URL": broker_url, "LOG_LEVEL": "WARNING"}
    started = []
    for _ in range(count):
        port = free_port()
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "scheduler_service.main", "--port", str(port), env=env)
        started.append((process, port))
    for process, port in started:
        await wait_until_live(f"http://127.0.0.1:{port}/health/live", process)
    return [process for process, _ in started]


async def _stop(processes: list[asyncio.subprocess.Process]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        await asyncio.wait_for(process.wait(), 30)


async def same_instant(infrastructure: Infrastructure, count: int = 10_000, replicas: int = 3) -> dict[str, Any]:
    """All schedules name one instant a few seconds ahead, written (with the API's NOTIFY) once
    the replicas run; the time until every one is claimed, counted after the instant."""
    async with scratch_vhost(infrastructure) as broker_url, scratch_database(infrastructure, "sched", SCHEDULER_MIGRATIONS) as url:
        await declare_target(broker_url, routing_key=REPORT_REQUESTED)
        engine = create_engine(url, pool_size=2)
        processes = await _start(url, broker_url, replicas)
        instant = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
        expression = f"{instant.second} {instant.minute} {instant.hour} * * *"
        rows = [
            {
                "id": uuid.uuid4(),
                "name": f"load-{n}",
                "cron": expression,
                "timezone": "UTC",
                "routing_key": REPORT_REQUESTED,
                "payload": {"days_before": n % 367},
                "catch_up": "latest",
                "lookback_s": 3600,
                "next_fire_at": instant,
            }
            for n in range(count)
        ]
        try:
            async with engine.begin() as connection:
                await connection.execute(insert(schedules), rows)
                await connection.execute(text(f"NOTIFY {CHANGED_CHANNEL}"))
            if datetime.now(UTC) > instant - timedelta(seconds=1):
                raise RuntimeError("writing the schedules took until the instant; the figure would include their loading")
            await asyncio.sleep(max(0.0, (instant - datetime.now(UTC)).total_seconds()))

            async def all_claimed() -> bool:
                async with engine.connect() as connection:
                    claimed = await connection.scalar(select(func.count()).select_from(schedule_runs))
                return (claimed or 0) >= count

            await eventually(all_claimed, timeout_s=60, interval_s=0.02, what=f"{count:,} schedules claimed")
            lag_s = (datetime.now(UTC) - instant).total_seconds()
            async with engine.connect() as connection:
                fired = await connection.scalar(select(func.count()).select_from(schedule_runs).where(schedule_runs.c.status == "fired"))
                distinct = await connection.scalar(select(func.count(func.distinct(schedule_runs.c.schedule_id))))
                events = await connection.scalar(select(func.count()).select_from(outbox))
        finally:
            await _stop(processes)
            await engine.dispose()
    if not fired == distinct == events == count:
        raise RuntimeError(f"not exactly once: fired={fired}, schedules={distinct}, events={events}, expected {count}")
    return {"schedules": count, "replicas": replicas, "all_fired_after_s": lag_s}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def idle_cpu(infrastructure: Infrastructure, count: int = 100, seconds: float = 5.0) -> dict[str, Any]:
    """CPU share of one scheduler process holding ``count`` schedules that are not due."""
    async with scratch_vhost(infrastructure) as broker_url, scratch_database(infrastructure, "idle", SCHEDULER_MIGRATIONS) as url:
        engine = create_engine(url, pool_size=1)
        rows = [
            {
                "id": uuid.uuid4(),
                "name": f"idle-{n}",
                "cron": f"{n % 60} {n % 24} * * *",
                "timezone": "Europe/Berlin",
                "routing_key": REPORT_REQUESTED,
                "payload": {},
                "catch_up": "latest",
                "lookback_s": 3600,
            }
            for n in range(count)
        ]
        async with engine.begin() as connection:
            await connection.execute(insert(schedules), rows)
        await engine.dispose()
        await declare_target(broker_url, routing_key=REPORT_REQUESTED)
        (process,) = await _start(url, broker_url, 1)
        try:
            await asyncio.sleep(1)  # the first tick is not idle time
            before, started = _cpu_seconds(process.pid), time.perf_counter()
            await asyncio.sleep(seconds)
            used, elapsed = _cpu_seconds(process.pid) - before, time.perf_counter() - started
        finally:
            await _stop([process])
    return {"schedules": count, "seconds": elapsed, "cpu_percent": 100 * used / elapsed}
