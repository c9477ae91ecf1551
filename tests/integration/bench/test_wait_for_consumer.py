"""The benchmarks' wait for a worker: over AMQP, until its queue exists and has a consumer."""

from __future__ import annotations

import asyncio
import uuid

import aio_pika
import pytest

from bench.messaging import wait_for_consumer


async def ignore(message: aio_pika.abc.AbstractIncomingMessage) -> None:
    return None


async def test_the_wait_ends_once_a_consumer_declares_its_queue_and_attaches(broker_url: str) -> None:
    queue_name = f"bench-wait-{uuid.uuid4().hex[:8]}"

    async def consume_later() -> aio_pika.abc.AbstractRobustConnection:
        await asyncio.sleep(0.3)
        connection = await aio_pika.connect_robust(broker_url)
        queue = await (await connection.channel()).declare_queue(queue_name, auto_delete=True)
        await queue.consume(ignore)
        return connection

    consumer = asyncio.create_task(consume_later())
    await asyncio.wait_for(wait_for_consumer(broker_url, queue_name), 10)
    assert consumer.done()
    await (await consumer).close()


async def test_a_queue_nobody_consumes_times_out(broker_url: str) -> None:
    queue_name = f"bench-wait-{uuid.uuid4().hex[:8]}"
    connection = await aio_pika.connect(broker_url)
    try:
        queue = await (await connection.channel()).declare_queue(queue_name)
        with pytest.raises(TimeoutError, match=queue_name):
            await wait_for_consumer(broker_url, queue_name, timeout_s=0.3)
        await queue.delete()
    finally:
        await connection.close()
