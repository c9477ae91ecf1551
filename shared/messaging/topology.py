"""Names and declarations of the exchange and queues: the only place they are spelled out.

Each consumer owns ``<service>.<routing key>`` bound to the events exchange, plus its retry
tiers ``<queue>.retry.<delay>`` (for example ``.retry.1s``, ``.retry.5m``: one queue per
delay, its TTL the queue's own, dead-lettering back to the queue) and ``<queue>.dlq``
(parking). A tier holds messages of one delay only, so the message at its head always
expires first: a 1 s retry never waits behind a 5 min one, as it would in one queue of
per-message TTLs, where RabbitMQ expires only the head. Retry and DLQ traffic goes through the service's own direct exchange
``<service>.requeue``, bound to those queues only, so a retried event is not fanned out
again to other services, and a service's broker user needs no right to publish into any
queue but its own (the default exchange would reach every queue by name).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

# Routing keys (event types) of the suite.
ORDER_CREATED = "order.created"
ORDER_CANCELLED = "order.cancelled"
REPORT_REQUESTED = "report.requested"
REPORT_GENERATED = "report.generated"
REPORT_FAILED = "report.failed"
REPORT_BACKFILL_REQUESTED = "report.backfill_requested"
REPORT_CANCEL_REQUESTED = "report.cancel_requested"

QueueType = Literal["quorum", "classic"]

# Redeliveries without a decision (a consumer crashing mid-message) before the broker parks it.
DELIVERY_LIMIT = 20
# The wait before each retry: the first failure waits 1 s, the second 10 s, and so on; every
# later one the last (RETRY_TIERS_MS).
DEFAULT_RETRY_TIERS_MS: tuple[int, ...] = (1_000, 10_000, 60_000, 300_000)


def tier_label(delay_ms: int) -> str:
    """``1s``, ``10s``, ``5m``; ``250ms`` when not a whole number of seconds."""
    if delay_ms % 60_000 == 0:
        return f"{delay_ms // 60_000}m"
    if delay_ms % 1_000 == 0:
        return f"{delay_ms // 1_000}s"
    return f"{delay_ms}ms"


@dataclass(frozen=True, slots=True)
class ConsumerQueue:
    """The queues behind one (service, routing key) subscription: the work queue, its retry tiers, its DLQ."""

    service: str
    routing_key: str
    retry_tiers_ms: tuple[int, ...] = DEFAULT_RETRY_TIERS_MS

    @property
    def name(self) -> str:
        return f"{self.service}.{self.routing_key}"

    def retry_tier(self, failed_attempts: int) -> tuple[str, int]:
        """The retry queue a message that failed ``failed_attempts`` times waits in, and its delay."""
        delay_ms = self.retry_tiers_ms[min(failed_attempts, len(self.retry_tiers_ms)) - 1]
        return self.retry_name(delay_ms), delay_ms

    def retry_name(self, delay_ms: int) -> str:
        return f"{self.name}.retry.{tier_label(delay_ms)}"

    @property
    def dlq_name(self) -> str:
        return f"{self.name}.dlq"

    @property
    def requeue_exchange(self) -> str:
        return requeue_exchange_name(self.service)


def requeue_exchange_name(service: str) -> str:
    """The direct exchange through which a service's consumer moves messages to its retry and DLQ queues."""
    return f"{service}.requeue"


async def declare_requeue_exchange(channel: AbstractChannel, service: str) -> AbstractExchange:
    return await channel.declare_exchange(requeue_exchange_name(service), aio_pika.ExchangeType.DIRECT, durable=True)


def _type_arguments(queue_type: QueueType) -> dict[str, Any]:
    return {"x-queue-type": queue_type}


async def declare_exchange(channel: AbstractChannel, exchange_name: str) -> AbstractExchange:
    return await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)


async def declare_consumer_queue(
    channel: AbstractChannel, exchange: AbstractExchange, queue: ConsumerQueue, queue_type: QueueType = "quorum"
) -> AbstractQueue:
    """Declare the queue, its retry and DLQ queues, and bind them; idempotent.

    Dead-lettering goes through ``<service>.requeue`` too: a queue whose dead-letter
    exchange is the default one could only be declared by a user allowed to publish to
    every queue. The queue a message is moved to is bound before anything can move there.
    """
    requeue = await declare_requeue_exchange(channel, queue.service)
    dlq = await channel.declare_queue(queue.dlq_name, durable=True, arguments=_type_arguments(queue_type))
    await dlq.bind(requeue, routing_key=queue.dlq_name)
    main_arguments = {
        **_type_arguments(queue_type),
        "x-dead-letter-exchange": requeue.name,
        "x-dead-letter-routing-key": queue.dlq_name,
    }
    if queue_type == "quorum":
        main_arguments["x-delivery-limit"] = DELIVERY_LIMIT
    declared = await channel.declare_queue(queue.name, durable=True, arguments=main_arguments)
    await declared.bind(requeue, routing_key=queue.name)  # where an expired retry comes back
    for delay_ms in queue.retry_tiers_ms:
        retry_arguments = {
            **_type_arguments(queue_type),
            "x-message-ttl": delay_ms,
            "x-dead-letter-exchange": requeue.name,
            "x-dead-letter-routing-key": queue.name,
        }
        if queue_type == "quorum":
            # at-least-once dead-lettering: an expiring retry is never dropped on the way back
            retry_arguments |= {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
        retry = await channel.declare_queue(queue.retry_name(delay_ms), durable=True, arguments=retry_arguments)
        await retry.bind(requeue, routing_key=queue.retry_name(delay_ms))
    await declared.bind(exchange, routing_key=queue.routing_key)
    return declared


async def declare_topology(broker_url: str, exchange_name: str, queues: list[ConsumerQueue], queue_type: QueueType = "quorum") -> None:
    """Declare everything up front (``deploy.broker_users``: ``make run`` and compose) so no early event is unroutable."""
    connection = await aio_pika.connect(broker_url)
    try:
        channel = await connection.channel()
        exchange = await declare_exchange(channel, exchange_name)
        for queue in queues:
            await declare_consumer_queue(channel, exchange, queue, queue_type)
    finally:
        await connection.close()
