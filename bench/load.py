"""The whole suite under load through the gateway (wrk running a scenario), then a reconciliation.

The suite runs as ``make run`` runs it (the launcher, one process per service, fresh
databases and vhost), except that the mail goes to Postfix's ``smtp-sink`` (``bench/smtp_sink.py``)
instead of the Python catcher. wrk drives ``bench/scenario.lua`` for ``SECONDS``; then every
accepted order must appear exactly once in its day's report and its confirmation exactly once at
the SMTP server, and the lag from an order's creation to its report fact is read from the reports
database. While wrk runs, the CPU every process spends in a window is divided by the orders
created in it (``bench/cpu.py``).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shlex
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import httpx
from sqlalchemy import make_url, text

from bench.cpu import cpu_seconds, sample, suite_group
from bench.environment import scratch_database
from bench.smtp_sink import BACKLOG, confirmed_orders, sink_program
from notifications_service.main import MIGRATIONS as NOTIFICATIONS_MIGRATIONS
from orders_service.main import MIGRATIONS as ORDERS_MIGRATIONS
from reports_service.main import MIGRATIONS as REPORTS_MIGRATIONS
from scheduler_service.main import MIGRATIONS as SCHEDULER_MIGRATIONS
from shared.db import create_engine
from shared.testing.fixtures import eventually
from shared.testing.infrastructure import Infrastructure
from shared.testing.suite import running_suite

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "load-key-0001"
# enough to keep both cores busy: 40 users created no more orders per second than 30, each only waited longer
USERS = 30
ANALYSTS = 2  # of the USERS; the rest are shops
SCENARIO = ROOT / "bench" / "scenario.lua"
SECONDS = 15
# the CPU window: from this long after the first order is created, this long (inside SECONDS)
CPU_WARM_UP_S = 2
CPU_WINDOW_S = 9
ACCEPTED = "SELECT id, (created_at AT TIME ZONE 'UTC')::date AS day, count_product FROM orders"
REPORTED = "SELECT order_id, count(*) AS times, max(count_product) AS products FROM reports WHERE report_at = :day GROUP BY order_id"
LAG = (
    "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - created_at)) AS p50,"
    " percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - created_at)) AS p99 FROM order_facts"
)
ENDPOINTS = ["POST /orders", "GET /orders/{id}", "GET /orders", "POST /report/generate", "GET /report/tasks/{id}", "GET /report/all"]


async def through_gateway(infrastructure: Infrastructure) -> dict[str, float]:
    vhost = f"bench-load-{uuid.uuid4().hex[:6]}"
    await asyncio.to_thread(infrastructure.create_vhost, vhost)
    try:
        async with (
            scratch_database(infrastructure, "load_orders", ORDERS_MIGRATIONS) as orders_db,
            scratch_database(infrastructure, "load_reports", REPORTS_MIGRATIONS) as reports_db,
            scratch_database(infrastructure, "load_scheduler", SCHEDULER_MIGRATIONS) as scheduler_db,
            scratch_database(infrastructure, "load_notifications", NOTIFICATIONS_MIGRATIONS) as notifications_db,
        ):
            with tempfile.TemporaryDirectory(prefix="bench-load-") as directory:
                return await _run(Path(directory), infrastructure.vhost_url(vhost), orders_db, reports_db, scheduler_db, notifications_db)
    finally:
        await asyncio.to_thread(infrastructure.delete_vhost, vhost)


async def _run(
    directory: Path, broker_url: str, orders_db: str, reports_db: str, scheduler_db: str, notifications_db: str
) -> dict[str, float]:
    env = {
        "ENVIRONMENT": "test",
        "LOG_LEVEL": "WARNING",
        "BROKER_URL": broker_url,
        "ORDERS_DATABASE_URL": orders_db,
        "REPORTS_DATABASE_URL": reports_db,
        "SCHEDULER_DATABASE_URL": scheduler_db,
        "NOTIFICATIONS_DATABASE_URL": notifications_db,
        "NOTIFICATIONS_MAIL_CATCHER_DIR": str(directory / "mail"),
        "GATEWAY_API_KEYS": f"load:{API_KEY}",
        "GATEWAY_RATE_LIMIT_PER_S": "1000000",
        "GATEWAY_RATE_LIMIT_BURST": "1000000",
    }
    sink_dir = directory / "smtp-sink"
    async with (
        running_suite(_procfile(directory, sink_dir), env, directory, cwd=ROOT) as state,
        httpx.AsyncClient(base_url=state["gateway"], headers={"X-API-Key": API_KEY}, timeout=30) as client,
    ):
        services = {"orders": orders_db, "reports": reports_db, "scheduler": scheduler_db, "notifications": notifications_db}
        databases = {make_url(url).database or "": service for service, url in services.items()}
        load = asyncio.create_task(_scenario(state["gateway"], directory))
        try:
            cpu = await _cpu_per_order(orders_db, databases)
        finally:
            stats = await load
        accepted = await _accepted_orders(orders_db)
        figures = await _reconcile(client, accepted, reports_db)
        mails = await _confirmations(set(accepted), sink_dir)
    return stats | cpu | figures | mails


def _procfile(directory: Path, sink_dir: Path) -> Path:
    """The suite's Procfile with ``smtp-sink`` as its ``mail`` process, on the port the launcher gives the service."""
    lines = (ROOT / "Procfile").read_text().splitlines()
    mail = f"mail: exec {shlex.join(sink_program(sink_dir))} 127.0.0.1:$NOTIFICATIONS_SMTP_PORT {BACKLOG}"
    if not any(line.startswith("mail:") for line in lines):
        raise AssertionError("the Procfile has no mail process to stand in for")
    path = directory / "Procfile"
    path.write_text("\n".join(mail if line.startswith("mail:") else line for line in lines) + "\n")
    return path


