"""Faults done to this machine's PostgreSQL and RabbitMQ, and to the suite's processes."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg

from shared.db import asyncpg_dsn
from shared.testing.infrastructure import Infrastructure


def postgres_cluster() -> str | None:
    """The Debian cluster version to stop and start, or None when this machine cannot (no pg_ctlcluster, not root)."""
    clusters = Path("/etc/postgresql")
    if shutil.which("pg_ctlcluster") is None or os.geteuid() != 0 or not clusters.is_dir():
        return None
    versions = sorted(path.name for path in clusters.iterdir())
    return versions[0] if versions else None


def _pg_ctl(version: str, *args: str) -> None:
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", *args], check=True, capture_output=True, timeout=60)


def stop_postgres_immediately(version: str) -> None:
    """``-m immediate``: no checkpoint, every connection cut, as a crash would."""
    _pg_ctl(version, "stop", "-m", "immediate")


def start_postgres(version: str) -> None:
    _pg_ctl(version, "start")
    deadline = time.monotonic() + 60
    while subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1"], check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise TimeoutError("PostgreSQL did not come back within 60 s")
        time.sleep(0.2)


async def terminate_backends(database_url: str, admin_url: str) -> int:
    """``pg_terminate_backend`` on every connection to one service's database; how many were cut."""
    database = database_url.rsplit("/", 1)[1].split("?", 1)[0]
    connection = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        cut = await connection.fetchval(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
    finally:
        await connection.close()
    return int(cut or 0)


def broker_vm_pids() -> list[int]:
    found = subprocess.run(["pgrep", "-f", "beam.smp"], capture_output=True, text=True, check=False)
    return [int(pid) for pid in found.stdout.split()]


def kill_broker() -> int:
    """``kill -9`` of the Erlang VM that runs RabbitMQ; how many processes were killed."""
    pids = broker_vm_pids()
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while broker_vm_pids() and time.monotonic() < deadline:
        time.sleep(0.1)
    return len(pids)


def restart_broker(infrastructure: Infrastructure) -> None:
    """Start the node again and wait until it runs (``await_startup`` fails until the node is up at all)."""
    subprocess.run(["rabbitmq-server", "-detached"], check=True, capture_output=True, timeout=60, start_new_session=True)
    deadline = time.monotonic() + 120
    while subprocess.run(["rabbitmqctl", "-q", "await_startup"], capture_output=True, timeout=130, check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise TimeoutError("RabbitMQ did not start within 120 s")
        time.sleep(1)
    infrastructure.start_broker()  # and its management API


def kill(pid: int, signum: signal.Signals = signal.SIGKILL) -> None:
    os.kill(pid, signum)


async def wait_for_pid(find: Callable[[], int | None], *, other_than: int | None = None, timeout_s: float = 60) -> int:
    """A pid from ``find()`` (a new one, when ``other_than`` is given), polling until it shows."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pid = await asyncio.to_thread(find)
        if pid is not None and pid != other_than:
            return int(pid)
        await asyncio.sleep(0.2)
    raise TimeoutError("the process did not come back")
