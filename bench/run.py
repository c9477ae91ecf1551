"""``make bench``: every benchmark, three rounds, written to docs/benchmarks.md.

Paired figures (relay beside bare publisher, consumer beside bare consume) run in
the same round, one after the other, so they see the same machine state.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import statistics
import subprocess
import time
import timeit
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop

from bench import gateway, load, messaging, notifications, orders_http, reports, scheduler
from bench.environment import bench_infrastructure
from bench.load import ENDPOINTS as LOAD_ENDPOINTS
from bench.peers import compare
from shared.testing.infrastructure import Infrastructure

REPORT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
# one benchmark's round that runs longer than this has hung and is stopped (the longest, the
# peers, takes 2 to 3 minutes a round; inner waits give up after 1 to 2 minutes on their own)
ROUND_LIMIT_S = 900.0

Bench = Callable[[Infrastructure], Awaitable[dict[str, Any]]]

BENCHES: dict[str, Bench] = {
    "bare_publish": messaging.bare_publish_rate,
    "relay": messaging.relay_rate,
    "bare_consume": messaging.bare_consume_rate,
    "consumer_batched": messaging.consumer_rate,
    "consumer_per_message": lambda infra: messaging.consumer_rate(infra, batched=False),
    "post_orders": orders_http.post_orders,
    "gateway": gateway.through_gateway,
    "reports_ingest": reports.ingest_rate,
    "reports_versus_lab": reports.set_based_against_lab,
    "reports_million_day": reports.million_order_day,
    "scheduler_same_instant": scheduler.same_instant,
    "scheduler_idle_cpu": scheduler.idle_cpu,
    "notifications_confirmations": notifications.confirmations,
    "peers": compare.compare,
    "load": load.through_gateway,
}


def _command_output(*command: str) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


SPEED_LOOP = "sum(range(10**6))"


def loop_speed_ms() -> float:
    """Milliseconds a fixed pure-Python loop takes, best of 5 (as ``python3 -m timeit`` prints it):
    how fast this machine runs Python right now, so two reports can be compared at a glance."""
    return min(timeit.repeat(SPEED_LOOP, number=10, repeat=5)) / 10 * 1000


def machine() -> dict[str, str]:
    memory_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    rabbit = _command_output("rabbitmqctl", "version")
    postgres = _command_output("psql", "--version")
    return {
        "cores": str(os.cpu_count()),
        "memory": f"{memory_kb / 1024 / 1024:.1f} GiB",
        "cpu": next(
            (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), "?"
        ),
        "python": platform.python_version(),
        "postgresql": next(iter(re.findall(r"\d+\.\d+", postgres)), "unknown"),
        "rabbitmq": rabbit or "unknown",
        "kernel": platform.release(),
    }


def spread(values: list[float], places: int = 0) -> str:
    """min / median / max, with ``places`` decimals."""
    if not values:
        return "not run"
    return " / ".join(f"{value:,.{places}f}" for value in (min(values), statistics.median(values), max(values)))


def met(values: list[float], *, at_least: float | None = None, below: float | None = None) -> str:
    """Judged on the median, so one noisy round neither hides nor invents a shortfall."""
    if not values:
        return ""
    median = statistics.median(values)
    ok = (at_least is None or median >= at_least) and (below is None or median < below)
    return "yes" if ok else "**no**"


def row(label: str, measured: list[float], *, unit: str = "", places: int = 0, target: str = "", **judge: float) -> str:
    return f"| {label} | {spread(measured, places)}{unit if measured else ''} | {target} | {met(measured, **judge) if judge else ''} |"


def render(
    results: dict[str, list[dict[str, Any]]],
    rounds: int,
    facts: dict[str, str],
    total_s: float = 0.0,
    durations: dict[str, float] | None = None,
) -> str:
    def values(name: str, key: str) -> list[float]:
        return [float(result[key]) for result in results.get(name, []) if key in result]

    lines = [
        "# Benchmarks",
        "",
        f"Produced by `make bench` (`python -m bench.run --rounds {rounds}`) on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "Each figure is **min / median / max over the rounds**; paired figures ran back to back in the same round.",
        "Everything talks to PostgreSQL and RabbitMQ on 127.0.0.1; each round uses fresh databases and a fresh vhost.",
        f"The whole run took {total_s / 60:.1f} minutes.",
        "Rates and times move with the machine (a shared VM of the same kind has measured three times slower from one",
        "session to the next): compare the baselines (bare aio-pika publisher and consumer, `POST /orders` straight to the",
        "service) and the machine's speed (the fixed loop in the table below) with another report's before comparing the",
        "suite's own figures. `make bench-instructions` counts the",
        "instructions the relay and the consumer execute per event and the orders service and the gateway per `POST /orders`,",
        "a figure the machine does not move.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *[f"| {key} | {value} |" for key, value in facts.items()],
        "",
    ]
    if "relay" in results:
        relay, bare = values("relay", "rate"), values("bare_publish", "rate")
        ratios = [r / b * 100 for r, b in zip(relay, bare, strict=False)]
        first = results["relay"][0]
        lines += [
            "## Outbox relay (foundation)",
            "",
            f"{int(first['events']):,} outbox rows pre-filled, one relay ({int(first['lanes'])} lanes, batches of "
            f"{int(first['batch_size'])}) publishing with confirms and `mandatory` into a quorum queue. "
            f"Baseline: bare aio-pika, persistent messages, confirms awaited in windows of {int(results['bare_publish'][0]['window'])}.",
            "",
            "| measure | events/s (min / median / max) | target | met (median) |",
            "|---|---|---|---|",
            row("outbox relay", relay, target=">= 3,000", at_least=3000),
            row("bare aio-pika publisher", bare),
            row("relay as % of bare, per round", ratios, unit=" %", target=">= 75 %", at_least=75),
            "",
        ]
    if "consumer_batched" in results:
        lines += [
            "## Consumer wrapper (foundation)",
            "",
            f"{int(results['consumer_batched'][0]['events']):,} `order.created` messages pre-queued; the wrapper parses each envelope, "
            "claims its id in `processed_events`, runs the handler and commits before acking. "
            "Batched: the handler writes a batch with one multi-row insert (as the reports ingest does); "
            "per message: one insert per event. "
            "Baseline: bare aio-pika consume, manual ack, prefetch 100, no database.",
            "",
            "| measure | messages/s (min / median / max) | target | met (median) |",
            "|---|---|---|---|",
            row("wrapper, batch handler", values("consumer_batched", "rate"), target=">= 2,500", at_least=2500),
            row("wrapper, per-message handler", values("consumer_per_message", "rate")),
            row("bare aio-pika consume", values("bare_consume", "rate")),
            "",
        ]
    if "post_orders" in results:
        http = results["post_orders"]
        lines += [
            "## `POST /orders` straight to one orders process (foundation)",
            "",
            f"wrk, 2 threads, {int(http[0]['connections'])} connections, {int(http[0]['seconds'])} s after a 2 s warm-up "
            "(`bench/wrk.lua`, two items per order). The service runs as the Procfile runs it: the HTTP process with "
            "`OUTBOX_RELAY=external` and the orders relay as its own process. "
            "Drain: time from the end of the load until no outbox row is unpublished. "
            "Memory: peak RSS of the HTTP process (the target) and of the relay process.",
            "",
            "| measure | min / median / max | target | met (median) |",
            "|---|---|---|---|",
            row("orders/s", values("post_orders", "rate"), target=">= 1,000", at_least=1000),
            row("p50 latency (ms)", values("post_orders", "p50_ms"), places=1),
            row("p90 latency (ms)", values("post_orders", "p90_ms"), places=1),
            row("p99 latency (ms)", values("post_orders", "p99_ms"), places=1, target="< 50", below=50),
            row("errors", values("post_orders", "errors"), target="0", below=1),
            row("outbox drained after load (s)", values("post_orders", "outbox_drained_s"), places=1, target="<= 1", below=1.0001),
            row("peak RSS (MB)", values("post_orders", "peak_rss_mb"), places=1, target="< 150", below=150),
            row("relay process peak RSS (MB)", values("post_orders", "relay_rss_mb"), places=1),
            "",
        ]
    if "gateway" in results:
        targets = [("direct", "orders service, no hop"), ("gateway", "this gateway"), ("nginx", "nginx 1 worker, keep-alive pool")]
        bare_proxies = [("bare_aiohttp", "bare proxy, aiohttp client"), ("bare_httpx", "bare proxy, httpx (default pool)")]
        lines += [
            "## Gateway",
            "",
            f"`GET /orders/{{id}}` with wrk, {int(results['gateway'][0]['connections'])} connections, {gateway.SECONDS} s per target "
            "after a 1 s warm-up, one target after another against the same orders process. Saturated: as fast as each target answers. "
            "Paced: the same connections pausing 0-200 ms between requests (about 500 requests/s, below every target's "
            "capacity); added latency is the paced p50 through a hop minus the paced p50 straight to the service. "
            "The bare proxies (`bench/minimal_proxy.py`) forward GETs with nothing else, to compare HTTP clients alone.",
            "",
            "| measure | min / median / max | target | met (median) |",
            "|---|---|---|---|",
        ]
        for name, label in targets:
            lines.append(row(f"{label}: requests/s", values("gateway", f"{name}_rate")))
            lines.append(row(f"{label}: p50 (ms), saturated", values("gateway", f"{name}_p50_ms"), places=1))
            lines.append(row(f"{label}: p99 (ms), saturated", values("gateway", f"{name}_p99_ms"), places=1))
        lines += [
            row("gateway as % of direct", values("gateway", "gateway_share_pct"), unit=" %", places=1, target=">= 50 %", at_least=50),
            row("nginx as % of direct", values("gateway", "nginx_share_pct"), unit=" %", places=1),
            row("gateway added p50, paced (ms)", values("gateway", "gateway_added_p50_ms"), places=1, target="< 2", below=2),
            row("nginx added p50, paced (ms)", values("gateway", "nginx_added_p50_ms"), places=1),
            row("errors through the gateway", values("gateway", "gateway_errors"), target="0", below=1),
        ]
        for name, label in bare_proxies:
            lines.append(row(f"{label}: requests/s", values("gateway", f"{name}_rate")))
        lines.append("")
    if "reports_million_day" in results:
        versus = results["reports_versus_lab"]
        lines += [
            "## Reports",
            "",
            f"A day of {int(results['reports_million_day'][0]['orders']):,} order facts (loaded with COPY), reported by a real reports "
            "process: from the `report.requested` publish to the task `succeeded`. Beside it, the same day of "
            f"{int(versus[0]['orders']):,} orders generated set-based (`INSERT ... SELECT ... ON CONFLICT`, the service's use case) and "
            "the lab's way (fetch the orders, add one report row at a time through the ORM), one after the other on the same facts. "
            "Ingestion: `order.created` messages pre-queued, stored as order facts by the service's own consumer and batch handler.",
            "",
            "| measure | min / median / max | target | met (median) |",
            "|---|---|---|---|",
            row("1,000,000-order day, end to end (s)", values("reports_million_day", "seconds"), places=1, target="<= 10", below=10.0001),
            row("100,000 orders set-based (s)", values("reports_versus_lab", "set_based_s"), places=1),
            row("100,000 orders, lab loop (s)", values("reports_versus_lab", "lab_loop_s"), places=1),
            row("speed-up over the lab loop", values("reports_versus_lab", "speedup"), unit=" x", places=1, target=">= 30 x", at_least=30),
            row("order.created ingested (events/s)", values("reports_ingest", "rate"), target=">= 2,500", at_least=2500),
            "",
        ]
    if "scheduler_same_instant" in results:
        load = results["scheduler_same_instant"][0]
        lines += [
            "## Scheduler",
            "",
            f"{int(load['schedules']):,} enabled schedules due at one instant, "
            f"{int(load['replicas'])} scheduler processes on one database: "
            "the time from the instant until every schedule's run is claimed (each exactly once, checked: one run and one outbox "
            f"event per schedule). Idle: one scheduler process with {int(results['scheduler_idle_cpu'][0]['schedules'])} schedules "
            f"that are not due, CPU time over {round(results['scheduler_idle_cpu'][0]['seconds'])} s read from /proc.",
            "",
            "| measure | min / median / max | target | met (median) |",
            "|---|---|---|---|",
            row(
                "all fired after the instant (s)",
                values("scheduler_same_instant", "all_fired_after_s"),
                places=1,
                target="<= 5",
                below=5.0001,
            ),
            row("idle CPU (% of a core)", values("scheduler_idle_cpu", "cpu_percent"), places=1, target="< 1", below=1),
            "",
        ]
    if "notifications_confirmations" in results:
        lines += [
            "## Notifications",
            "",
            f"{int(results['notifications_confirmations'][0]['events']):,} `order.created` events pre-queued; the service records a "
            "confirmation per event and its dispatcher delivers them over pooled SMTP sessions to a local sink "
            "(Postfix's `smtp-sink`, its own process; see the load section): from start-up until every row is `sent`.",
            "",
            "| measure | min / median / max | target | met (median) |",
            "|---|---|---|---|",
            row("confirmations delivered per second", values("notifications_confirmations", "rate"), target=">= 500", at_least=500),
            "",
        ]
    if "peers" in results:
        systems = [("suite", "this suite: outbox, relay, quorum queue, idempotent commit")]
        systems += [
            ("celery", "Celery 5.7 (solo pool, acks_late, confirm_publish)"),
            ("taskiq", "taskiq 0.13 + taskiq-aio-pika (ack when_saved)"),
        ]
        systems += [("faststream", "FastStream 0.7 (persist=True, AckPolicy.ACK)")]
        lines += [
            "## Against Celery, taskiq and FastStream",
            "",
            f"{int(results['peers'][0]['events']):,} small events from a producer to a worker that records each one, each system "
            "with durable settings: persistent messages on a durable queue, publisher confirms awaited by the producer, ack only "
            "after the work (worker prefetch 100 for the peers, 200 for the suite). Each worker is its own process. End to end: the "
            "worker is consuming, then the producer sends everything (100 sends in flight for taskiq, FastStream and this suite, "
            "a new one starting as each ends; Celery's "
            f"`send_task` waits for each confirm, so it sends from {compare.CELERY_PRODUCERS} threads, each with its own "
            "connection); from the first send to the last record. Drain: everything queued "
            "first, then the worker starts; from its first record to its last. This suite's producer writes one outbox row per "
            "transaction, 10 connections committing side by side; the relay runs as its own process, as the suite runs the "
            "orders relay, and its worker commits each record with the event's idempotency claim; "
            "the peers' workers record an id in memory. The suite's end to end runs twice in each round, before the peers and "
            "after them, and its figure is the mean of the two, so a machine that speeds up or slows down during the round "
            f"favours neither side; each peer's end to end runs {compare.PEER_END_TO_END_RUNS} times in a row in the middle of the "
            "round, and its figure is their mean as well, so no single lucky run decides a round. One send at a time: the same "
            "end to end with each send (for this "
            f"suite, each outbox commit) awaited before the next, {int(results['peers'][0]['serial_events']):,} events: how an "
            "application that publishes as it goes, one event per request, sends; the issue's reference figures were measured "
            "this way.",
            "",
            "| system | end to end, events/s | end to end, one send at a time, events/s | worker drain, events/s |",
            "|---|---|---|---|",
            *[
                f"| {label} | {spread(values('peers', f'{name}_e2e'))} | {spread(values('peers', f'{name}_serial_e2e'))} "
                f"| {spread(values('peers', f'{name}_drain'))} |"
                for name, label in systems
            ],
            "",
            "The same runs with every worker storing its record in PostgreSQL, as this suite's worker does: each peer's task "
            "inserts the event id into a table of its own database (`INSERT ... ON CONFLICT DO NOTHING`, the id as the natural "
            "key, committed on its own; asyncpg for taskiq and FastStream, psycopg for Celery's synchronous worker) before it "
            "returns and the message is acked; every stored row is counted afterwards. Each peer's worker gets one warm-up "
            "event first, which opens its database pool. End to end only: the one-at-a-time run measures the producer, which "
            "storing does not change, and this suite's drain already outruns every peer's drain in memory. This suite's row "
            "repeats its figure above.",
            "",
            "| system | end to end, events/s |",
            "|---|---|",
            f"| {systems[0][1]} | {spread(values('peers', 'suite_e2e'))} |",
            *[f"| {label} | {spread(values('peers', f'{name}_durable_e2e'))} |" for name, label in systems[1:]],
            "",
            "| measure | min / median / max | target | met (median) |",
            "|---|---|---|---|",
            row("this suite end to end (events/s)", values("peers", "suite_e2e"), target=">= 2,500", at_least=2500),
            row("this suite end to end, run before the peers", values("peers", "suite_e2e_before")),
            row("this suite end to end, run after the peers", values("peers", "suite_e2e_after")),
            row("this suite end to end, producer committing 100 events per transaction", values("peers", "suite_batched_e2e")),
            row(
                "suite end to end / best peer, peers recording in memory, per round",
                [r["suite_e2e"] / max(r["celery_e2e"], r["taskiq_e2e"], r["faststream_e2e"]) for r in results["peers"]],
                unit=" x",
                places=2,
                target="> 1 x",
                at_least=1.0001,
            ),
            row(
                "suite end to end / best peer, every worker storing its record in PostgreSQL, per round",
                [r["suite_e2e"] / max(r[f"{name}_durable_e2e"] for name in compare.PEERS) for r in results["peers"]],
                unit=" x",
                places=2,
                target="> 1 x",
                at_least=1.0001,
            ),
            row(
                "suite end to end / best peer, one send at a time, per round",
                [
                    r["suite_serial_e2e"] / max(r["celery_serial_e2e"], r["taskiq_serial_e2e"], r["faststream_serial_e2e"])
                    for r in results["peers"]
                ],
                unit=" x",
                places=2,
            ),
            "",
            "![throughput against peers, latency under load](benchmarks.png)",
            "",
        ]
    if "load" in results:
        first = results["load"][0]
        direct = values("post_orders", "rate")
        lines += [
            "## The whole suite under load, through the gateway",
            "",
            "The suite as `make run` starts it (one process per service, the orders relay, the gateway) "
            "on fresh databases, with one change: the mail goes to Postfix's `smtp-sink` rather than the Python catcher. "
            "The SMTP server stands for the outside mail relay a deployment hands its mail to (compose uses Mailpit); on these "
            "two cores its CPU is taken from the suite, and the catcher (aiosmtpd) takes about 0.27 ms per message where "
            "`smtp-sink` takes about 0.06 ms (`bench/smtp_sink.py`). "
            f"wrk (`bench/scenario.lua`, one thread and connection per user) with {int(first['users'])} users for "
            f"{int(first['seconds'])} s: shops "
            "create orders, read one back and list them without pause; two analysts, once a second, read report pages and task "
            "states and now and then (one call in ten) ask for today's report. All with an API key. "
            "Then a reconciliation: every accepted order must appear exactly once, with its product count, in its day's report, "
            "and its confirmation exactly once among the mail the SMTP server received; "
            "and the lag from an order's creation to its report "
            "fact (reports `received_at` minus order `created_at`).",
            "",
            "| endpoint | requests/s | p50 (ms) | p95 (ms) | p99 (ms) | errors |",
            "|---|---|---|---|---|---|",
            *[
                f"| `{name}` | {spread(values('load', f'{name}|rate'))} | {spread(values('load', f'{name}|p50'), 1)} | "
                f"{spread(values('load', f'{name}|p95'), 1)} | {spread(values('load', f'{name}|p99'), 1)} | "
                f"{spread(values('load', f'{name}|errors'))} |"
                for name in [*LOAD_ENDPOINTS, "all"]
            ],
            "",
            "| measure | min / median / max | target | met (median) |",
            "|---|---|---|---|",
            row("orders created per second", values("load", "POST /orders|rate"), target=">= 500", at_least=500),
            # the same orders/s in a unit the machine's speed does not move much: against this round's baseline
            row(
                "orders created per second as % of `POST /orders` straight to one orders process, per round",
                [load / alone * 100 for load, alone in zip(values("load", "POST /orders|rate"), direct, strict=False)],
                unit=" %",
            ),
            row("POST /orders p99 (ms)", values("load", "POST /orders|p99"), places=1, target="< 100", below=100),
            row("errors, all endpoints", values("load", "all|errors"), target="0", below=1),
            row("order.created to report fact, p50 (ms)", values("load", "lag_p50_ms"), places=1),
            row("order.created to report fact, p99 (ms)", values("load", "lag_p99_ms"), places=1, target="< 1,000", below=1000),
            row("accepted orders", values("load", "accepted_orders")),
            row("reconciliation mismatches", values("load", "reconciliation_mismatches"), target="0", below=1),
            row("confirmations received by the SMTP server", values("load", "confirmations_received")),
            row("confirmation mismatches (missing, twice or unknown)", values("load", "confirmation_mismatches"), target="0", below=1),
            "",
            *_cpu_per_order(values, _load_cpu_groups(results)),
        ]
    if durations:
        lines += _time_per_benchmark(durations, rounds, total_s)
    return "\n".join(lines) + "\n"


def _time_per_benchmark(durations: dict[str, float], rounds: int, total_s: float) -> list[str]:
    """Where the run's minutes went, longest first: what to look at when the whole run nears its bound."""
    minutes = total_s / 60
    return [
        "## Where the time goes",
        "",
        f"Seconds each benchmark took over all {rounds} rounds, set-up and clean-up included; the rest of the run is starting "
        "and stopping the shared infrastructure and writing this report.",
        "",
        "| benchmark | seconds, all rounds | share of the run |",
        "|---|---|---|",
        *[
            f"| {name} | {seconds:,.0f} | {seconds / total_s * 100:.0f} % |"
            for name, seconds in sorted(durations.items(), key=lambda item: item[1], reverse=True)
        ],
        "",
        "| measure | value | target | met |",
        "|---|---|---|---|",
        f"| the whole run (minutes) | {minutes:.1f} | < 15 | {'yes' if minutes < 15 else '**no**'} |",
        "",
    ]


