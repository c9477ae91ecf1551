"""Reports service settings; variables are prefixed ``REPORTS_`` (shared ones are not)."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from shared.settings import BaseServiceSettings


class ReportsSettings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REPORTS_")

    service_name: str = "reports"
    port: int = 8002
    database_url: SecretStr = SecretStr("postgresql+asyncpg://postgres@127.0.0.1:5432/reports")
    # the day of an order is its created_at in this IANA zone
    timezone: str = "UTC"
    # GET /report/?report_date= answers a whole day up to this many rows, and pages (count=, after=) beyond
    day_row_limit: int = Field(default=10_000, ge=1, le=100_000)
    # the orders service's own address, for reconciliation (GET /orders/days); unset: no reconciliation
    orders_url: str | None = Field(default=None, pattern=r"^https?://")
    # the scheduler's own address: a task a schedule fired is shown before its request arrives; unset: 404 until then
    scheduler_url: str | None = Field(default=None, pattern=r"^https?://")
    # the scheduled reconciliation: every this many seconds, over this many days up to today
    reconcile_every_s: float = Field(default=3600.0, gt=0)
    reconcile_days: int = Field(default=7, ge=1, le=366)
    # how long a call to another service may take
    peer_timeout_s: float = Field(default=10.0, gt=0, le=120)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value
