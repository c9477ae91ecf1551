"""HTTP routes of the notifications service."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from notifications_service import views
from notifications_service.schemas import NotificationOut, NotificationPage, Status
from shared.web.caller import current_caller
from shared.web.deps import RuntimeDep, SessionDep
from shared.web.errors import ServiceError
from shared.web.params import NO_NUL, within_depth

router = APIRouter(prefix="/notifications", tags=["notifications"])


@router.get("", response_model=NotificationPage)
async def search(
    session: SessionDep,
    runtime: RuntimeDep,
    recipient: Annotated[str | None, Query(max_length=320, pattern=NO_NUL)] = None,
    order_id: uuid.UUID | None = None,
    status: Status | None = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    count: Annotated[int, Query(ge=1, le=500)] = 50,
) -> NotificationPage:
    within_depth(page, count, runtime.settings.list_depth_limit)
    return await views.search(
        session,
        recipient=recipient,
        order_id=order_id,
        status=status,
        page=page,
        count=count,
        count_limit=runtime.settings.list_count_limit,
        owner=current_caller().owner,
    )


@router.get(
    "/{notification_id}", response_model=NotificationOut, responses={404: {"description": "No such notification, or another client's"}}
)
async def get(notification_id: uuid.UUID, session: SessionDep) -> NotificationOut:
    found = await views.get(session, notification_id, owner=current_caller().owner)
    if found is None:
        raise ServiceError(404, f"notification {notification_id} not found")
    return found
