"""The whole suite as processes, started by the same launcher as ``make run``, driven only through the gateway."""

from __future__ import annotations

import asyncio
import email
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest

from notifications_service.main import MIGRATIONS as NOTIFICATIONS_MIGRATIONS
from orders_service.main import MIGRATIONS as ORDERS_MIGRATIONS
from reports_service.main import MIGRATIONS as REPORTS_MIGRATIONS
from scheduler_service.main import MIGRATIONS as SCHEDULER_MIGRATIONS
from shared.testing.fixtures import eventually, migrated_database
from shared.testing.infrastructure import Infrastructure

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "e2e-key-0001"
REPORTS_PROCESSES = 3


@dataclass
class RunningSuite:
    gateway: httpx.AsyncClient
    instances: dict[str, list[str]]
    mail_dir: Path
    vhost: str
    exchange: str
    infrastructure: Infrastructure
    log: Path

    def mails(self) -> list[Message]:
        return [email.message_from_bytes(path.read_bytes()) for path in sorted(self.mail_dir.glob("*.eml"))]


def pid_listening_on(port: int) -> int | None:
    """The process with a listening TCP socket on ``port`` (Linux /proc), to stop one instance of many."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                inodes.add(fields[9])
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            for fd in fd_dir.iterdir():
                if os.readlink(fd).removeprefix("socket:[").removesuffix("]") in inodes:
                    return int(fd_dir.parent.name)
        except OSError:
            continue
    return None


@pytest.fixture(scope="module")
async def suite(infrastructure: Infrastructure, run_id: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningSuite]:
    workdir = tmp_path_factory.mktemp("suite")
    vhost = f"e2e-{run_id}-{uuid.uuid4().hex[:6]}"
    exchange = f"events-e2e-{uuid.uuid4().hex[:6]}"
    await asyncio.to_thread(infrastructure.create_vhost, vhost)
    async with (
        migrated_database(infrastructure, f"e2e_orders_{run_id}", ORDERS_MIGRATIONS) as orders_db,
        migrated_database(infrastructure, f"e2e_reports_{run_id}", REPORTS_MIGRATIONS) as reports_db,
        migrated_database(infrastructure, f"e2e_scheduler_{run_id}", SCHEDULER_MIGRATIONS) as scheduler_db,
        migrated_database(infrastructure, f"e2e_notifications_{run_id}", NOTIFICATIONS_MIGRATIONS) as notifications_db,
    ):
        env = os.environ | {
            "ENVIRONMENT": "test",
            "LOG_LEVEL": "WARNING",
            "BROKER_URL": infrastructure.vhost_url(vhost),
            "EVENTS_EXCHANGE": exchange,
            "ORDERS_DATABASE_URL": orders_db,
            "REPORTS_DATABASE_URL": reports_db,
            "SCHEDULER_DATABASE_URL": scheduler_db,
            "NOTIFICATIONS_DATABASE_URL": notifications_db,
            "NOTIFICATIONS_MAIL_CATCHER_DIR": str(workdir / "mail"),
            "NOTIFICATIONS_REPORTS_TO": "ops@example.com",
            "REPORTS_TIMEZONE": "UTC",
            "GATEWAY_API_KEYS": f"e2e:{API_KEY}",
            "GATEWAY_RATE_LIMIT_PER_S": "100000",
            "GATEWAY_RATE_LIMIT_BURST": "100000",
            "OUTBOX_POLL_INTERVAL_S": "0.5",
            "RETRY_BASE_DELAY_MS": "200",
        }
        state_file, log = workdir / "state.json", workdir / "suite.log"
        with log.open("wb") as output:
            launcher = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "deploy.launcher",
                "--procfile",
                str(ROOT / "Procfile"),
                "--free-ports",
                "--scale",
                f"reports={REPORTS_PROCESSES}",
                "--state-file",
                str(state_file),
                env=env,
                cwd=ROOT,
                stdout=output,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            state: dict[str, Any] = await eventually(lambda: _read_state(state_file), timeout_s=30, what="the launcher's plan")
            headers = {"X-API-Key": API_KEY}
            async with httpx.AsyncClient(base_url=state["gateway"], headers=headers, timeout=30) as gateway:
                running = RunningSuite(gateway, state["instances"], Path(state["mail_dir"]), vhost, exchange, infrastructure, log)

                async def healthy() -> bool:
                    if launcher.returncode is not None:
                        raise AssertionError(f"the suite stopped during start-up:\n{log.read_text()[-5000:]}")
                    try:
                        return bool((await gateway.get("/health")).json()["status"] == "healthy")
                    except (httpx.HTTPError, ValueError):
                        return False

                await eventually(healthy, timeout_s=90, interval_s=0.5, what="every service healthy through the gateway")
                yield running
        finally:
            if launcher.returncode is None:
                launcher.send_signal(signal.SIGINT)
                try:
                    await asyncio.wait_for(launcher.wait(), 40)
                except TimeoutError:
                    os.killpg(launcher.pid, signal.SIGKILL)
            await asyncio.to_thread(infrastructure.delete_vhost, vhost)


async def _read_state(path: Path) -> dict[str, Any] | None:
    """The launcher writes its plan (URLs, mail directory) before it starts anything."""
    text = await asyncio.to_thread(lambda: path.read_text() if path.exists() else "")
    state: dict[str, Any] | None = json.loads(text) if text else None
    return state
