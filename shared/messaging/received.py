"""A delivered message as the consumer reads it: aiormq's frame, with nothing built per message that is not read.

aio-pika turns every delivery into an ``IncomingMessage`` (every property copied through
its setters, expiration and timestamp converted) and starts a task of its own to hand it
to the callback; in a worker that stores a batch with one statement, that was about a
tenth of its CPU per message. The consumer subscribes on the aiormq channel underneath
and wraps each delivery in this instead; it reads a handful of fields, each on demand.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import aio_pika
from aiormq.abc import AbstractChannel, DeliveredMessage
from aiormq.exceptions import ChannelInvalidStateError


class ReceivedMessage:
    """The fields of a delivery the consumer reads, and its ack."""

    __slots__ = ("_delivered",)

    def __init__(self, delivered: DeliveredMessage) -> None:
        self._delivered = delivered

    @property
    def body(self) -> bytes:
        return self._delivered.body

    @property
    def headers(self) -> dict[str, Any] | None:
        return self._delivered.header.properties.headers

    @property
    def routing_key(self) -> str | None:
        return self._delivered.routing_key

    @property
    def exchange(self) -> str | None:
        return self._delivered.exchange

    @property
    def delivery_tag(self) -> int | None:
        return self._delivered.delivery_tag

    @property
    def content_type(self) -> str | None:
        return self._delivered.header.properties.content_type

    @property
    def message_id(self) -> str | None:
        return self._delivered.header.properties.message_id

    @property
    def correlation_id(self) -> str | None:
        return self._delivered.header.properties.correlation_id

    @property
    def type(self) -> str | None:
        return self._delivered.header.properties.message_type

    @property
    def timestamp(self) -> datetime | None:
        return self._delivered.header.properties.timestamp

    @property
    def channel(self) -> AbstractChannel:
        """The channel it came on; raises ``ChannelInvalidStateError`` once that channel is closed
        (its unacked deliveries then go back to the queue)."""
        channel = self._delivered.channel
        if channel.is_closed:
            raise ChannelInvalidStateError(f"{channel!r} closed")
        return channel

    async def ack(self, multiple: bool = False) -> None:
        tag = self.delivery_tag
        if tag is None:
            raise ValueError("a message without a delivery tag cannot be acked")
        await self.channel.basic_ack(tag, multiple=multiple)


class Copyable(Protocol):
    """What a copy of a message is made of: a ``ReceivedMessage`` or aio-pika's ``IncomingMessage``."""

    @property
    def body(self) -> bytes: ...
    @property
    def content_type(self) -> str | None: ...
    @property
    def message_id(self) -> str | None: ...
    @property
    def correlation_id(self) -> str | None: ...
    @property
    def timestamp(self) -> datetime | None: ...
    @property
    def type(self) -> str | None: ...


def persistent_copy(message: Copyable, headers: dict[str, Any]) -> aio_pika.Message:
    """The message with these headers, persistent: how a consumer moves it to a retry tier or a DLQ, and a replay back."""
    return aio_pika.Message(
        message.body,
        headers=headers,
        content_type=message.content_type,
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        timestamp=message.timestamp,
        type=message.type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )
