"""Use cases of the notifications service: which mail each event asks for, and to whom.

Each takes the store of the consumer's unit of work; the dispatcher sends what they record.
"""

from __future__ import annotations

from collections.abc import Sequence

from notifications_service import templates
from notifications_service.store import NotificationsStore, PendingMail
from shared.contracts.orders import OrderCancelled, OrderCreated
from shared.contracts.reports import ReportFailed, ReportGenerated
from shared.messaging.envelope import Envelope


async def confirm_orders(store: NotificationsStore, events: Sequence[Envelope[OrderCreated]]) -> None:
    """A confirmation to each order's customer, owned by the client that placed the order; none for an
    order already cancelled (its ``order.cancelled`` came first)."""
    await store.add_confirmations([_to_customer(event, "order_confirmation", templates.order_confirmation(event.data)) for event in events])


async def notify_cancellations(store: NotificationsStore, events: Sequence[Envelope[OrderCancelled]]) -> None:
    """A cancellation notice to each customer, once per cancellation; a confirmation not sent yet is
    dropped, and one that comes later is never recorded."""
    await store.cancel_orders(
        {event.data.order_id: event.data.cancelled_at for event in events},
        [_to_customer(event, "order_cancellation", templates.order_cancellation(event.data)) for event in events],
    )


async def announce_reports(store: NotificationsStore, events: Sequence[Envelope[ReportGenerated]], *, reports_to: str | None) -> None:
    """A notice per generated report to ``NOTIFICATIONS_REPORTS_TO``; none when it is unset."""
    if reports_to:
        await store.add_pending(
            [PendingMail(event.id, "report_generated", reports_to, templates.report_generated(event.data)) for event in events]
        )


async def announce_report_failures(store: NotificationsStore, events: Sequence[Envelope[ReportFailed]], *, reports_to: str | None) -> None:
    """A notice per report that gave up, with its error, to ``NOTIFICATIONS_REPORTS_TO``; none when it is unset."""
    if reports_to:
        await store.add_pending(
            [PendingMail(event.id, "report_failed", reports_to, templates.report_failed(event.data)) for event in events]
        )


def _to_customer(event: Envelope[OrderCreated] | Envelope[OrderCancelled], kind: str, mail: templates.Mail) -> PendingMail:
    """A mail about an order to its customer, owned by the client that placed the order."""
    return PendingMail(event.id, kind, event.data.customer_email, mail, event.data.order_id, event.data.client)
