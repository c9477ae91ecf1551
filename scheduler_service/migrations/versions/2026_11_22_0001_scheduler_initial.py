"""Schedules, their runs (the fire claims), the outbox, and the default daily report schedule.

Revision ID: scheduler_0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.messaging import migration_ops

revision = "scheduler_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("cron", sa.String(255), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("routing_key", sa.String(255), nullable=False),
        sa.Column("payload", postgresql.JSONB, nullable=False, server_default="{}"),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default="true"),
        sa.Column("catch_up", sa.String(8), nullable=False, server_default="latest"),
        sa.Column("lookback_s", sa.Integer, nullable=False, server_default="86400"),
        sa.Column("next_fire_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_schedules"),
        sa.UniqueConstraint("name", name="uq_schedules_name"),
        sa.CheckConstraint("catch_up IN ('skip', 'latest', 'all')", name="ck_schedules_catch_up_known"),
    )
    op.create_index("ix_schedules_due", "schedules", ["next_fire_at"], postgresql_where=sa.text("enabled"))
    op.create_table(
        "schedule_runs",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("schedule_id", sa.Uuid, nullable=False),
        sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("event_id", sa.Uuid),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_schedule_runs"),
        sa.ForeignKeyConstraint(["schedule_id"], ["schedules.id"], name="fk_schedule_runs_schedule_id_schedules", ondelete="CASCADE"),
        sa.UniqueConstraint("schedule_id", "scheduled_for", name="uq_schedule_runs_schedule_id"),
        sa.CheckConstraint("status IN ('fired', 'skipped', 'manual')", name="ck_schedule_runs_status_known"),
    )
    migration_ops.create_outbox(op)
    # the lab's nightly report: midnight UTC, for the previous day; the ticker computes next_fire_at
    op.execute(
        "INSERT INTO schedules (id, name, cron, timezone, routing_key, payload, enabled, catch_up, lookback_s) "
        "VALUES (gen_random_uuid(), 'daily-orders-report', '0 0 * * *', 'UTC', 'report.requested', '{}', true, 'all', 604800)"
    )


def downgrade() -> None:
    migration_ops.drop_outbox(op)
    op.drop_table("schedule_runs")
    op.drop_index("ix_schedules_due", "schedules")
    op.drop_table("schedules")