async def _scenario(gateway: str, directory: Path) -> dict[str, float]:
    timings = directory / "timings"
    await asyncio.to_thread(timings.mkdir)
    command, env = scenario_command(gateway, timings, users=USERS, analysts=ANALYSTS, seconds=SECONDS, api_key=API_KEY)
    process = await asyncio.create_subprocess_exec(*command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), SECONDS + 60)
    answers = await asyncio.to_thread(read_answers, timings)
    return {"users": USERS, "seconds": SECONDS} | endpoint_figures(output.decode(), answers)


def scenario_command(
    url: str, timings: Path, *, users: int, analysts: int, seconds: int, api_key: str, analyst_pause_ms: int = 1000
) -> tuple[list[str], dict[str, str]]:
    """wrk running ``bench/scenario.lua``, one thread and one connection per user, and its environment;
    each thread writes its answers' timings into a file of its own in ``timings``."""
    command = ["wrk", f"-t{users}", f"-c{users}", f"-d{seconds}s", "--timeout", "30s", "-s", str(SCENARIO), url]
    env = os.environ | {
        "SCENARIO_API_KEY": api_key,
        "SCENARIO_USERS": str(users),
        "SCENARIO_ANALYSTS": str(analysts),
        "SCENARIO_ANALYST_PAUSE_MS": str(analyst_pause_ms),
        "SCENARIO_OUT": str(timings),
    }
    return command, env


def read_answers(timings: Path) -> list[str]:
    """Every thread's ``endpoint<TAB>ms<TAB>ok`` lines."""
    return [line for path in sorted(timings.glob("*.tsv")) for line in path.read_text().splitlines()]


