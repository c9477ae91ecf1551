"""Gateway settings; variables are prefixed ``GATEWAY_`` (``ENVIRONMENT`` and ``LOG_*`` are shared)."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from shared.settings import ProcessSettings

DEVELOPMENT_API_KEY = "dev-key-change-me"

URLList = Annotated[tuple[str, ...], NoDecode]


class UpstreamTimeouts(BaseModel):
    """Per-upstream limits: how long to wait for a connection and for each read."""

    connect_s: float = Field(default=1.0, gt=0)
    read_s: float = Field(default=10.0, gt=0)


class GatewaySettings(ProcessSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_")

    service_name: str = "gateway"
    port: int = 8000

    # upstreams: comma-separated base URLs, one per instance
    orders_urls: URLList = ("http://127.0.0.1:8001",)
    reports_urls: URLList = ("http://127.0.0.1:8002",)
    scheduler_urls: URLList = ("http://127.0.0.1:8003",)
    notifications_urls: URLList = ("http://127.0.0.1:8004",)
    timeouts: dict[str, UpstreamTimeouts] = Field(default_factory=dict, description='e.g. {"reports": {"read_s": 30}}')
    default_timeouts: UpstreamTimeouts = UpstreamTimeouts()
    connections_per_instance: int = Field(default=100, ge=1, le=10_000)

    # clients: "name:key" pairs, comma-separated; the name (never the key) is what logs and limits see
    api_keys: SecretStr = SecretStr(f"dev:{DEVELOPMENT_API_KEY}")
    rate_limit_per_s: float = Field(default=200.0, gt=0)
    rate_limit_burst: int = Field(default=400, ge=1)
    max_body_bytes: int = Field(default=1_048_576, ge=1)

    # retries (tenacity): attempts include the first one; the deadline bounds the whole request
    retry_attempts: int = Field(default=3, ge=1, le=10)
    retry_base_delay_s: float = Field(default=0.05, gt=0)
    retry_max_delay_s: float = Field(default=1.0, gt=0)
    request_deadline_s: float = Field(default=15.0, gt=0)

    # circuit breaker, per upstream instance
    breaker_window: int = Field(default=20, ge=1)
    breaker_min_calls: int = Field(default=10, ge=1)
    breaker_failure_rate: float = Field(default=0.5, gt=0, le=1)
    breaker_open_s: float = Field(default=10.0, gt=0)
    breaker_half_open_calls: int = Field(default=2, ge=1)

    health_timeout_s: float = Field(default=2.0, gt=0)
    openapi_cache_s: float = Field(default=60.0, ge=0)

    @field_validator("orders_urls", "reports_urls", "scheduler_urls", "notifications_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("orders_urls", "reports_urls", "scheduler_urls", "notifications_urls", mode="after")
    @classmethod
    def _http_urls(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("needs at least one base URL")
        for url in value:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r} is not an http(s):// URL")
        return tuple(url.rstrip("/") for url in value)

    @field_validator("api_keys", mode="after")
    @classmethod
    def _parse_keys(cls, value: SecretStr) -> SecretStr:
        parse_api_keys(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _no_development_key_in_production(self) -> Self:
        if self.environment == "production" and DEVELOPMENT_API_KEY in self.api_keys.get_secret_value():
            raise ValueError("GATEWAY_API_KEYS still holds the development key; set real keys in production")
        return self

    def upstream_urls(self) -> dict[str, tuple[str, ...]]:
        return {
            "orders": self.orders_urls,
            "reports": self.reports_urls,
            "scheduler": self.scheduler_urls,
            "notifications": self.notifications_urls,
        }

    def timeouts_for(self, upstream: str) -> UpstreamTimeouts:
        return self.timeouts.get(upstream, self.default_timeouts)

    def client_keys(self) -> dict[str, str]:
        return parse_api_keys(self.api_keys.get_secret_value())


def parse_api_keys(raw: str) -> dict[str, str]:
    """``"web:k1,batch:k2"`` -> ``{"web": "k1", "batch": "k2"}``; a bare key is named ``client<n>``."""
    keys: dict[str, str] = {}
    for index, entry in enumerate(part.strip() for part in raw.split(",")):
        if not entry:
            continue
        name, separator, key = entry.partition(":")
        if not separator:
            name, key = f"client{index + 1}", name
        if len(key) < 8:
            raise ValueError(f"the key of {name!r} is shorter than 8 characters")
        if name in keys:
            raise ValueError(f"client name {name!r} appears twice")
        keys[name] = key
    if not keys:
        raise ValueError("needs at least one key")
    return keys
