"""Each fault under load through the gateway, then one invariant checker: nothing accepted is lost, doubled or parked.

The faults run in this order on one suite; each ends only when the suite has healed by
itself (no person restarts anything) and ``check`` has counted.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import quote

import aio_pika
import asyncpg
import httpx
import pytest

from scheduler_service import cron
from scheduler_service.main import MIGRATIONS as SCHEDULER_MIGRATIONS
from scheduler_service.models import outbox as scheduler_outbox
from scheduler_service.models import schedule_runs, schedules
from scheduler_service.schedules import create_schedule
from scheduler_service.schemas import ScheduleIn
from scheduler_service.settings import ScheduleLimits
from scheduler_service.store import SqlSchedulesStore
from scheduler_service.ticker import Ticker
from shared.db import asyncpg_dsn, create_engine, create_session_factory
from shared.messaging.envelope import Envelope
from shared.messaging.outbox import Outbox
from shared.testing.fixtures import migrated_database
from shared.testing.infrastructure import Infrastructure
from tests.e2e.conftest import pid_listening_on
from tests.faults import machine
from tests.faults.checker import FaultResult, OrderLoad, check, parked_messages, queues
from tests.faults.conftest import FaultSuite, record, skip_fault
from tests.unit.shared.test_envelope import _order_created

pytestmark = pytest.mark.timeout(240)

FIRST_DAY = datetime.now(UTC).date() - timedelta(days=60)


def _day(fault_number: int) -> date:
    """Each fault's orders on a day of their own, so its report holds exactly them."""
    return FIRST_DAY + timedelta(days=fault_number)


def _load(suite: FaultSuite, number: int, **options: Any) -> OrderLoad:
    return OrderLoad(suite.gateway, f"fault{number}-{int(time.time())}", _day(number), **options)


async def _under_load(
    suite: FaultSuite,
    number: int,
    *,
    fault: str,
    injected: str,
    begin: Callable[[], Awaitable[object]],
    end: Callable[[], Awaitable[object]],
    lasting_s: float,
) -> FaultResult:
    """Orders flowing, the fault begun, held ``lasting_s``, ended; then the checker's figures."""
    load = _load(suite, number)
    load.start()
    await asyncio.sleep(3)
    await begin()
    await asyncio.sleep(lasting_s)
    await end()
    ended = time.monotonic()
    await asyncio.sleep(3)
    await load.stop()
    return await check(suite.view, load, fault=fault, injected=injected, fault_ended=ended)


def _in_thread(action: Callable[..., object], *arguments: object) -> Callable[[], Awaitable[object]]:
    return partial(asyncio.to_thread, action, *arguments)


def _on_loop(action: Callable[[], object]) -> Callable[[], Awaitable[object]]:
    """For the proxies, which live on the test's event loop."""

    async def run() -> object:
        return action()

    return run


async def test_1_broker_stopped_30_s_under_load(fault_suite: FaultSuite) -> None:
    broker = fault_suite.infrastructure
    result = await _under_load(
        fault_suite,
        1,
        fault="broker stopped 30 s",
        injected="`rabbitmqctl stop_app` under load",
        begin=_in_thread(broker.stop_broker),
        end=_in_thread(broker.start_broker),
        lasting_s=30,
    )
    record(result)


async def test_2_broker_killed_and_restarted(fault_suite: FaultSuite) -> None:
    async def kill() -> None:
        assert await asyncio.to_thread(machine.kill_broker), "no RabbitMQ VM (beam.smp) found to kill"

    result = await _under_load(
        fault_suite,
        2,
        fault="broker killed",
        injected="`kill -9` of the Erlang VM, then started again",
        begin=kill,
        end=_in_thread(machine.restart_broker, fault_suite.infrastructure),
        lasting_s=2,
    )
    record(result)


