"""10,000 small events from a producer to a worker that records each one, with durable settings, per system.

Every system gets its own vhost; its worker runs in its own process, which serves the
drain first and then the end-to-end runs. Three figures each:
- end to end: the worker is consuming, then the producer sends every event, WINDOW sends in
  flight; from the first send until the worker has recorded the last one;
- end to end, one send at a time: the same with each send awaited before the next (SERIAL_EVENTS
  events), as an application that publishes as it goes sends;
- worker drain: every event is queued first, then the worker starts; from its first
  record to its last.
Durable settings for all: persistent messages on a durable queue, publisher confirms
awaited by the producer, acks only after the work is done. This suite does more per event:
the producer's event is an outbox row written in its own transaction (relayed with
confirms and ``mandatory``), the queue is a quorum queue, and the worker's record commits
together with the event's idempotency claim before the ack.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import func, make_url, select

from bench.environment import scratch_database, scratch_vhost
from bench.http_load import kill_session, start_in_session, start_python, stop, wait_until_live
from bench.messaging import EXCHANGE, declare_target, outbox_drained, sample_event, wait_for_consumer
from bench.peers import suite_worker
from orders_service.main import MIGRATIONS as ORDERS_MIGRATIONS
from orders_service.models import outbox as outbox_table
from shared.db import create_driver_pool, create_engine
from shared.messaging.outbox import Outbox
from shared.messaging.topology import QueueType
from shared.ports import free_port
from shared.testing.fixtures import eventually
from shared.testing.infrastructure import Infrastructure

EVENTS = 10_000
WINDOW = int(os.environ.get("PEER_WINDOW", "100"))  # sends in flight at once
PRODUCER_CONNECTIONS = 10  # this suite's producer: transactions committing side by side
# one send at a time, each awaited before the next (how an application that publishes as it goes
# sends); fewer events, since this is the slow way for every system
SERIAL_EVENTS = 1_000
# Celery's send_task waits for each confirm: its sends in flight are producer threads, each with
# its own pooled connection (broker_pool_limit is 10 by default)
CELERY_PRODUCERS = 8
# each peer recording in memory runs end to end this many times in a row, as the suite runs twice
PEER_END_TO_END_RUNS = 2
Producer = Callable[[str, list[str], int], Awaitable[None]]
Item = TypeVar("Item")


async def send_all(send: Callable[[Item], Awaitable[object]], items: Sequence[Item], window: int) -> None:
    """Every item sent with ``window`` sends in flight: a sliding window, as ``window`` clients
    each sending as soon as their last send ends. Waves of ``window`` that each wait for their
    slowest send would leave the pipe part empty at the end of every wave."""
    pending = iter(items)

    async def client() -> None:
        for item in pending:  # one iterator shared by every client: each item is sent once
            await send(item)

    await asyncio.gather(*(client() for _ in range(min(window, len(items)))))


async def produce_celery(broker_url: str, ids: list[str], window: int) -> None:
    from bench.peers.celery_worker import make_app

    app = make_app(broker_url)

    def send(part: list[str]) -> None:
        with app.producer_or_acquire() as producer:
            for event_id in part:
                app.send_task("record", args=[event_id], producer=producer)

    threads = min(CELERY_PRODUCERS, window)
    try:
        await asyncio.gather(*(asyncio.to_thread(send, ids[index::threads]) for index in range(threads)))
    finally:
        app.close()


async def produce_taskiq(broker_url: str, ids: list[str], window: int) -> None:
    from taskiq_aio_pika import AioPikaBroker

    from bench.peers import taskiq_worker

    broker = AioPikaBroker(broker_url, qos=100)
    task = broker.register_task(taskiq_worker.record.original_func, task_name="record")
    await broker.startup()
    try:
        await send_all(task.kiq, ids, window)
    finally:
        await broker.shutdown()


async def produce_faststream(broker_url: str, ids: list[str], window: int) -> None:
    from faststream.rabbit import RabbitBroker

    from bench.peers.faststream_worker import QUEUE

    async with RabbitBroker(broker_url, logger=None) as broker:
        await broker.declare_queue(QUEUE)
        await send_all(lambda event_id: broker.publish(event_id, QUEUE, persist=True), ids, window)


CELERY_WORKER = ["celery", "-A", "bench.peers.celery_worker", "worker", "--pool=solo", "-Q", "peer-celery", "-l", "WARNING"]
CELERY_WORKER += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
TASKIQ_WORKER = ["taskiq", "worker", "bench.peers.taskiq_worker:broker", "--workers", "1", "--log-level", "WARNING"]
FASTSTREAM_WORKER = ["faststream", "run", "bench.peers.faststream_worker:app", "--log-level", "warning"]
# name -> (worker command run as `python -m ...`, its queue, the producer)
PEERS: dict[str, tuple[list[str], str, Producer]] = {
    "celery": (CELERY_WORKER, "peer-celery", produce_celery),
    "taskiq": (TASKIQ_WORKER, "taskiq", produce_taskiq),
    "faststream": (FASTSTREAM_WORKER, "peer-faststream", produce_faststream),
}


async def _wait_for(probe: Callable[[], Awaitable[Any]], what: str, timeout_s: float = 120) -> Any:
    return await eventually(probe, timeout_s=timeout_s, interval_s=0.05, what=what)


async def _rounds(path: Path, count: int) -> list[dict[str, float]] | None:
    text = await asyncio.to_thread(lambda: path.read_text() if path.exists() else "")
    rounds: list[dict[str, float]] = json.loads(text)["rounds"] if text else []
    return rounds if len(rounds) >= count else None


async def peer_runs(infrastructure: Infrastructure, name: str) -> tuple[float, float, float]:
    """(end to end, drain, end to end one send at a time) events/s of one peer recording in
    memory, from one worker process: first the drain (the queue is filled, then the worker
    starts), then, with the worker consuming, end to end with WINDOW sends in flight, twice in a
    row (the figure is their mean, as the suite's is the mean of its two runs: a single lucky or
    unlucky run of one system would otherwise decide the round), then one send at a time."""
    return await _worker_runs(infrastructure, name, {}, durable=False)


async def durable_peer_run(infrastructure: Infrastructure, name: str) -> float:
    """End-to-end events/s of one peer whose worker stores each event in a PostgreSQL database of
    its own before it acks (``bench/peers/recorder.py``), as this suite's worker does. Only end
    to end: the one-at-a-time run measures the producer, the same either way, and this suite's
    drain already outruns every peer's drain in memory."""
    async with scratch_database(infrastructure, f"peer_{name}") as database_url:
        dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        end_to_end, _, _ = await _worker_runs(infrastructure, name, {"PEER_DATABASE_URL": dsn}, durable=True)
        connection = await asyncpg.connect(dsn)
        try:
            stored = await connection.fetchval("SELECT count(*) FROM recorded")
        finally:
            await connection.close()
        if stored != 1 + EVENTS:  # the warm-up event and the run's, each stored once
            raise RuntimeError(f"{name} stored {stored} records, expected {1 + EVENTS}")
        return end_to_end


