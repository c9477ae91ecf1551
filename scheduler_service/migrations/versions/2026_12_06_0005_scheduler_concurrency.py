"""Overlap policy per schedule, and what became of each run's task (learned from report.generated / report.failed).

Revision ID: scheduler_0005
Revises: scheduler_0004
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from shared.messaging import migration_ops

revision = "scheduler_0005"
down_revision = "scheduler_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("schedules", sa.Column("concurrency", sa.String(8), nullable=False, server_default="allow"))
    op.create_check_constraint(op.f("ck_schedules_concurrency_known"), "schedules", "concurrency IN ('allow', 'forbid', 'replace')")
    op.add_column("schedule_runs", sa.Column("task_report_date", sa.Date))
    op.add_column("schedule_runs", sa.Column("task_status", sa.String(16)))
    op.add_column("schedule_runs", sa.Column("task_finished_at", sa.DateTime(timezone=True)))
    op.create_index(
        op.f("ix_schedule_runs_unfinished"),
        "schedule_runs",
        ["schedule_id"],
        postgresql_where=sa.text("task_id IS NOT NULL AND task_status IS NULL"),
    )
    op.create_index(op.f("ix_schedule_runs_task_id"), "schedule_runs", ["task_id"], postgresql_where=sa.text("task_id IS NOT NULL"))
    migration_ops.create_processed_events(op)


def downgrade() -> None:
    migration_ops.drop_processed_events(op)
    op.drop_index(op.f("ix_schedule_runs_task_id"), table_name="schedule_runs")
    op.drop_index(op.f("ix_schedule_runs_unfinished"), table_name="schedule_runs")
    op.drop_column("schedule_runs", "task_finished_at")
    op.drop_column("schedule_runs", "task_status")
    op.drop_column("schedule_runs", "task_report_date")
    op.drop_constraint(op.f("ck_schedules_concurrency_known"), "schedules", type_="check")
    op.drop_column("schedules", "concurrency")
