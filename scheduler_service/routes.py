"""HTTP routes of the scheduler: parse, call a use case, map the result."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from scheduler_service import schedules, views
from scheduler_service.schemas import FiredTask, PreviewOut, RunOut, RunPage, ScheduleIn, ScheduleOut, SchedulePatch
from scheduler_service.settings import ScheduleLimits, SchedulerSettings
from scheduler_service.store import SqlSchedulesStore
from shared.runtime import ServiceRuntime
from shared.web.deps import SessionDep, get_runtime
from shared.web.params import within_depth

router = APIRouter(prefix="/schedules", tags=["schedules"])
admin_router = APIRouter(prefix="/admin/scheduler", tags=["admin"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No schedule of this name"}}

ScheduleName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]


RuntimeDep = Annotated[ServiceRuntime[SchedulerSettings], Depends(get_runtime)]


def _limits(runtime: RuntimeDep) -> ScheduleLimits:
    return runtime.settings.limits()


@router.get("", response_model=list[ScheduleOut])
async def list_schedules(session: SessionDep) -> list[ScheduleOut]:
    return await views.list_schedules(session)


@router.post(
    "",
    status_code=201,
    response_model=ScheduleOut,
    responses={409: {"description": "A schedule of this name exists, or the deployment has its most schedules"}},
)
async def create(body: ScheduleIn, session: SessionDep, runtime: RuntimeDep, response: Response) -> ScheduleOut:
    created = await schedules.create_schedule(SqlSchedulesStore(session), body, _limits(runtime))
    response.headers["Location"] = f"/schedules/{created.name}"
    return created


@router.get("/{name}", response_model=ScheduleOut, responses=NOT_FOUND)
async def get(name: ScheduleName, session: SessionDep) -> ScheduleOut:
    return await schedules.get_schedule(SqlSchedulesStore(session), name)


@router.patch("/{name}", response_model=ScheduleOut, responses=NOT_FOUND)
async def change(name: ScheduleName, patch: SchedulePatch, session: SessionDep, runtime: RuntimeDep) -> ScheduleOut:
    return await schedules.update_schedule(SqlSchedulesStore(session), name, patch, _limits(runtime))


@router.delete("/{name}", status_code=204, responses=NOT_FOUND)
async def remove(name: ScheduleName, session: SessionDep) -> Response:
    await schedules.delete_schedule(SqlSchedulesStore(session), name)
    return Response(status_code=204)


@router.post("/{name}/trigger", status_code=202, response_model=RunOut, responses=NOT_FOUND)
async def trigger(name: ScheduleName, session: SessionDep, runtime: RuntimeDep) -> RunOut:
    return await schedules.trigger(SqlSchedulesStore(session), runtime.events(session), name)


@router.get("/{name}/runs", response_model=RunPage, responses=NOT_FOUND)
async def runs(
    name: ScheduleName,
    session: SessionDep,
    runtime: RuntimeDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    count: Annotated[int, Query(ge=1, le=500)] = 50,
) -> RunPage:
    within_depth(page, count, runtime.settings.list_depth_limit)
    return await views.runs(session, name, page=page, count=count, count_limit=runtime.settings.list_count_limit)


@router.get("/{name}/preview", response_model=list[PreviewOut], responses=NOT_FOUND)
async def preview(name: ScheduleName, session: SessionDep, count: Annotated[int, Query(ge=1, le=100)] = 10) -> list[PreviewOut]:
    return await schedules.preview(SqlSchedulesStore(session), name, count)


@admin_router.get("/tasks/{task_id}", response_model=FiredTask, responses={404: {"description": "No schedule fired this task"}})
async def fired_task(task_id: uuid.UUID, session: SessionDep) -> FiredTask:
    """The schedule run that fired a report task: how ``GET /report/tasks/{id}`` shows a fired task as ``scheduled``
    before the reports service has consumed its request."""
    return await views.fired_task(session, task_id)
