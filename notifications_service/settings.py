"""Notifications service settings; variables are prefixed ``NOTIFICATIONS_`` (shared ones are not)."""

from __future__ import annotations

from typing import Literal

from pydantic import EmailStr, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.settings import BaseServiceSettings


class NotificationsSettings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFICATIONS_")

    service_name: str = "notifications"
    port: int = 8004
    database_url: SecretStr = SecretStr("postgresql+asyncpg://postgres@127.0.0.1:5432/notifications")
    # smtp: deliver through an SMTP server; log: write each message to the log instead
    sender: Literal["smtp", "log"] = "smtp"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    mail_catcher_dir: str = "var/mail"
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_s: float = Field(default=10.0, gt=0)
    smtp_connections: int = Field(default=4, ge=1, le=64)
    mail_from: EmailStr = "orders@example.com"
    # operators' address for report notices; no notices when unset
    reports_to: EmailStr | None = None
    max_attempts: int = Field(default=8, ge=1, le=100)
    retry_base_s: float = Field(default=2.0, gt=0)
    retry_max_s: float = Field(default=600.0, gt=0)
    dispatch_batch_size: int = Field(default=200, ge=1, le=5_000)
    dispatch_poll_interval_s: float = Field(default=1.0, gt=0)
