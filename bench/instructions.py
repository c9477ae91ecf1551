"""Instructions per event of the suite's own messaging processes, counted by valgrind: a figure the machine does not move.

Events per second on a shared two-core VM move with the machine: the same code measured
three times slower from one session to the next. The number of instructions a process
executes for the same work does not, so it tells whether a change made the code cheaper
when the timings cannot (it counts work, not waiting; a change that only waits less does
not show here).

For each process it runs the process under ``valgrind --tool=callgrind`` with
instrumentation off until the process is ready, turns it on with ``callgrind_control``,
has it handle ``small`` and then, in a second run, ``large`` events, and divides the
difference by ``large - small``, so start-up, readiness polls and shutdown cancel out:

- the consumer: the suite's peers worker (the shared consumer wrapper, claim and record
  in one transaction per batch, one ack per batch) draining ``order.created`` messages in
  full batches (``--consumer-batch``, 100 by default): with the consumer's 50 ms linger a
  batch would hold what the valgrind-slowed process reads in 50 ms of wall time, a number
  the machine's speed sets;
- the relay: ``python -m orders_service.main relay`` publishing outbox rows with confirms;
- the orders HTTP process (``OUTBOX_RELAY=external``, as the Procfile runs it) answering
  ``POST /orders``: the order, its items and its outbox row in one statement;
- the gateway answering ``POST /orders`` for an orders process that runs outside valgrind.

It counts the instructions the process runs in user space; the kernel's work for its
system calls (socket writes and reads, ``epoll``) is not in the figure.

``--tracing carried``: every event and request carries a ``traceparent`` and no exporter is
configured (tracing off); ``--tracing exported``: the same, each process exporting every span
(sampler ``always_on``) over OTLP to a stand-in collector here, once per 512 spans and at exit
(the span processor's 5 s timer off: valgrind stretches the wall clock). Their difference from
the default is what tracing costs.

Run: ``make bench-instructions`` (needs Debian's ``valgrind``); about 2 minutes (2 min 6 s on 2026-12-07).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import re
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvloop
from aiohttp import web
from sqlalchemy import func, insert, select

from bench.environment import bench_infrastructure, scratch_database, scratch_vhost
from bench.gateway import INTERNAL_TOKEN, gateway_env
from bench.http_load import start_python, stop, wait_until_live
from bench.messaging import EXCHANGE, declare_target, sample_event
from bench.orders_http import ORDER
from bench.peers import suite_worker
from orders_service.main import MIGRATIONS as ORDERS_MIGRATIONS
from orders_service.models import outbox as outbox_table
from shared.db import create_engine
from shared.messaging.outbox import Outbox
from shared.messaging.publisher import OutgoingMessage, Publisher
from shared.ports import free_port
from shared.testing.fixtures import eventually
from shared.testing.infrastructure import Infrastructure

CLIENTS = 8  # requests in flight at once in the HTTP measures
API_KEY = "instructions-key-0001"
READY_TIMEOUT_S = 180  # start-up runs under valgrind, uninstrumented but still several times slower
# the consumer's batches: full ones, as from a backlog, so that the count does not depend on how
# many deliveries the valgrind-slowed process reads within the consumer's linger
CONSUMER_BATCH = 100
CONSUMER_BATCHES = (1, 2, 4, 5, 10, 20, 25, 50, 100)  # each divides both counts of events
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@dataclass(frozen=True)
class Tracing:
    """What the measured process is given: headers its inputs carry, and its environment."""

    headers: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)


Run = Callable[[Infrastructure, int, Tracing], Awaitable[int]]


def require_valgrind() -> None:
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise RuntimeError("valgrind is not installed (Debian: apt-get install valgrind)")


@asynccontextmanager
async def counted(module: str, *arguments: str, env: dict[str, str]) -> AsyncIterator[tuple[asyncio.subprocess.Process, list[int]]]:
    """``python -m module`` under callgrind, instrumentation off; yields the process and a list that
    holds the instructions counted once it has exited (after SIGTERM on leaving the block)."""
    with tempfile.TemporaryDirectory(prefix="callgrind-") as directory:
        process = await asyncio.create_subprocess_exec(
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={Path(directory) / 'callgrind.out'}",
            sys.executable,
            "-m",
            module,
            *arguments,
            env=os.environ | env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        collected: list[int] = []
        try:
            yield process, collected
        finally:
            if process.returncode is None:
                process.terminate()
            _, stderr = await asyncio.wait_for(process.communicate(), 120)
        found = re.search(r"Collected : (\d+)", stderr.decode())
        if found is None:
            raise RuntimeError(f"callgrind printed no count for {module}:\n{stderr.decode()[-2000:]}")
        collected.append(int(found.group(1)))


async def instrument(process: asyncio.subprocess.Process) -> None:
    control = await asyncio.create_subprocess_exec(
        "callgrind_control", "--instr=on", str(process.pid), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    if await control.wait() != 0:
        raise RuntimeError("callgrind_control could not turn instrumentation on")


async def consumer_run(infrastructure: Infrastructure, events: int, tracing: Tracing, batch: int = CONSUMER_BATCH) -> int:
    """Instructions of the peers worker process that handled ``events`` ``order.created`` messages,
    in batches of ``batch`` (a linger long enough that every batch fills: ``events`` is a multiple)."""
    if events % batch:
        raise ValueError(f"{events} events do not make whole batches of {batch}")
    async with scratch_vhost(infrastructure) as broker_url, scratch_database(infrastructure, "instr_consumer") as database_url:
        await declare_target(broker_url, suite_worker.SERVICE)
        messages = [OutgoingMessage.from_envelope(sample_event(), headers=dict(tracing.headers)) for _ in range(events)]
        engine = create_engine(database_url, pool_size=1)
        env = {"PEER_BROKER_URL": broker_url, "PEER_DATABASE_URL": database_url, "PEER_BATCH_SIZE": str(batch)}
        env |= {"PEER_BATCH_LINGER_S": str(READY_TIMEOUT_S)} | tracing.env
        try:
            async with counted("bench.peers.suite_worker", env=env) as (process, collected):

                async def table_made() -> bool:
                    async with engine.connect() as connection:
                        return bool(await connection.scalar(select(func.to_regclass("recorded"))))

                # the worker creates its table, then subscribes; messages published before it subscribes wait in its
                # durable queue, and the subscription's own work is the same in both runs, so the difference cancels it
                await eventually(table_made, timeout_s=READY_TIMEOUT_S, interval_s=0.5, what="the worker's table")
                publisher = Publisher(broker_url, EXCHANGE)
                await publisher.connect()
                await instrument(process)
                for start in range(0, events, 1_000):
                    outcomes = await publisher.publish_many(messages[start : start + 1_000])
                    if any(outcome is not None for outcome in outcomes):
                        raise RuntimeError(f"a message was not confirmed: {outcomes}")
                await publisher.close()

                async def all_recorded() -> bool:
                    async with engine.connect() as connection:
                        return int(await connection.scalar(select(func.count()).select_from(suite_worker.recorded)) or 0) >= events

                await eventually(all_recorded, timeout_s=READY_TIMEOUT_S, interval_s=0.5, what=f"{events} events recorded")
        finally:
            await engine.dispose()
        return collected[0]


async def relay_run(infrastructure: Infrastructure, events: int, tracing: Tracing) -> int:
    """Instructions of the orders relay process that published ``events`` outbox rows."""
    async with scratch_vhost(infrastructure) as broker_url, scratch_database(infrastructure, "instr_relay", ORDERS_MIGRATIONS) as url:
        await declare_target(broker_url)
        outbox = Outbox(outbox_table)
        rows = [outbox.row(sample_event(), headers=dict(tracing.headers) or None) for _ in range(events)]
        engine = create_engine(url, pool_size=1)
        port = free_port()
        env = {"ORDERS_DATABASE_URL": url, "BROKER_URL": broker_url, "EVENTS_EXCHANGE": EXCHANGE, "LOG_LEVEL": "WARNING"} | tracing.env
        try:
            async with counted("orders_service.main", "relay", "--port", str(port), env=env) as (process, collected):
                await wait_until_live(f"http://127.0.0.1:{port}/health/ready", process, timeout_s=READY_TIMEOUT_S)
                await instrument(process)
                async with engine.begin() as connection:
                    for start in range(0, events, 5_000):
                        await connection.execute(insert(outbox_table), rows[start : start + 5_000])

                async def all_published() -> bool:
                    async with engine.connect() as connection:
                        unsent = select(func.count()).select_from(outbox_table).where(outbox_table.c.published_at.is_(None))
                        return not await connection.scalar(unsent)

                await eventually(all_published, timeout_s=READY_TIMEOUT_S, interval_s=0.5, what=f"{events} events published")
        finally:
            await engine.dispose()
        return collected[0]


async def post_orders(base_url: str, requests: int, headers: dict[str, str]) -> None:
    """``requests`` orders placed, ``CLIENTS`` at a time; every one must be created."""
    pending = iter(range(requests))
    async with httpx.AsyncClient(base_url=base_url, headers={"Content-Type": "application/json", **headers}, timeout=120) as client:

        async def place() -> None:
            for _ in pending:
                response = await client.post("/orders", content=ORDER)
                if response.status_code != 201:
                    raise RuntimeError(f"POST /orders answered {response.status_code}: {response.text}")

        await asyncio.gather(*(place() for _ in range(CLIENTS)))


async def orders_http_run(infrastructure: Infrastructure, requests: int, tracing: Tracing) -> int:
    """Instructions of the orders HTTP process that answered ``requests`` ``POST /orders``."""
    async with scratch_vhost(infrastructure) as broker_url, scratch_database(infrastructure, "instr_orders", ORDERS_MIGRATIONS) as url:
        await declare_target(broker_url)
        port = free_port()
        env = {
            "ORDERS_DATABASE_URL": url,
            "BROKER_URL": broker_url,
            "OUTBOX_RELAY": "external",
            "LOG_LEVEL": "WARNING",
            "INTERNAL_TOKEN": INTERNAL_TOKEN,
        } | tracing.env
        # what the gateway sends with each call of a shop
        headers = {"X-Internal-Token": INTERNAL_TOKEN, "X-Caller-Name": "bench", "X-Caller-Roles": "shop"} | tracing.headers
        async with counted("orders_service.main", "--port", str(port), env=env) as (process, collected):
            base_url = f"http://127.0.0.1:{port}"
            await wait_until_live(f"{base_url}/health/ready", process, timeout_s=READY_TIMEOUT_S)
            await post_orders(base_url, CLIENTS, headers)  # the first requests of a process prepare statements and warm caches
            await instrument(process)
            await post_orders(base_url, requests, headers)
        return collected[0]


async def gateway_run(infrastructure: Infrastructure, requests: int, tracing: Tracing) -> int:
    """Instructions of the gateway process that passed ``requests`` ``POST /orders`` to an orders process."""
    async with scratch_vhost(infrastructure) as broker_url, scratch_database(infrastructure, "instr_gateway", ORDERS_MIGRATIONS) as url:
        await declare_target(broker_url)
        orders_port, gateway_port = free_port(), free_port()
        orders_url = f"http://127.0.0.1:{orders_port}"
        orders_env = {"ORDERS_DATABASE_URL": url, "BROKER_URL": broker_url, "LOG_LEVEL": "WARNING", "INTERNAL_TOKEN": INTERNAL_TOKEN}
        orders = await start_python("orders_service.main", "--port", str(orders_port), env=orders_env)
        try:
            await wait_until_live(f"{orders_url}/health/ready", orders)
            env = gateway_env(orders_url, API_KEY) | tracing.env
            headers = {"X-API-Key": API_KEY} | tracing.headers
            async with counted("gateway.main", "--port", str(gateway_port), env=env) as (process, collected):
                base_url = f"http://127.0.0.1:{gateway_port}"
                await wait_until_live(f"{base_url}/health/live", process, timeout_s=READY_TIMEOUT_S)
                await post_orders(base_url, CLIENTS, headers)
                await instrument(process)
                await post_orders(base_url, requests, headers)
        finally:
            await stop(orders)
        return collected[0]


async def per_event(infrastructure: Infrastructure, run: Run, small: int, large: int, tracing: Tracing) -> float:
    """Instructions per event: two runs of ``small`` and ``large`` events, the difference divided by theirs."""
    return (await run(infrastructure, large, tracing) - await run(infrastructure, small, tracing)) / (large - small)


@asynccontextmanager
async def tracing_for(mode: str) -> AsyncIterator[Tracing]:
    """``none``, ``carried`` or ``exported`` (see the module's docstring)."""
    if mode == "none":
        yield Tracing()
        return
    if mode == "carried":
        yield Tracing(headers={"traceparent": TRACEPARENT})
        return

    async def accept(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=b"", content_type="application/x-protobuf")

    collector = web.Application(client_max_size=64 * 1024 * 1024)
    collector.router.add_post("/v1/traces", accept)
    runner = web.AppRunner(collector, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        # the span processor exports every 512 spans and, by default, also every 5 s of wall time, which
        # valgrind stretches many times over: without the timer the exports follow the spans, not the clock
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", "OTEL_TRACES_SAMPLER": "always_on"}
        env |= {"OTEL_BSP_SCHEDULE_DELAY": str(24 * 3600 * 1000)}
        yield Tracing(headers={"traceparent": TRACEPARENT}, env=env)
    finally:
        await runner.cleanup()


MEASURES: dict[str, tuple[str, Run, int, int]] = {
    "consumer": ("consumer wrapper (peers worker, batches of {batch} order.created, claim + record + ack)", consumer_run, 500, 2_500),
    "relay": ("outbox relay process (orders, publish with confirms, mark sent)", relay_run, 1_000, 5_000),
    "orders_http": ("orders HTTP process, per `POST /orders`", orders_http_run, 200, 1_000),
    "gateway": ("gateway, per `POST /orders` passed to the orders service", gateway_run, 200, 1_000),
}


async def main(names: list[str], mode: str, consumer_batch: int) -> None:
    require_valgrind()
    async with bench_infrastructure() as infrastructure, tracing_for(mode) as tracing:
        print(f"| process (tracing: {mode}) | instructions per event or request |")
        print("|---|---|")
        for name in names:
            label, run, small, large = MEASURES[name]
            if run is consumer_run:
                run = functools.partial(consumer_run, batch=consumer_batch)
            count = await per_event(infrastructure, run, small, large, tracing)
            print(f"| {label.format(batch=consumer_batch)} | {count / 1000:,.0f}k |", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--only", nargs="*", choices=sorted(MEASURES), default=sorted(MEASURES))
    parser.add_argument("--tracing", choices=["none", "carried", "exported"], default="none")
    parser.add_argument("--consumer-batch", type=int, choices=CONSUMER_BATCHES, default=CONSUMER_BATCH)
    args = parser.parse_args()
    uvloop.run(main(args.only, args.tracing, args.consumer_batch))
