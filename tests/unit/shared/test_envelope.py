import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from pydantic import ValidationError

from shared.contracts.orders import OrderCreated, OrderItemData
from shared.messaging.envelope import Envelope
from shared.messaging.outbox import new_event
from shared.messaging.publisher import OutgoingMessage


def _order_created() -> OrderCreated:
    return OrderCreated(
        order_id=uuid.uuid4(),
        customer_email="ada@example.com",
        created_at=datetime(2026, 3, 29, 0, 30, tzinfo=UTC),
        items=[OrderItemData(sku="A", quantity=3, unit_price=Decimal("1.50"))],
        count_product=3,
        total_amount=Decimal("4.50"),
        currency="EUR",
    )


def test_round_trip_keeps_every_field() -> None:
    envelope = Envelope[OrderCreated](type="order.created", source="orders_service", data=_order_created(), correlation_id="req-1")
    parsed = Envelope[OrderCreated].model_validate_json(envelope.to_json())
    assert parsed == envelope
    assert parsed.data.total_amount == Decimal("4.50")


def test_occurred_at_is_normalised_to_utc() -> None:
    moscow = timezone(timedelta(hours=3))
    envelope = Envelope[OrderCreated](
        type="order.created", source="s", data=_order_created(), occurred_at=datetime(2026, 1, 1, 3, tzinfo=moscow)
    )
    assert envelope.occurred_at == datetime(2026, 1, 1, 0, tzinfo=UTC)
    assert envelope.occurred_at.utcoffset() == timedelta(0)


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    envelope = Envelope[OrderCreated](type="order.created", source="s", data=_order_created())
    raw = envelope.model_dump(mode="json")
    raw["new_top_level"] = 1
    raw["data"]["loyalty_points"] = 5
    assert Envelope[OrderCreated].model_validate(raw).data == envelope.data


@pytest.mark.parametrize("body", [b"not json", b"{}", b'{"id": "x", "type": "order.created"}'])
def test_bad_messages_fail_validation(body: bytes) -> None:
    with pytest.raises(ValidationError):
        Envelope[OrderCreated].model_validate_json(body)


def test_naive_timestamps_are_rejected() -> None:
    raw = Envelope[OrderCreated](type="order.created", source="s", data=_order_created()).model_dump(mode="json")
    raw["occurred_at"] = "2026-01-01T00:00:00"
    with pytest.raises(ValidationError):
        Envelope[OrderCreated].model_validate(raw)


def test_amqp_properties_mirror_the_envelope() -> None:
    envelope = new_event("order.created", "orders_service", _order_created(), correlation_id="req-9")
    message = OutgoingMessage.from_envelope(envelope).to_amqp()
    assert message.message_id == str(envelope.id)
    assert message.type == "order.created"
    assert message.content_type == "application/json"
    assert message.correlation_id == "req-9"
    assert message.delivery_mode.value == 2
    assert message.timestamp is not None
