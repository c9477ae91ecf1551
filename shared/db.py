"""Database plumbing: engine, one session factory per process, naming convention, migrations."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy import ColumnElement, FromClause, MetaData, Row, Select, Table, event, func, literal_column, select, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SessionFactory = async_sessionmaker[AsyncSession]


def make_metadata() -> MetaData:
    """Every service's MetaData carries the same naming convention so migrations stay predictable."""
    return MetaData(naming_convention=NAMING_CONVENTION)


# A connection handed back less than this long ago is trusted without a ping (HikariCP's
# ``aliveBypassWindowMs`` has the same default); one the driver already knows is closed is not.
PING_AFTER_IDLE_S = 0.5


def create_engine(url: str, *, pool_size: int = 10, max_overflow: int = 10, ping_after_idle_s: float = PING_AFTER_IDLE_S) -> AsyncEngine:
    """An engine whose pool pings a connection before use, unless it was in use a moment ago.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout, and its asyncpg ping is three round
    trips (BEGIN, a statement, ROLLBACK): more than the request's own insert. A connection busy
    half a second ago is alive unless the server closed it, and then asyncpg has already seen
    the socket close, which ``is_closed()`` reports.
    """
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=max_overflow, pool_recycle=1800)
    _ping_idle_connections(engine, ping_after_idle_s)
    return engine


def _ping_idle_connections(engine: AsyncEngine, idle_s: float) -> None:
    @event.listens_for(engine.sync_engine, "checkin")
    def remember_return(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection) -> None:
        returned_at = record.info.get("returned_at")
        recently_used = returned_at is not None and time.monotonic() - returned_at < idle_s
        if recently_used and not dbapi_connection.driver_connection.is_closed():
            return
        try:
            dbapi_connection.ping()
        except Exception as error:
            # the pool discards this connection and checks out another (up to three tries)
            raise DisconnectionError(f"connection failed its ping: {error}") from error


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False)


def capped_count(table: FromClause, conditions: list[ColumnElement[bool]], limit: int) -> Select[int]:
    """``count(*)`` of the matching rows that stops reading after ``limit`` + 1 of them."""
    matching = select(literal_column("1")).select_from(table).where(*conditions).limit(limit + 1).subquery()
    return select(func.count()).select_from(matching)


async def count_up_to(session: AsyncSession, table: FromClause, conditions: list[ColumnElement[bool]], limit: int) -> tuple[int, bool]:
    """How many rows of ``table`` match, counted up to ``limit``: (count, exact).

    A listing's exact ``count(*)`` reads every row it counts, so each page view would cost
    more as the table grows; beyond ``limit`` this returns ``limit`` with ``exact`` false.
    """
    counted = await session.scalar(capped_count(table, conditions, limit)) or 0
    return min(counted, limit), counted <= limit


def equal_to(*filters: tuple[ColumnElement[Any], object | None]) -> list[ColumnElement[bool]]:
    """``column == value`` for each filter the caller gave (a value of None: not filtered)."""
    return [column == value for column, value in filters if value is not None]


async def newest_first(
    session: AsyncSession, table: Table, conditions: list[ColumnElement[bool]], *, page: int, count: int, count_limit: int
) -> tuple[Sequence[Row[Any]], int, bool]:
    """A page of the matching rows, newest ``created_at`` first (ties by ``id``), and their
    count up to ``count_limit``: (rows, total, exact)."""
    total, exact = await count_up_to(session, table, conditions, count_limit)
    rows = await session.execute(
        select(table).where(*conditions).order_by(table.c.created_at.desc(), table.c.id).limit(count).offset((page - 1) * count)
    )
    return rows.all(), total, exact


@asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """The asyncpg connection behind a pooled connection.

    For hot paths where one hand-written statement replaces several ORM round trips;
    it shares the engine's pool, pre-ping included.
    """
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        yield raw.driver_connection


