"""Settings groups that every service composes into its own settings class."""

from __future__ import annotations

from typing import Annotated, Literal, Self, TypeVar
from urllib.parse import unquote, urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.messaging.topology import DEFAULT_RETRY_TIERS_MS

Environment = Literal["development", "test", "production"]

DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/"
RELAY_PORT_OFFSET = 1000


class SettingsError(SystemExit):
    """Raised at start-up when configuration is missing or malformed; the message names the variable."""


class ProcessSettings(BaseSettings):
    """Service identity and logging: what every process has, the gateway included.

    Service-specific fields are read with the service's prefix (``ORDERS_PORT``); fields
    that the whole suite shares (``ENVIRONMENT``, ``LOG_LEVEL``) carry explicit aliases so
    one ``.env`` file serves every process.
    """

    # an empty variable means unset (NOTIFICATIONS_REPORTS_TO= is "none", not an invalid address)
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", env_file_encoding="utf-8", populate_by_name=True, env_ignore_empty=True
    )

    service_name: str = "service"
    environment: Environment = Field(default="development", validation_alias=AliasChoices("ENVIRONMENT"))
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = Field(default="INFO", validation_alias=AliasChoices("LOG_LEVEL"))
    log_json: bool = Field(default=True, validation_alias=AliasChoices("LOG_JSON"))
    # uvicorn: connections plus requests in progress beyond this are answered 503 at once, and a
    # connection idle this long between requests is closed (longer than the gateway's pooled 15 s,
    # so the gateway, not the service, closes idle connections and never sends into a closing one)
    http_limit_concurrency: int = Field(default=2048, ge=1, validation_alias=AliasChoices("HTTP_LIMIT_CONCURRENCY"))
    http_keep_alive_s: int = Field(default=30, ge=1, validation_alias=AliasChoices("HTTP_KEEP_ALIVE_S"))
    # the secret the gateway sends with every call (X-Internal-Token); a service that has one refuses
    # calls without it, so the caller headers it trusts can only come from the gateway
    internal_token: SecretStr | None = Field(default=None, validation_alias=AliasChoices("INTERNAL_TOKEN"))

    @field_validator("internal_token", mode="after")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    @property
    def internal_token_value(self) -> str | None:
        return self.internal_token.get_secret_value() if self.internal_token is not None else None

    def production_problems(self) -> list[str]:
        """What keeps these settings from production; a subclass adds its own to ``super()``'s."""
        token = self.internal_token_value or ""
        return ["INTERNAL_TOKEN must be set to a secret of your own in production"] if weak_secret(token) else []

    @model_validator(mode="after")
    def _ready_for_production(self) -> Self:
        if self.environment == "production":
            problems = self.production_problems()
            if problems:
                raise ValueError("; ".join(problems))
        return self


