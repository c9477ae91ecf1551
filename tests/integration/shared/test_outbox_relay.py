import asyncio
import time
import uuid
from collections.abc import Sequence

import asyncpg
import pytest
from sqlalchemy import func, insert, select, text

from orders_service.models import outbox as outbox_table
from shared.db import asyncpg_dsn, create_engine
from shared.messaging.outbox import Outbox, OutboxRelay, new_event
from shared.messaging.publisher import OutgoingMessage, Publisher
from shared.messaging.relay_thread import RelayParts, RelayThread
from shared.testing import observed
from shared.testing.broker import bound_queue, drain
from shared.testing.fixtures import eventually
from shared.testing.infrastructure import Infrastructure
from shared.testing.tcp_proxy import TcpProxy
from tests.unit.shared.test_envelope import _order_created


async def _insert_events(url: str, count: int) -> set[str]:
    engine = create_engine(url)
    outbox = Outbox(outbox_table)
    rows = [outbox.row(new_event("order.created", "orders_service", _order_created())) for _ in range(count)]
    async with engine.begin() as connection:
        await connection.execute(insert(outbox_table), rows)
    await engine.dispose()
    return {str(row["event_id"]) for row in rows}


async def _unpublished(url: str) -> int:
    engine = create_engine(url)
    async with engine.connect() as connection:
        count = await connection.scalar(select(func.count()).select_from(outbox_table).where(outbox_table.c.published_at.is_(None)))
    await engine.dispose()
    return int(count or 0)


async def _waiting_for_notify(url: str) -> bool:
    """A relay that found nothing has registered its LISTEN session: the next commit NOTIFYs it."""
    engine = create_engine(url)
    async with engine.connect() as connection:
        waiting = await connection.scalar(text("SELECT count(*) FROM outbox_waiters"))
    await engine.dispose()
    return bool(waiting)


@pytest.fixture(params=[True, False], ids=["batched", "aio-pika-publish"])
def batched(request: pytest.FixtureRequest) -> bool:
    """The relay's core guarantees hold with the batched publish (``PUBLISH_BATCHED``) and without it."""
    return bool(request.param)


def _relay(url: str, broker_url: str, exchange_name: str, batch_size: int = 100, *, batched: bool = True) -> tuple[OutboxRelay, Publisher]:
    publisher = Publisher(broker_url, exchange_name, batched=batched)
    relay = OutboxRelay(
        create_engine(url), outbox_table, publisher, listen_dsn=asyncpg_dsn(url), batch_size=batch_size, poll_interval_s=0.2
    )
    return relay, publisher


async def test_three_concurrent_relays_publish_each_event_exactly_once(
    orders_db: str, broker_url: str, exchange_name: str, batched: bool
) -> None:
    async with bound_queue(broker_url, exchange_name, "order.created") as queue:
        expected = await _insert_events(orders_db, 3000)
        relays = [_relay(orders_db, broker_url, exchange_name, batched=batched) for _ in range(3)]
        for relay, _ in relays:
            relay.start()
        received = await drain(queue, 3000, timeout_s=60)
        await eventually(lambda: _zero(orders_db), what="every outbox row marked sent")
        for relay, publisher in relays:
            await relay.stop()
            await publisher.close()
        received += await drain(queue, 1, timeout_s=1.0)  # nothing more may arrive
    ids = [message.message_id for message in received]
    assert len(ids) == 3000
    assert set(ids) == expected


async def _zero(url: str) -> bool:
    return await _unpublished(url) == 0


async def test_listen_notify_wakes_the_relay_before_the_poll(orders_db: str, broker_url: str, exchange_name: str) -> None:
    publisher = Publisher(broker_url, exchange_name)
    relay = OutboxRelay(create_engine(orders_db), outbox_table, publisher, listen_dsn=asyncpg_dsn(orders_db), poll_interval_s=30)
    async with bound_queue(broker_url, exchange_name, "order.created") as queue:
        relay.start()
        await eventually(lambda: _waiting_for_notify(orders_db), what="the relay waiting for NOTIFY")
        await _insert_events(orders_db, 1)
        received = await drain(queue, 1, timeout_s=5)
        await relay.stop()
    await publisher.close()
    assert len(received) == 1, "a NOTIFY must wake the relay long before its 30 s poll"


class _CountingPublisher(Publisher):
    """A real publisher that notes the size of every batch it is given."""

    def __init__(self, broker_url: str, exchange_name: str) -> None:
        super().__init__(broker_url, exchange_name)
        self.batches: list[int] = []

    async def publish_many(self, messages: Sequence[OutgoingMessage]) -> list[BaseException | None]:
        self.batches.append(len(messages))
        return await super().publish_many(messages)


