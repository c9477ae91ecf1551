"""The whole suite as processes, started by the same launcher as ``make run``, driven only through the gateway."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import httpx
import pytest

from notifications_service.mail_catcher import caught_messages
from notifications_service.main import MIGRATIONS as NOTIFICATIONS_MIGRATIONS
from orders_service.main import MIGRATIONS as ORDERS_MIGRATIONS
from reports_service.main import MIGRATIONS as REPORTS_MIGRATIONS
from scheduler_service.main import MIGRATIONS as SCHEDULER_MIGRATIONS
from shared.testing.fixtures import migrated_database
from shared.testing.infrastructure import Infrastructure
from shared.testing.suite import running_suite, suite_environment

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "e2e-key-0001"
# one client per role beside the operator key the suite's own tests use
CLIENT_KEYS = {"shop-a": ("shop-a-key-0001", "shop"), "shop-b": ("shop-b-key-0001", "shop"), "bi": ("bi-key-00001", "analyst")}
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
    broker_users: list[str]

    def mails(self) -> list[Message]:
        return caught_messages(self.mail_dir)


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
        databases = {"orders": orders_db, "reports": reports_db, "scheduler": scheduler_db, "notifications": notifications_db}
        keys = ",".join([f"e2e:{API_KEY}:operator", *(f"{name}:{key}:{role}" for name, (key, role) in CLIENT_KEYS.items())])
        env = suite_environment(
            broker_url=infrastructure.vhost_url(vhost), exchange=exchange, databases=databases, mail_dir=workdir / "mail", api_keys=keys
        ) | {"NOTIFICATIONS_REPORTS_TO": "ops@example.com", "OUTBOX_POLL_INTERVAL_S": "0.5", "RETRY_TIERS_MS": "200,400,800"}
        log = workdir / "suite.log"
        try:
            with log.open("wb") as output:
                async with (
                    running_suite(ROOT / "Procfile", env, workdir, scale=f"reports={REPORTS_PROCESSES}", output=output) as state,
                    httpx.AsyncClient(base_url=state["gateway"], headers={"X-API-Key": API_KEY}, timeout=30) as gateway,
                ):
                    yield RunningSuite(
                        gateway, state["instances"], Path(state["mail_dir"]), vhost, exchange, infrastructure, log, state["broker_users"]
                    )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{log.read_text()[-5000:]}") from None
        finally:
            await asyncio.to_thread(infrastructure.delete_vhost, vhost)
