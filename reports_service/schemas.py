"""Response bodies of the reports API (the lab's shapes where the lab had them)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field


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
    status: Literal["scheduled", "running", "retrying", "succeeded", "failed"]
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


class DayTotals(BaseModel):
    report_at: date
    orders: int
    products: int
