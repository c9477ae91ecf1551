"""Tables of the scheduler database."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from shared.db import make_metadata
from shared.messaging.consumer import define_processed_events_table
from shared.messaging.outbox import define_outbox_table

metadata = make_metadata()

schedules = Table(
    "schedules",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("cron", String(255), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("routing_key", String(255), nullable=False),
    Column("payload", JSONB, nullable=False, server_default="{}"),
    Column("enabled", Boolean, nullable=False, server_default="true"),
    Column("catch_up", String(8), nullable=False, server_default="latest"),
    Column("lookback_s", Integer, nullable=False, server_default="86400"),
    # an instant whose previous task is unfinished: allow it, forbid it (skipped) or replace the previous (cancelled)
    Column("concurrency", String(8), nullable=False, server_default="allow"),
    # the next instant (UTC) this schedule is due; NULL until the ticker first computes it
    Column("next_fire_at", DateTime(timezone=True)),
    # fires in a row that failed, and why the last one did; the schedule backs off meanwhile
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
    # why the suite disabled it (it broke a rule); cleared when an operator enables it again
    Column("disabled_reason", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("catch_up IN ('skip', 'latest', 'all')", name="catch_up_known"),
    CheckConstraint("concurrency IN ('allow', 'forbid', 'replace')", name="concurrency_known"),
    Index("ix_schedules_due", "next_fire_at", postgresql_where="enabled"),
)

# One row per instant of a schedule: the unique key is the claim that makes a fire happen once.
schedule_runs = Table(
    "schedule_runs",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("schedule_id", Uuid, ForeignKey("schedules.id", ondelete="CASCADE"), nullable=False),
    Column("scheduled_for", DateTime(timezone=True), nullable=False),
    Column("status", String(8), nullable=False),
    Column("reason", Text),
    Column("event_id", Uuid),
    Column("task_id", Uuid),  # the task a fired command asked for (report.requested's task_id)
    # how that task ended (succeeded, failed, cancelled), from report.generated / report.failed; NULL: unfinished
    Column("task_report_date", Date),  # the day that task reports on (what a cancellation names)
    Column("task_status", String(16)),
    Column("task_finished_at", DateTime(timezone=True)),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("schedule_id", "scheduled_for"),
    CheckConstraint("status IN ('fired', 'skipped', 'manual', 'failed')", name="status_known"),
    Index("ix_schedule_runs_unfinished", "schedule_id", postgresql_where=text("task_id IS NOT NULL AND task_status IS NULL")),
    Index("ix_schedule_runs_task_id", "task_id", postgresql_where=text("task_id IS NOT NULL")),
)

outbox = define_outbox_table(metadata)
processed_events = define_processed_events_table(metadata)
