"""Scheduler service settings; variables are prefixed ``SCHEDULER_`` (shared ones are not)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.settings import BaseServiceSettings


class SchedulerSettings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SCHEDULER_")

    service_name: str = "scheduler"
    port: int = 8003
    database_url: SecretStr = SecretStr("postgresql+asyncpg://postgres@127.0.0.1:5432/scheduler")
    # an instant later than this when the ticker sees it counts as missed (catch-up policy applies)
    misfire_grace_s: float = Field(default=60.0, ge=1)
    # the loop sleeps at most this long even when nothing is due (a safety net for lost NOTIFYs)
    max_sleep_s: float = Field(default=60.0, gt=0)
    # every this many seconds the schedules' gauges (scheduler_schedules_failing, scheduler_schedules_late) are read
    gauges_every_s: float = Field(default=15.0, gt=0)
    # schedules handled per transaction by one ticker
    tick_batch_size: int = Field(default=500, ge=1, le=10_000)

    # limits an operator sets for the whole deployment
    max_schedules: int = Field(default=1_000, ge=1, le=1_000_000)
    # the smallest time between two fires of a schedule (seconds; checked over its next 100 instants)
    min_interval_s: float = Field(default=1.0, ge=1)
    # a schedule's payload as JSON, at most
    max_payload_bytes: int = Field(default=4_096, ge=2, le=1_048_576)
    # missed instants one catch-up may fire; beyond, the oldest are recorded skipped
    max_catch_up: int = Field(default=100, ge=1, le=100_000)
    # a schedule whose fire fails waits 1 s, 2 s, 4 s, ... up to this long before it tries again
    failure_backoff_max_s: float = Field(default=300.0, ge=1)

    def limits(self) -> ScheduleLimits:
        return ScheduleLimits(
            max_schedules=self.max_schedules, min_interval_s=self.min_interval_s, max_payload_bytes=self.max_payload_bytes
        )


@dataclass(frozen=True, slots=True)
class ScheduleLimits:
    """What the schedules API refuses beyond (SCHEDULER_MAX_SCHEDULES, _MIN_INTERVAL_S, _MAX_PAYLOAD_BYTES)."""

    max_schedules: int = 1_000
    min_interval_s: float = 1.0
    max_payload_bytes: int = 4_096