def _load_cpu_groups(results: dict[str, list[dict[str, Any]]]) -> list[str]:
    """The process groups the load benchmark measured, most CPU per order first."""
    names = {key.split("|", 1)[1] for result in results.get("load", []) for key in result if key.startswith("cpu_ms_per_order|")}
    names.discard("total")

    def median(name: str) -> float:
        return statistics.median(float(r.get(f"cpu_ms_per_order|{name}", 0.0)) for r in results["load"])

    return sorted(names, key=median, reverse=True)


def _hundredths(values: list[float]) -> str:
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}" if values else "not run"


def _cpu_per_order(values: Callable[[str, str], list[float]], groups: list[str]) -> list[str]:
    if not groups:
        return []
    total = values("load", "cpu_ms_per_order|total")
    at_target = [ms * 500 / 1000 for ms in total]
    return [
        "Where an order's CPU goes: the CPU time every process spent in a window of the run (from "
        f"{load.CPU_WARM_UP_S} s after the first order, {load.CPU_WINDOW_S} s long; `bench/cpu.py`, from `/proc`) divided by "
        "the orders created in that window. The window's reads and report "
        "requests are included, as the scenario makes them. The product of the total and a rate is the cores that rate "
        "takes on this machine.",
        "",
        "| process | CPU ms per order created (min / median / max) |",
        "|---|---|",
        *[f"| {name} | {_hundredths(values('load', f'cpu_ms_per_order|{name}'))} |" for name in groups],
        f"| **all of them** | **{_hundredths(total)}** |",
        f"| cores busy in the window (the machine has {os.cpu_count()}) | {_hundredths(values('load', 'cores_busy'))} |",
        f"| cores 500 orders/s would take at this CPU per order | {_hundredths(at_target)} |",
        "",
    ]


