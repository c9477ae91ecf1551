"""What the scheduler does per event: it learns how the tasks its runs started ended (the ``forbid`` and
``replace`` policies read it), from the reports service's own announcements, never from its database."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.contracts.reports import ReportFailed, ReportGenerated
from shared.messaging.consumer import Subscription
from shared.messaging.envelope import Envelope

TASKS_ENDED = text(
    "UPDATE schedule_runs SET task_status = :status, task_finished_at = now() "
    "WHERE task_id = ANY(CAST(:ids AS uuid[])) AND task_status IS NULL"
)


def build_subscriptions() -> list[Subscription]:
    async def succeeded(events: Sequence[Envelope[ReportGenerated]], session: AsyncSession) -> None:
        await session.execute(TASKS_ENDED, {"status": "succeeded", "ids": [event.data.task_id for event in events]})

    async def failed(events: Sequence[Envelope[ReportFailed]], session: AsyncSession) -> None:
        await session.execute(TASKS_ENDED, {"status": "failed", "ids": [event.data.task_id for event in events]})

    return [Subscription.to(ReportGenerated, batch_handler=succeeded), Subscription.to(ReportFailed, batch_handler=failed)]
