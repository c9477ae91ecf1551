"""Request and response bodies of the schedules API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from scheduler_service import commands, cron

Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
RoutingKey = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*$", max_length=255)]
CatchUp = Literal["skip", "latest", "all"]
Concurrency = Literal["allow", "forbid", "replace"]
CONCURRENCY = (
    "an instant whose previous task has not finished: allow (fire anyway), forbid (skip it, "
    "'previous run still running') or replace (cancel the previous task, then fire)"
)
LOOKBACK_MAX_S = 30 * 86_400


class ScheduleIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "hourly-report", "cron": "0 * * * *", "timezone": "Europe/Berlin"}]},
    )

    name: Name = Field(description="unique, URL-safe: lower-case letters, digits, '.', '_' and '-'")
    cron: str = Field(min_length=1, max_length=255, description="5 fields, 6 with seconds first, or @daily-style alias")
    timezone: str = "UTC"
    routing_key: RoutingKey = Field(default="report.requested", description="a command of the scheduler's catalogue: report.requested")
    payload: dict[str, Any] = Field(default_factory=dict, description='the command\'s payload; report.requested takes {"days_before": 1}')
    enabled: bool = True
    catch_up: CatchUp = "latest"
    lookback_s: int = Field(default=86_400, ge=0, le=LOOKBACK_MAX_S)
    concurrency: Concurrency = Field(default="allow", description=CONCURRENCY)

    @field_validator("routing_key", mode="after")
    @classmethod
    def _a_command(cls, value: str) -> str:
        commands.command(value)
        return value

    @model_validator(mode="after")
    def _schedulable(self) -> ScheduleIn:
        try:
            self.cron = cron.validate(self.cron, self.timezone)
        except cron.CronError as exc:
            raise ValueError(str(exc)) from exc
        commands.validate_payload(self.routing_key, self.payload)
        return self


class SchedulePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cron: str | None = Field(default=None, min_length=1, max_length=255)
    timezone: str | None = None
    routing_key: RoutingKey | None = None
    payload: dict[str, Any] | None = None
    enabled: bool | None = None
    catch_up: CatchUp | None = None
    lookback_s: int | None = Field(default=None, ge=0, le=LOOKBACK_MAX_S)
    concurrency: Concurrency | None = Field(default=None, description=CONCURRENCY)

    @field_validator("routing_key", mode="after")
    @classmethod
    def _a_command(cls, value: str | None) -> str | None:
        if value is not None:
            commands.command(value)
        return value


class ScheduleOut(BaseModel):
    name: str
    cron: str
    timezone: str
    routing_key: str
    payload: dict[str, Any]
    enabled: bool
    catch_up: CatchUp
    lookback_s: int
    concurrency: Concurrency
    next_fire_at: datetime | None
    next_fire_local: datetime | None
    failures: int = Field(description="fires in a row that failed (0 once one succeeds); the schedule backs off meanwhile")
    last_error: str | None = Field(description="why the last failed fire failed")
    disabled_reason: str | None = Field(description="why the suite disabled it (a rule it breaks); cleared when it is enabled again")
    created_at: datetime
    updated_at: datetime


class RunOut(BaseModel):
    scheduled_for: datetime
    status: Literal["fired", "skipped", "manual", "failed"]
    reason: str | None
    event_id: str | None
    task_id: str | None = Field(default=None, description="the report task the fire requested: GET /report/tasks/{task_id}")
    task_status: Literal["succeeded", "failed", "cancelled"] | None = Field(
        default=None, description="how that task ended (from report.generated / report.failed, or a replace); null: not finished"
    )
    recorded_at: datetime


class FiredTask(BaseModel):
    """A report task as the scheduler knows it from the run that fired it: what the reports service answers for the task
    until it has consumed the request."""

    task_id: str
    schedule: str
    scheduled_for: datetime
    report_date: date | None = Field(description="the day the task reports on")
    task_status: Literal["succeeded", "failed", "cancelled"] | None = Field(description="how it ended; null: not finished")
    recorded_at: datetime = Field(description="when the fire committed")


class RunPage(BaseModel):
    items: list[RunOut]
    total: int = Field(description="the schedule's runs; when total_exact is false, at least this many")
    total_exact: bool = Field(description="false when there are more runs than the service counts (SCHEDULER_LIST_COUNT_LIMIT)")
    page: int
    count: int


class PreviewOut(BaseModel):
    local: datetime
    utc: datetime
    shifted_by_dst: bool
