"""What the reports service does per event: the one registry of its subscriptions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from reports_service import reports
from reports_service.store import SqlReportsStore
from shared import metrics
from shared.contracts.orders import OrderCancelled, OrderCreated
from shared.contracts.reports import ReportBackfillRequested, ReportCancelRequested, ReportRequested
from shared.db import SessionFactory
from shared.messaging.consumer import Subscription
from shared.messaging.envelope import Envelope
from shared.messaging.outbox import Outbox


def build_subscriptions(*, session_factory: SessionFactory, outbox: Outbox, tz: str, max_attempts: int) -> list[Subscription]:
    """Each handler runs its use case on the consumer's unit of work (its session's transaction),
    except the task's ``running`` mark, which commits in one of its own first (``reports.start_task``)."""

    async def store_order_facts(events: Sequence[Envelope[OrderCreated]], session: AsyncSession) -> None:
        await reports.ingest_orders(SqlReportsStore(session), events, tz=tz)
        now = datetime.now(UTC)
        for event in events:
            metrics.REPORT_FACT_LAG.observe((now - event.occurred_at).total_seconds())

    async def cancel_orders(events: Sequence[Envelope[OrderCancelled]], session: AsyncSession) -> None:
        await reports.cancel_orders(SqlReportsStore(session), events, tz=tz)

    async def generate(event: Envelope[ReportRequested], session: AsyncSession) -> None:
        async with session_factory() as starting, starting.begin():
            started = await reports.start_task(SqlReportsStore(starting), event.data)
        if started:
            await reports.generate_report(SqlReportsStore(session), outbox.within(session), event.data, tz=tz)

    async def cancel(event: Envelope[ReportCancelRequested], session: AsyncSession) -> None:
        await reports.cancel_task(SqlReportsStore(session), event.data)

    async def retry_later(event: Envelope[ReportRequested], error: str, attempts: int, retry_in_s: float, session: AsyncSession) -> None:
        await reports.retry_later(
            SqlReportsStore(session), event.data, error, attempts=attempts, max_attempts=max_attempts, retry_in_s=retry_in_s
        )

    async def record_failure(event: Envelope[ReportRequested], error: str, session: AsyncSession) -> None:
        await reports.record_failure(SqlReportsStore(session), outbox.within(session), event.data, error)

    return [
        Subscription.to(OrderCreated, batch_handler=store_order_facts),
        Subscription.to(OrderCancelled, batch_handler=cancel_orders),
        Subscription.to(ReportRequested, handler=generate, on_retry=retry_later, on_give_up=record_failure, alone=True),
        # a backfill's days: the same work, behind everything else
        Subscription.to(ReportBackfillRequested, handler=generate, on_retry=retry_later, on_give_up=record_failure, background=True),
        Subscription.to(ReportCancelRequested, handler=cancel),
    ]
