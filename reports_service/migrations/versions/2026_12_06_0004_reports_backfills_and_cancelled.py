"""Tasks of a backfill carry its id; a task can end ``cancelled``.

Revision ID: reports_0004
Revises: reports_0003
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "reports_0004"
down_revision = "reports_0003"
branch_labels = None
depends_on = None

STATES = "'scheduled', 'running', 'retrying', 'succeeded', 'failed'"


def upgrade() -> None:
    op.add_column("report_tasks", sa.Column("backfill_id", sa.Uuid))
    op.create_index(
        op.f("ix_report_tasks_backfill_id"), "report_tasks", ["backfill_id"], postgresql_where=sa.text("backfill_id IS NOT NULL")
    )
    op.drop_constraint(op.f("ck_report_tasks_status_known"), "report_tasks", type_="check")
    op.create_check_constraint(op.f("ck_report_tasks_status_known"), "report_tasks", f"status IN ({STATES}, 'cancelled')")


def downgrade() -> None:
    op.execute("UPDATE report_tasks SET status = 'failed', error = coalesce(error, 'cancelled') WHERE status = 'cancelled'")
    op.drop_constraint(op.f("ck_report_tasks_status_known"), "report_tasks", type_="check")
    op.create_check_constraint(op.f("ck_report_tasks_status_known"), "report_tasks", f"status IN ({STATES})")
    op.drop_index(op.f("ix_report_tasks_backfill_id"), table_name="report_tasks")
    op.drop_column("report_tasks", "backfill_id")
