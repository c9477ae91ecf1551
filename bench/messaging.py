"""Outbox relay and consumer wrapper throughput, each beside bare aio-pika on the same queue."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from typing import Any

import aio_pika
from sqlalchemy import Column, MetaData, String, Table, Uuid, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bench.environment import scratch_database, scratch_vhost
from orders_service.main import MIGRATIONS as ORDERS_MIGRATIONS
from orders_service.models import outbox as outbox_table
from shared.contracts.orders import OrderCreated, OrderItemData
from shared.db import asyncpg_dsn, create_engine, create_session_factory
from shared.messaging.consumer import Consumer, Subscription, define_processed_events_table
from shared.messaging.envelope import Envelope, utcnow
from shared.messaging.outbox import Outbox, OutboxRelay, new_event
from shared.messaging.publisher import OutgoingMessage, Publisher
from shared.messaging.topology import ConsumerQueue, QueueType, declare_consumer_queue, declare_exchange
from shared.testing.fixtures import eventually
from shared.testing.infrastructure import Infrastructure

EXCHANGE = "events"
WAIT_S = 120  # the longest any wait for work to finish may take before the benchmark fails


async def wait_for_consumer(broker_url: str, queue: str, timeout_s: float = 60) -> None:
    """Until ``queue`` exists and has a consumer. Asked over AMQP (a passive declare answers with
    the consumer count at once); the management API's figures lag by its statistics interval, 5 s."""
    deadline = time.monotonic() + timeout_s
    connection = await aio_pika.connect(broker_url)
    try:
        while time.monotonic() < deadline:
            # a channel per look: a passive declare of a missing queue closes its channel
            channel = await connection.channel()
            try:
                declared = await channel.declare_queue(queue, passive=True)
                if declared.declaration_result.consumer_count:
                    return
            except aio_pika.exceptions.ChannelClosed:
                pass  # not declared yet: the consumer declares its queue as it attaches
            finally:
                if not channel.is_closed:
                    await channel.close()
            await asyncio.sleep(0.05)
    finally:
        await connection.close()
    raise TimeoutError(f"no consumer on {queue} after {timeout_s:g} s")


def sample_event() -> Envelope[Any]:
    data = OrderCreated(
        order_id=uuid.uuid4(),
        customer_email="bench@example.com",
        created_at=utcnow(),
        items=[OrderItemData(sku="SKU-1", quantity=2, unit_price="9.99")],
        count_product=2,
        total_amount="19.98",
        currency="EUR",
    )
    return new_event("order.created", "orders_service", data)


async def declare_target(
    broker_url: str, service: str = "bench", routing_key: str = "order.created", queue_type: QueueType = "quorum"
) -> None:
    """The consumer queue a benchmark publishes into (so nothing is returned as NO_ROUTE)."""
    connection = await aio_pika.connect(broker_url)
    channel = await connection.channel()
    exchange = await declare_exchange(channel, EXCHANGE)
    await declare_consumer_queue(channel, exchange, ConsumerQueue(service, routing_key), queue_type)
    await connection.close()


async def relay_rate(infrastructure: Infrastructure, events: int = 10_000, *, lanes: int = 2, batch_size: int = 1_000) -> dict[str, float]:
    """Events/s of one outbox relay draining a pre-filled outbox into a quorum queue."""
    async with scratch_vhost(infrastructure) as broker_url, scratch_database(infrastructure, "relay", ORDERS_MIGRATIONS) as url:
        await declare_target(broker_url)
        engine = create_engine(url)
        outbox = Outbox(outbox_table)
        rows = [outbox.row(sample_event()) for _ in range(events)]
        async with engine.begin() as connection:
            for start in range(0, events, 5_000):
                await connection.execute(insert(outbox_table), rows[start : start + 5_000])
        publisher = Publisher(broker_url, EXCHANGE)
        await publisher.connect()
        relay = OutboxRelay(
            engine, outbox_table, publisher, listen_dsn=asyncpg_dsn(url), batch_size=batch_size, poll_interval_s=0.05, lanes=lanes
        )
        started = time.perf_counter()
        relay.start()
        await eventually(lambda: outbox_drained(engine), timeout_s=WAIT_S, what="the relay to publish every outbox row")
        elapsed = time.perf_counter() - started
        await relay.stop()
        await publisher.close()
        await engine.dispose()
    return {"events": events, "seconds": elapsed, "rate": events / elapsed, "lanes": lanes, "batch_size": batch_size}


