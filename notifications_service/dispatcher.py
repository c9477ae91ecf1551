"""The sending loop: pending notifications out through the sender, with retries and backoff.

Like the outbox relay: rows are locked with ``FOR UPDATE SKIP LOCKED`` (replicas never
send the same row at once), the loop wakes on ``NOTIFY notifications`` and polls as a
fallback, and lingers after a wake-up so a burst of commits is sent in one pass. A
transient failure sets ``next_attempt_at`` further out each time; a permanent one, or the
last attempt, ends the row ``failed`` with the reason. While the mail server cannot be
reached at all, or the database is out of reach, the loop pauses instead: no row spends
an attempt on an outage, and the rows go out as soon as the server answers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import logging
import random
import time
from email import policy
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from opentelemetry.trace import SpanKind
from sqlalchemy import ARRAY, Uuid, any_, bindparam, func, select, text, update

from notifications_service.models import notifications
from notifications_service.senders import OutgoingMail, Sender, SendError, ServerUnreachable
from shared import metrics, tracing
from shared.db import SessionFactory, listen_forever
from shared.db_gate import DatabaseGate

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "notifications"
# while the mail server cannot be reached: the pause between tries, doubling up to the second
SERVER_FIRST_WAIT_S = 0.25
SERVER_MAX_WAIT_S = 5.0


class _HeaderClasses(HeaderRegistry):
    """The standard registry, each header's class made once: ``HeaderRegistry`` builds a new class
    for every header it parses, about a quarter of the time a message takes to build."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made


MAIL_POLICY = policy.SMTP.clone(header_factory=_HeaderClasses())


# base64 lines never hold "_", so no part can contain the boundary: one serves every message
BOUNDARY = "=_order-reporting_="


def _part(subtype: str, content: str) -> bytes:
    encoded = base64.encodebytes(content.encode()).replace(b"\n", b"\r\n")
    return f"Content-Type: text/{subtype}; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n".encode() + encoded


def _headers(**values: str) -> bytes:
    """The headers set on an ``EmailMessage`` (which refuses CR/LF in a value) and written by its SMTP policy."""
    message = EmailMessage(policy=MAIL_POLICY)
    for name, value in values.items():
        message[name.replace("_", "-")] = value
    return b"".join(MAIL_POLICY.fold_binary(name, value) for name, value in message.items())


@functools.lru_cache(maxsize=8)
def _constant_headers(mail_from: str) -> bytes:
    """The headers every message of a sender shares, built once."""
    return _headers(From=mail_from, MIME_Version="1.0", Content_Type=f'multipart/alternative; boundary="{BOUNDARY}"')


@functools.lru_cache(maxsize=2)
def _date_header(second: int) -> bytes:
    return _headers(Date=formatdate(second, usegmt=True))


def compose(row: Any, mail_from: str) -> OutgoingMail:
    """A multipart/alternative message (plain text and HTML); a row that cannot be a mail raises ``ValueError``.

    Every header is set on an ``EmailMessage`` under the SMTP policy, which refuses a value
    with CR or LF in it and encodes the rest, and is written by that policy (``fold_binary``),
    so no field of a notification can add a header of its own; the headers that are the same
    for every message (and the date, within its second) are built once. The two parts have
    headers of constants and base64 bodies, because letting ``EmailMessage`` build the whole
    message (its content manager and generator) costs several times the CPU of the rest of
    a confirmation, once per order.
    """
    head = (
        _constant_headers(mail_from)
        + _date_header(int(time.time()))
        # stable per event: a mail system that sees it twice (a crash after SMTP accepted it) can tell
        + _headers(To=row.recipient, Subject=row.subject, Message_ID=f"<{row.event_id}@notifications.order-reporting>")
    )
    separator = f"\r\n--{BOUNDARY}\r\n".encode()
    raw = head + separator + _part("plain", row.body_text) + separator + _part("html", row.body_html) + f"\r\n--{BOUNDARY}--\r\n".encode()
    return OutgoingMail(sender=mail_from, recipient=row.recipient, subject=row.subject, raw=raw)


