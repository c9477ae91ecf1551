"""Next fire times of a cron expression in an IANA zone, with Debian cron's DST rules (cronsim).

- a local time skipped by a spring-forward fires once, at the next valid instant;
- a local time repeated by a fall-back fires once;
- a job more frequent than hourly (a wildcard hour, or a seconds field) runs on real
  elapsed time.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


class CronError(ValueError):
    """An expression or zone that cannot be scheduled; the message says why."""


def expand(expression: str) -> str:
    """The 5- or 6-field form of an expression (aliases expanded, whitespace normalised)."""
    stripped = " ".join(expression.split())
    return ALIASES.get(stripped.lower(), stripped)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CronError(f"unknown IANA time zone {name!r}") from exc


def validate(expression: str, timezone: str) -> str:
    """The expanded expression, or ``CronError`` naming what is wrong."""
    expanded = expand(expression)
    fields = len(expanded.split())
    if fields not in (5, 6):
        raise CronError(f"a cron expression has 5 fields (6 with seconds first), or is an alias like @daily; got {fields}")
    tz = zone(timezone)
    try:
        iterator = CronSim(expanded, datetime.now(tz))
        next(iterator)
    except CronSimError as exc:
        raise CronError(f"invalid cron expression {expression!r}: {exc}") from exc
    except StopIteration as exc:
        raise CronError(f"cron expression {expression!r} never fires") from exc
    return expanded


def instants_after(expression: str, timezone: str, after: datetime) -> Iterator[datetime]:
    """Fire instants strictly after ``after``, in UTC, in order."""
    tz = zone(timezone)
    # cronsim works in whole seconds from a local wall time
    start = after.astimezone(tz).replace(microsecond=0)
    for local in CronSim(expand(expression), start):
        instant = local.astimezone(UTC)
        if instant > after:
            yield instant


def next_after(expression: str, timezone: str, after: datetime) -> datetime | None:
    return next(instants_after(expression, timezone, after), None)


def instants_between(expression: str, timezone: str, first: datetime, last: datetime) -> list[datetime]:
    """Instants in ``[first, last]``."""
    result = []
    for instant in instants_after(expression, timezone, first - timedelta(seconds=1)):
        if instant > last:
            break
        if instant >= first:
            result.append(instant)
    return result


@dataclass(frozen=True, slots=True)
class Preview:
    local: datetime
    utc: datetime
    shifted: bool  # the wall time differs from the one the expression names (a DST gap moved it)


def preview(expression: str, timezone: str, after: datetime, count: int) -> list[Preview]:
    tz = zone(timezone)
    expanded = expand(expression)
    matcher = CronSim(expanded, datetime.now(tz))
    result = []
    for instant in instants_after(expanded, timezone, after):
        local = instant.astimezone(tz)
        named = local.hour in matcher.hours and local.minute in matcher.minutes and local.second in matcher.seconds
        result.append(Preview(local=local, utc=instant, shifted=not named))
        if len(result) >= count:
            break
    return result


def shortest_interval(expression: str, timezone: str, after: datetime, count: int = 100) -> timedelta | None:
    """The shortest time between two of the next ``count`` instants (None if it fires at most once)."""
    instants = list(itertools.islice(instants_after(expression, timezone, after), count))
    return min((later - earlier for earlier, later in itertools.pairwise(instants)), default=None)
