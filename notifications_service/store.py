"""The notifications database as the use cases write to it: pending mails, one per event."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy import TextClause, text
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

    async def add_confirmations(self, mails: Sequence[PendingMail]) -> None:
        """``add_pending`` for orders' confirmations, leaving out the orders already cancelled."""

    async def cancel_orders(self, cancelled: Mapping[uuid.UUID, datetime], notices: Sequence[PendingMail]) -> None:
        """Remember the orders as cancelled, drop their confirmations still pending, and record the notices."""


# One statement per batch, its rows as one array per column: an executemany ran the INSERT (and
# the statement's NOTIFY trigger) once per row, the largest statement time of this database.
COLUMNS = "id, event_id, kind, recipient, subject, body_text, body_html, order_id, client, traceparent"
INSERT_ROWS = f"""
    INSERT INTO notifications ({COLUMNS})
    SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:event_ids AS uuid[]), CAST(:kinds AS text[]),
                         CAST(:recipients AS text[]), CAST(:subjects AS text[]), CAST(:texts AS text[]),
                         CAST(:htmls AS text[]), CAST(:order_ids AS uuid[]), CAST(:clients AS text[]),
                         CAST(:traceparents AS text[])) AS incoming({COLUMNS})
"""
RECORD = text(f"{INSERT_ROWS} ON CONFLICT (event_id) DO NOTHING")

# A confirmation and its order's cancellation, consumed at the same moment from two queues, take
# each order's lock (shared, exclusive): the cancellation either sees the confirmation and drops it,
# or the confirmation sees the tombstone and is not recorded. Locks are taken in order-id order.
LOCK_ORDERS = """
    SELECT {function}(hashtextextended(CAST(id AS text), 7101))
    FROM (SELECT DISTINCT unnest(CAST(:ids AS uuid[])) AS id) AS orders ORDER BY id
"""
LOCK_ORDERS_SHARED = text(LOCK_ORDERS.format(function="pg_advisory_xact_lock_shared"))
LOCK_ORDERS_EXCLUSIVE = text(LOCK_ORDERS.format(function="pg_advisory_xact_lock"))
RECORD_CONFIRMATIONS = text(
    f"""{INSERT_ROWS}
    WHERE NOT EXISTS (SELECT 1 FROM cancelled_orders AS cancelled WHERE cancelled.order_id = incoming.order_id)
    ON CONFLICT (event_id) DO NOTHING
    """
)
REMEMBER_CANCELLED = text(
    """
    INSERT INTO cancelled_orders (order_id, cancelled_at)
    SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:cancelled AS timestamptz[]))
    ON CONFLICT (order_id) DO NOTHING
    """
)
DROP_CONFIRMATIONS = text(
    """
    UPDATE notifications SET status = 'dropped', last_error = 'the order was cancelled before its confirmation was sent'
    WHERE order_id = ANY(CAST(:ids AS uuid[])) AND kind = 'order_confirmation' AND status = 'pending'
    """
)


class SqlNotificationsStore:
    """``NotificationsStore`` on the caller's session: the rows join its transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_pending(self, mails: Sequence[PendingMail]) -> None:
        await self._record(RECORD, mails)

    async def add_confirmations(self, mails: Sequence[PendingMail]) -> None:
        if mails:
            await self._session.execute(LOCK_ORDERS_SHARED, {"ids": [pending.order_id for pending in mails]})
            await self._record(RECORD_CONFIRMATIONS, mails)

    async def cancel_orders(self, cancelled: Mapping[uuid.UUID, datetime], notices: Sequence[PendingMail]) -> None:
        if not cancelled:
            return
        ids = list(cancelled)
        await self._session.execute(LOCK_ORDERS_EXCLUSIVE, {"ids": ids})
        await self._session.execute(REMEMBER_CANCELLED, {"ids": ids, "cancelled": list(cancelled.values())})
        await self._session.execute(DROP_CONFIRMATIONS, {"ids": ids})
        await self._record(RECORD, notices)

    async def _record(self, statement: TextClause, mails: Sequence[PendingMail]) -> None:
        if not mails:
            return
        carrier = tracing.current_carrier()  # the consumer's span of this transaction: the send continues it
        traceparent = carrier.get("traceparent") if carrier else None
        await self._session.execute(
            statement,
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
                "traceparents": [traceparent] * len(mails),
            },
        )
