"""A batch of publishes handed to aiormq's channel at once: the one module that uses its internals.

aiormq's ``Channel.basic_publish`` takes the channel lock, a timeout scope and a write-queue
slot per message, and its caller a task per message: most of a relay's instructions per
event. ``write_batch`` takes the lock once, registers a confirm per message in aiormq's own
bookkeeping (``delivery_tag``, ``confirmations``, ``message_id_delivery_tag``) so its reader
settles acks, nacks and returns as for any publish, and queues every frame as one write.

Those attributes are not a documented API. So the batched publish is switched by a setting
(``PUBLISH_BATCHED``, on by default; off, the publisher uses aio-pika's ``Exchange.publish``),
and ``tests/unit/shared/test_batch_publish.py`` fails on any aiormq or pamqp release other
than the ones below, so an upgrade re-checks this module before it ships.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiormq
import pamqp.frame
from aiormq import spec
from aiormq.abc import ChannelFrame
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

if TYPE_CHECKING:
    from shared.messaging.publisher import OutgoingMessage

WRITTEN_FOR = {"aiormq": "7.2.4", "pamqp": "4.0.1"}


@dataclass(frozen=True, slots=True)
class Confirmation:
    """The broker's answer to one publish, by its delivery tag on the channel."""

    future: asyncio.Future[Any]
    tag: int

    def outcome(self) -> BaseException | None:
        if self.future.cancelled():
            return TimeoutError("no confirm from the broker in time")
        return self.future.exception()


class BatchWriter:
    """Writes batches of publishes on one channel; the method frame of each routing key is marshalled once."""

    def __init__(self) -> None:
        self._method_frames: dict[tuple[int, str, str], bytes] = {}

    async def write(self, channel: aiormq.Channel, exchange: str, messages: Sequence[OutgoingMessage]) -> list[Confirmation]:
        """Register a confirm for each message and queue all their frames as one write."""
        async with channel.lock:
            first_tag = channel.delivery_tag + 1
            confirmations: list[Confirmation] = []
            frames: list[bytes] = []
            try:
                for offset, message in enumerate(messages):
                    tag = first_tag + offset
                    confirmation = Confirmation(channel.create_future(), tag)
                    channel.confirmations[tag] = confirmation.future
                    channel.message_id_delivery_tag[message.message_id] = tag
                    confirmations.append(confirmation)
                    frames.append(self._frames(channel, exchange, message))
                channel.delivery_tag = first_tag + len(messages) - 1
                await channel.write_queue.put(ChannelFrame(payload=b"".join(frames), should_close=False))
            except BaseException:
                # nothing reached the broker: give the tags back while the lock is still held
                channel.delivery_tag = first_tag - 1
                for confirmation, message in zip(confirmations, messages, strict=False):
                    channel.confirmations.pop(confirmation.tag, None)
                    forget(channel, message, confirmation)
                    confirmation.future.cancel()
                raise
        return confirmations

    def _frames(self, channel: aiormq.Channel, exchange: str, message: OutgoingMessage) -> bytes:
        key = (channel.number, exchange, message.routing_key)
        method = self._method_frames.get(key)
        if method is None:
            publish = spec.Basic.Publish(exchange=exchange, routing_key=message.routing_key, mandatory=True)
            method = self._method_frames[key] = pamqp.frame.marshal(publish, channel.number)
        header = ContentHeader(properties=message.properties(), body_size=len(message.body))
        parts = [method, pamqp.frame.marshal(header, channel.number)]
        body = message.body
        for start in range(0, len(body), channel.max_content_size):
            parts.append(pamqp.frame.marshal(ContentBody(body[start : start + channel.max_content_size]), channel.number))
        return b"".join(parts)


def forget(channel: aiormq.Channel, message: OutgoingMessage, confirmation: Confirmation) -> None:
    """Drop the message id aiormq keeps to match a ``Basic.Return``, once its publish is settled."""
    if channel.message_id_delivery_tag.get(message.message_id) == confirmation.tag:
        del channel.message_id_delivery_tag[message.message_id]
