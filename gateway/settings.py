"""Gateway settings; variables are prefixed ``GATEWAY_`` (``ENVIRONMENT`` and ``LOG_*`` are shared)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from gateway.auth import ClientKey, parse_api_keys
from shared.settings import ProcessSettings, weak_secret

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
    # a URL's host name (a headless Service, a compose service) is resolved this often and each address
    # becomes an instance with its own breaker (gateway/discovery.py); 0: each URL is one instance
    resolve_every_s: float = Field(default=0, ge=0, le=3_600)

    # clients: "name:key:roles" entries, comma-separated, roles joined by "+" (shop, analyst, operator;
    # none given: operator); the name (never the key) is what logs, limits and the services see
    api_keys: SecretStr = SecretStr(f"dev:{DEVELOPMENT_API_KEY}:operator")
    rate_limit_per_s: float = Field(default=200.0, gt=0)
    rate_limit_burst: int = Field(default=400, ge=1)
    max_body_bytes: int = Field(default=1_048_576, ge=1)
    # a body must have arrived this long after the headers (408 otherwise): a trickled body holds no connection for ever
    body_timeout_s: float = Field(default=10.0, gt=0)
    max_header_bytes: int = Field(default=16_384, ge=1024)
    # calls without a valid key, per client address: beyond the burst they get 429 instead of 401
    # (keys cannot be guessed at speed); the table holds at most this many addresses
    auth_failures_per_s: float = Field(default=1.0, gt=0)
    auth_failures_burst: int = Field(default=20, ge=1)
    auth_failure_addresses: int = Field(default=10_000, ge=1)

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

    # the operator console at /console: its session cookie is signed with this secret (unset: no console)
    console_secret: SecretStr | None = None
    console_session_s: float = Field(default=8 * 3600, gt=0, le=7 * 86_400)
    # the cookie only over HTTPS (a gateway behind a TLS terminator)
    console_cookie_secure: bool = False
    # the console's queues page reads depth, rates and consumers from RabbitMQ's management API
    rabbitmq_management_url: str = Field(default="http://127.0.0.1:15672", pattern=r"^https?://")
    rabbitmq_management_user: str = "guest"
    rabbitmq_management_password: SecretStr = SecretStr("guest")
    rabbitmq_vhost: str = "/"

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

    @field_validator("console_secret", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("api_keys", mode="after")
    @classmethod
    def _parse_keys(cls, value: SecretStr) -> SecretStr:
        parse_api_keys(value.get_secret_value())
        return value

    def production_problems(self) -> list[str]:
        problems = super().production_problems()
        if DEVELOPMENT_API_KEY in self.api_keys.get_secret_value():
            problems.append("GATEWAY_API_KEYS still holds the development key; set real keys in production")
        else:
            for entry in self.client_keys():
                reason = weak_secret(entry.key)
                if reason:
                    problems.append(f"GATEWAY_API_KEYS: the key of {entry.client.name!r} is {reason}")
        if self.console_secret is not None and (reason := weak_secret(self.console_secret.get_secret_value())):
            problems.append(f"GATEWAY_CONSOLE_SECRET is {reason}")
        if self.console_secret is not None and self.rabbitmq_management_password.get_secret_value() == "guest":
            problems.append("GATEWAY_RABBITMQ_MANAGEMENT_PASSWORD is RabbitMQ's default; give the console a monitoring user")
        return problems

    def upstream_urls(self) -> dict[str, tuple[str, ...]]:
        return {
            "orders": self.orders_urls,
            "reports": self.reports_urls,
            "scheduler": self.scheduler_urls,
            "notifications": self.notifications_urls,
        }

    def timeouts_for(self, upstream: str) -> UpstreamTimeouts:
        return self.timeouts.get(upstream, self.default_timeouts)

    def client_keys(self) -> list[ClientKey]:
        return parse_api_keys(self.api_keys.get_secret_value())
