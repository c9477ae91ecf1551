"""``NotificationsStore`` in memory: one pending mail per event, the first one recorded wins."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

from notifications_service.store import PendingMail


class InMemoryNotificationsStore:
    def __init__(self) -> None:
        self.pending: dict[uuid.UUID, PendingMail] = {}
        self.cancelled: dict[uuid.UUID, datetime] = {}
        self.dropped: set[uuid.UUID] = set()  # event ids of confirmations that will not be sent

    async def add_pending(self, mails: Sequence[PendingMail]) -> None:
        for pending in mails:
            self.pending.setdefault(pending.event_id, pending)

    async def add_confirmations(self, mails: Sequence[PendingMail]) -> None:
        await self.add_pending([pending for pending in mails if pending.order_id not in self.cancelled])

    async def cancel_orders(self, cancelled: Mapping[uuid.UUID, datetime], notices: Sequence[PendingMail]) -> None:
        for order_id, at in cancelled.items():
            self.cancelled.setdefault(order_id, at)
        self.dropped |= {
            pending.event_id for pending in self.pending.values() if pending.kind == "order_confirmation" and pending.order_id in cancelled
        }
        await self.add_pending(notices)
