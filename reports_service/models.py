"""Tables of the reports database."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Identity,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)

from shared.db import make_metadata
from shared.messaging.consumer import define_processed_events_table
from shared.messaging.outbox import define_outbox_table

metadata = make_metadata()

# What the service knows of each order, from order.created (event-carried state).
order_facts = Table(
    "order_facts",
    metadata,
    Column("order_id", Uuid, primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("count_product", Integer, nullable=False),
    Column("total_amount", Numeric(14, 2), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # set by order.cancelled: the fact stays as a tombstone, so an order.created that comes later
    # (another queue, a retry, a replay) conflicts with it and adds nothing; no report counts it
    Column("cancelled_at", DateTime(timezone=True)),
    Index("ix_order_facts_created_at", "created_at"),
)

# The original lab's table, unchanged: one row per order of a day.
reports = Table(
    "reports",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("report_at", Date, nullable=False),
    Column("order_id", Uuid, nullable=False),
    Column("count_product", Integer, nullable=False),
    UniqueConstraint("report_at", "order_id"),
)

# Days whose report exists: a late order of such a day joins its report on arrival.
reported_days = Table(
    "reported_days",
    metadata,
    Column("report_at", Date, primary_key=True),
    Column("generated_at", DateTime(timezone=True), nullable=False),
)

TASK_STATES = ("scheduled", "running", "retrying", "succeeded", "failed", "cancelled")
UNFINISHED = ("scheduled", "running", "retrying")

report_tasks = Table(
    "report_tasks",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("report_date", Date, nullable=False),
    Column("status", String(16), nullable=False),
    Column("requested_by", String(255), nullable=False),
    Column("scheduled_for", DateTime(timezone=True)),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("rows", Integer),
    Column("total_products", BigInteger),
    Column("error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("backfill_id", Uuid),  # the backfill that requested it
    CheckConstraint("status IN ('scheduled', 'running', 'retrying', 'succeeded', 'failed', 'cancelled')", name="status_known"),
    Index("ix_report_tasks_report_date", "report_date"),
    Index("ix_report_tasks_backfill_id", "backfill_id", postgresql_where=text("backfill_id IS NOT NULL")),
)

outbox = define_outbox_table(metadata)
processed_events = define_processed_events_table(metadata)
