"""Fire instants around DST changes, checked against Debian cron's rules."""

from datetime import datetime, timedelta

import pytest

from scheduler_service import cron
from scheduler_service.commands import build_event
from scheduler_service.firing import decide
from shared.testing.clock import utc

# (expression, zone, window start, window end, expected UTC instants)
TABLE = [
    # Berlin, 29 March 2026: 02:00 CET jumps to 03:00 CEST (01:00 UTC)
    (
        "30 2 * * *",
        "Europe/Berlin",
        utc(2026, 3, 28, 0),
        utc(2026, 3, 30, 3),
        [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)],
    ),  # 02:30 does not exist: once, at 03:00
    ("0 0 * * *", "Europe/Berlin", utc(2026, 3, 28, 0), utc(2026, 3, 30, 0), [utc(2026, 3, 28, 23), utc(2026, 3, 29, 22)]),
    (
        "0 * * * *",
        "Europe/Berlin",
        utc(2026, 3, 29, 0),
        utc(2026, 3, 29, 3),
        [utc(2026, 3, 29, 0), utc(2026, 3, 29, 1), utc(2026, 3, 29, 2), utc(2026, 3, 29, 3)],
    ),  # real elapsed time
    (
        "*/30 * * * *",
        "Europe/Berlin",
        utc(2026, 3, 29, 0, 30),
        utc(2026, 3, 29, 1, 30),
        [utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1), utc(2026, 3, 29, 1, 30)],
    ),
    (
        "*/5 * * * * *",
        "Europe/Berlin",
        utc(2026, 3, 29, 0, 59, 55),
        utc(2026, 3, 29, 1, 0, 5),
        [utc(2026, 3, 29, 0, 59, 55), utc(2026, 3, 29, 1), utc(2026, 3, 29, 1, 0, 5)],
    ),
    # Berlin, 25 October 2026: 03:00 CEST falls back to 02:00 CET (01:00 UTC); 02:00-03:00 happens twice
    (
        "30 2 * * *",
        "Europe/Berlin",
        utc(2026, 10, 24, 0),
        utc(2026, 10, 26, 3),
        [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)],
    ),  # the repeated 02:30 fires once
    (
        "0 * * * *",
        "Europe/Berlin",
        utc(2026, 10, 24, 23),
        utc(2026, 10, 25, 2),
        [utc(2026, 10, 24, 23), utc(2026, 10, 25, 0), utc(2026, 10, 25, 1), utc(2026, 10, 25, 2)],
    ),  # 02:00 local twice, real time
    (
        "*/30 * * * *",
        "Europe/Berlin",
        utc(2026, 10, 25, 0),
        utc(2026, 10, 25, 1, 30),
        [utc(2026, 10, 25, 0), utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1), utc(2026, 10, 25, 1, 30)],
    ),
    (
        "*/5 * * * * *",
        "Europe/Berlin",
        utc(2026, 10, 25, 0, 59, 55),
        utc(2026, 10, 25, 1, 0, 5),
        [utc(2026, 10, 25, 0, 59, 55), utc(2026, 10, 25, 1), utc(2026, 10, 25, 1, 0, 5)],
    ),
    # New York, 8 March 2026 (02:00 EST -> 03:00 EDT, 07:00 UTC) and 1 November 2026 (02:00 EDT -> 01:00 EST, 06:00 UTC)
    (
        "30 2 * * *",
        "America/New_York",
        utc(2026, 3, 7, 0),
        utc(2026, 3, 9, 12),
        [utc(2026, 3, 7, 7, 30), utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30)],
    ),
    (
        "30 1 * * *",
        "America/New_York",
        utc(2026, 10, 31, 0),
        utc(2026, 11, 2, 12),
        [utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)],
    ),
    (
        "0 0 * * *",
        "America/New_York",
        utc(2026, 10, 31, 0),
        utc(2026, 11, 2, 12),
        [utc(2026, 10, 31, 4), utc(2026, 11, 1, 4), utc(2026, 11, 2, 5)],
    ),
    (
        "0 * * * *",
        "America/New_York",
        utc(2026, 11, 1, 4),
        utc(2026, 11, 1, 7),
        [utc(2026, 11, 1, 4), utc(2026, 11, 1, 5), utc(2026, 11, 1, 6), utc(2026, 11, 1, 7)],
    ),
    (
        "*/30 * * * *",
        "America/New_York",
        utc(2026, 3, 8, 6, 30),
        utc(2026, 3, 8, 7, 30),
        [utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 7), utc(2026, 3, 8, 7, 30)],
    ),
    (
        "*/5 * * * * *",
        "America/New_York",
        utc(2026, 11, 1, 5, 59, 55),
        utc(2026, 11, 1, 6, 0, 5),
        [utc(2026, 11, 1, 5, 59, 55), utc(2026, 11, 1, 6), utc(2026, 11, 1, 6, 0, 5)],
    ),
    # weekdays at 09:00 Moscow are 06:00 UTC (20 Nov 2026 is a Friday)
    (
        "0 9 * * 1-5",
        "Europe/Moscow",
        utc(2026, 11, 20, 0),
        utc(2026, 11, 24, 12),
        [utc(2026, 11, 20, 6), utc(2026, 11, 23, 6), utc(2026, 11, 24, 6)],
    ),
    ("0 9 * * MON-FRI", "Europe/Moscow", utc(2026, 11, 21, 0), utc(2026, 11, 23, 12), [utc(2026, 11, 23, 6)]),
    ("@daily", "UTC", utc(2026, 1, 1, 0, 0, 1), utc(2026, 1, 3), [utc(2026, 1, 2), utc(2026, 1, 3)]),
    ("@monthly", "UTC", utc(2026, 1, 1, 0, 0, 1), utc(2026, 3, 1), [utc(2026, 2, 1), utc(2026, 3, 1)]),
    ("0 12 * JAN *", "UTC", utc(2026, 1, 30), utc(2026, 2, 2), [utc(2026, 1, 30, 12), utc(2026, 1, 31, 12)]),
]


