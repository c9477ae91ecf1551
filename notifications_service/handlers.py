"""What the notifications service does per event: the one registry of its subscriptions."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from notifications_service import notifications
from notifications_service.store import SqlNotificationsStore
from shared.contracts.orders import OrderCancelled, OrderCreated
from shared.contracts.reports import ReportFailed, ReportGenerated
from shared.messaging.consumer import Subscription
from shared.messaging.envelope import Envelope


def build_subscriptions(*, reports_to: str | None) -> list[Subscription]:
    """Each handler runs its use case on the consumer's unit of work (its session's transaction)."""

    async def confirm_orders(events: Sequence[Envelope[OrderCreated]], session: AsyncSession) -> None:
        await notifications.confirm_orders(SqlNotificationsStore(session), events)

    async def notify_cancellations(events: Sequence[Envelope[OrderCancelled]], session: AsyncSession) -> None:
        await notifications.notify_cancellations(SqlNotificationsStore(session), events)

    async def report_ready(events: Sequence[Envelope[ReportGenerated]], session: AsyncSession) -> None:
        await notifications.announce_reports(SqlNotificationsStore(session), events, reports_to=reports_to)

    async def report_failed(events: Sequence[Envelope[ReportFailed]], session: AsyncSession) -> None:
        await notifications.announce_report_failures(SqlNotificationsStore(session), events, reports_to=reports_to)

    return [
        Subscription.to(OrderCreated, batch_handler=confirm_orders),
        Subscription.to(OrderCancelled, batch_handler=notify_cancellations),
        Subscription.to(ReportGenerated, batch_handler=report_ready),
        Subscription.to(ReportFailed, batch_handler=report_failed),
    ]
