"""What the notifications service does per event: the one registry of its subscriptions."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from notifications_service import notifications, templates
from shared.contracts.orders import OrderCreated
from shared.contracts.reports import ReportFailed, ReportGenerated
from shared.messaging.consumer import Subscription
from shared.messaging.envelope import Envelope


def build_subscriptions(*, reports_to: str | None) -> list[Subscription]:
    async def confirm_orders(events: Sequence[Envelope[OrderCreated]], session: AsyncSession) -> None:
        await notifications.record(
            session,
            [
                notifications.row(
                    e.id, "order_confirmation", e.data.customer_email, templates.order_confirmation(e.data), e.data.order_id, e.data.client
                )
                for e in events
            ],
        )

    async def report_ready(events: Sequence[Envelope[ReportGenerated]], session: AsyncSession) -> None:
        if reports_to:
            await notifications.record(
                session, [notifications.row(e.id, "report_generated", reports_to, templates.report_generated(e.data)) for e in events]
            )

    async def report_failed(events: Sequence[Envelope[ReportFailed]], session: AsyncSession) -> None:
        if reports_to:
            await notifications.record(
                session, [notifications.row(e.id, "report_failed", reports_to, templates.report_failed(e.data)) for e in events]
            )

    return [
        Subscription.to(OrderCreated, batch_handler=confirm_orders),
        Subscription.to(ReportGenerated, batch_handler=report_ready),
        Subscription.to(ReportFailed, batch_handler=report_failed),
    ]
