"""taskiq peer with taskiq-aio-pika: persistent messages, publisher confirms (aio-pika's default
channel), ack after the task ran and its result was handled (``when_saved``, taskiq's default).

Worker: ``taskiq worker bench.peers.taskiq_worker:broker --workers 1``.
"""

from __future__ import annotations

import os

from taskiq_aio_pika import AioPikaBroker

from bench.peers.recorder import RECORDER

broker = AioPikaBroker(os.environ.get("PEER_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/"), qos=100)


@broker.task(task_name="record")
async def record(event_id: str) -> None:
    await RECORDER.store(event_id)
