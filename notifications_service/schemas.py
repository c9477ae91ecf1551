"""Response bodies of the notifications API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

Status = Literal["pending", "sent", "failed"]


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
    total: int
    page: int
    count: int
