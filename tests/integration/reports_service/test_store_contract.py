"""The in-memory ``ReportsStore`` of the unit tests answers as the SQL one does on PostgreSQL:
the same scenario, run on both, gives the same days, totals and task answers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime

import pytest

from reports_service import views
from reports_service.store import ReportsStore, SqlReportsStore
from shared.contracts.reports import ReportRequested
from shared.db import create_engine, create_session_factory
from tests.integration.reports_service.conftest import order_created
from tests.unit.reports_service.fakes import InMemoryReportsStore

KYIV = "Europe/Kyiv"
SPRING_DAY = date(2026, 3, 29)  # 23 hours long in Kyiv

Step = Callable[[ReportsStore], Awaitable[object]]


@asynccontextmanager
async def sql_steps(
    url: str,
) -> AsyncIterator[tuple[Callable[[Step], Awaitable[object]], Callable[[date], Awaitable[dict[uuid.UUID, int]]]]]:
    engine = create_engine(url)
    sessions = create_session_factory(engine)

    async def step(work: Step) -> object:
        async with sessions() as session, session.begin():
            return await work(SqlReportsStore(session))

    async def rows(day: date) -> dict[uuid.UUID, int]:
        async with sessions() as session:
            return {row.order_id: row.count_product for row in await views.day_rows(session, day, limit=1000)}

    try:
        yield step, rows
    finally:
        await engine.dispose()


@asynccontextmanager
async def memory_steps() -> AsyncIterator[tuple[Callable[[Step], Awaitable[object]], Callable[[date], Awaitable[dict[uuid.UUID, int]]]]]:
    store = InMemoryReportsStore()

    async def step(work: Step) -> object:
        return await work(store)

    async def rows(day: date) -> dict[uuid.UUID, int]:
        return dict(store.rows.get(day, {}))

    yield step, rows


@pytest.mark.parametrize("kind", ["sql", "memory"])
async def test_both_stores_answer_the_same_scenario_alike(kind: str, reports_db: str) -> None:
    steps = sql_steps(reports_db) if kind == "sql" else memory_steps()
    async with steps as (step, rows):
        edge = [
            order_created(datetime(2026, 3, 28, 21, 59, tzinfo=UTC), (1,)),  # 23:59 on the 28th in Kyiv
            order_created(datetime(2026, 3, 28, 22, 0, tzinfo=UTC), (2,)),  # 00:00 on the 29th
            order_created(datetime(2026, 3, 29, 20, 59, tzinfo=UTC), (3,)),  # 23:59 on the 29th, summer time
            order_created(datetime(2026, 3, 29, 21, 0, tzinfo=UTC), (4,)),  # 00:00 on the 30th
        ]
        await step(lambda store: store.add_facts([e.data for e in edge], tz=KYIV))
        request = ReportRequested(task_id=uuid.uuid4(), report_date=SPRING_DAY, requested_by="scheduler:daily")
        await step(lambda store: store.task_running(request))
        await step(lambda store: store.task_running(request))
        assert await step(lambda store: store.build_day(SPRING_DAY, tz=KYIV)) == (2, 5)
        await step(lambda store: store.task_succeeded(request.task_id, orders=2, products=5))

        late = order_created(datetime(2026, 3, 29, 10, tzinfo=UTC), (7,))
        await step(lambda store: store.add_facts([late.data, late.data, edge[0].data], tz=KYIV))
        assert await rows(SPRING_DAY) == {edge[1].data.order_id: 2, edge[2].data.order_id: 3, late.data.order_id: 7}
        assert await rows(date(2026, 3, 28)) == {}, "a day not generated has no rows"

        assert await step(lambda store: store.build_day(SPRING_DAY, tz="UTC")) == (3, 14), "another time zone: the day is rebuilt exactly"
        assert await step(lambda store: store.task_failed(request.task_id, "disk full")) is True
        assert await step(lambda store: store.task_failed(request.task_id, "disk full")) is False
        assert await step(lambda store: store.task_failed(uuid.uuid4(), "unknown")) is False