async def test_events_committed_during_the_linger_go_out_in_one_batch(orders_db: str, broker_url: str, exchange_name: str) -> None:
    """A batch costs a transaction and a round of confirms whatever its size: commits that
    trickle in while the relay lingers are published together."""
    publisher = _CountingPublisher(broker_url, exchange_name)
    relay = OutboxRelay(
        create_engine(orders_db), outbox_table, publisher, listen_dsn=asyncpg_dsn(orders_db), poll_interval_s=30, lanes=1, linger_s=3
    )
    async with bound_queue(broker_url, exchange_name, "order.created") as queue:
        relay.start()
        await eventually(lambda: _waiting_for_notify(orders_db), what="the relay waiting for NOTIFY")
        for _ in range(10):  # one commit at a time, well inside the linger after the first one's NOTIFY
            await _insert_events(orders_db, 1)
            await asyncio.sleep(0.02)
        received = await drain(queue, 10, timeout_s=15)
        await relay.stop()
    await publisher.close()
    assert len(received) == 10
    assert publisher.batches == [10]


async def test_an_unroutable_event_is_kept_and_retried_later(orders_db: str, broker_url: str, exchange_name: str, batched: bool) -> None:
    await _insert_events(orders_db, 1)
    relay, publisher = _relay(orders_db, broker_url, exchange_name, batched=batched)
    assert await relay.relay_once() == 0  # nothing bound yet: returned by the broker
    engine = create_engine(orders_db)
    async with engine.connect() as connection:
        row = (await connection.execute(select(outbox_table))).one()
    assert row.published_at is None
    assert row.attempts == 1
    assert "NO_ROUTE" in row.last_error
    async with engine.begin() as connection:  # make it due now instead of after its backoff
        await connection.execute(outbox_table.update().values(available_at=func.now()))
    await engine.dispose()
    async with bound_queue(broker_url, exchange_name, "order.created") as queue:
        assert await relay.relay_once() == 1
        assert len(await drain(queue, 1)) == 1
    await publisher.close()


async def test_an_event_refused_every_time_is_parked_and_sent_once_made_due_again(
    orders_db: str, broker_url: str, exchange_name: str
) -> None:
    await _insert_events(orders_db, 1)
    publisher = Publisher(broker_url, exchange_name)
    relay = OutboxRelay(create_engine(orders_db), outbox_table, publisher, max_attempts=2)
    engine = create_engine(orders_db)

    async def make_due(where: str) -> None:
        async with engine.begin() as connection:
            await connection.execute(text(f"UPDATE outbox SET available_at = now(){where}"))

    parked_before = observed.sample("outbox_parked_total")
    try:
        assert await relay.relay_once() == 0  # nothing bound: NO_ROUTE, attempt 1
        await make_due("")
        assert await relay.relay_once() == 0  # attempt 2: parked
        await make_due(" WHERE available_at < 'infinity'")  # what a lane's next pass sees: nothing due
        assert await relay.relay_once() == 0
        async with engine.connect() as connection:
            row = (await connection.execute(select(outbox_table))).one()
        assert row.attempts == 2
        assert row.last_error.startswith("parked after 2 attempts: ")
        assert "NO_ROUTE" in row.last_error
        assert observed.sample("outbox_parked_total") == parked_before + 1
        async with bound_queue(broker_url, exchange_name, "order.created") as queue:
            await make_due(", attempts = 0 WHERE available_at = 'infinity'")  # the operator's replay (docs/operations.md)
            assert await relay.relay_once() == 1
            assert len(await drain(queue, 1)) == 1
    finally:
        await engine.dispose()
        await publisher.close()


@pytest.mark.slow
async def test_relay_keeps_trying_while_the_broker_is_stopped(
    orders_db: str, broker_url: str, exchange_name: str, infrastructure: Infrastructure
) -> None:
    async with bound_queue(broker_url, exchange_name, "order.created", name=f"probe-{uuid.uuid4().hex[:6]}") as queue:
        queue_name = queue.name
    relay, publisher = _relay(orders_db, broker_url, exchange_name)
    failed_before = observed.broker_unavailable()
    relay.start()
    await asyncio.to_thread(infrastructure.stop_broker)
    try:
        expected = await _insert_events(orders_db, 50)

        async def failed_twice() -> bool:
            return observed.broker_unavailable() >= failed_before + 2

        await eventually(failed_twice, timeout_s=30, what="the relay failing to reach the broker and trying again")
        assert await _unpublished(orders_db) == 50
    finally:
        await asyncio.to_thread(infrastructure.start_broker)
    await eventually(lambda: _zero(orders_db), timeout_s=60, what="relay to publish after the broker came back")
    await relay.stop()
    await publisher.close()
    async with bound_queue(broker_url, exchange_name, "order.created", name=queue_name) as queue:
        received = await drain(queue, 50)
    assert {message.message_id for message in received} == expected


