"""docs/benchmarks.md as ``make bench`` writes it: every section, targets judged on the median, partial runs.

``one_round.json`` holds the figures of one real round of ``make bench`` (the benchmarks'
own result dictionaries, as ``bench.run`` printed them).
"""

from __future__ import annotations

import copy
import json
import timeit
from pathlib import Path
from typing import Any

import pytest

from bench import run
from bench.report import render
from bench.run import BENCHES, selected

ONE_ROUND: dict[str, dict[str, Any]] = json.loads(Path(__file__).with_name("one_round.json").read_text())
FACTS = {"cores": "2", "python": "3.11"}
SECTIONS = [
    "## Outbox relay (foundation)",
    "## Consumer wrapper (foundation)",
    "## `POST /orders` straight to one orders process (foundation)",
    "## Gateway",
    "## Reports",
    "## Scheduler",
    "## Notifications",
    "## Against Celery, taskiq and FastStream",
    "## The whole suite under load, through the gateway",
]


def three_rounds(names: list[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    return {name: [copy.deepcopy(ONE_ROUND[name]) for _ in range(3)] for name in names or ONE_ROUND}


def line_of(report: str, label: str) -> str:
    return next(line for line in report.splitlines() if line.startswith(f"| {label} |"))


def test_the_recorded_round_covers_every_benchmark() -> None:
    assert set(ONE_ROUND) == set(BENCHES)


def test_a_full_run_has_every_section_and_meets_the_targets_it_met() -> None:
    report = render(three_rounds(), 3, FACTS, total_s=786)

    assert [line for line in report.splitlines() if line.startswith("## ")] == ["## Machine", *SECTIONS]
    assert "The whole run took 13.1 minutes." in report
    assert "`python -m bench.run --rounds 3`" in report
    assert "| cores | 2 |" in report
    assert "not run" not in report
    assert "**no**" not in report
    assert line_of(report, "orders created per second") == "| orders created per second | 508 / 508 / 508 | >= 500 | yes |"
    assert "![throughput against peers, latency under load](benchmarks.png)" in report


def test_a_target_is_judged_on_the_median_round() -> None:
    results = three_rounds(["load"])
    for result, rate in zip(results["load"], [450.0, 520.0, 530.0], strict=True):
        result["POST /orders|rate"] = rate
    assert line_of(render(results, 3, FACTS), "orders created per second").endswith("| 450 / 520 / 530 | >= 500 | yes |")

    results["load"][1]["POST /orders|rate"] = 480.0
    assert line_of(render(results, 3, FACTS), "orders created per second").endswith("| 450 / 480 / 530 | >= 500 | **no** |")


def test_an_upper_bound_is_missed_at_the_bound() -> None:
    results = three_rounds(["load"])
    for result in results["load"]:
        result["POST /orders|p99"] = 100.0
    assert line_of(render(results, 3, FACTS), "POST /orders p99 (ms)").endswith("| 100.0 / 100.0 / 100.0 | < 100 | **no** |")


def test_the_suite_is_compared_with_the_best_peer_of_the_same_round() -> None:
    results = three_rounds(["peers"])
    slow_round = results["peers"][0]
    slow_round["faststream_e2e"] = slow_round["suite_e2e"] * 2  # the suite at half the best peer, in this round only
    report = render(results, 3, FACTS)

    ratio = line_of(report, "suite end to end / best peer, peers recording in memory, per round")
    best = max(ONE_ROUND["peers"][f"{name}_e2e"] for name in ("celery", "taskiq", "faststream"))
    usual = f"{ONE_ROUND['peers']['suite_e2e'] / best:.2f}"
    assert ratio.endswith(f"| 0.50 / {usual} / {usual} x | > 1 x | yes |")


def test_a_thin_lead_over_the_best_peer_is_shown_as_a_lead() -> None:
    results = three_rounds(["peers"])
    for result, lead in zip(results["peers"], [1.036, 1.057, 1.1], strict=True):
        result["suite_e2e"] = lead * max(result[f"{name}_e2e"] for name in ("celery", "taskiq", "faststream"))

    ratio = line_of(render(results, 3, FACTS), "suite end to end / best peer, peers recording in memory, per round")
    assert ratio.endswith("| 1.04 / 1.06 / 1.10 x | > 1 x | yes |")  # one decimal would show 1.0, a tie


def test_a_partial_run_reports_only_its_sections() -> None:
    report = render(three_rounds(["load"]), 3, FACTS)

    assert [line for line in report.splitlines() if line.startswith("## ")] == ["## Machine", SECTIONS[-1]]

    assert [line for line in render({}, 1, FACTS).splitlines() if line.startswith("## ")] == ["## Machine"]


def test_where_an_orders_cpu_goes_most_costly_process_first() -> None:
    results = three_rounds(["load"])
    report = render(results, 3, FACTS)
    table = report.split("| process | CPU ms per order created (min / median / max) |")[1].splitlines()[2:]
    processes = [line.split(" | ")[0].removeprefix("| ") for line in table if line.startswith("| ")][:-3]
    figures = [ONE_ROUND["load"][f"cpu_ms_per_order|{name}"] for name in processes]

    assert {"orders", "gateway", "wrk (load generator)"} <= set(processes)
    assert figures == sorted(figures, reverse=True)
    total = ONE_ROUND["load"]["cpu_ms_per_order|total"]
    assert f"| **all of them** | **{total:.2f} / {total:.2f} / {total:.2f}** |" in report
    cores = total * 500 / 1000
    assert line_of(report, "cores 500 orders/s would take at this CPU per order").endswith(f"| {cores:.2f} / {cores:.2f} / {cores:.2f} |")


def test_asking_for_one_benchmark_runs_its_whole_section() -> None:
    assert selected([]) == list(BENCHES)
    assert selected(["relay"]) == ["bare_publish", "relay"]
    assert selected(["reports_million_day", "load"]) == ["reports_ingest", "reports_versus_lab", "reports_million_day", "load"]


def test_orders_through_the_gateway_are_set_against_the_same_rounds_direct_post_orders() -> None:
    results = three_rounds(["post_orders", "load"])
    for result, rate in zip(results["post_orders"], [1000.0, 800.0, 2000.0], strict=True):
        result["rate"] = rate
    for result, rate in zip(results["load"], [300.0, 200.0, 500.0], strict=True):
        result["POST /orders|rate"] = rate
    label = "orders created per second as % of `POST /orders` straight to one orders process, per round"

    assert line_of(render(results, 3, FACTS), label) == f"| {label} | 25 / 25 / 30 % |  |  |"
    assert line_of(render(three_rounds(["load"]), 3, FACTS), label) == f"| {label} | not run |  |  |"


def test_the_time_each_benchmark_took_is_reported_longest_first_and_judged_against_the_bound() -> None:
    durations = {"relay": 9.0, "peers": 374.0, "load": 74.0}

    report = render(three_rounds(), 3, FACTS, total_s=954, durations=durations)

    assert [line for line in report.splitlines() if line.startswith("## ")][-1] == "## Where the time goes"
    rows = [line for line in report.splitlines() if line.startswith(("| relay |", "| peers |", "| load |"))]
    assert rows == ["| peers | 374 | 39 % |", "| load | 74 | 8 % |", "| relay | 9 | 1 % |"]
    assert line_of(report, "the whole run (minutes)") == "| the whole run (minutes) | 15.9 | < 15 | **no** |"
    assert line_of(render(three_rounds(), 3, FACTS, total_s=880, durations=durations), "the whole run (minutes)").endswith(
        "| 14.7 | < 15 | yes |"
    )


def test_the_machine_speed_is_the_best_of_five_per_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """``python3 -m timeit``'s figure: ten loops per repeat, the fastest repeat, per loop, in ms."""
    calls: list[tuple[str, int, int]] = []

    def fake_repeat(statement: str, *, number: int, repeat: int) -> list[float]:
        calls.append((statement, number, repeat))
        return [0.5, 0.3, 0.4, 0.6, 0.45]

    monkeypatch.setattr(timeit, "repeat", fake_repeat)
    assert run.loop_speed_ms() == pytest.approx(30.0)
    assert calls == [("sum(range(10**6))", 10, 5)]