class Dispatcher:
    def __init__(
        self,
        session_factory: SessionFactory,
        sender: Sender,
        *,
        mail_from: str,
        listen_dsn: str | None = None,
        batch_size: int = 200,
        poll_interval_s: float = 1.0,
        max_attempts: int = 8,
        retry_base_s: float = 2.0,
        retry_max_s: float = 600.0,
        linger_s: float = 0.05,
    ) -> None:
        self._sessions = session_factory
        self._sender = sender
        self._mail_from = mail_from
        self._listen_dsn = listen_dsn
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._max_attempts = max_attempts
        self._retry_base_s = retry_base_s
        self._retry_max_s = retry_max_s
        self._linger_s = linger_s
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.database = DatabaseGate("notification-dispatcher", self._probe_database)

    async def _probe_database(self) -> None:
        async with self._sessions() as session:
            await session.execute(text("SELECT 1"))

    async def dispatch_once(self) -> int:
        """Send one batch of due notifications; how many were handled (sent or not)."""
        async with self._sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(notifications)
                    .where(notifications.c.status == "pending", notifications.c.next_attempt_at <= func.now())
                    .order_by(notifications.c.next_attempt_at)
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            outcomes = await asyncio.gather(*(self._send(row) for row in rows), return_exceptions=True)
            sent = [row.id for row, outcome in zip(rows, outcomes, strict=True) if outcome is None]
            if sent:
                await session.execute(
                    update(notifications)
                    # one array parameter: an IN list is a new prepared statement for every batch size
                    .where(notifications.c.id == any_(bindparam("sent", sent, type_=ARRAY(Uuid))))
                    .values(status="sent", sent_at=func.clock_timestamp(), attempts=notifications.c.attempts + 1, last_error=None)
                )
            unreachable = [outcome for outcome in outcomes if isinstance(outcome, ServerUnreachable)]
            for row, outcome in zip(rows, outcomes, strict=True):
                if outcome is not None and not isinstance(outcome, ServerUnreachable):
                    await self._record_failure(session, row, outcome)
        if sent:
            metrics.NOTIFICATION_SENDS.labels(outcome="sent").inc(len(sent))
        if unreachable:
            metrics.NOTIFICATION_SENDS.labels(outcome="server_unreachable").inc()
            raise unreachable[0]  # the rows it held stay pending, their attempts untouched
        return len(rows)

    async def _send(self, row: Any) -> None:
        if row.traceparent is None or tracing.tracer() is None:
            await self._compose_and_send(row)
            return
        attributes = {"notification.id": str(row.id), "notification.kind": row.kind, "attempt": row.attempts + 1}
        with tracing.child_span("smtp send", {"traceparent": row.traceparent}, SpanKind.CLIENT, **attributes):
            await self._compose_and_send(row)

    async def _compose_and_send(self, row: Any) -> None:
        try:
            mail = compose(row, self._mail_from)
        except ValueError as exc:
            raise SendError(f"not a mail that can be sent: {exc}", permanent=True) from exc
        await self._sender.send(mail)

    async def _record_failure(self, session: Any, row: Any, error: BaseException) -> None:
        if not isinstance(error, SendError):
            log.exception("unexpected error while sending", exc_info=error)
            error = SendError(f"{type(error).__name__}: {error}", permanent=False)
        attempts = row.attempts + 1
        final = error.permanent or attempts >= self._max_attempts
        delay_s = min(self._retry_base_s * 2 ** (attempts - 1), self._retry_max_s) * random.uniform(0.8, 1.2)
        await session.execute(
            update(notifications)
            .where(notifications.c.id == row.id)
            .values(
                status="failed" if final else "pending",
                attempts=attempts,
                last_error=str(error)[:2000],
                next_attempt_at=func.now() + text(f"interval '{delay_s:.3f} seconds'"),
            )
        )
        metrics.NOTIFICATION_SENDS.labels(outcome="failed" if final else "retrying").inc()
        log.warning(
            "notification not sent" + (" and given up" if final else "; retrying later"),
            extra={"notification_id": str(row.id), "attempts": attempts, "error": str(error), "permanent": error.permanent},
        )

    async def run(self) -> None:
        listener = asyncio.create_task(self._listen())
        backoff_s = 0.5
        server_wait_s = SERVER_FIRST_WAIT_S
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                try:
                    handled = await self.dispatch_once()
                    backoff_s = 0.5
                    if server_wait_s > SERVER_FIRST_WAIT_S:
                        log.info("the mail server answers again; sending")
                    server_wait_s = SERVER_FIRST_WAIT_S
                except ServerUnreachable as exc:
                    if server_wait_s == SERVER_FIRST_WAIT_S:
                        log.warning("mail server unreachable; holding notifications until it answers", extra={"error": str(exc)})
                    await self._sleep(server_wait_s * random.uniform(0.8, 1.2))
                    server_wait_s = min(server_wait_s * 2, SERVER_MAX_WAIT_S)
                    continue
                except Exception as exc:
                    if await self.database.holds(exc):
                        await self.database.wait_open(self._stopping)
                        continue
                    log.exception("notification dispatch failed; retrying")
                    handled = 0
                    await self._sleep(backoff_s)
                    backoff_s = min(backoff_s * 2, 30.0)
                    continue
                if handled >= self._batch_size:
                    continue
                if not handled:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._poll_interval_s)
                # let the next burst of commits accumulate: a pass (a transaction, a lock and an update)
                # per linger, not one per committed notification; a mail is none the worse for 50 ms
                await self._sleep(self._linger_s)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _listen(self) -> None:
        if self._listen_dsn is not None:
            await listen_forever(self._listen_dsn, NOTIFY_CHANNEL, self._wake.set, self._stopping)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="notification-dispatcher")

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            await self._task
        await self.database.close()
        await self._sender.close()
