"""Tables of the notifications database."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, DateTime, Index, Integer, String, Table, Text, Uuid, func, text

from shared.db import make_metadata
from shared.messaging.consumer import define_processed_events_table

metadata = make_metadata()

notifications = Table(
    "notifications",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("event_id", Uuid, nullable=False, unique=True),  # one notification per event, whatever is redelivered
    Column("kind", String(32), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("body_text", Text, nullable=False),
    Column("body_html", Text, nullable=False),
    Column("order_id", Uuid),
    # the API client whose order it is (NULL for report notices): a shop reads only its own
    Column("client", String(64)),
    Column("status", String(8), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True)),
    # W3C trace context of the event's consumer span, while tracing: the send's span is its child
    Column("traceparent", String(55)),
    # dropped: a confirmation still pending when its order was cancelled, never to be sent
    CheckConstraint("status IN ('pending', 'sent', 'failed', 'dropped')", name="status_known"),
    Index("ix_notifications_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
    Index("ix_notifications_recipient", "recipient"),
    Index("ix_notifications_order_id", "order_id"),
    Index("ix_notifications_client_created_at", "client", "created_at"),
)

# Orders cancelled, whether or not their order.created has come: a later one asks for no confirmation.
cancelled_orders = Table(
    "cancelled_orders",
    metadata,
    Column("order_id", Uuid, primary_key=True),
    Column("cancelled_at", DateTime(timezone=True), nullable=False),
)

processed_events = define_processed_events_table(metadata)