async def test_the_relay_thread_publishes_while_the_service_loop_is_busy(orders_db: str, broker_url: str, exchange_name: str) -> None:
    """The service's loop does not yield for 1.5 s; the relay on its own loop publishes meanwhile."""

    def build() -> RelayParts:
        engine, publisher = create_engine(orders_db), Publisher(broker_url, exchange_name)
        relay = OutboxRelay(engine, outbox_table, publisher, listen_dsn=asyncpg_dsn(orders_db), poll_interval_s=0.2)
        return RelayParts(engine, publisher, relay)

    thread = RelayThread(build)
    async with bound_queue(broker_url, exchange_name, "order.created") as queue:
        await thread.start()
        assert await eventually(lambda: _true(thread.connected), what="relay connected")
        expected = await _insert_events(orders_db, 200)
        time.sleep(1.5)  # noqa: ASYNC251 - on purpose: a loop that never yields, as under a burst of CPU-bound requests
        published_while_blocked = await _unpublished(orders_db) == 0
        received = await drain(queue, 200, timeout_s=10)
        await thread.stop()
    assert published_while_blocked, "the relay waited for the service's loop"
    assert {message.message_id for message in received} == expected
    assert not thread.connected


async def test_a_relay_thread_that_cannot_be_built_fails_the_start() -> None:
    def build() -> RelayParts:
        raise ValueError("no database URL")

    thread = RelayThread(build)
    with pytest.raises(RuntimeError, match="could not be built"):
        await thread.start()
    await thread.stop()


async def _true(value: bool) -> bool:
    return value


async def _waiters(connection: asyncpg.Connection) -> set[int]:
    return {row["backend_pid"] for row in await connection.fetch("SELECT backend_pid FROM outbox_waiters")}


async def test_writers_notify_only_while_a_relay_waits(orders_db: str) -> None:
    """Notifications arrive in commit order: if the insert had notified, its NOTIFY would come before the marker."""
    admin = await asyncpg.connect(asyncpg_dsn(orders_db))
    listener = await asyncpg.connect(asyncpg_dsn(orders_db))
    received: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener("outbox", lambda *args: received.put_nowait(args[3]))
    try:
        await _insert_events(orders_db, 1)
        await admin.execute("NOTIFY outbox, 'marker'")
        assert await asyncio.wait_for(received.get(), 5) == "marker", "no relay waits: the insert must not NOTIFY"

        await admin.execute("INSERT INTO outbox_waiters (backend_pid) VALUES (pg_backend_pid())")
        await _insert_events(orders_db, 1)
        await admin.execute("NOTIFY outbox, 'marker'")
        assert await asyncio.wait_for(received.get(), 5) == "", "a relay waits: the insert NOTIFYs"
        assert await asyncio.wait_for(received.get(), 5) == "marker"
    finally:
        await listener.close()
        await admin.close()


async def test_an_idle_relay_waits_for_notify_and_clears_crashed_waiters(orders_db: str, broker_url: str, exchange_name: str) -> None:
    admin = await asyncpg.connect(asyncpg_dsn(orders_db))
    publisher = Publisher(broker_url, exchange_name)
    relay = OutboxRelay(create_engine(orders_db), outbox_table, publisher, listen_dsn=asyncpg_dsn(orders_db), poll_interval_s=30)
    try:
        await admin.execute("INSERT INTO outbox_waiters (backend_pid) VALUES (-1)")  # a session that no longer exists
        async with bound_queue(broker_url, exchange_name, "order.created") as queue:
            relay.start()

            async def registered() -> bool:
                waiters = await _waiters(admin)
                return len(waiters) == 1 and -1 not in waiters

            await eventually(registered, timeout_s=10, what="the idle relay registered, the crashed one's row gone")
            await _insert_events(orders_db, 1)
            assert len(await drain(queue, 1, timeout_s=5)) == 1, "the NOTIFY woke the relay long before its 30 s poll"
            await eventually(registered, timeout_s=10, what="the relay registered again once idle")
            await _insert_events(orders_db, 1)
            assert len(await drain(queue, 1, timeout_s=5)) == 1, "and the next NOTIFY wakes it again"
            await relay.stop()
        assert await _waiters(admin) == set(), "a stopped relay leaves no waiter behind"
    finally:
        await relay.stop()
        await publisher.close()
        await admin.close()


