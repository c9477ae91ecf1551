"""Events the tests publish, built from one another as the services would build them."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.contracts.orders import OrderCancelled, OrderCreated
from shared.messaging.envelope import Envelope
from shared.messaging.topology import ORDER_CANCELLED


def cancellation_of(
    created: Envelope[OrderCreated], *, reason: str | None = None, cancelled_at: datetime | None = None
) -> Envelope[OrderCancelled]:
    """The ``order.cancelled`` the orders service publishes for ``created``'s order."""
    order = created.data
    data = OrderCancelled(
        order_id=order.order_id,
        customer_email=order.customer_email,
        created_at=order.created_at,
        count_product=order.count_product,
        total_amount=order.total_amount,
        currency=order.currency,
        cancelled_at=cancelled_at or datetime.now(UTC),
        reason=reason,
        client=order.client,
    )
    return Envelope[OrderCancelled](type=ORDER_CANCELLED, source="orders_service", data=data)
