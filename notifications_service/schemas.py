"""Response bodies of the notifications API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Status = Literal["pending", "sent", "failed", "dropped"]


class NotificationOut(BaseModel):
    id: uuid.UUID
    event_id: uuid.UUID
    kind: str
    recipient: str
    subject: str
    body_text: str
    order_id: uuid.UUID | None
    status: Status
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    total: int = Field(description="matching notifications; when total_exact is false, at least this many")
    total_exact: bool = Field(description="false when more match than the service counts (NOTIFICATIONS_LIST_COUNT_LIMIT)")
    page: int
    count: int
