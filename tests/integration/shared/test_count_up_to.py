"""A listing's total: exact up to the limit, flagged beyond it, and never reading the whole table."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import capped_count, count_up_to, create_engine, create_session_factory
from shared.testing.fixtures import plan_nodes

ROWS = 10
counted_rows = Table("counted_rows", MetaData(), Column("n", Integer))


@pytest.fixture
async def session(orders_db: str) -> AsyncIterator[AsyncSession]:
    """A session on one connection with a temporary table of ROWS rows, n = 1..ROWS."""
    engine = create_engine(orders_db, pool_size=1, max_overflow=0)
    try:
        async with create_session_factory(engine)() as session:
            await session.execute(text("CREATE TEMPORARY TABLE counted_rows (n int)"))
            await session.execute(text(f"INSERT INTO counted_rows SELECT generate_series(1, {ROWS})"))
            yield session
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("limit", "expected"),
    [(3, (3, False)), (ROWS - 1, (ROWS - 1, False)), (ROWS, (ROWS, True)), (ROWS + 5, (ROWS, True))],
)
async def test_the_count_is_exact_up_to_the_limit_and_flagged_beyond_it(
    session: AsyncSession, limit: int, expected: tuple[int, bool]
) -> None:
    assert await count_up_to(session, counted_rows, [], limit) == expected


async def test_only_matching_rows_are_counted(session: AsyncSession) -> None:
    assert await count_up_to(session, counted_rows, [counted_rows.c.n > 7], 3) == (3, True)
    assert await count_up_to(session, counted_rows, [counted_rows.c.n > 7], 2) == (2, False)
    assert await count_up_to(session, counted_rows, [counted_rows.c.n > ROWS], 2) == (0, True)


async def test_the_count_stops_reading_after_the_limit(session: AsyncSession) -> None:
    statement = capped_count(counted_rows, [], 3).compile(dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True})
    explained = await session.scalar(text(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}"))
    plan = explained[0]["Plan"]  # the dialect decodes json
    scans = [node for node in plan_nodes(plan) if node.get("Relation Name") == "counted_rows"]
    assert [scan["Actual Rows"] for scan in scans] == [4], "limit + 1 rows read, not all ten"
