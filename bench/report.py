"""docs/benchmarks.md from the rounds' results: the prose is ``report_template.md``, one section
per benchmark family; here only the figures each section's placeholders take."""

from __future__ import annotations

import os
import re
import statistics
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from string import Template
from typing import Any

from bench import gateway, load
from bench.load import ENDPOINTS as LOAD_ENDPOINTS
from bench.peers import compare

TEMPLATE = Path(__file__).with_name("report_template.md")
Results = dict[str, list[dict[str, Any]]]
PEER_LABELS = {
    "suite": "this suite: outbox, relay, quorum queue, idempotent commit",
    "celery": "Celery 5.7 (solo pool, acks_late, confirm_publish)",
    "taskiq": "taskiq 0.13 + taskiq-aio-pika (ack when_saved)",
    "faststream": "FastStream 0.7 (persist=True, AckPolicy.ACK)",
}


def sections() -> dict[str, Template]:
    parts = re.split(r"^<!-- section (\w+) -->\n", TEMPLATE.read_text(), flags=re.M)
    return {name: Template(body) for name, body in zip(parts[1::2], parts[2::2], strict=True)}


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


def hundredths(values: list[float]) -> str:
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}" if values else "not run"


def render(results: Results, rounds: int, facts: dict[str, str], total_s: float = 0.0, durations: dict[str, float] | None = None) -> str:
    def values(name: str, key: str) -> list[float]:
        return [float(result[key]) for result in results.get(name, []) if key in result]

    def first(name: str, key: str) -> str:
        return f"{int(results[name][0][key]):,}"

    template = sections()
    out = [
        template["head"].substitute(
            rounds=rounds,
            date=f"{datetime.now(UTC):%Y-%m-%d %H:%M}",
            minutes=f"{total_s / 60:.1f}",
            facts="\n".join(f"| {key} | {value} |" for key, value in facts.items()),
        )
    ]
    for name, figures in FIGURES.items():
        if name in results:
            out.append(template[name].substitute(figures(results, values, first)))
            if name == "load" and (groups := _load_cpu_groups(results)):
                out.append(template["load_cpu"].substitute(_cpu_per_order(values, groups)))
    if durations:
        shares = sorted(durations.items(), key=lambda item: item[1], reverse=True)
        out.append(
            template["durations"].substitute(
                rounds=rounds,
                benchmarks="\n".join(f"| {name} | {seconds:,.0f} | {seconds / total_s * 100:.0f} % |" for name, seconds in shares),
                minutes=f"{total_s / 60:.1f}",
                met="yes" if total_s / 60 < 15 else "**no**",
            )
        )
    return "".join(out)


Values = Callable[[str, str], list[float]]
First = Callable[[str, str], str]


def _relay(results: Results, values: Values, first: First) -> dict[str, str]:
    relay, bare = values("relay", "rate"), values("bare_publish", "rate")
    rows = [
        row("outbox relay", relay, target=">= 3,000", at_least=3000),
        row("bare aio-pika publisher", bare),
        row(
            "relay as % of bare, per round",
            [r / b * 100 for r, b in zip(relay, bare, strict=False)],
            unit=" %",
            target=">= 75 %",
            at_least=75,
        ),
    ]
    return {
        "events": first("relay", "events"),
        "lanes": str(int(results["relay"][0]["lanes"])),
        "batch_size": str(int(results["relay"][0]["batch_size"])),
        "window": str(int(results["bare_publish"][0]["window"])),
        "rows": "\n".join(rows),
    }


def _consumer(results: Results, values: Values, first: First) -> dict[str, str]:
    rows = [
        row("wrapper, batch handler", values("consumer_batched", "rate"), target=">= 2,500", at_least=2500),
        row("wrapper, per-message handler", values("consumer_per_message", "rate")),
        row("bare aio-pika consume", values("bare_consume", "rate")),
    ]
    return {"events": first("consumer_batched", "events"), "rows": "\n".join(rows)}


def _post_orders(results: Results, values: Values, first: First) -> dict[str, str]:
    rows = [
        row("orders/s", values("post_orders", "rate"), target=">= 1,000", at_least=1000),
        row("p50 latency (ms)", values("post_orders", "p50_ms"), places=1),
        row("p90 latency (ms)", values("post_orders", "p90_ms"), places=1),
        row("p99 latency (ms)", values("post_orders", "p99_ms"), places=1, target="< 50", below=50),
        row("errors", values("post_orders", "errors"), target="0", below=1),
        row("outbox drained after load (s)", values("post_orders", "outbox_drained_s"), places=1, target="<= 1", below=1.0001),
        row("peak RSS (MB)", values("post_orders", "peak_rss_mb"), places=1, target="< 150", below=150),
        row("relay process peak RSS (MB)", values("post_orders", "relay_rss_mb"), places=1),
    ]
    return {"connections": first("post_orders", "connections"), "seconds": first("post_orders", "seconds"), "rows": "\n".join(rows)}


