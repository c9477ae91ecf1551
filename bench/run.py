"""``make bench``: every benchmark, three rounds, written to docs/benchmarks.md (``bench.report`` renders it).

Paired figures (relay beside bare publisher, consumer beside bare consume) run in
the same round, one after the other, so they see the same machine state.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import subprocess
import time
import timeit
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop

from bench import gateway, load, messaging, notifications, orders_http, reports, scheduler
from bench.environment import bench_infrastructure
from bench.peers import compare
from bench.report import render
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