@pytest.mark.parametrize(
    ("expression", "zone", "first", "last", "expected"), TABLE, ids=[f"{row[0]} {row[1]} {row[2]:%m-%d}" for row in TABLE]
)
def test_fire_instants(expression: str, zone: str, first: datetime, last: datetime, expected: list[datetime]) -> None:
    assert cron.instants_between(expression, zone, first, last) == expected


@pytest.mark.parametrize(
    ("expression", "zone", "reason"),
    [
        ("61 * * * *", "UTC", "Bad minute"),
        ("* * *", "UTC", "5 fields"),
        ("0 0 30 2 *", "UTC", "Bad day"),
        ("@sometimes", "UTC", "5 fields"),
        ("0 0 * * *", "Mars/Olympus", "unknown IANA time zone"),
        ("*/0 * * * *", "UTC", "Bad minute"),
    ],
)
def test_invalid_expressions_and_zones_say_why(expression: str, zone: str, reason: str) -> None:
    with pytest.raises(cron.CronError, match=reason):
        cron.validate(expression, zone)


def test_preview_flags_an_instant_moved_by_dst() -> None:
    upcoming = cron.preview("30 2 * * *", "Europe/Berlin", utc(2026, 3, 27, 12), 3)
    assert [item.shifted for item in upcoming] == [False, True, False]
    assert upcoming[1].local.hour == 3


def test_catch_up_policies() -> None:
    now = utc(2026, 1, 1, 12)
    instants = [utc(2026, 1, 1, h) for h in (9, 10, 11, 12)]
    grace = timedelta(seconds=60)
    everything = decide(instants, now, catch_up="all", grace=grace)
    assert (everything.fire, everything.skip) == (instants, [])
    latest = decide(instants, now, catch_up="latest", grace=grace)
    assert latest.fire == [instants[-1]]
    assert [instant for instant, _ in latest.skip] == instants[:3]
    nothing_on_time = decide(instants[:3], now, catch_up="latest", grace=grace)
    assert nothing_on_time.fire == [instants[2]]
    skipped = decide(instants[:3], now, catch_up="skip", grace=grace)
    assert skipped.fire == []
    assert all("skip" in reason for _, reason in skipped.skip)


def test_a_report_request_asks_for_the_previous_local_day() -> None:
    event = build_event("nightly", "report.requested", {}, "Europe/Moscow", utc(2026, 3, 9, 21))  # 00:00 on 10 March in Moscow
    assert event.data.report_date.isoformat() == "2026-03-09"
    assert event.data.requested_by == "scheduler:nightly"
    assert event.data.scheduled_for == utc(2026, 3, 9, 21)
    same_day = build_event("nightly", "report.requested", {"days_before": 0}, "Europe/Moscow", utc(2026, 3, 9, 21))
    assert same_day.data.report_date.isoformat() == "2026-03-10"
