"""Events published by the reports service (and ``report.requested`` by the scheduler)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.messaging.topology import (
    REPORT_BACKFILL_REQUESTED,
    REPORT_CANCEL_REQUESTED,
    REPORT_FAILED,
    REPORT_GENERATED,
    REPORT_REQUESTED,
)


class ReportRequested(BaseModel):
    """Ask for the report of one day; ``requested_by`` is ``api`` or ``scheduler:<name>``."""

    event_type: ClassVar[str] = REPORT_REQUESTED
    model_config = ConfigDict(extra="ignore", frozen=True)

    task_id: uuid.UUID
    report_date: date
    requested_by: str = Field(min_length=1, max_length=255)
    scheduled_for: AwareDatetime | None = None


class ReportBackfillRequested(ReportRequested):
    """One day of a backfill (``POST /report/backfill``): handled behind every other request, in a queue of its own."""

    event_type: ClassVar[str] = REPORT_BACKFILL_REQUESTED

    backfill_id: uuid.UUID


class ReportCancelRequested(BaseModel):
    """End a task that has not finished: it reads ``cancelled``, and a request for it still queued does nothing."""

    event_type: ClassVar[str] = REPORT_CANCEL_REQUESTED
    model_config = ConfigDict(extra="ignore", frozen=True)

    task_id: uuid.UUID
    report_date: date
    requested_by: str = Field(min_length=1, max_length=255)
    reason: str = Field(min_length=1, max_length=1000)


class ReportGenerated(BaseModel):
    event_type: ClassVar[str] = REPORT_GENERATED
    model_config = ConfigDict(extra="ignore", frozen=True)

    task_id: uuid.UUID
    report_date: date
    orders: int = Field(ge=0)
    total_products: int = Field(ge=0)
    generated_at: AwareDatetime


class ReportFailed(BaseModel):
    event_type: ClassVar[str] = REPORT_FAILED
    model_config = ConfigDict(extra="ignore", frozen=True)

    task_id: uuid.UUID
    report_date: date
    error: str
