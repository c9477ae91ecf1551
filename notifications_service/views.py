"""What the notifications service answers: the read side, queries straight on the session."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from notifications_service.models import notifications
from notifications_service.schemas import NotificationOut, NotificationPage
from shared.db import count_up_to


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
