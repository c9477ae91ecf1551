"""Reconciliation: does each day's report agree with the orders the orders service took?

The orders service answers its own per-day counts (``GET /orders/days``, in this service's
time zone); this service compares them with the facts it received and the report it built:

- ``missing_orders``: fewer facts than orders: ``order.created`` events never arrived (repair:
  ``POST /admin/orders/republish?day=``; the report takes the late facts in by itself);
- ``extra_orders``: facts of orders the orders service does not count;
- ``not_generated``: the facts are all there but the day has no report yet;
- ``stale``: the report's rows differ from the day's facts (repair: generate the day again);
- ``ok``: otherwise (a day without orders and without a report included).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal, Protocol

from reports_service.store import DaySummary, ReportsStore, SqlReportsStore
from shared import metrics
from shared.db import SessionFactory
from shared.domain_errors import InvalidRequest

log = logging.getLogger(__name__)

Status = Literal["ok", "missing_orders", "extra_orders", "not_generated", "stale"]
MAX_DAYS = 366


class OrdersDays(Protocol):
    async def day_counts(self, first: date, last: date, *, tz: str) -> Mapping[date, tuple[int, int]]:
        """(orders, products) per local day of ``tz`` that has orders; ``Unavailable`` when the orders service does not answer."""


@dataclass(frozen=True, slots=True)
class DayReconciliation:
    day: date
    status: Status
    orders: int  # what the orders service took
    products: int
    facts: int  # what this service received
    reported_orders: int | None  # the report's rows; None: the day has no report
    reported_products: int | None
    generated_at: datetime | None


def judge(orders: tuple[int, int], summary: DaySummary) -> Status:
    count, _ = orders
    if summary.facts < count:
        return "missing_orders"
    if summary.facts > count:
        return "extra_orders"
    if summary.generated_at is None:
        return "ok" if count == 0 else "not_generated"
    if (summary.reported_orders, summary.reported_products) != (summary.facts, summary.fact_products):
        return "stale"
    return "ok"


async def reconcile(store: ReportsStore, orders: OrdersDays, first: date, last: date, *, tz: str) -> list[DayReconciliation]:
    """Every day from ``first`` to ``last``, judged."""
    if first > last:
        raise InvalidRequest("from must not be after to")
    if (last - first).days >= MAX_DAYS:
        raise InvalidRequest(f"at most {MAX_DAYS} days at once")
    taken = await orders.day_counts(first, last, tz=tz)
    summaries = await store.day_summaries(first, last, tz=tz)
    days = []
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        counted = taken.get(day, (0, 0))
        summary = summaries.get(day, DaySummary())
        days.append(
            DayReconciliation(
                day=day,
                status=judge(counted, summary),
                orders=counted[0],
                products=counted[1],
                facts=summary.facts,
                reported_orders=summary.reported_orders if summary.generated_at else None,
                reported_products=summary.reported_products if summary.generated_at else None,
                generated_at=summary.generated_at,
            )
        )
    return days


def scheduled_reconciliation(
    session_factory: SessionFactory, orders: OrdersDays, *, tz: str, days: int, today: Callable[[], date]
) -> Callable[[], Awaitable[None]]:
    """The job of the reconciliation worker: the last ``days`` days before today, their mismatches
    published as ``report_reconciliation_mismatched_days`` and named in the log."""

    async def run() -> None:
        last = today() - timedelta(days=1)
        async with session_factory() as session:
            judged = await reconcile(SqlReportsStore(session), orders, last - timedelta(days=days - 1), last, tz=tz)
        mismatched = [f"{day.day}: {day.status}" for day in judged if day.status != "ok"]
        metrics.RECONCILIATION_MISMATCHED_DAYS.set(len(mismatched))
        if mismatched:
            log.warning("reports disagree with the orders", extra={"days": mismatched})

    return run
