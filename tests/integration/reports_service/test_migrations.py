"""reports_0003 on a database with tasks in it: ``retrying`` is allowed after it, and going back
turns retrying tasks into scheduled ones so the old rule holds again."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from reports_service.main import MIGRATIONS
from shared.db import alembic_config, create_engine, drop_database, migrate
from shared.testing.infrastructure import Infrastructure

INSERT_TASK = "INSERT INTO report_tasks (id, report_date, status, requested_by) VALUES (:id, DATE '2026-12-01', :status, 'api')"


async def test_retrying_is_a_state_after_0003_and_becomes_scheduled_when_it_is_undone(infrastructure: Infrastructure, run_id: str) -> None:
    url = infrastructure.database_url(f"reports_0003_{run_id}")
    await migrate(MIGRATIONS, url)
    engine = create_engine(url, pool_size=1)
    try:
        waiting = uuid.uuid4()
        async with engine.begin() as connection:
            await connection.execute(text(INSERT_TASK), {"id": waiting, "status": "retrying"})
        await asyncio.to_thread(command.downgrade, alembic_config(MIGRATIONS, url), "reports_0002")
        async with engine.connect() as connection:
            assert await connection.scalar(text("SELECT status FROM report_tasks WHERE id = :id"), {"id": waiting}) == "scheduled"
        with pytest.raises(IntegrityError, match="status_known"):
            async with engine.begin() as connection:
                await connection.execute(text(INSERT_TASK), {"id": uuid.uuid4(), "status": "retrying"})
        await migrate(MIGRATIONS, url, create=False)
        async with engine.begin() as connection:
            await connection.execute(text(INSERT_TASK), {"id": uuid.uuid4(), "status": "retrying"})
            names = (
                await connection.execute(text("SELECT conname FROM pg_constraint WHERE conrelid = 'report_tasks'::regclass"))
            ).scalars()
            assert "ck_report_tasks_status_known" in set(names)
    finally:
        await engine.dispose()
        await drop_database(url)
