"""Orders service settings; variables are prefixed ``ORDERS_`` (shared ones are not)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.settings import BaseServiceSettings


class OrdersSettings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_")

    service_name: str = "orders"
    port: int = 8001
    database_url: SecretStr = SecretStr("postgresql+asyncpg://postgres@127.0.0.1:5432/orders")
    idempotency_ttl_hours: int = Field(default=24, ge=24)
    page_size_max: int = Field(default=100, ge=1, le=1000)