async def _worker_runs(
    infrastructure: Infrastructure, name: str, extra_env: dict[str, str], *, durable: bool
) -> tuple[float, float, float]:
    command, queue, produce = PEERS[name]
    vhost = f"bench-{name}-{uuid.uuid4().hex[:6]}"
    await asyncio.to_thread(infrastructure.create_vhost, vhost)
    broker_url = infrastructure.vhost_url(vhost)

    def new_ids(count: int) -> list[str]:
        return [uuid.uuid4().hex for _ in range(count)]

    with tempfile.TemporaryDirectory() as directory:
        result = Path(directory) / "result.json"
        # durable: one warm-up event opens the worker's database pool before the timed run
        end_to_end_runs = 1 if durable else PEER_END_TO_END_RUNS
        sizes = [1, EVENTS] if durable else [EVENTS, *[EVENTS] * end_to_end_runs, SERIAL_EVENTS]
        env = {"PEER_BROKER_URL": broker_url, "PEER_ROUNDS": ",".join(map(str, sizes)), "PEER_RESULT": str(result)} | extra_env
        worker = None
        try:
            if not durable:
                await produce(broker_url, new_ids(EVENTS), WINDOW)
            worker = await start_in_session(sys.executable, "-m", *command, env=env)
            drain = 0.0
            if durable:
                await wait_for_consumer(broker_url, queue)
                await produce(broker_url, new_ids(1), 1)
                await _wait_for(lambda: _rounds(result, 1), f"{name} warm-up")
            else:
                (drained,) = await _wait_for(lambda: _rounds(result, 1), f"{name} drain")
                drain = EVENTS / float(drained["last"] - drained["first"])
                await wait_for_consumer(broker_url, queue)
            rates = []
            for run in range(2, 2 + end_to_end_runs):  # the first round was the drain or the warm-up
                started = time.time()
                await produce(broker_url, new_ids(EVENTS), WINDOW)
                finished = await _wait_for(functools.partial(_rounds, result, run), f"{name} end to end")
                rates.append(EVENTS / float(finished[run - 1]["last"] - started))
            end_to_end = sum(rates) / len(rates)
            if durable:
                return end_to_end, drain, 0.0
            serial_started = time.time()
            await produce(broker_url, new_ids(SERIAL_EVENTS), 1)
            serial_run = 2 + end_to_end_runs
            finished = await _wait_for(functools.partial(_rounds, result, serial_run), f"{name} end to end, one send at a time")
            return end_to_end, drain, SERIAL_EVENTS / float(finished[serial_run - 1]["last"] - serial_started)
        finally:
            if worker is not None:
                await kill_session(worker)  # every run it served is counted by now
            await asyncio.to_thread(infrastructure.delete_vhost, vhost)


