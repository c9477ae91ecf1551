"""A delivery read straight from aiormq's frame: the fields the consumer reads, and its ack."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from aiormq.abc import AbstractChannel, DeliveredMessage
from aiormq.exceptions import ChannelInvalidStateError
from pamqp import commands as spec
from pamqp.header import ContentHeader

from shared.messaging.received import ReceivedMessage


@dataclass
class Channel:
    is_closed: bool = False
    acks: list[tuple[int, bool]] = field(default_factory=list)

    async def basic_ack(self, delivery_tag: int, multiple: bool = False) -> None:
        self.acks.append((delivery_tag, multiple))


def delivered(channel: Channel, **properties: Any) -> DeliveredMessage:
    return DeliveredMessage(
        delivery=spec.Basic.Deliver(consumer_tag="ctag", delivery_tag=7, redelivered=True, exchange="events", routing_key="order.created"),
        header=ContentHeader(properties=spec.Basic.Properties(**properties), body_size=2),
        body=b"{}",
        channel=cast(AbstractChannel, channel),
    )


def test_the_fields_come_from_the_frame() -> None:
    at = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
    message = ReceivedMessage(
        delivered(
            Channel(),
            content_type="application/json",
            message_id="m-1",
            correlation_id="c-1",
            message_type="order.created",
            timestamp=at,
            headers={"x-attempts": 2},
        )
    )
    assert (message.body, message.routing_key, message.exchange, message.delivery_tag) == (
        b"{}",
        "order.created",
        "events",
        7,
    )
    assert (message.content_type, message.message_id, message.correlation_id, message.type) == (
        "application/json",
        "m-1",
        "c-1",
        "order.created",
    )
    assert message.timestamp == at
    assert message.headers == {"x-attempts": 2}


async def test_ack_goes_to_the_channel_it_came_on() -> None:
    channel = Channel()
    await ReceivedMessage(delivered(channel)).ack(multiple=True)
    assert channel.acks == [(7, True)]


async def test_a_closed_channel_cannot_ack() -> None:
    message = ReceivedMessage(delivered(Channel(is_closed=True)))
    with pytest.raises(ChannelInvalidStateError):
        _ = message.channel
    with pytest.raises(ChannelInvalidStateError):
        await message.ack()
