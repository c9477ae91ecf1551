"""``POST /orders`` straight to one orders process under wrk: throughput, latency, memory, outbox drain.

The service runs as the Procfile and compose run it: the HTTP process with
``OUTBOX_RELAY=external`` and the orders relay as a process of its own.
"""

from __future__ import annotations

import asyncio
import os
import time

from bench.environment import scratch_database, scratch_vhost
from bench.http_load import require_wrk, rss_mb, run_wrk, start_python, stop, wait_until_live
from bench.messaging import WAIT_S, declare_target, outbox_drained
from orders_service.main import MIGRATIONS as ORDERS_MIGRATIONS
from shared.db import create_engine
from shared.ports import free_port
from shared.testing.fixtures import eventually
from shared.testing.infrastructure import Infrastructure

ORDER = (
    '{"customer_email":"bench@example.com","currency":"EUR","items":'
    '[{"sku":"SKU-1","quantity":2,"unit_price":"9.99"},{"sku":"SKU-2","quantity":1,"unit_price":"5.00"}]}'
)


async def post_orders(infrastructure: Infrastructure, *, connections: int = 32, seconds: int = 6) -> dict[str, float]:
    require_wrk()
    async with scratch_vhost(infrastructure) as broker_url, scratch_database(infrastructure, "http", ORDERS_MIGRATIONS) as url:
        await declare_target(broker_url)
        port = free_port()
        env = os.environ | {"ORDERS_DATABASE_URL": url, "BROKER_URL": broker_url, "LOG_LEVEL": "WARNING"}
        server = await start_python("orders_service.main", "--port", str(port), env=env | {"OUTBOX_RELAY": "external"})
        relay_port = free_port()
        relay = await start_python("orders_service.main", "relay", "--port", str(relay_port), env=env)
        engine = create_engine(url, pool_size=1)
        try:
            base = f"http://127.0.0.1:{port}"
            await wait_until_live(f"{base}/health/live", server)
            await wait_until_live(f"http://127.0.0.1:{relay_port}/health/live", relay)
            await run_wrk(f"{base}/orders", connections=connections, seconds=2, method="POST", body=ORDER)  # warm-up
            peak_rss = relay_rss = 0.0

            async def sample_rss() -> None:
                nonlocal peak_rss, relay_rss
                while True:
                    peak_rss = max(peak_rss, rss_mb(server.pid))
                    relay_rss = max(relay_rss, rss_mb(relay.pid))
                    await asyncio.sleep(0.2)

            sampler = asyncio.create_task(sample_rss())
            summary = await run_wrk(f"{base}/orders", connections=connections, seconds=seconds, method="POST", body=ORDER)
            load_stopped = time.perf_counter()
            await eventually(lambda: outbox_drained(engine), timeout_s=WAIT_S, interval_s=0.02, what="the relay to drain the outbox")
            drained_s = time.perf_counter() - load_stopped
            sampler.cancel()
        finally:
            await stop(server)
            await stop(relay)
            await engine.dispose()
    return {
        "connections": connections,
        "seconds": seconds,
        **summary,
        "peak_rss_mb": peak_rss,
        "relay_rss_mb": relay_rss,
        "outbox_drained_s": drained_s,
    }
