import asyncio
import uuid
from datetime import UTC, datetime

import aiormq
import pytest
from aiormq.exceptions import PublishError

from shared.contracts.orders import OrderCreated
from shared.messaging.envelope import Envelope
from shared.messaging.publisher import BrokerUnavailable, OutgoingMessage, Publisher
from shared.testing.broker import bound_queue, drain
from shared.testing.tcp_proxy import TcpProxy
from tests.unit.shared.test_envelope import _order_created


@pytest.fixture(params=[True, False], ids=["batched", "aio-pika-publish"])
def batched(request: pytest.FixtureRequest) -> bool:
    """Every publisher test runs with the batched publish (shared/messaging/batch_publish.py) and without it."""
    return bool(request.param)


async def test_published_envelope_arrives_persistent_with_its_properties(broker_url: str, exchange_name: str, batched: bool) -> None:
    publisher = Publisher(broker_url, exchange_name, batched=batched)
    envelope = Envelope[OrderCreated](type="order.created", source="orders_service", data=_order_created(), correlation_id="req-7")
    async with bound_queue(broker_url, exchange_name, "order.created") as queue:
        await publisher.publish(OutgoingMessage.from_envelope(envelope))
        (message,) = await drain(queue, 1)
    await publisher.close()
    assert Envelope[OrderCreated].model_validate_json(message.body) == envelope
    assert message.message_id == str(envelope.id)
    assert message.delivery_mode.value == 2
    assert message.correlation_id == "req-7"
    assert message.type == "order.created"


async def test_unroutable_message_is_an_error_not_a_silent_loss(broker_url: str, exchange_name: str, batched: bool) -> None:
    publisher = Publisher(broker_url, exchange_name, batched=batched)
    envelope = Envelope[OrderCreated](type="order.created", source="s", data=_order_created())
    with pytest.raises(PublishError):
        await publisher.publish(OutgoingMessage.from_envelope(envelope, routing_key=f"nobody.{uuid.uuid4().hex}"))
    # the channel stays usable after a return
    async with bound_queue(broker_url, exchange_name, "order.created") as queue:
        await publisher.publish(OutgoingMessage.from_envelope(envelope))
        assert len(await drain(queue, 1)) == 1
    await publisher.close()


def _message(routing_key: str, body: bytes = b"{}", **fields: object) -> OutgoingMessage:
    return OutgoingMessage(
        routing_key=routing_key,
        body=body,
        message_id=uuid.uuid4().hex,
        type=routing_key,
        timestamp=datetime(2024, 1, 15, 12, 30, tzinfo=UTC),
        **fields,  # type: ignore[arg-type]
    )


async def test_a_batch_has_one_outcome_per_message_in_order_and_arrives_in_order(
    broker_url: str, exchange_name: str, batched: bool
) -> None:
    publisher = Publisher(broker_url, exchange_name, batched=batched)
    nobody = f"nobody.{uuid.uuid4().hex}"
    batch = [_message("order.created" if index % 3 else nobody, body=str(index).encode()) for index in range(30)]
    async with bound_queue(broker_url, exchange_name, "order.created") as queue:
        outcomes = await publisher.publish_many(batch)
        arrived = await drain(queue, 20)
        assert await drain(queue, 1, timeout_s=0.5) == []
    await publisher.close()
    for index, outcome in enumerate(outcomes):
        assert (outcome is None) == bool(index % 3), (index, outcome)
        assert outcome is None or isinstance(outcome, PublishError)
    assert [message.body for message in arrived] == [str(index).encode() for index in range(30) if index % 3]


async def test_properties_headers_and_a_body_larger_than_a_frame_arrive_whole(broker_url: str, exchange_name: str, batched: bool) -> None:
    publisher = Publisher(broker_url, exchange_name, batched=batched)
    large = bytes(range(256)) * 2_000  # 512 kB: four body frames at RabbitMQ's 128 kB frame_max
    sent = [
        _message("order.created", body=large, correlation_id="req-9", headers={"x-attempts": 2, "traceparent": "00-ab-cd-01"}),
        _message("order.created", body=b"small"),
    ]
    async with bound_queue(broker_url, exchange_name, "order.created") as queue:
        assert await publisher.publish_many(sent) == [None, None]
        first, second = await drain(queue, 2)
    await publisher.close()
    assert first.body == large
    assert second.body == b"small"
    assert (first.message_id, first.correlation_id, first.type) == (sent[0].message_id, "req-9", "order.created")
    assert first.headers == {"x-attempts": 2, "traceparent": "00-ab-cd-01"}
    assert first.timestamp is not None
    assert first.timestamp.replace(tzinfo=UTC) == datetime(2024, 1, 15, 12, 30, tzinfo=UTC)
    assert first.delivery_mode.value == 2
    assert first.content_type == "application/json"


async def test_batches_back_to_back_leave_no_bookkeeping_behind(broker_url: str, exchange_name: str, batched: bool) -> None:
    publisher = Publisher(broker_url, exchange_name, batched=batched)
    async with bound_queue(broker_url, exchange_name, "order.created") as queue:
        for _ in range(3):
            assert await publisher.publish_many([_message("order.created") for _ in range(1_500)]) == [None] * 1_500
        assert len(await drain(queue, 4_500)) == 4_500
    assert publisher._channel is not None
    channel = await publisher._channel.get_underlay_channel()
    assert isinstance(channel, aiormq.Channel)
    assert channel.delivery_tag == 4_500, "one delivery tag per message, none skipped or reused"
    assert channel.message_id_delivery_tag == {}, "returns no longer need the message ids of confirmed publishes"
    await publisher.close()


async def test_a_broker_that_stops_answering_fails_a_publish_in_bounded_time(broker_url: str, exchange_name: str, batched: bool) -> None:
    """Neither the handshake nor a publish may wait for ever on a link that carries nothing (a relay would hold
    its locked outbox rows as long)."""
    async with TcpProxy.in_front_of(broker_url) as proxy:
        publisher = Publisher(proxy.url_for(broker_url), exchange_name, connect_timeout_s=1, confirm_timeout_s=1, batched=batched)
        try:
            await publisher.connect()
            proxy.blackhole()
            # each step is bounded by the publisher's own 1 s timeouts; wait_for fails the test if one is not
            outcomes = await asyncio.wait_for(publisher.publish_many([_message("order.created")]), 5)
            assert outcomes[0] is not None
            await asyncio.wait_for(publisher.close(), 5)
            with pytest.raises(BrokerUnavailable):
                await asyncio.wait_for(publisher.connect(), 5)
        finally:
            proxy.restore()
            await asyncio.wait_for(publisher.close(), 5)
