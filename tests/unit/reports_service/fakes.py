"""``ReportsStore`` in memory: the same days, facts and tasks as the SQL store, kept in dicts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from reports_service.store import DaySummary
from shared.contracts.orders import OrderCancelled, OrderCreated
from shared.contracts.reports import ReportCancelRequested, ReportRequested


class InMemoryReportsStore:
    def __init__(self) -> None:
        self.facts: dict[uuid.UUID, OrderCreated] = {}
        self.reported_days: set[date] = set()
        self.rows: dict[date, dict[uuid.UUID, int]] = {}
        self.tasks: dict[uuid.UUID, dict[str, Any]] = {}
        self.generated_at: dict[date, datetime] = {}
        self.cancelled: set[uuid.UUID] = set()  # tombstones: their facts count nowhere

    @staticmethod
    def _local_day(fact: OrderCreated | OrderCancelled, tz: str) -> date:
        return fact.created_at.astimezone(ZoneInfo(tz)).date()

    async def add_facts(self, facts: Sequence[OrderCreated], *, tz: str) -> None:
        for fact in facts:
            if fact.order_id in self.facts or fact.order_id in self.cancelled:
                continue
            self.facts[fact.order_id] = fact
            day = self._local_day(fact, tz)
            if day in self.reported_days:
                self.rows[day][fact.order_id] = fact.count_product

    async def cancel_facts(self, cancellations: Sequence[OrderCancelled], *, tz: str) -> None:
        for cancellation in cancellations:
            self.cancelled.add(cancellation.order_id)
            self.facts.pop(cancellation.order_id, None)
            self.rows.get(self._local_day(cancellation, tz), {}).pop(cancellation.order_id, None)

    async def add_task(self, task_id: uuid.UUID, report_date: date, *, requested_by: str) -> None:
        self.tasks[task_id] = {"report_date": report_date, "status": "scheduled", "requested_by": requested_by, "attempts": 0}

    async def add_backfill(self, backfill_id: uuid.UUID, tasks: Sequence[tuple[uuid.UUID, date]]) -> None:
        for task_id, day in tasks:
            self.tasks[task_id] = {
                "report_date": day,
                "status": "scheduled",
                "requested_by": f"backfill:{backfill_id}",
                "attempts": 0,
                "backfill_id": backfill_id,
            }

    async def unfinished_tasks(self, first: date, last: date) -> dict[date, uuid.UUID]:
        return {
            task["report_date"]: task_id
            for task_id, task in self.tasks.items()
            if first <= task["report_date"] <= last and task["status"] in ("scheduled", "running", "retrying")
        }

    async def day_summaries(self, first: date, last: date, *, tz: str) -> dict[date, DaySummary]:
        found: dict[date, dict[str, Any]] = {}
        for fact in self.facts.values():
            day = self._local_day(fact, tz)
            if first <= day <= last:
                values = found.setdefault(day, {"facts": 0, "fact_products": 0})
                values["facts"] += 1
                values["fact_products"] += fact.count_product
        for day in self.reported_days:
            if first <= day <= last:
                rows = self.rows.get(day, {})
                found.setdefault(day, {}).update(
                    reported_orders=len(rows), reported_products=sum(rows.values()), generated_at=self.generated_at[day]
                )
        return {day: DaySummary(**values) for day, values in found.items()}

    async def task_running(self, request: ReportRequested) -> bool:
        task = self.tasks.setdefault(
            request.task_id, {"report_date": request.report_date, "requested_by": request.requested_by, "attempts": 0}
        )
        if task.get("status") == "cancelled":
            return False
        task["status"] = "running"
        task["attempts"] += 1
        task.pop("next_attempt_at", None)
        return True

    async def task_cancelled(self, request: ReportCancelRequested) -> bool:
        task = self.tasks.setdefault(
            request.task_id,
            {"report_date": request.report_date, "requested_by": request.requested_by, "attempts": 0, "status": "scheduled"},
        )
        if task["status"] not in ("scheduled", "running", "retrying"):
            return False
        task.update(status="cancelled", error=request.reason)
        task.pop("next_attempt_at", None)
        return True

    async def build_day(self, report_date: date, *, tz: str) -> tuple[int, int]:
        self.rows[report_date] = {
            fact.order_id: fact.count_product for fact in self.facts.values() if self._local_day(fact, tz) == report_date
        }
        self.reported_days.add(report_date)
        self.generated_at[report_date] = datetime.now(UTC)
        return len(self.rows[report_date]), sum(self.rows[report_date].values())

    async def task_succeeded(self, task_id: uuid.UUID, *, orders: int, products: int) -> bool:
        if self.tasks[task_id]["status"] == "cancelled":
            return False
        self.tasks[task_id].update(status="succeeded", rows=orders, total_products=products, error=None)
        return True

    async def task_retrying(self, task_id: uuid.UUID, reason: str, *, next_attempt_at: datetime) -> None:
        task = self.tasks.get(task_id)
        if task is not None and task["status"] == "running":
            task.update(status="retrying", error=reason, next_attempt_at=next_attempt_at)

    async def task_failed(self, task_id: uuid.UUID, error: str) -> bool:
        task = self.tasks.get(task_id)
        if task is None or task["status"] in ("failed", "cancelled"):
            return False
        task.update(status="failed", error=error)
        return True
