"""Celery peer: RabbitMQ broker, persistent messages, publisher confirms, late acks (after the task ran).

Worker: ``celery -A bench.peers.celery_worker worker --pool=solo -Q peer-celery``.
"""

from __future__ import annotations

import os

from celery import Celery

from bench.peers.recorder import RECORDER

QUEUE = "peer-celery"


def make_app(broker_url: str) -> Celery:
    app = Celery("peer", broker=broker_url)
    app.conf.update(
        task_acks_late=True,  # ack after the task returns
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=100,
        broker_transport_options={"confirm_publish": True},  # the producer waits for the broker's confirm
        task_default_delivery_mode="persistent",
        task_default_queue=QUEUE,
        task_ignore_result=True,
        worker_hijack_root_logger=False,
    )
    return app


app = make_app(os.environ.get("PEER_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//"))


@app.task(name="record")
def record(event_id: str) -> None:
    RECORDER.store_blocking(event_id)
