"""What the notifications service answers: the read side, queries straight on the session."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from notifications_service.models import notifications
from notifications_service.schemas import NotificationOut, NotificationPage
from shared.db import equal_to, newest_first


def _out(found: Any) -> NotificationOut:
    return NotificationOut.model_validate(found, from_attributes=True)


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
    conditions = equal_to(
        (notifications.c.client, owner),
        (notifications.c.recipient, recipient),
        (notifications.c.order_id, order_id),
        (notifications.c.status, status),
    )
    rows, total, exact = await newest_first(session, notifications, conditions, page=page, count=count, count_limit=count_limit)
    return NotificationPage(items=[_out(found) for found in rows], total=total, total_exact=exact, page=page, count=count)
