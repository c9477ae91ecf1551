"""``NotificationsStore`` in memory: one pending mail per event, the first one recorded wins."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from notifications_service.store import PendingMail


class InMemoryNotificationsStore:
    def __init__(self) -> None:
        self.pending: dict[uuid.UUID, PendingMail] = {}

    async def add_pending(self, mails: Sequence[PendingMail]) -> None:
        for pending in mails:
            self.pending.setdefault(pending.event_id, pending)