async def test_3_broker_link_blackholed(fault_suite: FaultSuite) -> None:
    proxy = fault_suite.broker_proxy
    result = await _under_load(
        fault_suite,
        3,
        fault="broker link blackholed 20 s",
        injected="a TCP proxy before RabbitMQ forwards nothing and closes nothing (heartbeat 5 s)",
        begin=_on_loop(proxy.blackhole),
        end=_on_loop(proxy.restore),
        lasting_s=20,
    )
    record(result)


async def test_4_postgresql_stopped_15_s_under_load(fault_suite: FaultSuite) -> None:
    version = machine.postgres_cluster()
    if version is None:
        skip_fault("PostgreSQL stopped 15 s", "`pg_ctlcluster stop -m immediate`", "needs root and Debian's pg_ctlcluster")
        return
    result = await _under_load(
        fault_suite,
        4,
        fault="PostgreSQL stopped 15 s",
        injected="`pg_ctlcluster stop -m immediate` under load",
        begin=_in_thread(machine.stop_postgres_immediately, version),
        end=_in_thread(machine.start_postgres, version),
        lasting_s=15,
    )
    result.seen = f"; clients saw {result.statuses.get('503', 0)} answers 503 (retried), no 500"
    record(result)


async def test_5_one_services_database_connections_killed(fault_suite: FaultSuite) -> None:
    load = _load(fault_suite, 5)
    load.start()
    await asyncio.sleep(2)
    cut = 0
    for _ in range(5):
        for service in ("reports", "notifications"):
            cut += await machine.terminate_backends(fault_suite.databases[service], fault_suite.infrastructure.postgres_url)
        await asyncio.sleep(1)
    ended = time.monotonic()
    await asyncio.sleep(2)
    await load.stop()
    result = await check(
        fault_suite.view,
        load,
        fault="database connections killed",
        injected="`pg_terminate_backend` of every reports and notifications connection, 5 times",
        fault_ended=ended,
    )
    result.seen = f"; {cut} connections cut"
    record(result)


async def test_6_each_process_killed_in_turn_during_a_burst(fault_suite: FaultSuite) -> None:
    load = _load(fault_suite, 6)
    load.start()
    back_in: dict[str, float] = {}
    for process in ("orders", "orders-relay", "reports.1", "notifications", "scheduler", "gateway"):
        await asyncio.sleep(2)
        port = fault_suite.port_of(process)
        pid = await asyncio.to_thread(pid_listening_on, port)
        assert pid is not None, f"nothing listens for {process} on {port}"
        killed_at = time.monotonic()
        machine.kill(pid)
        await machine.wait_for_pid(partial(pid_listening_on, port), other_than=pid)
        back_in[process] = time.monotonic() - killed_at
    ended = time.monotonic()
    await asyncio.sleep(3)
    await load.stop()
    result = await check(
        fault_suite.view,
        load,
        fault="`kill -9` of each process",
        injected="orders, its relay, reports, notifications, scheduler and gateway in turn during a burst",
        fault_ended=ended,
    )
    result.seen = f"; each back in at most {max(back_in.values()):.1f} s (restarted by `make run`)"
    record(result)


async def test_7_a_consumer_killed_after_its_commit_before_its_ack(fault_suite: FaultSuite) -> None:
    """Both reports processes are stopped while a burst queues up for them; the broker link is blackholed, so the
    acks of what they then commit cannot reach the broker, and they are killed: every committed event is
    delivered again and must have no second effect."""
    pids = [await asyncio.to_thread(pid_listening_on, fault_suite.port_of(name)) for name in ("reports.1", "reports.2")]
    assert all(pids)
    committed_before = await _processed_events(fault_suite)
    load = _load(fault_suite, 7)
    for pid in pids:
        machine.kill(pid, signal.SIGSTOP)  # type: ignore[arg-type]
    try:
        await load.burst(300)
        await asyncio.sleep(2)  # the relay publishes; the broker pushes a prefetch's worth to each stopped consumer
        fault_suite.broker_proxy.blackhole()
    finally:
        for pid in pids:
            machine.kill(pid, signal.SIGCONT)  # type: ignore[arg-type]
    await asyncio.sleep(2)  # they handle and commit what they hold; the acks wait in the proxy
    committed = await _processed_events(fault_suite) - committed_before
    for pid in pids:
        machine.kill(pid)  # type: ignore[arg-type]
    fault_suite.broker_proxy.restore()
    ended = time.monotonic()
    result = await check(
        fault_suite.view,
        load,
        fault="consumer killed between commit and ack",
        injected="reports commits a burst, its acks are held, then `kill -9`",
        fault_ended=ended,
    )
    assert committed > 0, "no event was committed before the kill: the fault did not happen"
    result.seen = f"; {committed} events committed and not acked, delivered again without effect"
    record(result)


