"""Use cases of the orders service: place an order (idempotently), cancel it, publish a day's
orders again, and purge old idempotency keys."""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from sqlalchemy import func

from orders_service.models import idempotency_keys
from orders_service.schemas import OrderIn, OrderItemOut, OrderOut
from orders_service.store import KeyUse, OrdersStore
from shared.contracts.orders import OrderCancelled, OrderCreated, OrderItemData
from shared.db import SessionFactory
from shared.domain_errors import InvalidRequest, NotFound
from shared.messaging.envelope import Envelope
from shared.messaging.outbox import new_event, outbox_row
from shared.messaging.topology import ORDER_CANCELLED, ORDER_CREATED

log = logging.getLogger(__name__)

SOURCE = "orders_service"
ORDER_EVENTS = uuid.UUID("5b0c3f5e-2f4a-4c8e-9a51-0d6f2b7f0a11")  # namespace of order.created ids
CANCELLATION_EVENTS = uuid.UUID("0c7e2a91-8d64-4f3b-b1a5-6e9d2c4f8a37")  # namespace of order.cancelled ids
CLOCK_SKEW = timedelta(minutes=5)
CENT = Decimal("0.01")
# what orders.total_amount (numeric(14, 2)) holds
MAX_TOTAL = Decimal("999999999999.99")


def request_fingerprint(order: OrderIn) -> str:
    """A hash of the request's meaning (not its bytes): key order and spacing do not matter."""
    canonical = orjson.dumps(order.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


async def place_order(
    store: OrdersStore, order: OrderIn, idempotency_key: str | None, *, client: str | None = None, now: datetime | None = None
) -> tuple[OrderOut, bool]:
    """Store the order, its items, its key and its ``order.created`` event atomically.

    ``client`` is the authenticated client placing it: the order records it, and its
    idempotency keys are its own (two clients may use the same key for different orders).
    Returns the order and whether it was created now (False: a replay of the same key).
    """
    now = now or datetime.now(UTC)
    try:
        created_at = (order.created_at or now).astimezone(UTC)
    except OverflowError:
        raise InvalidRequest("created_at: must be within the years 1 to 9999 in UTC") from None
    if created_at > now + CLOCK_SKEW:
        raise InvalidRequest("created_at: must not be in the future")
    placed = _new_order(order, created_at, client)
    if placed.total_amount > MAX_TOTAL:
        raise InvalidRequest(f"items: the order's total {placed.total_amount} is more than {MAX_TOTAL:,}")
    event = order_created(placed)
    key = KeyUse(client or "", idempotency_key, request_fingerprint(order)) if idempotency_key else None
    prior = await store.place(placed, outbox_row(event), key)
    if prior is None:
        return placed, True
    assert key is not None
    if prior.fingerprint != key.fingerprint:
        raise InvalidRequest("this Idempotency-Key was already used with a different request body", code="idempotency_key_reused")
    found = await store.get(prior.order_id)
    assert found is not None, "an idempotency key always points at its order"
    return found, False


def order_event_id(order_id: uuid.UUID) -> uuid.UUID:
    """The id of an order's ``order.created``, derived from the order: the event published again
    (``republish_day``) is the same event, which every consumer's idempotency absorbs."""
    return uuid.uuid5(ORDER_EVENTS, str(order_id))


def order_created(order: OrderOut) -> Envelope[Any]:
    data = OrderCreated(
        order_id=order.id,
        customer_email=order.customer_email,
        created_at=order.created_at,
        items=[OrderItemData(sku=i.sku, quantity=i.quantity, unit_price=i.unit_price) for i in order.items],
        count_product=order.count_product,
        total_amount=order.total_amount,
        currency=order.currency,
        client=order.client,
    )
    return new_event(ORDER_CREATED, SOURCE, data, event_id=order_event_id(order.id))


async def cancel_order(
    store: OrdersStore, order_id: uuid.UUID, reason: str | None, *, owner: str | None = None, now: datetime | None = None
) -> tuple[OrderOut, bool]:
    """The order becomes ``cancelled`` and ``order.cancelled`` goes into the outbox in the same
    transaction. ``owner``: a shop cancels only its own orders (another's is not found). Cancelling
    again answers the first cancellation, unchanged; returns the order and whether this call cancelled it."""
    order, cancelled = await store.cancel(
        order_id, owner, reason, now or datetime.now(UTC), lambda found: outbox_row(order_cancelled(found))
    )
    if order is None:
        raise NotFound(f"order {order_id} not found")
    if cancelled:
        log.info("order cancelled", extra={"order_id": str(order_id)})
    return order, cancelled


def order_cancelled(order: OrderOut) -> Envelope[Any]:
    """``order.cancelled`` of a cancelled order; its id derived from the order, as ``order.created``'s is."""
    assert order.cancelled_at is not None, "only a cancelled order has a cancellation"
    data = OrderCancelled(
        order_id=order.id,
        customer_email=order.customer_email,
        created_at=order.created_at,
        count_product=order.count_product,
        total_amount=order.total_amount,
        currency=order.currency,
        cancelled_at=order.cancelled_at,
        reason=order.cancel_reason,
        client=order.client,
    )
    return new_event(ORDER_CANCELLED, SOURCE, data, event_id=uuid.uuid5(CANCELLATION_EVENTS, str(order.id)))


async def republish_day(store: OrdersStore, day: date, *, tz: str, now: datetime | None = None) -> int:
    """``order.created`` of every order of ``day`` (local to ``tz``) into the outbox again, and
    ``order.cancelled`` after it for the cancelled ones, for the consumers that missed some (a
    reconciliation found the day's report short); how many orders."""
    zone = time_zone(tz)
    today = (now or datetime.now(UTC)).astimezone(zone).date()
    if day > today:
        raise InvalidRequest(f"day: {day} is in the future (today is {today} in {tz})")
    placed = await store.orders_of_day(day, tz=tz)
    rows = [outbox_row(order_created(order)) for order in placed]
    rows += [outbox_row(order_cancelled(order)) for order in placed if order.status == "cancelled"]
    await store.add_events(rows)
    log.info("order.created published again", extra={"day": day.isoformat(), "tz": tz, "orders": len(placed)})
    return len(placed)


def time_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; ``InvalidRequest`` naming it when there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidRequest(f"tz: {name!r} is not an IANA time zone (e.g. UTC, Europe/Kyiv)") from None


def _new_order(order: OrderIn, created_at: datetime, client: str | None) -> OrderOut:
    items = [OrderItemOut(sku=item.sku, quantity=item.quantity, unit_price=item.unit_price) for item in order.items]
    return OrderOut(
        id=uuid.uuid4(),
        customer_email=str(order.customer_email),
        currency=order.currency,
        items=items,
        count_product=sum(item.quantity for item in items),
        total_amount=sum((item.unit_price * item.quantity for item in items), Decimal(0)).quantize(CENT),
        created_at=created_at,
        client=client,
    )


async def purge_expired_keys(session_factory: SessionFactory, ttl: timedelta) -> int:
    """Keys older than the TTL are forgotten; the orders they made stay."""
    async with session_factory() as session, session.begin():
        result = await session.execute(idempotency_keys.delete().where(idempotency_keys.c.created_at < func.now() - ttl))
    purged = int(getattr(result, "rowcount", 0) or 0)
    if purged:
        log.info("purged idempotency keys", extra={"count": purged})
    return purged
