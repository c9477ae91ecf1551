"""FastStream peer: durable queue, ``persist=True`` messages, publisher confirms (FastStream's default
channel), ack after the handler returned (``AckPolicy.ACK``).

Worker: ``faststream run bench.peers.faststream_worker:app``.
"""

from __future__ import annotations

import os

from faststream import AckPolicy, FastStream
from faststream.rabbit import Channel, RabbitBroker, RabbitQueue

from bench.peers.recorder import RECORDER

QUEUE = RabbitQueue("peer-faststream", durable=True)

broker = RabbitBroker(os.environ.get("PEER_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/"), logger=None)
app = FastStream(broker, logger=None)


@broker.subscriber(QUEUE, ack_policy=AckPolicy.ACK, channel=Channel(prefetch_count=100))
async def record(event_id: str) -> None:
    await RECORDER.store(event_id)
