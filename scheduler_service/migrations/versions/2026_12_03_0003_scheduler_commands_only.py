"""Schedules publish only the scheduler's commands: rows that break the rule are disabled, with the reason;
a schedule's failures are counted (it backs off) and runs may be ``failed``.

The rule is written out here as it stood when this migration was made (``report.requested``
with at most ``days_before``, a whole number from 0 to 366), so that the migration does
the same thing whatever the catalogue in the code later becomes.

Revision ID: scheduler_0003
Revises: scheduler_0002
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "scheduler_0003"
down_revision = "scheduler_0002"
branch_labels = None
depends_on = None

DISABLE = """
UPDATE schedules SET enabled = false, next_fire_at = NULL, updated_at = now(), disabled_reason = reason.text
FROM (
    SELECT id, CASE
        WHEN routing_key <> 'report.requested' THEN
            'routing key ' || quote_literal(routing_key) || ' is not a command the scheduler may publish; it publishes report.requested'
        WHEN jsonb_typeof(payload) <> 'object' OR payload - 'days_before' <> '{}'::jsonb THEN
            'payload of report.requested takes only days_before; it had ' || payload::text
        WHEN payload ? 'days_before' AND NOT (
            jsonb_typeof(payload -> 'days_before') = 'number'
            AND (payload ->> 'days_before') ~ '^[0-9]+$'
            AND (payload ->> 'days_before')::numeric <= 366
        ) THEN 'payload of report.requested: days_before must be a whole number from 0 to 366'
    END AS text
    FROM schedules
) AS reason
WHERE schedules.id = reason.id AND reason.text IS NOT NULL
"""


def upgrade() -> None:
    op.add_column("schedules", sa.Column("failures", sa.Integer, nullable=False, server_default="0"))
    op.add_column("schedules", sa.Column("last_error", sa.Text))
    op.add_column("schedules", sa.Column("disabled_reason", sa.Text))
    # the first migration's name went through the naming convention a second time
    op.drop_constraint(op.f("ck_schedule_runs_ck_schedule_runs_status_known"), "schedule_runs", type_="check")
    op.create_check_constraint(op.f("ck_schedule_runs_status_known"), "schedule_runs", "status IN ('fired', 'skipped', 'manual', 'failed')")
    op.execute(DISABLE)


def downgrade() -> None:
    op.execute("DELETE FROM schedule_runs WHERE status = 'failed'")
    op.drop_constraint(op.f("ck_schedule_runs_status_known"), "schedule_runs", type_="check")
    op.create_check_constraint(
        op.f("ck_schedule_runs_ck_schedule_runs_status_known"), "schedule_runs", "status IN ('fired', 'skipped', 'manual')"
    )
    op.drop_column("schedules", "disabled_reason")
    op.drop_column("schedules", "last_error")
    op.drop_column("schedules", "failures")
