"""The pool pings idle connections only, and never hands out one the server has closed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import asyncpg_dsn, create_driver_pool, create_engine


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


async def test_the_driver_pool_replaces_a_connection_the_server_closed(orders_db: str) -> None:
    pool = await create_driver_pool(orders_db, max_size=1)
    admin = await asyncpg.connect(asyncpg_dsn(orders_db))
    try:
        async with pool.acquire() as connection:
            backend = await connection.fetchval("SELECT pg_backend_pid()")
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", backend)
        await asyncio.sleep(0.05)
        async with pool.acquire() as connection:
            assert await connection.fetchval("SELECT pg_backend_pid()") != backend
    finally:
        await admin.close()
        await pool.close()


async def test_the_driver_pool_keeps_no_transaction_across_requests(orders_db: str) -> None:
    """Its reset skips asyncpg's RESET ALL round trip, but a transaction left open is still rolled back."""
    pool = await create_driver_pool(orders_db, max_size=1)
    try:
        async with pool.acquire() as connection:
            await connection.execute("CREATE TEMP TABLE IF NOT EXISTS left_open (n int)")
            await connection.execute("BEGIN")
            await connection.execute("INSERT INTO left_open VALUES (1)")
        async with pool.acquire() as connection:
            assert not connection.is_in_transaction()
            assert await connection.fetchval("SELECT count(*) FROM left_open") == 0
            await connection.execute("SET application_name = 'kept'")
        async with pool.acquire() as connection:
            # session state is kept: the reset is no longer a round trip on every release
            assert await connection.fetchval("SHOW application_name") == "kept"
    finally:
        await pool.close()