async def test_old_sent_rows_are_pruned_while_events_keep_flowing(orders_db: str, broker_url: str, exchange_name: str) -> None:
    """Housekeeping is not left for idle moments: a relay that finds events on every pass still prunes."""
    admin = await asyncpg.connect(asyncpg_dsn(orders_db))
    writer = await asyncpg.connect(asyncpg_dsn(orders_db))
    publisher = Publisher(broker_url, exchange_name)
    relay = OutboxRelay(
        create_engine(orders_db), outbox_table, publisher, listen_dsn=asyncpg_dsn(orders_db), retention_hours=72, housekeeping_every_s=0.2
    )
    outbox = Outbox(outbox_table)
    stop_producing = asyncio.Event()

    async def keep_producing() -> None:
        """A row every few milliseconds: each relay pass (20 ms apart) finds some."""
        while not stop_producing.is_set():
            row = outbox.row(new_event("order.created", "orders_service", _order_created()))
            await writer.execute(
                "INSERT INTO outbox (event_id, routing_key, event_type, body, occurred_at) VALUES ($1, $2, $3, $4, $5)",
                row["event_id"],
                row["routing_key"],
                row["event_type"],
                row["body"],
                row["occurred_at"],
            )
            await asyncio.sleep(0.002)

    async def pruned() -> bool:
        return not await admin.fetchval("SELECT count(*) FROM outbox WHERE published_at < now() - interval '72 hours'")

    try:
        async with bound_queue(broker_url, exchange_name, "order.created"):
            producer = asyncio.create_task(keep_producing())
            await asyncio.sleep(0.1)
            relay.start()
            await asyncio.sleep(0.5)  # the relay is past its first passes and finds events on every one
            aged = await admin.execute("UPDATE outbox SET published_at = now() - interval '100 hours' WHERE id = 1")
            assert aged == "UPDATE 1"
            await eventually(pruned, timeout_s=10, what="the 100-hour-old row pruned under a steady flow")
            stop_producing.set()
            await producer
    finally:
        stop_producing.set()
        await relay.stop()
        await publisher.close()
        await writer.close()
        await admin.close()


async def test_an_idle_relay_connects_again_after_it_lost_the_broker(
    orders_db: str, broker_url: str, exchange_name: str, batched: bool
) -> None:
    """Readiness reads the relay's connection: with nothing to publish it must still come back by itself."""
    async with TcpProxy.in_front_of(broker_url) as proxy:
        publisher = Publisher(proxy.url_for(broker_url), exchange_name, batched=batched)
        relay = OutboxRelay(create_engine(orders_db), outbox_table, publisher, poll_interval_s=0.2, housekeeping_every_s=0.2)
        relay.start()
        try:
            await eventually(lambda: _true(publisher.connected), what="the idle relay connected")
            proxy.cut()
            await eventually(lambda: _true(not publisher.connected), what="the connection lost")
            proxy.restore()
            await eventually(lambda: _true(publisher.connected), timeout_s=20, what="connected again with nothing to publish")
        finally:
            await relay.stop()
            await publisher.close()


async def test_a_database_outage_pauses_the_relay_and_spends_no_attempt(orders_db: str, broker_url: str, exchange_name: str) -> None:
    async with (
        bound_queue(broker_url, exchange_name, "order.created") as queue,
        TcpProxy.in_front_of(orders_db) as proxy,
    ):
        publisher = Publisher(broker_url, exchange_name)
        relay = OutboxRelay(create_engine(proxy.url_for(orders_db)), outbox_table, publisher, poll_interval_s=0.2)
        relay.start()
        try:
            proxy.cut()
            expected = await _insert_events(orders_db, 20)  # written straight to the database, past the proxy
            await eventually(lambda: _true(relay.database.paused), what="the relay paused")
            proxy.restore()
            received = await drain(queue, 20, timeout_s=30)
        finally:
            await relay.stop()
            await publisher.close()
    assert {message.message_id for message in received} == expected
    assert not relay.database.paused
    engine = create_engine(orders_db)
    async with engine.connect() as connection:
        attempts = await connection.scalar(select(func.max(outbox_table.c.attempts)))
    await engine.dispose()
    assert attempts == 0
