"""The pool pings idle connections only, and never hands out one the server has closed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import asyncpg_dsn, create_engine


@pytest.fixture
def pings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the dialect's pings (the real ping still runs)."""
    seen: list[int] = []
    ping: Callable[[AsyncAdapt_asyncpg_connection], None] = AsyncAdapt_asyncpg_connection.ping

    def counted(self: AsyncAdapt_asyncpg_connection) -> None:
        seen.append(1)
        ping(self)

    monkeypatch.setattr(AsyncAdapt_asyncpg_connection, "ping", counted)
    return seen


async def _use(engine: AsyncEngine, times: int) -> None:
    for _ in range(times):
        async with engine.connect() as connection:
            assert await connection.scalar(text("SELECT 1")) == 1


async def test_a_connection_in_use_a_moment_ago_is_not_pinged(orders_db: str, pings: list[int]) -> None:
    engine = create_engine(orders_db, pool_size=1, max_overflow=0)
    try:
        await _use(engine, 50)
        assert len(pings) <= 1  # at most the first checkout of the new connection
    finally:
        await engine.dispose()


async def test_an_idle_connection_is_pinged(orders_db: str, pings: list[int]) -> None:
    engine = create_engine(orders_db, pool_size=1, max_overflow=0, ping_after_idle_s=0.05)
    try:
        await _use(engine, 1)
        before = len(pings)
        await asyncio.sleep(0.1)
        await _use(engine, 1)
        assert len(pings) == before + 1
    finally:
        await engine.dispose()


async def test_a_connection_the_server_closed_is_replaced_at_once(orders_db: str) -> None:
    engine = create_engine(orders_db, pool_size=2, max_overflow=0)
    admin = await asyncpg.connect(asyncpg_dsn(orders_db))
    try:
        async with engine.connect() as connection:
            backend = await connection.scalar(text("SELECT pg_backend_pid()"))
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", backend)
        await asyncio.sleep(0.05)  # the socket closes; well inside the no-ping window
        async with engine.connect() as connection:
            assert await connection.scalar(text("SELECT pg_backend_pid()")) != backend
    finally:
        await admin.close()
        await engine.dispose()
