"""Each service's broker user, created in a vhost of the test's own: the broker refuses what the service may not do."""

from __future__ import annotations

import asyncio
import os
import sys
from urllib.parse import unquote, urlsplit

import aio_pika
import aiormq.exceptions
import pytest

from deploy.broker_users import SUBSCRIBES, consumer_queues, declare_queues
from notifications_service.handlers import build_subscriptions as notifications_subscriptions
from reports_service.handlers import build_subscriptions as reports_subscriptions
from scheduler_service.handlers import build_subscriptions as scheduler_subscriptions
from shared.messaging.topology import ConsumerQueue, declare_consumer_queue, declare_exchange
from shared.testing.infrastructure import Infrastructure


@pytest.fixture
async def users(broker_url: str, exchange_name: str, broker_users: dict[str, str]) -> dict[str, str]:
    """The services' users, with the queues the consumers would have declared."""
    connection = await aio_pika.connect(broker_url)
    channel = await connection.channel()
    exchange = await declare_exchange(channel, exchange_name)
    for service, routing_key in [("reports", "order.created"), ("notifications", "order.created")]:
        await declare_consumer_queue(channel, exchange, ConsumerQueue(service, routing_key))
    await connection.close()
    return broker_users


async def _publish(url: str, exchange_name: str, routing_key: str, *, to_exchange: str | None = None) -> None:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        name = exchange_name if to_exchange is None else to_exchange
        exchange = channel.default_exchange if name == "" else await channel.get_exchange(name, ensure=False)
        await exchange.publish(aio_pika.Message(b"{}"), routing_key=routing_key, timeout=5)
        await asyncio.sleep(0.2)  # a refusal closes the channel just after the frame
        assert not channel.is_closed
    finally:
        await connection.close()


async def _ignore(message: aio_pika.abc.AbstractIncomingMessage) -> None:
    return None


async def test_the_scheduler_may_publish_its_command_and_is_refused_an_order_event(users: dict[str, str], exchange_name: str) -> None:
    await _publish(users["scheduler"], exchange_name, "report.requested")
    with pytest.raises(aiormq.exceptions.ChannelAccessRefused, match="ACCESS_REFUSED"):
        await _publish(users["scheduler"], exchange_name, "order.created")


async def test_each_service_publishes_only_its_own_routing_keys(users: dict[str, str], exchange_name: str) -> None:
    await _publish(users["orders"], exchange_name, "order.created")
    await _publish(users["reports"], exchange_name, "report.generated")
    for service, routing_key in [("orders", "report.generated"), ("reports", "order.created"), ("notifications", "report.failed")]:
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
            await _publish(users[service], exchange_name, routing_key)


async def test_a_consumer_reaches_its_own_queues_and_no_other_services(users: dict[str, str], exchange_name: str) -> None:
    # its own retry queue, through its requeue exchange
    await _publish(users["reports"], exchange_name, "reports.order.created.retry.1s", to_exchange="reports.requeue")
    # another service's queue: not through the default exchange, nor by consuming it
    with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
        await _publish(users["reports"], exchange_name, "notifications.order.created", to_exchange="")
    connection = await aio_pika.connect(users["reports"])
    try:
        queue = await (await connection.channel()).get_queue("notifications.order.created", ensure=False)
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
            await queue.consume(_ignore)
    finally:
        await connection.close()


async def test_queues_declared_up_front_route_the_first_events_and_agree_with_what_each_consumer_declares(
    broker_url: str, exchange_name: str
) -> None:
    """An order placed before any consumer ever attached still reaches every consuming queue, and the consumer's
    own declaration later finds the queue as it left it (same arguments, no PRECONDITION_FAILED)."""
    await declare_queues(broker_url, exchange_name, "quorum")
    connection = await aio_pika.connect(broker_url)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await declare_exchange(channel, exchange_name)
        await exchange.publish(aio_pika.Message(b"{}", message_id="first"), routing_key="order.created", mandatory=True, timeout=5)
        for queue in consumer_queues():
            declared = await declare_consumer_queue(channel, exchange, queue, "quorum")
            if queue.routing_key == "order.created":
                assert declared.declaration_result.message_count == 1, queue.name
    finally:
        await connection.close()


def test_the_queues_declared_up_front_are_the_ones_the_services_subscribe_to() -> None:
    subscribed = {
        "reports": [
            subscription.routing_key
            for subscription in reports_subscriptions(session_factory=None, outbox=None, tz="UTC", max_attempts=5)  # type: ignore[arg-type]
        ],
        "notifications": [subscription.routing_key for subscription in notifications_subscriptions(reports_to=None)],
        "scheduler": [subscription.routing_key for subscription in scheduler_subscriptions()],
    }
    assert {service: sorted(keys) for service, keys in subscribed.items()} == {
        service: sorted(keys) for service, keys in SUBSCRIBES.items() if keys
    }


async def test_the_queues_command_declares_every_consumer_queue_with_the_administrator_account_alone(
    broker_url: str, exchange_name: str, infrastructure: Infrastructure
) -> None:
    """Under Kubernetes the users are operator resources; ``python -m deploy.broker_users queues`` only
    declares, and needs no service password."""
    parts = urlsplit(broker_url)
    environ = {
        "PATH": os.environ["PATH"],
        "RABBITMQ_MANAGEMENT_URL": infrastructure.management_url,
        "RABBITMQ_AMQP_PORT": str(parts.port or 5672),
        "RABBITMQ_ADMIN_USER": unquote(parts.username or ""),
        "RABBITMQ_ADMIN_PASSWORD": unquote(parts.password or ""),
        "RABBITMQ_VHOST": unquote(parts.path.removeprefix("/")),
        "EVENTS_EXCHANGE": exchange_name,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "deploy.broker_users", "queues", env=environ, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()
    assert f"declared {len(consumer_queues())} consumer queues" in stderr.decode()
    connection = await aio_pika.connect(broker_url)
    try:
        channel = await connection.channel()
        for queue in consumer_queues():
            await channel.get_queue(queue.name, ensure=True)
    finally:
        await connection.close()
