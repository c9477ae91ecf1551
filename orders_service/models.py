"""Tables of the orders database."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Uuid,
    func,
)

from shared.db import make_metadata
from shared.messaging.outbox import define_outbox_table

metadata = make_metadata()

orders = Table(
    "orders",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("customer_email", String(320), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("count_product", Integer, nullable=False),
    Column("total_amount", Numeric(14, 2), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # the API client that placed it (the gateway's authenticated name); NULL for orders from before clients
    Column("client", String(64)),
    # placed, then perhaps cancelled (POST /orders/{id}/cancel, which publishes order.cancelled)
    Column("status", String(16), nullable=False, server_default="placed"),
    Column("cancelled_at", DateTime(timezone=True)),
    Column("cancel_reason", String(500)),
    CheckConstraint("status IN ('placed', 'cancelled')", name="status_known"),
    Index("ix_orders_created_at_id", "created_at", "id"),
    Index("ix_orders_client_created_at_id", "client", "created_at", "id"),
)

order_items = Table(
    "order_items",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("order_id", Uuid, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("sku", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", Numeric(12, 2), nullable=False),
    CheckConstraint("quantity BETWEEN 1 AND 10000", name="quantity_range"),
    CheckConstraint("unit_price >= 0", name="unit_price_non_negative"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    # keys are each client's own: two clients may send the same key for different orders
    Column("client", String(64), primary_key=True, server_default=""),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("order_id", Uuid, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now(), index=True),
)

outbox = define_outbox_table(metadata)
