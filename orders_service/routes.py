"""HTTP routes of the orders service: parse, call a use case, map the result."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response

from orders_service import orders, views
from orders_service.schemas import OrderIn, OrderOut, OrderPage
from orders_service.settings import OrdersSettings
from orders_service.store import SqlOrdersStore
from shared.runtime import ServiceRuntime
from shared.web.caller import current_caller
from shared.web.deps import get_runtime
from shared.web.errors import ServiceError
from shared.web.params import within_depth

router = APIRouter(prefix="/orders", tags=["orders"])
RuntimeDep = Annotated[ServiceRuntime[OrdersSettings], Depends(get_runtime)]

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Same key and body: the original order is returned (200). Kept at least 24 hours.",
    ),
]


@router.post(
    "",
    status_code=201,
    response_model=OrderOut,
    responses={200: {"model": OrderOut, "description": "replay of an earlier request with the same Idempotency-Key"}},
)
async def create_order(body: OrderIn, runtime: RuntimeDep, idempotency_key: IdempotencyKey = None) -> Response:
    order, created = await orders.place_order(SqlOrdersStore(runtime.driver_pool), body, idempotency_key, client=current_caller().name)
    headers = {"Location": f"/orders/{order.id}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    # serialised once here: returning the model would make FastAPI validate it a second time
    return Response(order.model_dump_json(), status_code=201 if created else 200, headers=headers, media_type="application/json")


@router.get("/{order_id}", response_model=OrderOut, responses={404: {"description": "No such order, or another client's"}})
async def get_order(order_id: uuid.UUID, runtime: RuntimeDep) -> Response:
    """Another client's order is 404 to a shop, exactly as an order that does not exist."""
    order = await views.get_order(runtime.driver_pool, order_id, owner=current_caller().owner)
    if order is None:
        raise ServiceError(404, f"order {order_id} not found")
    # serialised once here: returning the model would make FastAPI validate it a second time
    return Response(order.model_dump_json(), media_type="application/json")


def _utc(value: datetime | None, name: str) -> datetime | None:
    """Query datetimes without an offset are read as UTC."""
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise ServiceError(422, f"{name}: must be within the years 1 to 9999 in UTC") from None


@router.get("", response_model=OrderPage)
async def list_orders(
    runtime: RuntimeDep,
    created_from: Annotated[datetime | None, Query(description="inclusive, RFC 3339; UTC when no offset")] = None,
    created_to: Annotated[datetime | None, Query(description="exclusive, RFC 3339; UTC when no offset")] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    count: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> Response:
    limit = runtime.settings.page_size_max
    if count > limit:
        raise ServiceError(422, f"count: must be at most {limit}")
    start, end = _utc(created_from, "created_from"), _utc(created_to, "created_to")
    if start is not None and end is not None and start > end:
        raise ServiceError(422, "created_from must not be after created_to")
    within_depth(page, count, runtime.settings.list_depth_limit)
    found = await views.list_orders(
        runtime.driver_pool,
        created_from=start,
        created_to=end,
        page=page,
        count=count,
        count_limit=runtime.settings.list_count_limit,
        owner=current_caller().owner,
    )
    # serialised once here: returning the model would make FastAPI validate it a second time
    return Response(found.model_dump_json(), media_type="application/json")