async def suite_run(
    infrastructure: Infrastructure,
    *,
    drain: bool,
    rows_per_transaction: int = 1,
    queue_type: QueueType = "quorum",
    serial_events: int = 0,
) -> tuple[float, float]:
    """(events/s, events/s one commit at a time). Producer: outbox rows committed
    ``rows_per_transaction`` at a time (1: every event its own transaction, as an order is),
    WINDOW transactions in flight; then, end to end only, ``serial_events`` rows committed one
    at a time, each awaited before the next, through the same relay and worker (0: none). The
    relay runs as the suite runs the orders relay: ``python -m orders_service.main relay``, a
    process of its own. A run ends at the time its last event was recorded (the worker's
    ``recorded_at``, taken as the row is inserted, a commit's few milliseconds before the batch is
    durable), as a peer's run ends at the time its worker noted the last event: how soon the
    benchmark's poll then sees it is not counted."""
    async with (
        scratch_vhost(infrastructure) as broker_url,
        scratch_database(infrastructure, "peers_out", ORDERS_MIGRATIONS) as producer_url,
        scratch_database(infrastructure, "peers_in") as worker_url,
    ):
        await declare_target(broker_url, suite_worker.SERVICE, queue_type=queue_type)
        outbox = Outbox(outbox_table)
        rows = [outbox.row(sample_event()) for _ in range(EVENTS)]
        serial_rows = [outbox.row(sample_event()) for _ in range(serial_events)]
        columns = list(rows[0])
        statement = f"INSERT INTO outbox ({', '.join(columns)}) VALUES ({', '.join(f'${i + 1}' for i in range(len(columns)))})"
        # the pool the orders service commits its orders through (no reset round trip on release)
        pool = await create_driver_pool(producer_url, max_size=PRODUCER_CONNECTIONS)
        engine = create_engine(producer_url, pool_size=1)
        worker_engine = create_engine(worker_url, pool_size=1)
        env = os.environ | {"PEER_BROKER_URL": broker_url, "PEER_DATABASE_URL": worker_url, "PEER_QUEUE_TYPE": queue_type}
        relay_env = os.environ | {"ORDERS_DATABASE_URL": producer_url, "BROKER_URL": broker_url, "EVENTS_EXCHANGE": EXCHANGE}
        relay_env |= {"LOG_LEVEL": "WARNING", "QUEUE_TYPE": queue_type}
        worker = relay = None
        recorded_at = suite_worker.recorded.c.recorded_at

        async def start_relay() -> asyncio.subprocess.Process:
            port = free_port()
            process = await start_python("orders_service.main", "relay", "--port", str(port), env=relay_env)
            await wait_until_live(f"http://127.0.0.1:{port}/health/live", process)
            return process

        try:

            async def produce(batch: list[dict[str, Any]], per_transaction: int, window: int) -> None:
                async def commit(group: list[dict[str, Any]]) -> None:
                    async with pool.acquire() as connection:
                        if len(group) == 1:
                            await connection.execute(statement, *(group[0][column] for column in columns))
                        else:
                            await connection.executemany(statement, [tuple(row[column] for column in columns) for row in group])

                groups = [batch[start : start + per_transaction] for start in range(0, len(batch), per_transaction)]
                await send_all(commit, groups, window)

            async def recorded() -> int:
                async with worker_engine.connect() as connection:
                    return int(await connection.scalar(select(func.count()).select_from(suite_worker.recorded)) or 0)

            async def all_recorded(count: int = EVENTS) -> bool:
                try:
                    return await recorded() >= count
                except Exception:  # noqa: BLE001 - the worker creates its table as it starts
                    return False

            async def first_and_last() -> tuple[float, float]:
                """Wall-clock times of the first and last record so far."""
                async with worker_engine.connect() as connection:
                    first, last = (await connection.execute(select(func.min(recorded_at), func.max(recorded_at)))).one()
                return first.timestamp(), last.timestamp()

            if drain:
                relay = await start_relay()
                await produce(rows, rows_per_transaction, WINDOW)
                await _wait_for(lambda: outbox_drained(engine), "relay drained")
                worker = await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.peers.suite_worker", env=env)
                await _wait_for(all_recorded, "suite drain")
                first, last = await first_and_last()
                return EVENTS / (last - first), 0.0
            worker = await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.peers.suite_worker", env=env)
            await wait_for_consumer(broker_url, f"{suite_worker.SERVICE}.order.created")
            relay = await start_relay()
            started = time.time()
            await produce(rows, rows_per_transaction, WINDOW)
            await _wait_for(all_recorded, "suite end to end")
            _, last = await first_and_last()
            end_to_end = EVENTS / (last - started)
            if not serial_rows:
                return end_to_end, 0.0
            started = time.time()
            await produce(serial_rows, 1, 1)
            await _wait_for(lambda: all_recorded(EVENTS + serial_events), "suite end to end, one commit at a time")
            _, last = await first_and_last()
            return end_to_end, serial_events / (last - started)
        finally:
            for process in (worker, relay):
                if process is not None:
                    await stop(process)
            await pool.close()
            await engine.dispose()
            await worker_engine.dispose()