def _gateway(results: Results, values: Values, first: First) -> dict[str, str]:
    rows = []
    for name, label in [("direct", "orders service, no hop"), ("gateway", "this gateway"), ("nginx", "nginx 1 worker, keep-alive pool")]:
        rows.append(row(f"{label}: requests/s", values("gateway", f"{name}_rate")))
        rows.append(row(f"{label}: p50 (ms), saturated", values("gateway", f"{name}_p50_ms"), places=1))
        rows.append(row(f"{label}: p99 (ms), saturated", values("gateway", f"{name}_p99_ms"), places=1))
    rows += [
        row("gateway as % of direct", values("gateway", "gateway_share_pct"), unit=" %", places=1, target=">= 50 %", at_least=50),
        row("nginx as % of direct", values("gateway", "nginx_share_pct"), unit=" %", places=1),
        row("gateway added p50, paced (ms)", values("gateway", "gateway_added_p50_ms"), places=1, target="< 2", below=2),
        row("nginx added p50, paced (ms)", values("gateway", "nginx_added_p50_ms"), places=1),
        row("errors through the gateway", values("gateway", "gateway_errors"), target="0", below=1),
    ]
    for name, label in [("bare_aiohttp", "bare proxy, aiohttp client"), ("bare_httpx", "bare proxy, httpx (default pool)")]:
        rows.append(row(f"{label}: requests/s", values("gateway", f"{name}_rate")))
    return {"connections": first("gateway", "connections"), "seconds": str(gateway.SECONDS), "rows": "\n".join(rows)}


def _reports(results: Results, values: Values, first: First) -> dict[str, str]:
    rows = [
        row("1,000,000-order day, end to end (s)", values("reports_million_day", "seconds"), places=1, target="<= 10", below=10.0001),
        row("100,000 orders set-based (s)", values("reports_versus_lab", "set_based_s"), places=1),
        row("100,000 orders, lab loop (s)", values("reports_versus_lab", "lab_loop_s"), places=1),
        row("speed-up over the lab loop", values("reports_versus_lab", "speedup"), unit=" x", places=1, target=">= 30 x", at_least=30),
        row("order.created ingested (events/s)", values("reports_ingest", "rate"), target=">= 2,500", at_least=2500),
    ]
    return {"million": first("reports_million_day", "orders"), "versus": first("reports_versus_lab", "orders"), "rows": "\n".join(rows)}


def _scheduler(results: Results, values: Values, first: First) -> dict[str, str]:
    rows = [
        row(
            "all fired after the instant (s)", values("scheduler_same_instant", "all_fired_after_s"), places=1, target="<= 5", below=5.0001
        ),
        row("idle CPU (% of a core)", values("scheduler_idle_cpu", "cpu_percent"), places=1, target="< 1", below=1),
    ]
    return {
        "schedules": first("scheduler_same_instant", "schedules"),
        "replicas": first("scheduler_same_instant", "replicas"),
        "idle_schedules": first("scheduler_idle_cpu", "schedules"),
        "idle_seconds": str(round(results["scheduler_idle_cpu"][0]["seconds"])),
        "rows": "\n".join(rows),
    }


def _notifications(results: Results, values: Values, first: First) -> dict[str, str]:
    rate = values("notifications_confirmations", "rate")
    return {
        "events": first("notifications_confirmations", "events"),
        "rows": row("confirmations delivered per second", rate, target=">= 500", at_least=500),
    }


def _ratio_to_best_peer(results: Results, suite: str, peer: str) -> list[float]:
    return [r[suite] / max(r[peer.format(name)] for name in compare.PEERS) for r in results["peers"]]


