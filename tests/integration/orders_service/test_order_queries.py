"""The read queries' plans: an order's items are read once per order shown, never for orders a page skips."""

from __future__ import annotations

import json

import asyncpg

from orders_service.views import SELECT_ORDER, SELECT_PAGE
from shared.db import asyncpg_dsn
from shared.testing.fixtures import plan_nodes

ORDERS = 300  # a page deep into them skips far more orders than it shows
PAGE = 10
COUNT_LIMIT = 1001


async def order_rows_read(connection: asyncpg.Connection, query: str, *arguments: object) -> int:
    """Rows the plan's scans of orders produced, summed over every scan of the table."""
    explained = await connection.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {query}", *arguments)
    plan = json.loads(explained)[0]["Plan"]
    return sum(node["Actual Rows"] * node["Actual Loops"] for node in plan_nodes(plan) if node.get("Relation Name") == "orders")


async def item_reads(connection: asyncpg.Connection, query: str, *arguments: object) -> int:
    """How many times the plan scanned order_items (its loops, summed over every scan of the table)."""
    explained = await connection.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {query}", *arguments)
    plan = json.loads(explained)[0]["Plan"]
    return sum(node["Actual Loops"] for node in plan_nodes(plan) if node.get("Relation Name") == "order_items")


async def test_a_deep_page_reads_the_items_of_its_own_orders_once_each(orders_db: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(orders_db))
    try:
        await connection.execute(
            """
            INSERT INTO orders (id, customer_email, currency, count_product, total_amount, created_at)
            SELECT gen_random_uuid(), 'ada@example.com', 'EUR', 3, 26.10, now() - n * interval '1 minute'
            FROM generate_series(1, $1) n
            """,
            ORDERS,
        )
        await connection.execute(
            """
            INSERT INTO order_items (order_id, position, sku, quantity, unit_price)
            SELECT o.id, p, 'SKU-' || p, 1 + p, 12.50 FROM orders o, generate_series(0, 1) p
            """
        )
        await connection.execute("ANALYZE orders, order_items")

        deep = await connection.fetch(SELECT_PAGE, None, None, PAGE, ORDERS - 2 * PAGE, COUNT_LIMIT, None)
        assert len(deep) == PAGE
        assert all(row["skus"] == ["SKU-0", "SKU-1"] and row["quantities"] == [1, 2] for row in deep)
        assert await item_reads(connection, SELECT_PAGE, None, None, PAGE, ORDERS - 2 * PAGE, COUNT_LIMIT, None) == PAGE
        assert await item_reads(connection, SELECT_PAGE, None, None, PAGE, 0, COUNT_LIMIT, None) == PAGE

        one = deep[0]["id"]
        assert await item_reads(connection, SELECT_ORDER, one) == 1

        # the total stops counting at its limit: a page of 10 reads 10 orders and counts 101, not all 300
        capped = await connection.fetch(SELECT_PAGE, None, None, PAGE, 0, 101, None)
        assert capped[0]["total"] == 101
        assert await order_rows_read(connection, SELECT_PAGE, None, None, PAGE, 0, 101, None) <= 101 + PAGE
    finally:
        await connection.close()