async def create_driver_pool(url: str, *, max_size: int) -> asyncpg.Pool:
    """asyncpg's own pool, for request paths that run one hand-written statement.

    A checkout through SQLAlchemy's pool (``driver_connection``) costs more CPU than the rest of
    ``POST /orders`` together (greenlet hops, pool events, proxy objects); asyncpg's pool a small
    fraction of it. A connection whose socket the
    server closed is replaced on acquire. On release asyncpg rolls back an open transaction
    and then calls ``reset``; its default (``RESET ALL``, ``UNLISTEN *``, ...) is one more round
    trip per request, and these paths keep no session state (their advisory locks are
    transaction-scoped), so it is replaced by nothing.
    """
    pool = await asyncpg.create_pool(asyncpg_dsn(url), min_size=0, max_size=max_size, reset=_keep_session)
    assert pool is not None
    return pool


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Release hook: asyncpg has already rolled back any open transaction."""


def asyncpg_dsn(url: str) -> str:
    """The same URL without the SQLAlchemy driver suffix, for raw asyncpg connections (LISTEN)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def ensure_database(url: str) -> bool:
    """Create the database named in ``url`` if it does not exist; True when it was created."""
    target = make_url(url)
    name = target.database
    if not name:
        raise ValueError(f"database URL has no database name: {target!r}")
    admin = asyncpg_dsn(target.set(database="postgres").render_as_string(hide_password=False))
    connection = await asyncpg.connect(admin)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.DuplicateDatabaseError:
            return False
        log.info("created database", extra={"database": name})
        return True
    finally:
        await connection.close()


async def drop_database(url: str) -> None:
    target = make_url(url)
    admin = asyncpg_dsn(target.set(database="postgres").render_as_string(hide_password=False))
    connection = await asyncpg.connect(admin)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
    finally:
        await connection.close()


def alembic_config(migrations_dir: Path, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_to_head(migrations_dir: Path, url: str) -> None:
    """Blocking: run from a thread or a CLI, never on the event loop."""
    command.upgrade(alembic_config(migrations_dir, url), "head")


async def migrate(migrations_dir: Path, url: str, *, create: bool = True) -> None:
    if create:
        await ensure_database(url)
    await asyncio.to_thread(upgrade_to_head, migrations_dir, url)


def run_alembic_env(target_metadata: MetaData, version_table: str, include_object: Callable[..., bool] | None = None) -> None:
    """Body of every service's ``migrations/env.py``: online migrations over asyncpg."""
    from alembic import context
    from sqlalchemy.ext.asyncio import async_engine_from_config
    from sqlalchemy.pool import NullPool

    config = context.config

    def run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table=version_table,
            compare_type=True,
            include_object=include_object,
        )
        with context.begin_transaction():
            # replicas that migrate as they start (an init container each) take turns: the second reads
            # the version the first committed instead of racing it to create the same tables
            connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": version_table})
            context.run_migrations()

    if context.is_offline_mode():
        context.configure(
            url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, version_table=version_table, literal_binds=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return

    async def online() -> None:
        engine = async_engine_from_config(config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(run)
            await connection.commit()
        await engine.dispose()

    asyncio.run(online())


async def listen_forever(
    dsn: str,
    channel: str,
    on_notify: Callable[[], None],
    stopping: asyncio.Event,
    *,
    retry_s: float = 5.0,
    on_connect: Callable[[asyncpg.Connection | None], Awaitable[None]] | None = None,
) -> None:
    """Call ``on_notify`` for every NOTIFY on ``channel`` until ``stopping`` is set.

    A lost connection is re-established after ``retry_s``; callers also poll, so a
    notification missed meanwhile only delays work. ``on_connect`` is given each new
    listening session (it may run statements on it) and None when the session ends.
    """
    while not stopping.is_set():
        connection: asyncpg.Connection | None = None
        try:
            connection = await asyncpg.connect(dsn)
            await connection.add_listener(channel, lambda *_: on_notify())
            lost = asyncio.Event()
            connection.add_termination_listener(lambda *_, lost=lost: lost.set())
            if on_connect is not None:
                await on_connect(connection)
            on_notify()  # anything committed before we listened
            waiters = {asyncio.ensure_future(lost.wait()), asyncio.ensure_future(stopping.wait())}
            _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for waiter in pending:
                waiter.cancel()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure means: rely on polling, try again
            log.debug("LISTEN unavailable", extra={"channel": channel, "error": str(exc)})
        finally:
            if on_connect is not None and connection is not None:
                await on_connect(None)
            if connection is not None and not connection.is_closed():
                await connection.close()
        if not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), retry_s)
