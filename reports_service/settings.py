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

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value
