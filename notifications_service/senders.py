"""How a notification leaves the building: SMTP (aiosmtplib, pooled connections) or the log.

Every failure is classified once, here: connection errors, timeouts and 4xx replies are
transient (retried later); 5xx replies are permanent (the notification ends ``failed``
with the server's reply). A server that cannot be reached, or refuses the session at its
greeting or login, is ``ServerUnreachable``: the failure is the server's (or the
configuration's), not the message's, so the dispatcher waits for it without spending the
message's attempts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Protocol

import aiosmtplib

from notifications_service.settings import NotificationsSettings

log = logging.getLogger(__name__)


class SendError(Exception):
    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.permanent = permanent


class ServerUnreachable(SendError):
    """No connection to the mail server could be opened (refused, timed out, dropped at the greeting)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, permanent=False)


_UNREACHABLE = (OSError, TimeoutError, aiosmtplib.SMTPConnectError, aiosmtplib.SMTPConnectTimeoutError, aiosmtplib.SMTPServerDisconnected)


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    sender: str
    recipient: str
    subject: str
    raw: bytes  # the whole RFC 5322 message


class Sender(Protocol):
    async def send(self, mail: OutgoingMail) -> None: ...

    async def close(self) -> None: ...


def classify(error: BaseException) -> SendError:
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        codes = [refused.code for refused in error.recipients]
        reason = "; ".join(f"{refused.code} {refused.message}" for refused in error.recipients)
        return SendError(reason, permanent=bool(codes) and all(500 <= code < 600 for code in codes))
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return SendError(f"{error.code} {error.message}", permanent=500 <= error.code < 600)
    return SendError(f"{type(error).__name__}: {error}", permanent=False)


class SmtpSender:
    """Up to ``smtp_connections`` sessions, each reused for message after message."""

    def __init__(self, settings: NotificationsSettings) -> None:
        self._settings = settings
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(settings.smtp_connections)

    async def _connect(self) -> aiosmtplib.SMTP:
        settings = self._settings
        client = aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            use_tls=settings.smtp_security == "tls",
            start_tls=settings.smtp_security == "starttls",
            timeout=settings.smtp_timeout_s,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        )
        await client.connect()
        return client

    async def send(self, mail: OutgoingMail) -> None:
        async with self._slots:
            client = self._idle.pop() if self._idle else None
            try:
                if client is None or not client.is_connected:
                    client = None
                    try:
                        client = await self._connect()
                    except (*_UNREACHABLE, aiosmtplib.SMTPException) as exc:
                        # refused at the greeting or the login (wrong credentials): the server's or the
                        # configuration's fault, not the message's, so no attempt of the message is spent
                        raise ServerUnreachable(f"the SMTP server cannot be used: {type(exc).__name__}: {exc}") from exc
                await client.sendmail(mail.sender, [mail.recipient], mail.raw)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                if client is not None:
                    await self._recycle_after_error(client)
                raise classify(exc) from exc
            self._idle.append(client)

    async def _recycle_after_error(self, client: aiosmtplib.SMTP) -> None:
        """A refused message leaves the session usable after RSET; anything else drops it."""
        if client.is_connected:
            try:
                await client.rset()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()
            else:
                self._idle.append(client)

    async def close(self) -> None:
        while self._idle:
            client = self._idle.pop()
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                await client.quit()


class LogSender:
    """For development without a mail server: the message goes to the log."""

    async def send(self, mail: OutgoingMail) -> None:
        log.info("notification (not sent: NOTIFICATIONS_SENDER=log)", extra={"to": mail.recipient, "subject": mail.subject})

    async def close(self) -> None:
        return None


def build_sender(settings: NotificationsSettings) -> Sender:
    return SmtpSender(settings) if settings.sender == "smtp" else LogSender()
