"""Recording a batch of notifications: one statement for the whole batch, each event once."""

import uuid
from typing import Any

from sqlalchemy import event, select

from notifications_service import models
from notifications_service.store import PendingMail, SqlNotificationsStore
from notifications_service.templates import Mail
from shared.db import create_engine, create_session_factory

MAIL = Mail(subject="Order", text="thanks", html="<p>thanks</p>")


async def test_a_batch_is_one_insert_and_records_each_event_once(notifications_db: str) -> None:
    engine = create_engine(notifications_db)
    sessions = create_session_factory(engine)
    inserts: list[bool] = []  # one entry per execution sent to the driver: was it an executemany

    def note(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement.lstrip().startswith("INSERT INTO notifications"):
            inserts.append(executemany)

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    try:
        earlier, repeated, fresh = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        order_id = uuid.uuid4()
        async with sessions() as session, session.begin():
            await SqlNotificationsStore(session).add_pending(
                [PendingMail(earlier, "order_confirmation", "ada@example.com", MAIL, order_id)]
            )
        inserts.clear()
        batch = [
            PendingMail(earlier, "order_confirmation", "ada@example.com", MAIL, order_id),  # redelivered
            PendingMail(repeated, "order_confirmation", "bob@example.com", MAIL, uuid.uuid4()),
            PendingMail(repeated, "order_confirmation", "bob@example.com", MAIL, uuid.uuid4()),  # twice in the batch
            PendingMail(fresh, "report_generated", "ops@example.com", MAIL),  # no order
        ]
        async with sessions() as session, session.begin():
            await SqlNotificationsStore(session).add_pending(batch)
        assert inserts == [False], "the whole batch in one statement, not one per row"
        async with sessions() as session:
            table = models.notifications
            stored = (await session.execute(select(table.c.event_id, table.c.recipient, table.c.order_id, table.c.status))).all()
        expected = [(earlier, "ada@example.com"), (repeated, "bob@example.com"), (fresh, "ops@example.com")]
        assert sorted((str(row.event_id), row.recipient, row.status) for row in stored) == sorted(
            (str(event_id), recipient, "pending") for event_id, recipient in expected
        )
        assert {row.event_id: row.order_id for row in stored}[fresh] is None
    finally:
        await engine.dispose()