async def compare(infrastructure: Infrastructure) -> dict[str, float]:
    """One round. The suite's end-to-end run goes once before the peers and once after them, and
    its figure is the mean of the two: a machine whose speed drifts during the round (a shared VM's
    has, the suite's two runs of one round measuring 1,988 and 3,339 events/s) then favours
    neither side of the comparison."""
    results: dict[str, float] = {"events": EVENTS, "serial_events": SERIAL_EVENTS}
    results["suite_e2e_before"], results["suite_serial_e2e"] = await suite_run(infrastructure, drain=False, serial_events=SERIAL_EVENTS)
    results["suite_batched_e2e"], _ = await suite_run(infrastructure, drain=False, rows_per_transaction=100)
    results["suite_drain"], _ = await suite_run(infrastructure, drain=True)
    for name in PEERS:
        results[f"{name}_e2e"], results[f"{name}_drain"], results[f"{name}_serial_e2e"] = await peer_runs(infrastructure, name)
    for name in PEERS:
        results[f"{name}_durable_e2e"] = await durable_peer_run(infrastructure, name)
    results["suite_e2e_after"], _ = await suite_run(infrastructure, drain=False)
    results["suite_e2e"] = (results["suite_e2e_before"] + results["suite_e2e_after"]) / 2
    return results
