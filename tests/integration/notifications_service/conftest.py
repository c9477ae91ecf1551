import email
import email.policy
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from notifications_service.main import build_app
from notifications_service.settings import NotificationsSettings
from shared.testing.fixtures import serving, wait_until_consuming


class RecordingSmtp:
    """A real SMTP server (aiosmtpd, own thread) that keeps what it receives, refuses ``reject*`` addresses
    for good and ``greylist*`` addresses the first time."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[EmailMessage] = []
        self.refused: list[str] = []
        self._controller: Controller | None = None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if address.startswith("reject"):
            self.refused.append(address)
            return "550 5.1.1 mailbox unavailable"
        if address.startswith("greylist") and address not in self.refused:  # refused once, as greylisting does
            self.refused.append(address)
            return "451 4.7.1 greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 Message accepted"

    def start(self, *, password: str | None = None) -> None:
        """With ``password``, the server takes only logins with it (over plain text: a test server on 127.0.0.1)."""
        options: dict[str, Any] = {}
        if password is not None:

            def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
                return AuthResult(success=auth_data.password == password.encode())

            options = {"authenticator": authenticate, "auth_required": True, "auth_require_tls": False}
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, **options)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
async def notifications_db(notifications_database: str) -> str:
    from shared.testing.fixtures import truncate_all

    await truncate_all(notifications_database)
    return notifications_database


@pytest.fixture
def make_settings(notifications_db: str, broker_url: str, exchange_name: str) -> Callable[..., NotificationsSettings]:
    def make(**overrides: Any) -> NotificationsSettings:
        values: dict[str, Any] = {
            "database_url": notifications_db,
            "broker_url": broker_url,
            "events_exchange": exchange_name,
            "environment": "test",
            "log_json": False,
            "retry_tiers_ms": (50, 100, 200),
            "retry_base_s": 0.1,
            "retry_max_s": 0.5,
            "dispatch_poll_interval_s": 0.2,
            "reports_to": "ops@example.com",
            "smtp_timeout_s": 2,
        }
        return NotificationsSettings(**(values | overrides))

    return make


@asynccontextmanager
async def notifications_client(settings: NotificationsSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(build_app(settings)) as base_url, httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        await wait_until_consuming(client)
        yield client
