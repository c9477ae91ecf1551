"""What the orders service answers: one order, or a page of them, each in one round trip."""

from __future__ import annotations

import uuid
from datetime import date, datetime

import asyncpg

from orders_service.schemas import OrderDay, OrderOut, OrderPage

# An order's items as three arrays (position order), aggregated in one pass over its rows through
# the index on order_items.order_id (a scalar subquery per array would read them three times);
# prices travel as text so no float touches them.
ITEMS = """
LEFT JOIN LATERAL (
    SELECT array_agg(i.sku ORDER BY i.position) AS skus,
           array_agg(i.quantity ORDER BY i.position) AS quantities,
           array_agg(i.unit_price ORDER BY i.position) AS prices
    FROM order_items i WHERE i.order_id = o.id
) items ON true
"""
ORDER_COLUMNS = (
    "o.id, o.customer_email, o.currency, o.count_product, o.total_amount, o.created_at, o.client, o.status, o.cancelled_at, o.cancel_reason"
)
ITEM_COLUMNS = "coalesce(items.skus, '{}') AS skus, coalesce(items.quantities, '{}') AS quantities, coalesce(items.prices, '{}') AS prices"

# The order and its items in one round trip; the second form finds it only for the client that placed it.
SELECT_ORDER = f"SELECT {ORDER_COLUMNS}, {ITEM_COLUMNS} FROM orders o{ITEMS}WHERE o.id = $1"
SELECT_OWN_ORDER = f"{SELECT_ORDER} AND o.client = $2"

# A page and the total in one round trip; the total is still there when the page is past the end.
# The total counts at most $5 rows: a count reads every row it counts, so an exact one over an
# unbounded range would grow with the table (a full scan of a hot table for every page viewed).
# $1/$2: created_from/created_to (NULL: unbounded), $3 limit, $4 offset. The range is written out
# twice, not shared through a CTE: a CTE read twice is materialised, and the page could no
# longer walk the (created_at, id) index backwards and stop after $3 + $4 rows. The page's
# orders are cut to $3 before their items are read: items joined before the LIMIT would be read
# for the $4 orders the OFFSET skips too.
IN_RANGE = "($1::timestamptz IS NULL OR o.created_at >= $1) AND ($2::timestamptz IS NULL OR o.created_at < $2)"
# $6: the status (NULL: any)
WITH_STATUS = "($6::text IS NULL OR o.status = $6)"
NEWEST_FIRST = "ORDER BY o.created_at DESC, o.id DESC"


def _page_statement(where: str) -> str:
    return f"""
SELECT total.n AS total, page.*
FROM (SELECT count(*) AS n FROM (SELECT FROM orders o WHERE {where} LIMIT $5) counted) total
LEFT JOIN LATERAL (
    SELECT {ORDER_COLUMNS}, {ITEM_COLUMNS}
    FROM (SELECT {ORDER_COLUMNS} FROM orders o WHERE {where} {NEWEST_FIRST} LIMIT $3 OFFSET $4) o{ITEMS}{NEWEST_FIRST}
) page ON true
"""


SELECT_PAGE = _page_statement(f"{IN_RANGE} AND {WITH_STATUS}")
# a shop's own orders ($7): its own statement, so the plan walks the (client, created_at, id) index
SELECT_OWN_PAGE = _page_statement(f"o.client = $7 AND {IN_RANGE} AND {WITH_STATUS}")


async def get_order(pool: asyncpg.Pool, order_id: uuid.UUID, *, owner: str | None = None) -> OrderOut | None:
    """The order; with ``owner``, only if that client placed it (another client's order is not found)."""
    async with pool.acquire() as connection:
        return await fetch_order(connection, order_id, owner)


async def fetch_order(connection: asyncpg.Connection, order_id: uuid.UUID, owner: str | None = None) -> OrderOut | None:
    row = await (connection.fetchrow(SELECT_ORDER, order_id) if owner is None else connection.fetchrow(SELECT_OWN_ORDER, order_id, owner))
    return None if row is None else _order_from_row(row)


# A local day of ``tz`` runs from its midnight to the next (23 or 25 hours on DST days), as the reports service counts it.
IN_DAY = "o.created_at >= ($1::date::timestamp AT TIME ZONE $2) AND o.created_at < (($1::date + 1)::timestamp AT TIME ZONE $2)"
SELECT_DAY = f"SELECT {ORDER_COLUMNS}, {ITEM_COLUMNS} FROM orders o{ITEMS}WHERE {IN_DAY} ORDER BY o.created_at, o.id"
DAY_COUNTS = """
SELECT (o.created_at AT TIME ZONE $3)::date AS day, count(*) AS orders, sum(o.count_product) AS products
FROM orders o
WHERE o.created_at >= ($1::date::timestamp AT TIME ZONE $3) AND o.created_at < (($2::date + 1)::timestamp AT TIME ZONE $3)
  AND ($4::text IS NULL OR o.client = $4) AND o.status = 'placed'
GROUP BY 1 ORDER BY 1
"""


async def fetch_orders_of_day(connection: asyncpg.Connection, day: date, tz: str) -> list[OrderOut]:
    return [_order_from_row(row) for row in await connection.fetch(SELECT_DAY, day, tz)]


async def day_counts(pool: asyncpg.Pool, first: date, last: date, *, tz: str, owner: str | None = None) -> list[OrderDay]:
    """Orders and products per local day of ``tz`` from ``first`` to ``last``; days without orders left out."""
    async with pool.acquire() as connection:
        rows = await connection.fetch(DAY_COUNTS, first, last, tz, owner)
    return [OrderDay(day=row["day"], orders=row["orders"], products=row["products"]) for row in rows]


def _order_from_row(row: asyncpg.Record) -> OrderOut:
    """Validated from plain values: pydantic's validation runs in Rust, cheaper than
    ``model_construct``, which sets each field in Python."""
    items = [
        {"sku": sku, "quantity": quantity, "unit_price": price}
        for sku, quantity, price in zip(row["skus"], row["quantities"], row["prices"], strict=True)
    ]
    return OrderOut.model_validate(
        {
            "id": row["id"],
            "customer_email": row["customer_email"],
            "currency": row["currency"],
            "items": items,
            "count_product": row["count_product"],
            "total_amount": row["total_amount"],
            "created_at": row["created_at"],
            "client": row["client"],
            "status": row["status"],
            "cancelled_at": row["cancelled_at"],
            "cancel_reason": row["cancel_reason"],
        }
    )


async def list_orders(
    pool: asyncpg.Pool,
    *,
    created_from: datetime | None,
    created_to: datetime | None,
    page: int,
    count: int,
    count_limit: int,
    owner: str | None = None,
    status: str | None = None,
) -> OrderPage:
    """Newest first; ``total`` counts the orders in the range, not only this page's, up to
    ``count_limit`` (beyond it, ``total`` is the limit and ``total_exact`` is false).
    With ``owner``, only the orders that client placed; with ``status``, only those in it."""
    arguments = (created_from, created_to, count, (page - 1) * count, count_limit + 1, status)
    async with pool.acquire() as connection:
        if owner is None:
            rows = await connection.fetch(SELECT_PAGE, *arguments)
        else:
            rows = await connection.fetch(SELECT_OWN_PAGE, *arguments, owner)
    counted = int(rows[0]["total"]) if rows else 0
    items = [_order_from_row(row) for row in rows if row["id"] is not None]
    return OrderPage.model_construct(
        items=items, total=min(counted, count_limit), total_exact=counted <= count_limit, page=page, count=count
    )
