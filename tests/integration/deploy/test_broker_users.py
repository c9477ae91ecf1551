"""Each service's broker user, created in a vhost of the test's own: the broker refuses what the service may not do."""

from __future__ import annotations

import asyncio

import aio_pika
import aiormq.exceptions
import pytest

from shared.messaging.topology import ConsumerQueue, declare_consumer_queue, declare_exchange


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
    await _publish(users["reports"], exchange_name, "reports.order.created.retry", to_exchange="reports.requeue")
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
