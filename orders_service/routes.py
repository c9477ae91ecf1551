"""HTTP routes of the orders service: parse, call a use case, map the result."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response

from orders_service import orders, views
from orders_service.schemas import CancelIn, OrderDay, OrderIn, OrderOut, OrderPage, OrderStatus, Republished
from orders_service.settings import OrdersSettings
from orders_service.store import SqlOrdersStore
from shared.runtime import ServiceRuntime
from shared.web.caller import current_caller
from shared.web.deps import get_runtime
from shared.web.errors import ServiceError
from shared.web.params import NO_NUL, within_depth

router = APIRouter(prefix="/orders", tags=["orders"])
admin_router = APIRouter(prefix="/admin/orders", tags=["admin"])
MAX_DAYS = 366
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


@router.get("/days", response_model=list[OrderDay])
async def days(
    runtime: RuntimeDep,
    first: Annotated[date | None, Query(alias="from", description="first day, inclusive (default: 30 days before to)")] = None,
    last: Annotated[date | None, Query(alias="to", description="last day, inclusive (default: today in tz)")] = None,
    tz: Annotated[str, Query(min_length=1, max_length=64, pattern=NO_NUL, description="the IANA time zone the days are in")] = "UTC",
) -> list[OrderDay]:
    """Orders and products per day, as a report of those days should count them (a shop: its own orders)."""
    zone = orders.time_zone(tz)
    last = last or datetime.now(UTC).astimezone(zone).date()
    first = first or max(last - timedelta(days=30), date.min)
    if first > last:
        raise ServiceError(422, "from must not be after to")
    if (last - first).days >= MAX_DAYS:
        raise ServiceError(422, f"at most {MAX_DAYS} days at once")
    return await views.day_counts(runtime.driver_pool, first, last, tz=tz, owner=current_caller().owner)


@admin_router.post("/republish", response_model=Republished)
async def republish(
    runtime: RuntimeDep,
    day: Annotated[date, Query(description="the day (YYYY-MM-DD) whose orders to publish again")],
    tz: Annotated[str, Query(min_length=1, max_length=64, pattern=NO_NUL, description="the IANA time zone of day")] = "UTC",
) -> Republished:
    """``order.created`` of each of the day's orders, with its original event id: the consumers that
    have it absorb the duplicate, those that missed it catch up (a report short of orders reconciles)."""
    return Republished(republished=await orders.republish_day(SqlOrdersStore(runtime.driver_pool), day, tz=tz))


@router.get("/{order_id}", response_model=OrderOut, responses={404: {"description": "No such order, or another client's"}})
async def get_order(order_id: uuid.UUID, runtime: RuntimeDep) -> Response:
    """Another client's order is 404 to a shop, exactly as an order that does not exist."""
    order = await views.get_order(runtime.driver_pool, order_id, owner=current_caller().owner)
    if order is None:
        raise ServiceError(404, f"order {order_id} not found")
    # serialised once here: returning the model would make FastAPI validate it a second time
    return Response(order.model_dump_json(), media_type="application/json")


@router.post(
    "/{order_id}/cancel",
    response_model=OrderOut,
    responses={404: {"description": "No such order, or another client's"}},
)
async def cancel_order(order_id: uuid.UUID, runtime: RuntimeDep, body: CancelIn | None = None) -> Response:
    """The order becomes ``cancelled`` and ``order.cancelled`` is published: the reports drop it from
    its day, the customer is told. Cancelling again answers the same cancellation (200)."""
    order, _ = await orders.cancel_order(
        SqlOrdersStore(runtime.driver_pool), order_id, body.reason if body else None, owner=current_caller().owner
    )
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
    status: Annotated[OrderStatus | None, Query(description="only orders in this state")] = None,
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
        status=status,
    )
    # serialised once here: returning the model would make FastAPI validate it a second time
    return Response(found.model_dump_json(), media_type="application/json")
