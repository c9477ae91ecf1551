"""HTTP routes of the reports service; the lab's calls work unchanged."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import date, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from reports_service import reconciliation, reports, views
from reports_service.reconciliation import OrdersDays
from reports_service.schemas import (
    BackfillAccepted,
    BackfillIn,
    BackfillProgress,
    DayReconciliationOut,
    DayTask,
    DayTotals,
    ReportRow,
    ReportScheduled,
    ReportTask,
)
from reports_service.settings import ReportsSettings
from reports_service.store import SqlReportsStore
from shared.runtime import ServiceRuntime
from shared.web.deps import SessionDep, get_runtime
from shared.web.errors import ServiceError
from shared.web.params import NO_NUL, within_depth

router = APIRouter(prefix="/report", tags=["reports"])

ReportDate = Annotated[date, Query(description="YYYY-MM-DD, a day in the reports time zone")]
MAX_DAYS = 366
RuntimeDep = Annotated[ServiceRuntime[ReportsSettings], Depends(get_runtime)]


def _tz(runtime: RuntimeDep) -> str:
    return runtime.settings.timezone


@router.post("/generate", status_code=202, response_model=ReportScheduled)
async def generate(report_date: ReportDate, session: SessionDep, runtime: RuntimeDep) -> ReportScheduled:
    async with session.begin():
        task_id = await reports.request_report(SqlReportsStore(session), runtime.events(session), report_date, tz=_tz(runtime))
    return ReportScheduled(message=f"Report generation for {report_date} has been scheduled", task_id=task_id)


@router.post("/backfill", status_code=202, response_model=BackfillAccepted)
async def backfill(body: BackfillIn, session: SessionDep, runtime: RuntimeDep) -> BackfillAccepted:
    """Every day of a range (at most 366) requested in one call, behind every report a person or a
    schedule asks for; follow it with ``GET /report/backfills/{backfill_id}``."""
    async with session.begin():
        accepted = await reports.request_backfill(SqlReportsStore(session), runtime.events(session), body.first, body.last, tz=_tz(runtime))
    return BackfillAccepted(
        backfill_id=accepted.backfill_id,
        total=len(accepted.requested),
        tasks=[DayTask(report_date=day, task_id=task_id) for day, task_id in accepted.requested.items()],
        already_requested=[DayTask(report_date=day, task_id=task_id) for day, task_id in sorted(accepted.already_requested.items())],
    )


@router.get("/backfills/{backfill_id}", response_model=BackfillProgress, responses={404: {"description": "No such backfill"}})
async def backfill_progress(backfill_id: uuid.UUID, session: SessionDep) -> BackfillProgress:
    """How far a backfill got: its tasks done (succeeded, failed, cancelled) of its total."""
    found = await views.backfill_progress(session, backfill_id)
    if found is None:
        raise ServiceError(404, f"backfill {backfill_id} not found (or it requested no day)")
    return found


@router.get("/", response_model=list[ReportRow])
async def day(
    report_date: ReportDate,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
    count: Annotated[int | None, Query(ge=1, le=100_000, description="rows per page; left out: the whole day (up to a limit)")] = None,
    after: Annotated[uuid.UUID | None, Query(description="the order_id of the previous page's last row (from the Link header)")] = None,
) -> list[ReportRow]:
    """The day's rows by order id. A day of more rows than ``REPORTS_DAY_ROW_LIMIT`` is paged:
    ask with ``count`` and follow ``Link: <...>; rel="next"`` until an answer has none."""
    limit = runtime.settings.day_row_limit
    if count is not None and count > limit:
        raise ServiceError(422, f"count: must be at most {limit}")
    rows = await views.day_rows(session, report_date, after=after, limit=(count or limit) + 1)
    if len(rows) > (count or limit):
        if count is None:
            raise ServiceError(
                422,
                f"the report of {report_date} has more than {limit} rows: page through it with count= "
                f'(e.g. ?report_date={report_date}&count=1000) and follow each answer\'s Link header (rel="next")',
                code="report_too_large",
            )
        rows = rows[:count]
        response.headers["Link"] = f'</report/?report_date={report_date}&count={count}&after={rows[-1].order_id}>; rel="next"'
    return rows


def _total_headers(response: Response, total: int, exact: bool) -> None:
    """``X-Total-Count`` counts up to REPORTS_LIST_COUNT_LIMIT; ``X-Total-Count-Exact: false``
    says the count stopped there, so the total is a lower bound."""
    response.headers["X-Total-Count"] = str(total)
    response.headers["X-Total-Count-Exact"] = "true" if exact else "false"


@router.get("/all", response_model=list[ReportRow])
async def all_rows(
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    count: Annotated[int, Query(ge=1, le=1000)] = 10,
) -> list[ReportRow]:
    within_depth(page, count, runtime.settings.list_depth_limit)
    rows, total, exact = await views.all_rows(session, page=page, count=count, count_limit=runtime.settings.list_count_limit)
    _total_headers(response, total, exact)
    return rows


@router.get("/tasks", response_model=list[ReportTask])
async def tasks(
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
    requested_by: Annotated[str | None, Query(max_length=255, pattern=NO_NUL, description="api, or scheduler:<schedule name>")] = None,
    status: Annotated[Literal["scheduled", "running", "retrying", "succeeded", "failed", "cancelled"] | None, Query()] = None,
    report_date: Annotated[date | None, Query()] = None,
    backfill: Annotated[uuid.UUID | None, Query(description="the tasks of one backfill")] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    count: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> list[ReportTask]:
    """Report tasks, newest first; the total is in ``X-Total-Count`` as for ``/report/all``. With
    ``backfill``, ``X-Backfill-Done`` and ``X-Backfill-Total`` say how far that backfill got."""
    within_depth(page, count, runtime.settings.list_depth_limit)
    found, total, exact = await views.list_tasks(
        session,
        requested_by=requested_by,
        status=status,
        report_date=report_date,
        backfill=backfill,
        page=page,
        count=count,
        count_limit=runtime.settings.list_count_limit,
    )
    _total_headers(response, total, exact)
    if backfill is not None:
        progress = await views.backfill_progress(session, backfill)
        response.headers["X-Backfill-Done"] = str(progress.done if progress else 0)
        response.headers["X-Backfill-Total"] = str(progress.total if progress else 0)
    return found


@router.get(
    "/tasks/{task_id}",
    response_model=ReportTask,
    responses={404: {"description": "No such report task"}, 503: {"description": "The scheduler did not answer"}},
)
async def task(task_id: uuid.UUID, session: SessionDep, request: Request) -> ReportTask:
    """A task fired by a schedule is ``scheduled`` here as soon as the fire committed (the scheduler is asked
    until the request arrives; ``REPORTS_SCHEDULER_URL``)."""
    found = await views.task_seen_anywhere(session, request.app.state.fired_tasks, task_id)
    if found is None:
        raise ServiceError(404, f"report task {task_id} not found")
    return found


async def get_orders_days(request: Request) -> OrdersDays:
    orders: OrdersDays | None = request.app.state.orders_days
    if orders is None:
        raise ServiceError(503, "reconciliation needs REPORTS_ORDERS_URL, the orders service's address", code="not_configured")
    return orders


@router.get("/reconciliation", response_model=list[DayReconciliationOut])
async def reconciliation_days(
    session: SessionDep,
    runtime: RuntimeDep,
    orders: Annotated[OrdersDays, Depends(get_orders_days)],
    first: Annotated[date | None, Query(alias="from", description="first day, inclusive (default: 7 days before to)")] = None,
    last: Annotated[date | None, Query(alias="to", description="last day, inclusive (default: today)")] = None,
) -> list[DayReconciliationOut]:
    """Each day's report against the orders the orders service took that day: ``ok``, ``missing_orders``,
    ``extra_orders``, ``not_generated`` or ``stale`` (see docs/operations.md for the repair of each)."""
    last = last or reports.local_today(_tz(runtime))
    first = first or max(last - timedelta(days=7), date.min)
    judged = await reconciliation.reconcile(SqlReportsStore(session), orders, first, last, tz=_tz(runtime))
    return [DayReconciliationOut(**dataclasses.asdict(day)) for day in judged]


@router.get("/days", response_model=list[DayTotals])
async def days(
    session: SessionDep,
    runtime: RuntimeDep,
    first: Annotated[date | None, Query(alias="from", description="first day, inclusive (default: 30 days ago)")] = None,
    last: Annotated[date | None, Query(alias="to", description="last day, inclusive (default: today)")] = None,
) -> list[DayTotals]:
    last = last or reports.local_today(_tz(runtime))
    if first is None:
        first = last - timedelta(days=30) if last > date.min + timedelta(days=30) else date.min
    if first > last:
        raise ServiceError(422, "from must not be after to")
    if (last - first).days >= MAX_DAYS:
        raise ServiceError(422, f"at most {MAX_DAYS} days at once")
    return await views.day_totals(session, first, last)
