import asyncio
import uuid

from sqlalchemy import func, select, text

from notifications_service import models
from notifications_service.dispatcher import Dispatcher
from notifications_service.senders import OutgoingMail, ServerUnreachable
from notifications_service.store import PendingMail, SqlNotificationsStore
from notifications_service.templates import Mail
from shared.db import asyncpg_dsn, create_engine, create_session_factory
from shared.testing.fixtures import eventually


class RecordingSender:
    def __init__(self) -> None:
        self.sent: list[OutgoingMail] = []

    async def send(self, mail: OutgoingMail) -> None:
        self.sent.append(mail)

    async def close(self) -> None:
        return None


class CountingDispatcher(Dispatcher):
    """Notes how many notifications each pass handled."""

    passes: list[int]

    async def dispatch_once(self) -> int:
        handled = await super().dispatch_once()
        if handled:
            self.passes.append(handled)
        return handled


async def test_a_burst_of_commits_is_sent_in_one_pass(notifications_db: str) -> None:
    """Woken by the first commit's NOTIFY, the dispatcher lingers, then sends the whole burst in
    one pass: a pass per committed notification is a transaction, a lock and an update each."""
    engine = create_engine(notifications_db)
    sessions = create_session_factory(engine)
    sender = RecordingSender()
    dispatcher = CountingDispatcher(
        sessions, sender, mail_from="shop@example.com", listen_dsn=asyncpg_dsn(notifications_db), poll_interval_s=30, linger_s=0.5
    )
    dispatcher.passes = []
    dispatcher.start()
    try:
        await asyncio.sleep(1.5)  # listening, past the wake-up that follows connecting, and idle
        for index in range(10):  # each in its own transaction, as the consumer commits them
            async with sessions() as session, session.begin():
                mail = Mail(subject=f"Order {index}", text="thanks", html="<p>thanks</p>")
                await SqlNotificationsStore(session).add_pending([PendingMail(uuid.uuid4(), "order_confirmation", "ada@example.com", mail)])
            await asyncio.sleep(0.01)

        async def all_sent() -> bool:  # a pass is counted once it returns: after its sends, it marks them sent
            return len(sender.sent) == 10 and sum(dispatcher.passes) == 10

        await eventually(all_sent, timeout_s=10, what="every notification sent and its pass finished")
        assert dispatcher.passes == [10]
        async with sessions() as session:  # the pass marked the whole batch sent with one update
            statuses = (await session.execute(select(models.notifications.c.status, models.notifications.c.sent_at))).all()
        assert len(statuses) == 10
        assert all(status == "sent" and sent_at is not None for status, sent_at in statuses)
    finally:
        await dispatcher.stop()
        await engine.dispose()


async def test_batches_of_any_size_are_marked_sent_with_one_prepared_statement(notifications_db: str) -> None:
    """The update that marks a batch sent takes the ids as one array: an ``IN`` list was a new
    prepared statement (a parse and a plan) for every batch size the dispatcher met."""
    engine = create_engine(notifications_db, pool_size=1, max_overflow=0)  # one connection: its prepared statements are all of them
    sessions = create_session_factory(engine)
    sender = RecordingSender()
    dispatcher = Dispatcher(sessions, sender, mail_from="shop@example.com")
    try:
        for size in (1, 3, 5):
            async with sessions() as session, session.begin():
                mail = Mail(subject="Order", text="thanks", html="<p>thanks</p>")
                await SqlNotificationsStore(session).add_pending(
                    [PendingMail(uuid.uuid4(), "order_confirmation", "ada@example.com", mail) for _ in range(size)]
                )
            assert await dispatcher.dispatch_once() == size
        async with sessions() as session:
            prepared = (
                await session.execute(text("SELECT statement FROM pg_prepared_statements WHERE statement LIKE 'UPDATE notifications%'"))
            ).all()
            table = models.notifications
            unsent = await session.scalar(select(func.count()).select_from(table).where(table.c.status != "sent"))
        assert len(sender.sent) == 9
        assert unsent == 0
        assert len(prepared) == 1, prepared
    finally:
        await engine.dispose()


class UnreachableServer:
    """A mail server that cannot be reached until ``reachable`` is set."""

    def __init__(self) -> None:
        self.reachable = False
        self.tries = 0
        self.sent: list[OutgoingMail] = []

    async def send(self, mail: OutgoingMail) -> None:
        self.tries += 1
        if not self.reachable:
            raise ServerUnreachable("the SMTP server is unreachable: ConnectionRefusedError")
        self.sent.append(mail)

    async def close(self) -> None:
        return None


async def test_an_unreachable_mail_server_spends_no_attempt_and_mail_goes_out_once_it_answers(notifications_db: str) -> None:
    engine = create_engine(notifications_db)
    sessions = create_session_factory(engine)
    server = UnreachableServer()
    dispatcher = Dispatcher(sessions, server, mail_from="shop@example.com", poll_interval_s=0.1, max_attempts=2, retry_base_s=0.01)
    async with sessions() as session, session.begin():
        mail = Mail(subject="Order", text="thanks", html="<p>thanks</p>")
        await SqlNotificationsStore(session).add_pending(
            [PendingMail(uuid.uuid4(), "order_confirmation", f"c{i}@example.com", mail) for i in range(5)]
        )
    dispatcher.start()
    try:
        await eventually(lambda: _true(server.tries >= 15), what="several tries while the server is away")
        async with sessions() as session:
            rows = (await session.execute(select(models.notifications.c.status, models.notifications.c.attempts))).all()
        assert rows == [("pending", 0)] * 5, "an outage of the server is no attempt of the message (max_attempts 2 would fail them)"
        server.reachable = True

        async def all_recorded_sent() -> bool:  # the server has them before the dispatcher commits their status
            async with sessions() as session:
                rows = (await session.execute(select(models.notifications.c.status, models.notifications.c.attempts))).all()
            return rows == [("sent", 1)] * 5

        await eventually(all_recorded_sent, timeout_s=10, what="every mail sent, once, when the server answers")
        assert len(server.sent) == 5
    finally:
        await dispatcher.stop()
        await engine.dispose()


async def _true(value: bool) -> bool:
    return value
