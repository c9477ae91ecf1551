"""``OrdersStore`` in memory: orders, keys per client and the outbox rows placed with them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from orders_service.schemas import OrderOut
from orders_service.store import KeyUse, PriorUse
from shared.domain_errors import Conflict


class InMemoryOrdersStore:
    def __init__(self) -> None:
        self.orders: dict[uuid.UUID, OrderOut] = {}
        self.keys: dict[tuple[str, str], PriorUse] = {}
        self.outbox: list[dict[str, Any]] = []
        self.in_flight: set[tuple[str, str]] = set()  # keys another request holds right now

    async def place(self, order: OrderOut, event_row: dict[str, Any], key: KeyUse | None) -> PriorUse | None:
        if key is not None:
            if (key.client, key.key) in self.in_flight:
                raise Conflict("a request with this Idempotency-Key is still in progress", code="idempotency_in_progress", retry_after_s=1)
            if (key.client, key.key) in self.keys:
                return self.keys[(key.client, key.key)]
            self.keys[(key.client, key.key)] = PriorUse(order.id, key.fingerprint)
        self.orders[order.id] = order
        self.outbox.append(event_row)
        return None

    async def get(self, order_id: uuid.UUID) -> OrderOut | None:
        return self.orders.get(order_id)

    async def cancel(
        self, order_id: uuid.UUID, owner: str | None, reason: str | None, at: datetime, event_row: Callable[[OrderOut], dict[str, Any]]
    ) -> tuple[OrderOut | None, bool]:
        order = self.orders.get(order_id)
        if order is None or (owner is not None and order.client != owner):
            return None, False
        if order.status == "cancelled":
            return order, False
        cancelled = order.model_copy(update={"status": "cancelled", "cancelled_at": at, "cancel_reason": reason})
        self.orders[order_id] = cancelled
        self.outbox.append(event_row(cancelled))
        return cancelled, True

    async def orders_of_day(self, day: date, *, tz: str) -> list[OrderOut]:
        return sorted(
            (order for order in self.orders.values() if order.created_at.astimezone(ZoneInfo(tz)).date() == day),
            key=lambda order: (order.created_at, order.id),
        )

    async def add_events(self, rows: Sequence[dict[str, Any]]) -> None:
        self.outbox.extend(rows)
