"""The notifications database as the use cases write to it: pending mails, one per event."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from notifications_service.templates import Mail
from shared import tracing


@dataclass(frozen=True, slots=True)
class PendingMail:
    """A mail the dispatcher will send; ``client`` owns it (the client that placed its order): a shop sees only its own."""

    event_id: uuid.UUID
    kind: str
    recipient: str
    mail: Mail
    order_id: uuid.UUID | None = None
    client: str | None = None
    id: uuid.UUID = field(default_factory=uuid.uuid4)


class NotificationsStore(Protocol):
    async def add_pending(self, mails: Sequence[PendingMail]) -> None:
        """Record each mail once per event: an event recorded before (redelivered, duplicated) adds nothing."""


# One statement per batch, its rows as one array per column: an executemany ran the INSERT (and
# the statement's NOTIFY trigger) once per row, the largest statement time of this database.
RECORD = text(
    """
    INSERT INTO notifications (id, event_id, kind, recipient, subject, body_text, body_html, order_id, client, traceparent)
    SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:event_ids AS uuid[]), CAST(:kinds AS text[]),
                         CAST(:recipients AS text[]), CAST(:subjects AS text[]), CAST(:texts AS text[]),
                         CAST(:htmls AS text[]), CAST(:order_ids AS uuid[]), CAST(:clients AS text[]),
                         CAST(:traceparents AS text[]))
    ON CONFLICT (event_id) DO NOTHING
    """
)


class SqlNotificationsStore:
    """``NotificationsStore`` on the caller's session: the rows join its transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_pending(self, mails: Sequence[PendingMail]) -> None:
        if not mails:
            return
        await self._session.execute(
            RECORD,
            {
                "ids": [pending.id for pending in mails],
                "event_ids": [pending.event_id for pending in mails],
                "kinds": [pending.kind for pending in mails],
                "recipients": [pending.recipient for pending in mails],
                "subjects": [pending.mail.subject for pending in mails],
                "texts": [pending.mail.text for pending in mails],
                "htmls": [pending.mail.html for pending in mails],
                "order_ids": [pending.order_id for pending in mails],
                "clients": [pending.client for pending in mails],
                "traceparents": [_traceparent(pending.event_id) for pending in mails],
            },
        )


def _traceparent(event_id: uuid.UUID) -> str | None:
    """The trace of the consumer's span for this event, while tracing."""
    carrier = tracing.carrier_of(event_id)
    return carrier.get("traceparent") if carrier else None
