"""docs/benchmarks.png: pipeline throughput against the peers, and latency percentiles under load."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

SYSTEMS = [("suite", "this suite"), ("celery", "Celery"), ("taskiq", "taskiq"), ("faststream", "FastStream")]
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
        end_to_end = [_median(peers, f"{name}_e2e") for name, _ in SYSTEMS]
        drain = [_median(peers, f"{name}_drain") for name, _ in SYSTEMS]
        left.bar([p - 0.2 for p in positions], end_to_end, width=0.4, label="end to end")
        left.bar([p + 0.2 for p in positions], drain, width=0.4, label="worker drain")
        left.set_xticks(list(positions), names)
        left.set_ylabel("events/s (median of rounds)")
        left.set_title("10,000 durable events, producer to worker")
        left.legend()
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
