import asyncio
import uuid

from notifications_service import notifications
from notifications_service.dispatcher import Dispatcher
from notifications_service.senders import OutgoingMail
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
                await notifications.record(session, [notifications.row(uuid.uuid4(), "order_confirmation", "ada@example.com", mail)])
            await asyncio.sleep(0.01)

        async def all_sent() -> bool:
            return len(sender.sent) == 10

        await eventually(all_sent, timeout_s=10, what="every notification sent")
        assert dispatcher.passes == [10]
    finally:
        await dispatcher.stop()
        await engine.dispose()
