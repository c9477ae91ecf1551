"""Scheduler service settings; variables are prefixed ``SCHEDULER_`` (shared ones are not)."""

from __future__ import annotations

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
    # schedules handled per transaction by one ticker
    tick_batch_size: int = Field(default=500, ge=1, le=10_000)
