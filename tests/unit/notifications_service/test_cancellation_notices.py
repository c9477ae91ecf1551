"""``order.cancelled`` in the notifications use cases: one notice per cancellation, no confirmation after it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from notifications_service import notifications
from shared.contracts.orders import OrderCancelled, OrderCreated
from shared.messaging.envelope import Envelope
from shared.testing.events import cancellation_of
from tests.unit.notifications_service.fakes import InMemoryNotificationsStore
from tests.unit.notifications_service.test_notification_use_cases import order

CANCELLED_AT = datetime(2026, 12, 2, 10, tzinfo=UTC)


def cancellation(created: Envelope[OrderCreated], event_id: uuid.UUID | None = None) -> Envelope[OrderCancelled]:
    cancelled = cancellation_of(created, reason="out of stock", cancelled_at=CANCELLED_AT)
    return cancelled.model_copy(update={"id": event_id}) if event_id else cancelled


async def test_a_cancellation_sends_one_notice_and_drops_the_confirmation_still_pending() -> None:
    store = InMemoryNotificationsStore()
    placed = order("ada@example.com")
    await notifications.confirm_orders(store, [placed])
    cancelled = cancellation(placed)
    await notifications.notify_cancellations(store, [cancelled])
    await notifications.notify_cancellations(store, [cancellation(placed, event_id=cancelled.id)])  # redelivered
    notices = [pending for pending in store.pending.values() if pending.kind == "order_cancellation"]
    expected = [("ada@example.com", placed.data.order_id, "shop-a")]
    assert [(notice.recipient, notice.order_id, notice.client) for notice in notices] == expected
    assert "out of stock" in notices[0].mail.text
    assert store.dropped == {placed.id}


async def test_an_order_created_after_its_cancellation_asks_for_no_confirmation() -> None:
    store = InMemoryNotificationsStore()
    placed = order("ada@example.com")
    await notifications.notify_cancellations(store, [cancellation(placed)])
    await notifications.confirm_orders(store, [placed, order("bob@example.com")])
    assert sorted((pending.kind, pending.recipient) for pending in store.pending.values()) == [
        ("order_cancellation", "ada@example.com"),
        ("order_confirmation", "bob@example.com"),
    ]