async def _processed_events(suite: FaultSuite) -> int:
    connection = await asyncpg.connect(asyncpg_dsn(suite.databases["reports"]))
    try:
        return int(await connection.fetchval("SELECT count(*) FROM processed_events") or 0)
    finally:
        await connection.close()


async def test_8_smtp_refusing_30_s(fault_suite: FaultSuite) -> None:
    proxy = fault_suite.smtp_proxy
    result = await _under_load(
        fault_suite,
        8,
        fault="SMTP refusing 30 s",
        injected="every connection to the SMTP server refused, then accepted",
        begin=_on_loop(proxy.cut),
        end=_on_loop(proxy.restore),
        lasting_s=30,
    )
    record(result)


async def test_9_an_upstream_hanging_behind_the_gateway(fault_suite: FaultSuite) -> None:
    pid = await asyncio.to_thread(pid_listening_on, fault_suite.port_of("reports.2"))
    assert pid is not None
    load = _load(fault_suite, 9)
    reads: Counter[str] = Counter()
    slowest_s = 0.0

    async def read_reports(until: float) -> None:
        nonlocal slowest_s
        while time.monotonic() < until:
            started = time.monotonic()
            try:
                answer = await fault_suite.gateway.get("/report/all", params={"page": 1, "count": 5}, timeout=30)
                reads[str(answer.status_code)] += 1
            except httpx.HTTPError as exc:
                reads[type(exc).__name__] += 1
            slowest_s = max(slowest_s, time.monotonic() - started)
            await asyncio.sleep(0.1)

    load.start()
    machine.kill(pid, signal.SIGSTOP)
    try:
        until = time.monotonic() + 12
        await asyncio.gather(*(read_reports(until) for _ in range(4)))
    finally:
        machine.kill(pid, signal.SIGCONT)
    ended = time.monotonic()
    await asyncio.sleep(2)
    await load.stop()
    result = await check(
        fault_suite.view, load, fault="upstream hanging", injected="`SIGSTOP` of one of two reports processes for 12 s", fault_ended=ended
    )
    assert reads["500"] == 0, dict(reads)
    result.seen = f"; reads through the gateway meanwhile: {dict(sorted(reads.items()))}, the slowest {slowest_s:.1f} s"
    record(result)


POISON = {
    "not JSON": b"{not json",
    "wrong shape": b'{"type": "order.created", "source": "orders_service", "data": {"order_id": "not-a-uuid"}}',
    "unknown version": None,  # a valid order.created of version 2, built below
    "oversized": b'{"padding": "' + b"x" * (1 << 20) + b'"}',
}


async def test_10_a_poison_message_of_each_kind(fault_suite: FaultSuite) -> None:
    load = _load(fault_suite, 10)
    load.start()
    newer = _order_created_of_version(2)
    assert await parked_messages(fault_suite.view) == 0
    async with await aio_pika.connect(fault_suite.infrastructure.vhost_url(fault_suite.view.vhost)) as connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(fault_suite.exchange, ensure=False)
        for kind, body in POISON.items():
            payload = newer if body is None else body
            await exchange.publish(aio_pika.Message(payload, message_id=f"poison-{kind}"), routing_key="order.created")
    await asyncio.sleep(3)
    ended = time.monotonic()
    await load.stop()
    consuming_queues = [queue["name"] for queue in await queues(fault_suite.view) if queue["name"].endswith(".order.created")]
    result = await check(
        fault_suite.view,
        load,
        fault="poison messages",
        injected="not JSON, wrong shape, unknown version, over 1 MiB, published beside real orders",
        fault_ended=ended,
        poison=len(POISON) * len(consuming_queues),
    )
    result.seen = f"; each parked once per consuming queue ({', '.join(sorted(consuming_queues))}) with its reason"
    record(result)
    for queue in await queues(fault_suite.view):
        if queue["name"].endswith(".dlq"):
            purged = await fault_suite.view.management.delete(
                f"/api/queues/{quote(fault_suite.view.vhost, safe='')}/{queue['name']}/contents"
            )
            purged.raise_for_status()