def endpoint_figures(output: str, answers: list[str]) -> dict[str, float]:
    """Requests, rate, p50/p95/p99 (ms) and failures of each scenario endpoint and of ``all``: from
    the answers' lines, the run's length and its socket errors (counted as failures of ``all``)
    from the ``SCENARIO {json}`` line wrk prints at the end. Names outside the scenario are left out."""
    line = next((line for line in output.splitlines() if line.startswith("SCENARIO ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no scenario summary:\n{output}")
    summary = json.loads(line.removeprefix("SCENARIO "))
    timings: dict[str, list[float]] = {name: [] for name in [*ENDPOINTS, "all"]}
    failures = dict.fromkeys(timings, 0)
    for answer in answers:
        name, ms, ok = answer.split("\t")
        if name not in ENDPOINTS:
            continue
        for key in (name, "all"):
            timings[key].append(float(ms))
            failures[key] += ok != "1"
    failures["all"] += summary["socket_errors"]
    figures: dict[str, float] = {}
    for name, values in timings.items():
        if not values and name != "all":
            continue
        values.sort()
        figures[f"{name}|requests"] = len(values)
        figures[f"{name}|rate"] = len(values) / summary["seconds"]
        for percentile in (50, 95, 99):
            figures[f"{name}|p{percentile}"] = nearest_rank(values, percentile)
        figures[f"{name}|errors"] = failures[name]
    return figures


def nearest_rank(ordered: list[float], percentile: int) -> float:
    """The smallest value with at least ``percentile`` % of the values at or below it (0 when none)."""
    if not ordered:
        return 0.0
    return ordered[max(1, math.ceil(len(ordered) * percentile / 100)) - 1]


async def _cpu_per_order(orders_db: str, databases: dict[str, str]) -> dict[str, float]:
    """CPU (ms) per order created, per process group, over a window of the load; and the cores busy in it."""
    engine = create_engine(orders_db, pool_size=1)
    try:

        async def created() -> int:
            async with engine.connect() as connection:
                return int((await connection.execute(text("SELECT count(*) FROM orders"))).scalar_one())

        async def load_started() -> bool:
            return await created() > 0

        await eventually(load_started, timeout_s=30, interval_s=0.1, what="the load's first order")
        await asyncio.sleep(CPU_WARM_UP_S)
        before, orders_before, started = await asyncio.to_thread(sample), await created(), time.monotonic()
        await asyncio.sleep(CPU_WINDOW_S)
        after, orders_after, window_s = await asyncio.to_thread(sample), await created(), time.monotonic() - started
    finally:
        await engine.dispose()
    spent = cpu_seconds(before, after, suite_group(databases))
    orders = max(orders_after - orders_before, 1)
    figures = {f"cpu_ms_per_order|{name}": seconds / orders * 1000 for name, seconds in spent.items()}
    figures["cpu_ms_per_order|total"] = sum(spent.values()) / orders * 1000
    figures["cores_busy"] = sum(spent.values()) / window_s
    return figures


async def _accepted_orders(orders_db: str) -> dict[str, tuple[date, int]]:
    """Every order the suite accepted: its day (UTC) and product count."""
    engine = create_engine(orders_db, pool_size=1)
    try:
        async with engine.connect() as connection:
            return {str(row.id): (row.day, row.count_product) for row in await connection.execute(text(ACCEPTED))}
    finally:
        await engine.dispose()


async def _reconcile(client: httpx.AsyncClient, accepted: dict[str, tuple[date, int]], reports_db: str) -> dict[str, float]:
    """Every accepted order exactly once in its day's report; the order-to-fact lag."""
    reports_engine = create_engine(reports_db, pool_size=1)
    try:

        async def facts_in() -> bool:
            async with reports_engine.connect() as connection:
                return int((await connection.execute(text("SELECT count(*) FROM order_facts"))).scalar_one()) >= len(accepted)

        await eventually(facts_in, timeout_s=60, interval_s=0.2, what="every order.created stored as a fact")
        mismatched = 0
        for day in sorted({day for day, _ in accepted.values()}):
            task_id = (await client.post(f"/report/generate?report_date={day}")).json()["task_id"]

            async def finished(task_id: str = task_id) -> bool:
                return bool((await client.get(f"/report/tasks/{task_id}")).json()["status"] == "succeeded")

            await eventually(finished, timeout_s=60, interval_s=0.2, what=f"the report of {day}")
            async with reports_engine.connect() as connection:
                rows = (await connection.execute(text(REPORTED), {"day": day})).all()
            in_report = {str(row.order_id): (row.times, row.products) for row in rows}
            expected = {order_id: products for order_id, (order_day, products) in accepted.items() if order_day == day}
            mismatched += report_mismatches(expected, in_report)
        async with reports_engine.connect() as connection:
            lag = (await connection.execute(text(LAG))).one()
    finally:
        await reports_engine.dispose()
    return {
        "accepted_orders": len(accepted),
        "reconciliation_mismatches": mismatched,
        "lag_p50_ms": lag.p50 * 1000,
        "lag_p99_ms": lag.p99 * 1000,
    }


async def _confirmations(accepted: set[str], sink_dir: Path) -> dict[str, float]:
    """Every accepted order's confirmation received by the SMTP server exactly once."""

    async def all_arrived() -> bool:
        return accepted <= set(await asyncio.to_thread(confirmed_orders, sink_dir))

    await eventually(all_arrived, timeout_s=60, interval_s=0.5, what="a confirmation of every accepted order at the SMTP server")
    received = await asyncio.to_thread(confirmed_orders, sink_dir)
    return {"confirmations_received": len(received), "confirmation_mismatches": confirmation_mismatches(received, accepted)}


def report_mismatches(expected: dict[str, int], in_report: dict[str, tuple[int, int]]) -> int:
    """One day's reconciliation. ``expected``: the day's accepted orders and their product counts;
    ``in_report``: each order id in the day's report, with its number of rows and its product count.
    Counts the orders missing, reported more than once or with another product count, and the
    reported orders that were never accepted that day."""
    wrong = sum(1 for order_id, products in expected.items() if in_report.get(order_id) != (1, products))
    return wrong + sum(1 for order_id in in_report if order_id not in expected)


def confirmation_mismatches(received: list[str], accepted: set[str]) -> int:
    """Confirmations received more than once (each extra copy), accepted orders with none, and
    confirmations of orders that were never accepted."""
    return len(received) - len(set(received)) + len(set(received) ^ accepted)
