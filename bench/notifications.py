"""Order confirmations delivered per second, from queued ``order.created`` events to an SMTP sink."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.environment import scratch_database, scratch_vhost
from bench.messaging import fill_queue
from bench.smtp_sink import sink_command
from notifications_service.main import MIGRATIONS as NOTIFICATIONS_MIGRATIONS
from notifications_service.main import build_app
from notifications_service.models import notifications
from notifications_service.settings import NotificationsSettings
from shared.db import create_engine
from shared.ports import free_port
from shared.testing.fixtures import eventually
from shared.testing.infrastructure import Infrastructure, reachable

EXCHANGE = "events"


async def confirmations(infrastructure: Infrastructure, events: int = 5_000) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-mail-") as directory:
        async with (
            scratch_vhost(infrastructure) as broker_url,
            scratch_database(infrastructure, "mail", NOTIFICATIONS_MIGRATIONS) as url,
        ):
            await fill_queue(broker_url, events, "notifications")
            port = free_port()
            sink = await asyncio.create_subprocess_exec(*sink_command(port, Path(directory)), stdout=asyncio.subprocess.DEVNULL)
            await eventually(lambda: asyncio.to_thread(reachable, "127.0.0.1", port), timeout_s=10, what="the SMTP sink listening")
            settings = NotificationsSettings(
                database_url=url, broker_url=broker_url, events_exchange=EXCHANGE, smtp_port=port, log_json=False, log_level="WARNING"
            )
            app = build_app(settings)
            engine = create_engine(url, pool_size=1)
            try:
                started = time.perf_counter()
                async with app.router.lifespan_context(app):

                    async def all_sent() -> bool:
                        async with engine.connect() as db:
                            sent = await db.scalar(select(func.count()).select_from(notifications).where(notifications.c.status == "sent"))
                        return (sent or 0) >= events

                    await eventually(all_sent, timeout_s=120, what=f"{events:,} confirmations sent")
                    elapsed = time.perf_counter() - started
            finally:
                await engine.dispose()
                sink.terminate()
                await sink.wait()
    return {"events": events, "seconds": elapsed, "rate": events / elapsed}
