import uuid

import pytest
from aiormq.exceptions import PublishError

from shared.contracts.orders import OrderCreated
from shared.messaging.envelope import Envelope
from shared.messaging.publisher import OutgoingMessage, Publisher
from shared.testing.broker import bound_queue, drain
from tests.unit.shared.test_envelope import _order_created


async def test_published_envelope_arrives_persistent_with_its_properties(broker_url: str, exchange_name: str) -> None:
    publisher = Publisher(broker_url, exchange_name)
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


async def test_unroutable_message_is_an_error_not_a_silent_loss(broker_url: str, exchange_name: str) -> None:
    publisher = Publisher(broker_url, exchange_name)
    envelope = Envelope[OrderCreated](type="order.created", source="s", data=_order_created())
    with pytest.raises(PublishError):
        await publisher.publish(OutgoingMessage.from_envelope(envelope, routing_key=f"nobody.{uuid.uuid4().hex}"))
    # the channel stays usable after a return
    async with bound_queue(broker_url, exchange_name, "order.created") as queue:
        await publisher.publish(OutgoingMessage.from_envelope(envelope))
        assert len(await drain(queue, 1)) == 1
    await publisher.close()
