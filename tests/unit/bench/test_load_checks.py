"""The load benchmark's checks: the scenario's figures per endpoint, the report reconciliation and the mail count."""

from __future__ import annotations

import json

import pytest

from bench.load import ENDPOINTS, confirmation_mismatches, endpoint_figures, report_mismatches


def endpoint(requests: int, rate: float, failures: int, p50: float, p95: float, p99: float) -> dict[str, float]:
    return {"requests": requests, "rate": rate, "failures": failures, "p50": p50, "p95": p95, "p99": p99}


SCENARIO = {
    "POST /orders": endpoint(7626, 508.4, 0, 33.12, 50, 67.5),
    "GET /orders/{id}": endpoint(3766, 251.07, 2, 27, 44, 52),
    "GET /health": endpoint(5, 0.33, 0, 2, 3, 3),
    "all": endpoint(11397, 759.8, 3, 30, 48, 61),
}
# what wrk prints running bench/scenario.lua: its own summary, then the scenario's line
OUTPUT = f"""Running 15s test @ http://127.0.0.1:8000
  30 threads and 30 connections
  11397 requests in 15.00s, 3.1MB read
SCENARIO {json.dumps(SCENARIO)}
"""


def test_each_scenario_endpoint_and_all_are_read_and_nothing_else() -> None:
    figures = endpoint_figures(OUTPUT)

    assert (figures["POST /orders|requests"], figures["POST /orders|rate"]) == (7626, 508.4)
    assert (figures["POST /orders|p50"], figures["POST /orders|p95"], figures["POST /orders|p99"]) == (33.12, 50, 67.5)
    assert figures["POST /orders|errors"] == 0
    assert figures["GET /orders/{id}|errors"] == 2
    assert (figures["all|rate"], figures["all|p99"], figures["all|errors"]) == (759.8, 61, 3)
    assert {key.split("|")[0] for key in figures} == {"POST /orders", "GET /orders/{id}", "all"}
    assert "GET /health" not in ENDPOINTS


def test_a_run_without_the_scenario_line_is_an_error_that_shows_what_wrk_said() -> None:
    with pytest.raises(RuntimeError, match="unable to connect"):
        endpoint_figures("unable to connect to 127.0.0.1:8000 Connection refused\n")


def test_a_day_reported_exactly_has_no_mismatch() -> None:
    assert report_mismatches({"a": 3, "b": 1}, {"a": (1, 3), "b": (1, 1)}) == 0
    assert report_mismatches({}, {}) == 0


def test_every_way_a_report_can_differ_from_the_orders_counts() -> None:
    expected = {"a": 3, "b": 1, "c": 2}
    assert report_mismatches(expected, {"a": (1, 3), "b": (1, 1)}) == 1  # c missing
    assert report_mismatches(expected, {"a": (2, 3), "b": (1, 1), "c": (1, 2)}) == 1  # a twice
    assert report_mismatches(expected, {"a": (1, 4), "b": (1, 1), "c": (1, 2)}) == 1  # a with another product count
    assert report_mismatches(expected, {"a": (1, 3), "b": (1, 1), "c": (1, 2), "z": (1, 5)}) == 1  # z never accepted that day
    assert report_mismatches(expected, {"z": (1, 5)}) == 4


def test_every_confirmation_once_has_no_mismatch() -> None:
    assert confirmation_mismatches(["b", "a"], {"a", "b"}) == 0


def test_a_confirmation_twice_missing_or_unknown_is_a_mismatch() -> None:
    accepted = {"a", "b"}
    assert confirmation_mismatches(["a", "b", "a"], accepted) == 1
    assert confirmation_mismatches(["a"], accepted) == 1
    assert confirmation_mismatches(["a", "b", "z"], accepted) == 1
    assert confirmation_mismatches(["a", "a", "z"], accepted) == 3
