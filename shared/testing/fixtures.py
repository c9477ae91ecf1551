"""Pytest fixtures shared by every service's tests (registered with ``pytest_plugins``)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import text

from shared.db import create_engine, drop_database, migrate
from shared.ports import free_port
from shared.testing.infrastructure import Infrastructure, provide_infrastructure


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[Infrastructure]:
    with provide_infrastructure() as provided:
        yield provided


@pytest.fixture(scope="session")
def run_id() -> str:
    """Unique per test session: databases and vhosts of two runs never meet."""
    return uuid.uuid4().hex[:10]


@asynccontextmanager
async def migrated_database(infrastructure: Infrastructure, name: str, migrations_dir: Path) -> AsyncIterator[str]:
    url = infrastructure.database_url(name)
    await migrate(migrations_dir, url)
    try:
        yield url
    finally:
        await drop_database(url)


async def truncate_all(url: str) -> None:
    """Empty every table of the database except Alembic's, for a clean test."""
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        async with engine.begin() as connection:
            names = (
                (
                    await connection.execute(
                        text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE 'alembic_version%'")
                    )
                )
                .scalars()
                .all()
            )
            if names:
                await connection.execute(text("TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture
async def broker_url(infrastructure: Infrastructure, run_id: str) -> AsyncIterator[str]:
    """A fresh vhost per test: its queues and exchanges vanish with it."""
    vhost = f"test-{run_id}-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(infrastructure.create_vhost, vhost)
    try:
        yield infrastructure.vhost_url(vhost)
    finally:
        await asyncio.to_thread(infrastructure.delete_vhost, vhost)


@pytest.fixture
def exchange_name() -> str:
    return f"events-{uuid.uuid4().hex[:8]}"


@asynccontextmanager
async def serving(app: FastAPI, port: int | None = None, *, http: str = "httptools") -> AsyncIterator[str]:
    """Run the app on a real socket in this event loop (lifespan included); yields its base URL.

    ``http``: the HTTP protocol, by default the one the services run with (``shared.serve``)."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, http=http, log_config=None, lifespan="on", access_log=False))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("server stopped during start-up")
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def eventually(
    probe: Callable[[], Awaitable[Any]], *, timeout_s: float = 15.0, interval_s: float = 0.05, what: str = "condition"
) -> Any:
    """Poll until ``probe`` returns something truthy; fail with ``what`` after the deadline."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last value: {last!r}")


async def wait_until_consuming(client: Any, timeout_s: float = 15.0) -> None:
    """A service's consumers attach in the background after start-up; wait for readiness to say so."""

    async def consuming() -> bool:
        return bool((await client.get("/health/ready")).json()["checks"]["consumers"]["status"] == "up")

    await eventually(consuming, timeout_s=timeout_s, what="consumers attached")


def plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of a PostgreSQL ``EXPLAIN (FORMAT JSON)`` plan, the root first."""
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)
