"""Use cases: record a notification per event, and read them back."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from notifications_service.models import notifications
from notifications_service.schemas import NotificationOut, NotificationPage
from notifications_service.templates import Mail
from shared.db import count_up_to


def row(
    event_id: uuid.UUID, kind: str, recipient: str, mail: Mail, order_id: uuid.UUID | None = None, client: str | None = None
) -> dict[str, Any]:
    """``client`` owns the notification (the client that placed its order): a shop sees only its own."""
    return {
        "id": uuid.uuid4(),
        "event_id": event_id,
        "kind": kind,
        "recipient": recipient,
        "subject": mail.subject,
        "body_text": mail.text,
        "body_html": mail.html,
        "order_id": order_id,
        "client": client,
    }


# One statement per batch, its rows as one array per column: an executemany ran the INSERT (and
# the statement's NOTIFY trigger) once per row, the largest statement time of this database.
RECORD = text(
    """
    INSERT INTO notifications (id, event_id, kind, recipient, subject, body_text, body_html, order_id, client)
    SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:event_ids AS uuid[]), CAST(:kinds AS text[]),
                         CAST(:recipients AS text[]), CAST(:subjects AS text[]), CAST(:texts AS text[]),
                         CAST(:htmls AS text[]), CAST(:order_ids AS uuid[]), CAST(:clients AS text[]))
    ON CONFLICT (event_id) DO NOTHING
    """
)


async def record(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Pending notifications; an event recorded before (redelivered, duplicated) adds nothing."""
    if rows:
        await session.execute(
            RECORD,
            {
                "ids": [row["id"] for row in rows],
                "event_ids": [row["event_id"] for row in rows],
                "kinds": [row["kind"] for row in rows],
                "recipients": [row["recipient"] for row in rows],
                "subjects": [row["subject"] for row in rows],
                "texts": [row["body_text"] for row in rows],
                "htmls": [row["body_html"] for row in rows],
                "order_ids": [row["order_id"] for row in rows],
                "clients": [row["client"] for row in rows],
            },
        )


def _out(found: Any) -> NotificationOut:
    return NotificationOut(
        id=found.id,
        event_id=found.event_id,
        kind=found.kind,
        recipient=found.recipient,
        subject=found.subject,
        body_text=found.body_text,
        order_id=found.order_id,
        status=found.status,
        attempts=found.attempts,
        last_error=found.last_error,
        created_at=found.created_at,
        sent_at=found.sent_at,
    )


async def get(session: AsyncSession, notification_id: uuid.UUID, *, owner: str | None = None) -> NotificationOut | None:
    """The notification; with ``owner``, only if it belongs to that client (else not found)."""
    query = select(notifications).where(notifications.c.id == notification_id)
    if owner is not None:
        query = query.where(notifications.c.client == owner)
    found = (await session.execute(query)).first()
    return _out(found) if found is not None else None


async def search(
    session: AsyncSession,
    *,
    recipient: str | None,
    order_id: uuid.UUID | None,
    status: str | None,
    page: int,
    count: int,
    count_limit: int,
    owner: str | None = None,
) -> NotificationPage:
    """Newest first; ``total`` counts the matching notifications up to ``count_limit``;
    with ``owner``, only that client's."""
    conditions = []
    if owner is not None:
        conditions.append(notifications.c.client == owner)
    if recipient is not None:
        conditions.append(notifications.c.recipient == recipient)
    if order_id is not None:
        conditions.append(notifications.c.order_id == order_id)
    if status is not None:
        conditions.append(notifications.c.status == status)
    total, exact = await count_up_to(session, notifications, conditions, count_limit)
    rows = await session.execute(
        select(notifications)
        .where(*conditions)
        .order_by(notifications.c.created_at.desc(), notifications.c.id)
        .limit(count)
        .offset((page - 1) * count)
    )
    return NotificationPage(items=[_out(found) for found in rows], total=total, total_exact=exact, page=page, count=count)
