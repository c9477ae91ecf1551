"""Helpers to watch what reaches the broker in a test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

from shared.messaging.envelope import Envelope
from shared.messaging.topology import declare_exchange


@asynccontextmanager
async def bound_queue(broker_url: str, exchange_name: str, routing_key: str, name: str | None = None) -> AsyncIterator[AbstractQueue]:
    """A durable queue bound to the exchange, so events have somewhere to go; yields it for reading."""
    connection = await aio_pika.connect(broker_url)
    try:
        channel = await connection.channel()
        exchange = await declare_exchange(channel, exchange_name)
        queue = await channel.declare_queue(name or f"probe.{routing_key}", durable=True)
        await queue.bind(exchange, routing_key)
        yield queue
    finally:
        await connection.close()


async def drain(queue: AbstractQueue, expected: int, timeout_s: float = 30.0) -> list[AbstractIncomingMessage]:
    """Read (and ack) messages until ``expected`` arrived or the deadline passed; returns what arrived."""
    received: list[AbstractIncomingMessage] = []
    deadline = asyncio.get_running_loop().time() + timeout_s
    while len(received) < expected and asyncio.get_running_loop().time() < deadline:
        message = await queue.get(fail=False, no_ack=True)
        if message is None:
            await asyncio.sleep(0.05)
            continue
        received.append(message)
    return received


async def queue_depth(broker_url: str, queue_name: str) -> int:
    connection = await aio_pika.connect(broker_url)
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue_name, passive=True)
        return int(declared.declaration_result.message_count or 0)
    finally:
        await connection.close()


async def park(broker_url: str, queue: str, envelopes: Sequence[Envelope[Any]], error: str = "RuntimeError: the database refused") -> None:
    """Put events into ``<queue>.dlq`` as the consumer leaves them after their last attempt."""
    async with await aio_pika.connect(broker_url) as connection:
        channel = await connection.channel()
        for envelope in envelopes:
            headers: dict[str, Any] = {
                "x-attempts": 5,
                "x-error": error,
                "x-error-kind": "handler_failed",
                "x-failed-at": datetime.now(UTC).isoformat(),
                "x-consumer-queue": queue,
                "x-original-routing-key": envelope.type,
            }
            message = aio_pika.Message(
                envelope.to_json(),
                headers=headers,
                message_id=str(envelope.id),
                type=envelope.type,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )
            await channel.default_exchange.publish(message, routing_key=f"{queue}.dlq")
