"""Confirmed, persistent, mandatory publishing that reconnects on demand.

aio-pika's defaults are a transient message and a silently accepted ``Basic.Return``;
here every message is persistent, published with ``mandatory`` on a confirm channel
opened with ``on_return_raises``, so an unroutable or nacked message is an error the
caller sees, never a silent loss.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aio_pika
import aiormq
import pamqp.frame
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange
from aiormq import spec
from aiormq.abc import ChannelFrame
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from shared.messaging.envelope import CONTENT_TYPE, Envelope
from shared.messaging.topology import declare_exchange

log = logging.getLogger(__name__)


class BrokerUnavailable(ConnectionError):
    """The broker cannot be reached right now; the caller keeps the message and retries."""


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    routing_key: str
    body: bytes
    message_id: str
    type: str
    timestamp: datetime
    correlation_id: str | None = None
    headers: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_envelope(
        cls, envelope: Envelope[Any], routing_key: str | None = None, headers: dict[str, Any] | None = None
    ) -> OutgoingMessage:
        return cls(
            routing_key=routing_key or envelope.type,
            body=envelope.to_json(),
            message_id=str(envelope.id),
            type=envelope.type,
            timestamp=envelope.occurred_at,
            correlation_id=envelope.correlation_id,
            headers=headers or {},
        )

    def properties(self) -> spec.Basic.Properties:
        return spec.Basic.Properties(
            content_type=CONTENT_TYPE,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT.value,
            message_id=self.message_id,
            message_type=self.type,
            timestamp=self.timestamp,
            correlation_id=self.correlation_id,
            headers=self.headers or None,
        )

    def to_amqp(self) -> aio_pika.Message:
        return aio_pika.Message(
            self.body,
            message_id=self.message_id,
            type=self.type,
            content_type=CONTENT_TYPE,
            timestamp=self.timestamp,
            correlation_id=self.correlation_id,
            headers=self.headers or None,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )


@dataclass(frozen=True, slots=True)
class _Confirmation:
    """The broker's answer to one publish, by its delivery tag on the channel."""

    future: asyncio.Future[Any]
    tag: int


def _outcome(confirmation: _Confirmation) -> BaseException | None:
    future = confirmation.future
    if future.cancelled():
        return TimeoutError("no confirm from the broker in time")
    return future.exception()


class Publisher:
    """Publishes to the events exchange; one connection and confirm channel per process."""

    def __init__(self, broker_url: str, exchange_name: str, *, confirm_timeout_s: float = 10.0, connect_timeout_s: float = 5.0) -> None:
        self._broker_url = broker_url
        self._exchange_name = exchange_name
        self._confirm_timeout_s = confirm_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._lock = asyncio.Lock()
        self._method_frames: dict[tuple[int, str, str], bytes] = {}

    @property
    def connected(self) -> bool:
        return self._channel is not None and not self._channel.is_closed and self._connection is not None and not self._connection.is_closed

    async def _ensure_exchange(self) -> AbstractExchange:
        if self.connected and self._exchange is not None:
            return self._exchange
        async with self._lock:
            if self.connected and self._exchange is not None:
                return self._exchange
            await self._close_quietly()
            try:
                # one deadline for the whole handshake: a broker still booting can accept the
                # connection and then leave the channel or the declare unanswered
                async with asyncio.timeout(self._connect_timeout_s):
                    self._connection = await aio_pika.connect(self._broker_url, timeout=self._connect_timeout_s)
                    self._channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
                    self._exchange = await declare_exchange(self._channel, self._exchange_name)
            except (TimeoutError, OSError, StopAsyncIteration, aio_pika.exceptions.AMQPError) as exc:
                await self._close_quietly()
                raise BrokerUnavailable(f"broker unreachable: {exc!r}") from exc
            log.info("publisher connected", extra={"exchange": self._exchange_name})
            return self._exchange

    async def connect(self) -> None:
        """Connect now instead of on first publish; raises ``BrokerUnavailable``."""
        await self._ensure_exchange()

    async def publish_many(self, messages: Sequence[OutgoingMessage]) -> list[BaseException | None]:
        """Publish every message and wait for every confirm; one outcome per message, in order.

        Raises ``BrokerUnavailable`` only when no message could be attempted.
        """
        exchange = await self._ensure_exchange()
        assert self._channel is not None
        channel = await self._channel.get_underlay_channel()
        assert isinstance(channel, aiormq.Channel)
        if not messages:
            return []
        try:
            # the channel lock and the write queue wait on a connection that may be dead already
            async with asyncio.timeout(self._confirm_timeout_s):
                confirmations = await self._write_batch(channel, exchange.name, messages)
        except (aiormq.exceptions.AMQPError, aiormq.exceptions.ChannelInvalidStateError, ConnectionError, TimeoutError) as exc:
            log.warning("publisher lost its connection; reconnecting on next publish", extra={"error": repr(exc)})
            if isinstance(exc, TimeoutError):
                async with self._lock:
                    await self._close_quietly()
            return [exc] * len(messages)
        try:
            _, waiting = await asyncio.wait([confirmation.future for confirmation in confirmations], timeout=self._confirm_timeout_s)
        finally:
            for message, confirmation in zip(messages, confirmations, strict=True):
                if channel.message_id_delivery_tag.get(message.message_id) == confirmation.tag:
                    del channel.message_id_delivery_tag[message.message_id]
        for future in waiting:
            future.cancel()  # aiormq ignores a confirm that comes later
        results = [_outcome(confirmation) for confirmation in confirmations]
        if any(result is not None for result in results) and not self.connected:
            log.warning("publisher lost its connection; reconnecting on next publish")
        return results

    async def _write_batch(self, channel: aiormq.Channel, exchange: str, messages: Sequence[OutgoingMessage]) -> list[_Confirmation]:
        """Register a confirm for each message and hand all their frames to the connection at once.

        aiormq's ``basic_publish`` takes the channel lock, a timeout scope and a write-queue slot
        per message, and the caller a task per message: most of a relay's CPU per event. Here the
        batch takes the lock once and leaves as one write; the bookkeeping is aiormq's own
        (``delivery_tag``, ``confirmations``, ``message_id_delivery_tag``), so its reader settles
        acks, nacks and returns as for any publish, and a closing channel fails the futures.
        """
        async with channel.lock:
            first_tag = channel.delivery_tag + 1
            confirmations: list[_Confirmation] = []
            frames: list[bytes] = []
            try:
                for offset, message in enumerate(messages):
                    tag = first_tag + offset
                    confirmation = _Confirmation(channel.create_future(), tag)
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
                    if channel.message_id_delivery_tag.get(message.message_id) == confirmation.tag:
                        del channel.message_id_delivery_tag[message.message_id]
                    confirmation.future.cancel()
                raise
        return confirmations

    def _frames(self, channel: aiormq.Channel, exchange: str, message: OutgoingMessage) -> bytes:
        """The method, header and body frames of one publish, marshalled by pamqp; the method frame
        is the same for every message to one routing key, so it is marshalled once."""
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

    async def publish(self, message: OutgoingMessage) -> None:
        (outcome,) = await self.publish_many([message])
        if outcome is not None:
            raise outcome

    async def _close_quietly(self) -> None:
        connection, self._connection, self._channel, self._exchange = self._connection, None, None, None
        if connection is not None and not connection.is_closed:
            try:
                async with asyncio.timeout(self._connect_timeout_s):
                    await connection.close()
            except Exception:
                log.debug("error while closing publisher connection", exc_info=True)

    async def close(self) -> None:
        async with self._lock:
            await self._close_quietly()
