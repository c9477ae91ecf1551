"""The load benchmark's checks: Locust's figures per endpoint, the report reconciliation and the mail count."""

from __future__ import annotations

from bench.load import ENDPOINTS, confirmation_mismatches, endpoint_figures, report_mismatches

# the columns Locust writes into its *_stats.csv (locust.stats.StatsCSV.requests_csv_columns)
HEADER = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,"
    "Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
)
STATS = "\n".join(
    [
        HEADER,
        "POST,POST /orders,7600,0,33,35.2,4,180,310,508.4,0.0,33,38,41,43,48,50,58,67,110,170,180",
        "GET,GET /orders/{id},3760,2,27,29.0,3,150,300,251.1,0.13,27,31,34,36,41,44,49,52,90,150,150",
        "GET,/health,5,0,2,2.0,1,3,20,0.3,0.0,2,2,2,3,3,3,3,3,3,3,3",
        ",Aggregated,11365,2,30,32.1,3,180,306,759.8,0.13,30,35,38,40,45,48,55,61,100,170,180",
    ]
)


def test_each_scenario_endpoint_and_the_aggregate_are_read_and_nothing_else() -> None:
    figures = endpoint_figures(STATS)

    assert figures["POST /orders|rate"] == 508.4
    assert (figures["POST /orders|p50"], figures["POST /orders|p95"], figures["POST /orders|p99"]) == (33, 50, 67)
    assert figures["POST /orders|errors"] == 0
    assert figures["GET /orders/{id}|errors"] == 2
    assert (figures["all|rate"], figures["all|p99"], figures["all|errors"]) == (759.8, 61, 2)
    assert {key.split("|")[0] for key in figures} == {"POST /orders", "GET /orders/{id}", "all"}
    assert "/health" not in ENDPOINTS


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