class BaseServiceSettings(ProcessSettings):
    """A service with its own database and a place on the broker.

    ``ORDERS_DATABASE_URL`` is per service; ``BROKER_URL`` and ``EVENTS_EXCHANGE`` are
    shared by every service.
    """

    # database group
    database_url: SecretStr = SecretStr("postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    database_pool_size: int = Field(default=20, ge=1, le=200)
    database_max_overflow: int = Field(default=0, ge=0, le=200)
    # false behind a transaction-mode pooler (PgBouncer, CloudNativePG's Pooler), where LISTEN gets no
    # notifications: the outbox relay and the notifications dispatcher then only poll
    database_listen: bool = True

    # broker group (shared by all services)
    broker_url: SecretStr = Field(default=SecretStr(DEFAULT_BROKER_URL), validation_alias=AliasChoices("BROKER_URL"))
    events_exchange: str = Field(default="events", min_length=1, validation_alias=AliasChoices("EVENTS_EXCHANGE"))
    queue_type: Literal["quorum", "classic"] = Field(default="quorum", validation_alias=AliasChoices("QUEUE_TYPE"))
    consumer_prefetch: int = Field(default=200, ge=1, le=10_000, validation_alias=AliasChoices("CONSUMER_PREFETCH"))
    consumer_batch_size: int = Field(default=100, ge=1, le=1_000, validation_alias=AliasChoices("CONSUMER_BATCH_SIZE"))
    consumer_batch_linger_ms: float = Field(default=50, ge=0, le=1_000, validation_alias=AliasChoices("CONSUMER_BATCH_LINGER_MS"))
    consumer_concurrency: int = Field(default=4, ge=1, le=64, validation_alias=AliasChoices("CONSUMER_CONCURRENCY"))
    retry_max_attempts: int = Field(default=5, ge=1, le=50, validation_alias=AliasChoices("RETRY_MAX_ATTEMPTS"))
    # the wait before each retry, one queue per delay: "1000,10000,60000,300000"
    retry_tiers_ms: Annotated[tuple[int, ...], NoDecode] = Field(
        default=DEFAULT_RETRY_TIERS_MS, validation_alias=AliasChoices("RETRY_TIERS_MS")
    )
    # a DLQ is read whole (to leave its order as it was); one holding more is refused for listing by ids
    dead_letter_scan_limit: int = Field(default=10_000, ge=1, le=1_000_000, validation_alias=AliasChoices("DEAD_LETTER_SCAN_LIMIT"))
    outbox_batch_size: int = Field(default=1_000, ge=1, le=10_000, validation_alias=AliasChoices("OUTBOX_BATCH_SIZE"))
    outbox_poll_interval_s: float = Field(default=1.0, gt=0, validation_alias=AliasChoices("OUTBOX_POLL_INTERVAL_S"))
    outbox_linger_ms: float = Field(default=50, ge=0, le=1_000, validation_alias=AliasChoices("OUTBOX_LINGER_MS"))
    outbox_retention_hours: int = Field(default=72, ge=1, validation_alias=AliasChoices("OUTBOX_RETENTION_HOURS"))
    # tries before an event the broker keeps refusing (no queue bound to its routing key) is parked
    outbox_max_attempts: int = Field(default=20, ge=1, le=1_000, validation_alias=AliasChoices("OUTBOX_MAX_ATTEMPTS"))
    # embedded: the service publishes its outbox from a thread of its own process; external:
    # a separate `python -m <service>.main relay` process does, and the service only writes rows
    outbox_relay: Literal["embedded", "external"] = Field(default="embedded", validation_alias=AliasChoices("OUTBOX_RELAY"))
    outbox_stale_after_s: float = Field(default=30.0, gt=0, validation_alias=AliasChoices("OUTBOX_STALE_AFTER_S"))
    # on: the relay hands each batch to aiormq's channel at once (shared/messaging/batch_publish.py);
    # off: one aio-pika Exchange.publish per event, public API only
    publish_batched: bool = Field(default=True, validation_alias=AliasChoices("PUBLISH_BATCHED"))

    # a listing's total counts the matching rows up to this many (ORDERS_LIST_COUNT_LIMIT, ...): an
    # exact count reads every row it counts, so an unbounded one grows with the table
    list_count_limit: int = Field(default=1000, ge=1, le=1_000_000)
    # pages of a listing reach this many rows deep (ORDERS_LIST_DEPTH_LIMIT, ...); a deeper page is 422
    list_depth_limit: int = Field(default=10_000, ge=1, le=1_000_000)

    @property
    def relay_port(self) -> int:
        """Where a separate relay process serves its health and metrics: the service's port + 1000."""
        return self.port + RELAY_PORT_OFFSET

    @field_validator("database_url", mode="after")
    @classmethod
    def _asyncpg_driver(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value()
        for plain in ("postgresql://", "postgres://"):
            if url.startswith(plain):
                url = "postgresql+asyncpg://" + url[len(plain) :]
        if not url.startswith("postgresql+asyncpg://"):
            raise ValueError("must be a postgresql:// URL")
        return SecretStr(url)

    @field_validator("retry_tiers_ms", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return tuple(int(part) for part in value.split(",") if part.strip())
            except ValueError:
                raise ValueError("must be delays in milliseconds separated by commas, e.g. 1000,10000,60000,300000") from None
        return value

    @field_validator("retry_tiers_ms", mode="after")
    @classmethod
    def _shortest_first(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(delay < 1 for delay in value) or list(value) != sorted(set(value)):
            raise ValueError(f"must be distinct delays of at least 1 ms, shortest first; got {','.join(map(str, value))}")
        return value

    @field_validator("broker_url", mode="after")
    @classmethod
    def _amqp_scheme(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("amqp://", "amqps://")):
            raise ValueError("must be an amqp:// or amqps:// URL")
        return value

    def production_problems(self) -> list[str]:
        problems = super().production_problems()
        broker = self.broker_url.get_secret_value()
        if "guest:guest@" in broker:
            problems.append("BROKER_URL uses the default guest credentials; set real ones in production")
        elif weak_password(broker):
            problems.append(f"BROKER_URL: its password is {weak_password(broker)}")
        database = self.database_url.get_secret_value()
        if weak_password(database):
            prefix = str(self.model_config.get("env_prefix", ""))
            problems.append(f"{prefix}DATABASE_URL: its password is {weak_password(database)}")
        return problems


MIN_SECRET_LENGTH = 16


def weak_secret(value: str) -> str | None:
    """Why a secret is a placeholder (empty, ``change-me``, shorter than 16 characters), or None."""
    if not value:
        return "empty"
    if "change-me" in value.lower() or "changeme" in value.lower():
        return "a placeholder (change-me)"
    if len(value) < MIN_SECRET_LENGTH:
        return f"shorter than {MIN_SECRET_LENGTH} characters"
    return None


def weak_password(url: str) -> str | None:
    """Why the password in ``url`` is a placeholder; None when it is fine or there is none (peer or certificate login)."""
    password = urlsplit(url).password
    return weak_secret(unquote(password)) if password else None


SettingsT = TypeVar("SettingsT", bound=ProcessSettings)


def load_settings(settings_class: type[SettingsT]) -> SettingsT:
    """Build settings or stop with a message naming each bad variable (not a traceback)."""
    try:
        return settings_class()
    except ValidationError as exc:
        prefix = settings_class.model_config.get("env_prefix", "")
        lines = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "settings"
            variable = field.upper() if field.upper() in _aliases(settings_class) else f"{prefix}{field}".upper()
            lines.append(f"  {variable}: {error['msg']}")
        raise SettingsError(f"invalid configuration for {settings_class.__name__}:\n" + "\n".join(lines)) from None


def _aliases(settings_class: type[ProcessSettings]) -> set[str]:
    names: set[str] = set()
    for field in settings_class.model_fields.values():
        if isinstance(field.validation_alias, AliasChoices):
            names.update(str(choice).upper() for choice in field.validation_alias.choices)
    return names
