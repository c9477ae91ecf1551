"""The orders database as placing an order writes to it: one statement on the request path.

The order, its items, its idempotency key and its outbox row go in as one statement (atomic on
its own, one round trip instead of five); the outbox row's values are ``outbox_row``'s, as
every other service's are.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

import asyncpg

from orders_service.schemas import OrderOut
from orders_service.views import fetch_order, fetch_orders_of_day
from shared.domain_errors import Conflict


@dataclass(frozen=True, slots=True)
class KeyUse:
    """An Idempotency-Key as one client sends it, with the fingerprint of the request's body."""

    client: str
    key: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class PriorUse:
    """What a key did the first time: the order it made and the fingerprint of that request."""

    order_id: uuid.UUID
    fingerprint: str


class OrdersStore(Protocol):
    async def place(self, order: OrderOut, event_row: dict[str, Any], key: KeyUse | None) -> PriorUse | None:
        """Store the order, its items, its key and its event row at once; when this client used the
        key before, store nothing and answer that use. A key another request holds now: ``Conflict``."""

    async def get(self, order_id: uuid.UUID) -> OrderOut | None: ...

    async def cancel(
        self, order_id: uuid.UUID, owner: str | None, reason: str | None, at: datetime, event_row: Callable[[OrderOut], dict[str, Any]]
    ) -> tuple[OrderOut | None, bool]:
        """Mark a placed order (``owner``'s, when given) cancelled and store ``event_row`` of it in the
        same transaction. Answers the order and whether this call cancelled it; (None, False) when
        there is no such order for ``owner``."""

    async def orders_of_day(self, day: date, *, tz: str) -> list[OrderOut]:
        """Every order created on ``day`` in the time zone ``tz``, oldest first."""

    async def add_events(self, rows: Sequence[dict[str, Any]]) -> None:
        """Outbox rows (``outbox_row``'s) in one transaction; a row of the same event id is sent again."""


INSERT_ORDER = """
WITH new_order AS (
    INSERT INTO orders (id, customer_email, currency, count_product, total_amount, created_at, client)
    VALUES ($1, $2, $3, $4, $5, $6, $19)
), new_items AS (
    INSERT INTO order_items (order_id, position, sku, quantity, unit_price)
    SELECT $1, item.position, item.sku, item.quantity, item.unit_price
    FROM unnest($7::int[], $8::text[], $9::int[], $10::numeric[]) AS item(position, sku, quantity, unit_price)
), new_key AS (
    INSERT INTO idempotency_keys (client, key, request_hash, order_id)
    SELECT $20::text, $11::text, $12::text, $1 WHERE $11::text IS NOT NULL
)
INSERT INTO outbox (event_id, routing_key, event_type, body, correlation_id, occurred_at)
VALUES ($13, $14, $15, $16, $17, $18)
"""

# A key is serialised with a transaction-scoped advisory lock: a second request while the first
# is in flight is refused at once, and nothing is left behind if a request dies.
LOCK_KEY = "SELECT pg_try_advisory_xact_lock(hashtextextended($1 || E'\\n' || $2, 0))"
FIND_KEY = "SELECT request_hash, order_id FROM idempotency_keys WHERE client = $1 AND key = $2"
# only a placed order changes, so of two cancellations at once one cancels and the other finds it cancelled
CANCEL_ORDER = """
UPDATE orders SET status = 'cancelled', cancelled_at = $3, cancel_reason = $4
WHERE id = $1 AND ($2::text IS NULL OR client = $2) AND status = 'placed'
RETURNING id
"""
# an outbox row (``outbox_row``'s values, in this order) on its own
EVENT_COLUMNS = ("event_id", "routing_key", "event_type", "body", "correlation_id", "occurred_at")
INSERT_EVENT = f"INSERT INTO outbox ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join(f'${n}' for n in range(1, len(EVENT_COLUMNS) + 1))})"
# an event still in the outbox (sent, not yet pruned) is made due again rather than written twice
UPSERT_EVENT = (
    f"{INSERT_EVENT} ON CONFLICT (event_id) DO UPDATE "
    "SET published_at = NULL, available_at = now(), attempts = 0, last_error = NULL, body = EXCLUDED.body"
)


class SqlOrdersStore:
    """``OrdersStore`` on asyncpg's pool: each ``place`` is its own transaction."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def place(self, order: OrderOut, event_row: dict[str, Any], key: KeyUse | None) -> PriorUse | None:
        arguments = (
            order.id,
            order.customer_email,
            order.currency,
            order.count_product,
            order.total_amount,
            order.created_at,
            list(range(len(order.items))),
            [item.sku for item in order.items],
            [item.quantity for item in order.items],
            [item.unit_price for item in order.items],
            key.key if key else None,
            key.fingerprint if key else None,
            event_row["event_id"],
            event_row["routing_key"],
            event_row["event_type"],
            event_row["body"],
            event_row["correlation_id"],
            event_row["occurred_at"],
            order.client,
            key.client if key else None,
        )
        async with self._pool.acquire() as connection:
            if key is None:
                await connection.execute(INSERT_ORDER, *arguments)
                return None
            async with connection.transaction():
                if not await connection.fetchval(LOCK_KEY, key.client, key.key):
                    raise Conflict(
                        "a request with this Idempotency-Key is still in progress; retry later",
                        code="idempotency_in_progress",
                        retry_after_s=1,
                    )
                existing = await connection.fetchrow(FIND_KEY, key.client, key.key)
                if existing is not None:
                    return PriorUse(existing["order_id"], existing["request_hash"])
                await connection.execute(INSERT_ORDER, *arguments)
                return None

    async def get(self, order_id: uuid.UUID) -> OrderOut | None:
        async with self._pool.acquire() as connection:
            return await fetch_order(connection, order_id)

    async def cancel(
        self, order_id: uuid.UUID, owner: str | None, reason: str | None, at: datetime, event_row: Callable[[OrderOut], dict[str, Any]]
    ) -> tuple[OrderOut | None, bool]:
        async with self._pool.acquire() as connection, connection.transaction():
            cancelled = await connection.fetchval(CANCEL_ORDER, order_id, owner, at, reason)
            order = await fetch_order(connection, order_id, owner)
            if cancelled is None or order is None:
                return order, False
            row = event_row(order)
            await connection.execute(INSERT_EVENT, *(row[column] for column in EVENT_COLUMNS))
            return order, True

    async def orders_of_day(self, day: date, *, tz: str) -> list[OrderOut]:
        async with self._pool.acquire() as connection:
            return await fetch_orders_of_day(connection, day, tz)

    async def add_events(self, rows: Sequence[dict[str, Any]]) -> None:
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.executemany(UPSERT_EVENT, [tuple(row[column] for column in EVENT_COLUMNS) for row in rows])
