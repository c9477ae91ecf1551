"""Response bodies of the reports API (the lab's shapes where the lab had them)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ReportScheduled(BaseModel):
    status: Literal["scheduled"] = "scheduled"
    message: str
    task_id: uuid.UUID


class ReportRow(BaseModel):
    id: int
    report_at: date
    order_id: uuid.UUID
    count_product: int


class ReportTask(BaseModel):
    task_id: uuid.UUID
    report_date: date
    status: Literal["scheduled", "running", "retrying", "succeeded", "failed", "cancelled"]
    requested_by: str
    scheduled_for: datetime | None
    attempts: int
    rows: int | None
    total_products: int | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    next_attempt_at: datetime | None = Field(default=None, description="while retrying: when the next attempt is due")
    backfill_id: uuid.UUID | None = Field(default=None, description="the backfill that requested it")


class BackfillIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, json_schema_extra={"examples": [{"from": "2026-01-01", "to": "2026-03-31"}]}
    )

    first: date = Field(alias="from", description="first day, inclusive (YYYY-MM-DD, reports time zone)")
    last: date = Field(alias="to", description="last day, inclusive; at most 366 days after from, not in the future")


class DayTask(BaseModel):
    report_date: date
    task_id: uuid.UUID


class BackfillAccepted(BaseModel):
    backfill_id: uuid.UUID
    total: int = Field(description="days this backfill requested")
    tasks: list[DayTask]
    already_requested: list[DayTask] = Field(description="days whose task was still to finish: not requested twice")


class BackfillProgress(BaseModel):
    backfill_id: uuid.UUID
    total: int
    done: int = Field(description="tasks finished, whichever way")
    succeeded: int
    failed: int
    cancelled: int
    pending: int = Field(description="scheduled, running or retrying")


class DayTotals(BaseModel):
    report_at: date
    orders: int
    products: int


class DayReconciliationOut(BaseModel):
    day: date
    status: Literal["ok", "missing_orders", "extra_orders", "not_generated", "stale"]
    orders: int = Field(description="orders the orders service took that day")
    products: int
    facts: int = Field(description="order.created events this service received for the day")
    reported_orders: int | None = Field(description="rows of the day's report; null: the day has no report")
    reported_products: int | None
    generated_at: datetime | None