# benchmarks reported in one section of the report: asking for one of them runs the whole section
SECTIONS = [
    {"bare_publish", "relay"},
    {"bare_consume", "consumer_batched", "consumer_per_message"},
    {"reports_ingest", "reports_versus_lab", "reports_million_day"},
    {"scheduler_same_instant", "scheduler_idle_cpu"},
]


def selected(only: list[str]) -> list[str]:
    """The benchmarks to run for ``--only`` (all of them without it), whole sections at a time."""
    wanted = set(only)
    for section in SECTIONS:
        if wanted & section:
            wanted |= section
    return [name for name in BENCHES if not only or name in wanted]


async def bounded(name: str, bench: Bench, infrastructure: Infrastructure, limit_s: float = ROUND_LIMIT_S) -> dict[str, Any]:
    """One round of a benchmark, cancelled after ``limit_s`` (its clean-up still runs), so that
    ``make bench`` ends by itself even if a process it waits on never answers."""
    limit = asyncio.timeout(limit_s)
    try:
        async with limit:
            return await bench(infrastructure)
    except TimeoutError:
        if limit.expired():
            raise TimeoutError(f"{name} ran longer than {limit_s:g} s and was stopped") from None
        raise


async def main(rounds: int, only: list[str]) -> None:
    names = selected(only)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    durations: dict[str, float] = {}
    started = time.perf_counter()
    speed_at_start_ms = loop_speed_ms()
    async with bench_infrastructure() as infrastructure:
        for round_number in range(1, rounds + 1):
            for name in names:
                began = time.perf_counter()
                result = await bounded(name, BENCHES[name], infrastructure)
                results[name].append(result)
                durations[name] = durations.get(name, 0.0) + time.perf_counter() - began
                shown = ", ".join(f"{key}={value:,.1f}" if isinstance(value, float) else f"{key}={value}" for key, value in result.items())
                print(f"round {round_number} {name}: {shown}", flush=True)
    REPORT.parent.mkdir(exist_ok=True)
    total_s = time.perf_counter() - started
    print("seconds per benchmark, all rounds: " + ", ".join(f"{name} {seconds:.0f}" for name, seconds in durations.items()))
    facts = machine() | {
        f"speed: `{SPEED_LOOP}`, best of 5 (ms; lower is faster)": f"{speed_at_start_ms:.1f} at the start, {loop_speed_ms():.1f} at the end"
    }
    REPORT.write_text(render(results, rounds, facts, total_s, durations))
    if results.get("peers") or results.get("load"):
        from bench import chart  # matplotlib comes with the bench extra; the report's text needs none of it

        chart.draw(results, REPORT.with_suffix(".png"))
    print(f"wrote {REPORT}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=[], choices=list(BENCHES))
    arguments = parser.parse_args()
    uvloop.run(main(arguments.rounds, arguments.only))