def _order_created_of_version(version: int) -> bytes:
    return Envelope[Any](type="order.created", version=version, source="orders_service", data=_order_created()).to_json()


async def test_11_clock_jumped_forward_an_hour_under_three_scheduler_replicas(infrastructure: Infrastructure, run_id: str) -> None:
    """Three tickers on one database share an injected clock that jumps an hour ahead: every instant of the hour
    is recorded once (fired or skipped by the catch-up policy) and no instant fires twice."""
    async with migrated_database(infrastructure, f"faults_clock_{run_id}", SCHEDULER_MIGRATIONS) as url:
        engine = create_engine(url)
        sessions = create_session_factory(engine)
        start = datetime.now(UTC).replace(microsecond=0)
        try:
            async with sessions.begin() as session:
                await session.execute(schedules.delete())  # the migration's seeded schedules would fire at midnight too
            for name, policy in (("every-minute-all", "all"), ("every-minute-latest", "latest")):
                every_minute = ScheduleIn(name=name, cron="* * * * *", catch_up=policy)
                async with sessions() as session:
                    await create_schedule(SqlSchedulesStore(session), every_minute, ScheduleLimits(), now=start)
            tickers = [Ticker(sessions, Outbox(scheduler_outbox)) for _ in range(3)]
            await asyncio.gather(*(ticker.tick(start) for ticker in tickers))
            jumped = start + timedelta(hours=1)
            for _ in range(3):
                await asyncio.gather(*(ticker.tick(jumped) for ticker in tickers))
            async with sessions() as session:
                runs = (
                    await session.execute(
                        schedule_runs.select()
                        .join(schedules)
                        .with_only_columns(schedules.c.name, schedule_runs.c.scheduled_for, schedule_runs.c.status)
                    )
                ).all()
                events = (await session.execute(scheduler_outbox.select().with_only_columns(scheduler_outbox.c.event_id))).scalars().all()
        finally:
            await engine.dispose()
    expected = cron.instants_between("* * * * *", "UTC", start + timedelta(microseconds=1), jumped)
    recorded = Counter((run.name, run.scheduled_for) for run in runs)
    wanted = {(name, instant) for name in ("every-minute-all", "every-minute-latest") for instant in expected}
    fired = [run for run in runs if run.status == "fired"]
    record(
        FaultResult(
            fault="clock jumped an hour ahead",
            injected="three scheduler tickers on one database, their injected clock moved +1 h",
            accepted=len(wanted),
            lost=len(wanted - set(recorded)),
            duplicated=sum(count - 1 for count in recorded.values()) + len(events) - len(set(events)),
            parked=0,
            recovery_s=0.0,
            statuses={},
            seen=f" (instants, not orders: {len(fired)} fired by the catch-up policies, the rest recorded skipped)",
        )
    )
    assert set(recorded) == wanted
    assert all(count == 1 for count in recorded.values())
    assert len(events) == len(set(events)) == len(fired)
    assert [run.scheduled_for for run in fired if run.name == "every-minute-latest"] == [expected[-1]]


async def test_12_the_suite_is_clean_after_every_fault(fault_suite: FaultSuite) -> None:
    assert await parked_messages(fault_suite.view) == 0, "parked messages left (the poison is purged after its test)"
    health = await fault_suite.gateway.get("/health")
    assert health.json()["status"] == "healthy", health.text
