"""``POST /orders`` straight to one orders process under wrk: throughput, latency, memory, outbox drain."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

from bench.environment import scratch_database, scratch_vhost
from bench.messaging import declare_target
from orders_service.main import MIGRATIONS as ORDERS_MIGRATIONS
from orders_service.models import outbox as outbox_table
from shared.db import create_engine
from shared.testing.fixtures import free_port
from shared.testing.infrastructure import Infrastructure

LUA = Path(__file__).with_name("post_order.lua")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def run_wrk(url: str, connections: int, seconds: int) -> dict[str, float]:
    process = await asyncio.create_subprocess_exec(
        "wrk",
        "-t2",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(LUA),
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    for line in output.decode().splitlines():
        if line.startswith("SUMMARY "):
            summary: dict[str, float] = json.loads(line.removeprefix("SUMMARY "))
            return summary
    raise RuntimeError(f"wrk printed no summary:\n{output.decode()}")


async def post_orders(infrastructure: Infrastructure, *, connections: int = 32, seconds: int = 10) -> dict[str, float]:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
    async with scratch_vhost(infrastructure) as broker_url, scratch_database(infrastructure, "http", ORDERS_MIGRATIONS) as url:
        await declare_target(broker_url)
        port = free_port()
        env = os.environ | {"ORDERS_DATABASE_URL": url, "BROKER_URL": broker_url, "LOG_LEVEL": "WARNING"}
        server = await asyncio.create_subprocess_exec(sys.executable, "-m", "orders_service.main", "--port", str(port), env=env)
        engine = create_engine(url, pool_size=1)
        try:
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient() as client:
                for _ in range(200):
                    try:
                        if (await client.get(f"{base}/health/live")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        await asyncio.sleep(0.05)
            await run_wrk(f"{base}/orders", connections, 2)  # warm-up
            peak_rss = 0.0

            async def sample_rss() -> None:
                nonlocal peak_rss
                while True:
                    peak_rss = max(peak_rss, rss_mb(server.pid))
                    await asyncio.sleep(0.2)

            sampler = asyncio.create_task(sample_rss())
            summary = await run_wrk(f"{base}/orders", connections, seconds)
            load_stopped = time.perf_counter()
            while True:
                async with engine.connect() as connection:
                    left = await connection.scalar(
                        select(func.count()).select_from(outbox_table).where(outbox_table.c.published_at.is_(None))
                    )
                if not left:
                    break
                await asyncio.sleep(0.02)
            drained_s = time.perf_counter() - load_stopped
            sampler.cancel()
        finally:
            server.terminate()
            await asyncio.wait_for(server.wait(), 30)
            await engine.dispose()
    duration_s = summary["duration_us"] / 1e6
    return {
        "connections": connections,
        "requests": summary["requests"],
        "rate": summary["requests"] / duration_s,
        "p50_ms": summary["p50_us"] / 1000,
        "p90_ms": summary["p90_us"] / 1000,
        "p99_ms": summary["p99_us"] / 1000,
        "errors": summary["socket_errors"] + summary["non_2xx"],
        "peak_rss_mb": peak_rss,
        "outbox_drained_s": drained_s,
    }
