"""A stand-in peer for the peer-run test: a plain aio-pika worker noting each event with the
peers' own recorder, so the run machinery is tested without Celery, taskiq or FastStream."""

from __future__ import annotations

import asyncio
import os

import aio_pika

from bench.peers.compare import send_all
from bench.peers.recorder import RECORDER

QUEUE = "peer-stand-in"


async def produce(broker_url: str, ids: list[str], window: int) -> None:
    connection = await aio_pika.connect(broker_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await channel.declare_queue(QUEUE, durable=True)

        async def send(event_id: str) -> None:
            await channel.default_exchange.publish(
                aio_pika.Message(event_id.encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT), routing_key=QUEUE
            )

        await send_all(send, ids, window)
    finally:
        await connection.close()


async def main() -> None:
    connection = await aio_pika.connect(os.environ["PEER_BROKER_URL"])
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=100)
    queue = await channel.declare_queue(QUEUE, durable=True)

    async def record(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        await RECORDER.store(message.body.decode())
        await message.ack()

    await queue.consume(record)
    await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main())