def _peers(results: Results, values: Values, first: First) -> dict[str, str]:
    systems = [
        f"| {label} | {spread(values('peers', f'{name}_e2e'))} | {spread(values('peers', f'{name}_serial_e2e'))} "
        f"| {spread(values('peers', f'{name}_drain'))} |"
        for name, label in PEER_LABELS.items()
    ]
    durable = [f"| {PEER_LABELS['suite']} | {spread(values('peers', 'suite_e2e'))} |"]
    durable += [f"| {PEER_LABELS[name]} | {spread(values('peers', f'{name}_durable_e2e'))} |" for name in compare.PEERS]

    def ahead(label: str, ratios: list[float]) -> str:
        return row(label, ratios, unit=" x", places=2, target="> 1 x", at_least=1.0001)

    rows = [
        row("this suite end to end (events/s)", values("peers", "suite_e2e"), target=">= 2,500", at_least=2500),
        row("this suite end to end, run before the peers", values("peers", "suite_e2e_before")),
        row("this suite end to end, run after the peers", values("peers", "suite_e2e_after")),
        row("this suite end to end, producer committing 100 events per transaction", values("peers", "suite_batched_e2e")),
        ahead("suite end to end / best peer, peers recording in memory, per round", _ratio_to_best_peer(results, "suite_e2e", "{}_e2e")),
        ahead(
            "suite end to end / best peer, every worker storing its record in PostgreSQL, per round",
            _ratio_to_best_peer(results, "suite_e2e", "{}_durable_e2e"),
        ),
        row(
            "suite end to end / best peer, one send at a time, per round",
            _ratio_to_best_peer(results, "suite_serial_e2e", "{}_serial_e2e"),
            unit=" x",
            places=2,
        ),
    ]
    return {
        "events": first("peers", "events"),
        "celery_producers": str(compare.CELERY_PRODUCERS),
        "peer_runs": str(compare.PEER_END_TO_END_RUNS),
        "serial_events": first("peers", "serial_events"),
        "systems": "\n".join(systems),
        "durable_systems": "\n".join(durable),
        "rows": "\n".join(rows),
    }


def _load(results: Results, values: Values, first: First) -> dict[str, str]:
    endpoints = [
        f"| `{name}` | {spread(values('load', f'{name}|rate'))} | {spread(values('load', f'{name}|p50'), 1)} | "
        f"{spread(values('load', f'{name}|p95'), 1)} | {spread(values('load', f'{name}|p99'), 1)} | "
        f"{spread(values('load', f'{name}|errors'))} |"
        for name in [*LOAD_ENDPOINTS, "all"]
    ]
    orders = values("load", "POST /orders|rate")
    rows = [
        row("orders created per second", orders, target=">= 500", at_least=500),
        # the same orders/s in a unit the machine's speed does not move much: against this round's baseline
        row(
            "orders created per second as % of `POST /orders` straight to one orders process, per round",
            [through / alone * 100 for through, alone in zip(orders, values("post_orders", "rate"), strict=False)],
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
    ]
    return {
        "users": first("load", "users"),
        "seconds": first("load", "seconds"),
        "endpoints": "\n".join(endpoints),
        "rows": "\n".join(rows),
    }


def _load_cpu_groups(results: Results) -> list[str]:
    """The process groups the load benchmark measured, most CPU per order first."""
    names = {key.split("|", 1)[1] for result in results.get("load", []) for key in result if key.startswith("cpu_ms_per_order|")}
    names.discard("total")

    def median(name: str) -> float:
        return statistics.median(float(r.get(f"cpu_ms_per_order|{name}", 0.0)) for r in results["load"])

    return sorted(names, key=median, reverse=True)


def _cpu_per_order(values: Values, groups: list[str]) -> dict[str, str]:
    total = values("load", "cpu_ms_per_order|total")
    processes = [f"| {name} | {hundredths(values('load', f'cpu_ms_per_order|{name}'))} |" for name in groups]
    processes += [
        f"| **all of them** | **{hundredths(total)}** |",
        f"| cores busy in the window (the machine has {os.cpu_count()}) | {hundredths(values('load', 'cores_busy'))} |",
        f"| cores 500 orders/s would take at this CPU per order | {hundredths([ms * 500 / 1000 for ms in total])} |",
    ]
    return {"warm_up": str(load.CPU_WARM_UP_S), "window": str(load.CPU_WINDOW_S), "processes": "\n".join(processes)}


# each section of the template, in the report's order, and the benchmark whose results bring it in
FIGURES: dict[str, Callable[[Results, Values, First], dict[str, str]]] = {
    "relay": _relay,
    "consumer_batched": _consumer,
    "post_orders": _post_orders,
    "gateway": _gateway,
    "reports_million_day": _reports,
    "scheduler_same_instant": _scheduler,
    "notifications_confirmations": _notifications,
    "peers": _peers,
    "load": _load,
}
