"""The load benchmark's checks: the scenario's figures per endpoint, the report reconciliation and the mail count."""

from __future__ import annotations

import pytest

from bench.load import ENDPOINTS, confirmation_mismatches, endpoint_figures, report_mismatches

# what wrk prints running bench/scenario.lua: its own summary, then the scenario's line
OUTPUT = """Running 10s test @ http://127.0.0.1:8000
  3 threads and 3 connections
  23 requests in 10.00s, 3.1KB read
SCENARIO {"seconds":10.0,"socket_errors":1}
"""
# and the answers' lines the threads wrote: 20 orders (10 ms to 200 ms), 2 reads (one refused), a name outside the scenario
ANSWERS = [f"POST /orders\t{ms:.3f}\t1" for ms in range(10, 201, 10)] + [
    "GET /orders/{id}\t4.000\t1",
    "GET /orders/{id}\t6.500\t0",
    "GET /health\t1.000\t1",
]


def test_each_endpoint_and_all_from_the_answers_and_nothing_else() -> None:
    figures = endpoint_figures(OUTPUT, ANSWERS)

    assert (figures["POST /orders|requests"], figures["POST /orders|rate"], figures["POST /orders|errors"]) == (20, 2.0, 0)
    # nearest rank: the 10th, 19th and 20th of 20
    assert (figures["POST /orders|p50"], figures["POST /orders|p95"], figures["POST /orders|p99"]) == (100, 190, 200)
    assert (figures["GET /orders/{id}|requests"], figures["GET /orders/{id}|errors"], figures["GET /orders/{id}|p50"]) == (2, 1, 4)
    # all: the 22 answers of the scenario's endpoints, and the socket error among its failures
    assert (figures["all|requests"], figures["all|rate"], figures["all|errors"]) == (22, 2.2, 2)
    assert figures["all|p99"] == 200
    assert {key.split("|")[0] for key in figures} == {"POST /orders", "GET /orders/{id}", "all"}
    assert "GET /health" not in ENDPOINTS


def test_a_run_without_answers_has_only_all_with_its_socket_errors() -> None:
    figures = endpoint_figures('SCENARIO {"seconds":2.0,"socket_errors":3}\n', [])
    assert figures == {"all|requests": 0, "all|rate": 0, "all|p50": 0, "all|p95": 0, "all|p99": 0, "all|errors": 3}


def test_a_run_without_the_scenario_line_is_an_error_that_shows_what_wrk_said() -> None:
    with pytest.raises(RuntimeError, match="unable to connect"):
        endpoint_figures("unable to connect to 127.0.0.1:8000 Connection refused\n", [])


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
