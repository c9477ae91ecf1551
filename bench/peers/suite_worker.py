"""This suite's worker: the shared consumer wrapper recording each ``order.created`` with an idempotent commit.

For each batch, in one transaction: claim every event id in ``processed_events`` (a duplicate
is skipped), insert the recorded rows, commit, then ack. Run:
``python -m bench.peers.suite_worker`` with ``PEER_BROKER_URL`` and ``PEER_DATABASE_URL``;
``PEER_BATCH_SIZE`` and ``PEER_BATCH_LINGER_S`` replace the consumer's defaults (the instruction
counts fix the batches so that they do not depend on how fast the machine delivers).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, DateTime, MetaData, String, Table, Uuid, func, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared import tracing
from shared.contracts.orders import OrderCreated
from shared.db import create_engine, create_session_factory
from shared.messaging.consumer import Consumer, Subscription, define_processed_events_table
from shared.messaging.envelope import Envelope

SERVICE = "peers"
EXCHANGE = "events"

metadata = MetaData()
processed_events = define_processed_events_table(metadata)
recorded = Table(
    "recorded",
    metadata,
    Column("order_id", Uuid, primary_key=True),
    Column("email", String(320)),
    Column("recorded_at", DateTime(timezone=True), server_default=func.clock_timestamp()),
)


# one statement for any batch size, the ids and emails as two arrays: as the reports service stores
# a batch of facts (an executemany would run the insert once per event)
RECORD = text("INSERT INTO recorded (order_id, email) SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:emails AS varchar[]))")


async def record_all(events: Sequence[Envelope[Any]], session: AsyncSession) -> None:
    await session.execute(RECORD, {"ids": [e.data.order_id for e in events], "emails": [e.data.customer_email for e in events]})


def batching_from_environment() -> dict[str, Any]:
    """The consumer's batch size and linger where the environment sets them."""
    batching: dict[str, Any] = {}
    if "PEER_BATCH_SIZE" in os.environ:
        batching["batch_size"] = int(os.environ["PEER_BATCH_SIZE"])
    if "PEER_BATCH_LINGER_S" in os.environ:
        batching["batch_linger_s"] = float(os.environ["PEER_BATCH_LINGER_S"])
    return batching


async def main() -> None:
    # before the table, which tells the instruction counts the worker is ready: the exporter's imports are start-up
    tracing.configure(SERVICE)  # as every service process does: on when the environment names an exporter
    engine = create_engine(os.environ["PEER_DATABASE_URL"], pool_size=10)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    consumer = Consumer(
        service=SERVICE,
        broker_url=os.environ["PEER_BROKER_URL"],
        exchange_name=EXCHANGE,
        session_factory=create_session_factory(engine),
        processed_events=processed_events,
        subscriptions=[Subscription("order.created", OrderCreated, batch_handler=record_all)],
        queue_type="classic" if os.environ.get("PEER_QUEUE_TYPE") == "classic" else "quorum",
        **batching_from_environment(),
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    consumer.start()
    await stopping.wait()
    await consumer.stop()
    await engine.dispose()


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
