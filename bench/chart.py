"""docs/benchmarks.png: pipeline throughput against the peers, and latency percentiles under load."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

SYSTEMS = [("suite", "this suite"), ("celery", "Celery"), ("taskiq", "taskiq"), ("faststream", "FastStream")]
# (bar offset, result key suffix, legend); this suite's worker always stores its record, so its
# "peers storing in PostgreSQL" bar is its end-to-end figure
PEER_BARS = [
    (-0.3, "e2e", "end to end, 100 in flight (peers record in memory)"),
    (-0.1, "durable_e2e", "end to end, 100 in flight, every worker storing in PostgreSQL"),
    (0.1, "serial_e2e", "end to end, one at a time"),
    (0.3, "drain", "worker drain (peers record in memory)"),
]
SAME_FOR_SUITE = {"durable_e2e": "e2e"}
ENDPOINTS = ["POST /orders", "GET /orders/{id}", "GET /orders", "GET /report/all"]


def _median(results: list[dict[str, Any]], key: str) -> float:
    found = [float(result[key]) for result in results if key in result]
    return statistics.median(found) if found else 0.0


def draw(results: dict[str, list[dict[str, Any]]], path: Path) -> None:
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    peers = results.get("peers", [])
    if peers:
        names = [label for _, label in SYSTEMS]
        positions = range(len(SYSTEMS))
        tallest = 0.0
        for offset, key, label in PEER_BARS:
            heights = [_median(peers, f"{name}_{SAME_FOR_SUITE.get(key, key) if name == 'suite' else key}") for name, _ in SYSTEMS]
            left.bar([p + offset for p in positions], heights, width=0.2, label=label)
            tallest = max(tallest, *heights)
        left.set_ylim(0, tallest * 1.4)  # room for the legend above the bars
        left.set_xticks(list(positions), names)
        left.set_ylabel("events/s (median of rounds)")
        left.set_title("10,000 durable events, producer to worker")
        left.legend(fontsize=7)
    load = results.get("load", [])
    if load:
        positions = range(len(ENDPOINTS))
        for offset, percentile in ((-0.27, "p50"), (0.0, "p95"), (0.27, "p99")):
            heights = [_median(load, f"{endpoint}|{percentile}") for endpoint in ENDPOINTS]
            right.bar([p + offset for p in positions], heights, width=0.27, label=percentile)
        right.set_xticks(list(positions), ENDPOINTS, rotation=15)
        right.set_ylabel("ms (median of rounds)")
        right.set_title("Latency through the gateway under load")
        right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
