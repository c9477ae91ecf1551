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
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange
from aiormq import spec

from shared.messaging.batch_publish import BatchWriter, forget
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


class Publisher:
    """Publishes to the events exchange; one connection and confirm channel per process."""

    def __init__(
        self,
        broker_url: str,
        exchange_name: str,
        *,
        confirm_timeout_s: float = 10.0,
        connect_timeout_s: float = 5.0,
        batched: bool = True,
    ) -> None:
        """``batched``: a batch leaves through ``shared.messaging.batch_publish`` (one lock, one write);
        off, each message is an aio-pika ``Exchange.publish`` of its own, all awaited together."""
        self._broker_url = broker_url
        self._exchange_name = exchange_name
        self._confirm_timeout_s = confirm_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._lock = asyncio.Lock()
        self._batch_writer = BatchWriter() if batched else None

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
        if not messages:
            return []
        if self._batch_writer is None:
            results = await self._publish_each(exchange, messages)
        else:
            results = await self._publish_batch(exchange, messages, self._batch_writer)
        if any(result is not None for result in results) and not self.connected:
            log.warning("publisher lost its connection; reconnecting on next publish")
        return results

    async def _publish_each(self, exchange: AbstractExchange, messages: Sequence[OutgoingMessage]) -> list[BaseException | None]:
        outcomes = await asyncio.gather(
            *(exchange.publish(m.to_amqp(), m.routing_key, mandatory=True, timeout=self._confirm_timeout_s) for m in messages),
            return_exceptions=True,
        )
        if any(isinstance(outcome, TimeoutError) for outcome in outcomes):
            async with self._lock:
                await self._close_quietly()  # a broker that stops confirming is reconnected to
        return [outcome if isinstance(outcome, BaseException) else None for outcome in outcomes]

    async def _publish_batch(
        self, exchange: AbstractExchange, messages: Sequence[OutgoingMessage], writer: BatchWriter
    ) -> list[BaseException | None]:
        assert self._channel is not None
        channel = await self._channel.get_underlay_channel()
        assert isinstance(channel, aiormq.Channel)
        try:
            # the channel lock and the write queue wait on a connection that may be dead already
            async with asyncio.timeout(self._confirm_timeout_s):
                confirmations = await writer.write(channel, exchange.name, messages)
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
                forget(channel, message, confirmation)
        for future in waiting:
            future.cancel()  # aiormq ignores a confirm that comes later
        return [confirmation.outcome() for confirmation in confirmations]

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