async def bare_publish_rate(infrastructure: Infrastructure, events: int = 10_000, window: int = 500) -> dict[str, float]:
    """Baseline: aio-pika publishing persistent messages with confirms awaited in windows."""
    async with scratch_vhost(infrastructure) as broker_url:
        await declare_target(broker_url)
        connection = await aio_pika.connect(broker_url)
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(EXCHANGE)
        bodies = [sample_event().to_json() for _ in range(events)]
        started = time.perf_counter()
        for start in range(0, events, window):
            await asyncio.gather(
                *(
                    exchange.publish(aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT), routing_key="order.created")
                    for body in bodies[start : start + window]
                )
            )
        elapsed = time.perf_counter() - started
        await connection.close()
    return {"events": events, "seconds": elapsed, "rate": events / elapsed, "window": window}


async def fill_queue(broker_url: str, events: int, service: str = "bench") -> None:
    """Queue ``events`` ``order.created`` messages for ``service`` before its consumer starts."""
    await declare_target(broker_url, service)
    publisher = Publisher(broker_url, EXCHANGE)
    messages = [OutgoingMessage.from_envelope(sample_event()) for _ in range(events)]
    for start in range(0, events, 1_000):
        if any(await publisher.publish_many(messages[start : start + 1_000])):
            raise RuntimeError("could not queue the benchmark's events")
    await publisher.close()


async def consumer_rate(infrastructure: Infrastructure, events: int = 10_000, *, batched: bool = True) -> dict[str, float]:
    """Messages/s through the consumer wrapper: parse, idempotency claim, insert, commit, ack.

    ``batched``: the handler writes a batch's events with one multi-row insert (as the
    reports ingest does); otherwise one insert per event.
    """
    metadata = MetaData()
    processed = define_processed_events_table(metadata)
    effects = Table("order_facts", metadata, Column("order_id", Uuid, primary_key=True), Column("email", String(320)))

    async def record(event: Envelope[Any], session: AsyncSession) -> None:
        await session.execute(insert(effects).values(order_id=event.data.order_id, email=event.data.customer_email))

    async def record_all(events: Sequence[Envelope[Any]], session: AsyncSession) -> None:
        await session.execute(insert(effects), [{"order_id": e.data.order_id, "email": e.data.customer_email} for e in events])

    subscription = (
        Subscription("order.created", OrderCreated, batch_handler=record_all)
        if batched
        else Subscription("order.created", OrderCreated, record)
    )

    async with scratch_vhost(infrastructure) as broker_url, scratch_database(infrastructure, "consumer") as url:
        engine = create_engine(url, pool_size=10)
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        await fill_queue(broker_url, events)
        consumer = Consumer(
            service="bench",
            broker_url=broker_url,
            exchange_name=EXCHANGE,
            session_factory=create_session_factory(engine),
            processed_events=processed,
            subscriptions=[subscription],
        )
        started = time.perf_counter()
        consumer.start()
        await eventually(lambda: _attached(consumer), timeout_s=WAIT_S, what="the consumer attached")
        await eventually(lambda: _stored(engine, effects, events), timeout_s=WAIT_S, what=f"{events:,} events handled")
        elapsed = time.perf_counter() - started
        await consumer.stop()
        await engine.dispose()
    return {"events": events, "seconds": elapsed, "rate": events / elapsed, "batched": batched}


async def _attached(consumer: Consumer) -> bool:
    return bool(consumer.attached)


async def _stored(engine: Any, table: Table, events: int) -> bool:
    async with engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(table)) or 0) >= events


async def outbox_drained(engine: Any) -> bool:
    """No row of the (orders) outbox is left unpublished."""
    async with engine.connect() as connection:
        left = await connection.scalar(select(func.count()).select_from(outbox_table).where(outbox_table.c.published_at.is_(None)))
    return not left


async def bare_consume_rate(infrastructure: Infrastructure, events: int = 10_000, prefetch: int = 100) -> dict[str, float]:
    """Baseline: aio-pika consume with manual ack, no database work."""
    async with scratch_vhost(infrastructure) as broker_url:
        await fill_queue(broker_url, events)
        connection = await aio_pika.connect(broker_url)
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        queue = await channel.get_queue("bench.order.created")
        done = asyncio.Event()
        seen = 0

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal seen
            await message.ack()
            seen += 1
            if seen >= events:
                done.set()

        started = time.perf_counter()
        await queue.consume(on_message)
        await asyncio.wait_for(done.wait(), WAIT_S)
        elapsed = time.perf_counter() - started
        await connection.close()
    return {"events": events, "seconds": elapsed, "rate": events / elapsed, "prefetch": prefetch}
