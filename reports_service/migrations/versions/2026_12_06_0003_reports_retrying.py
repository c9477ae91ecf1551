"""A task waiting between attempts is ``retrying``, with the time of its next attempt.

Revision ID: reports_0003
Revises: reports_0002
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "reports_0003"
down_revision = "reports_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("report_tasks", sa.Column("next_attempt_at", sa.DateTime(timezone=True)))
    # the first migration's name went through the naming convention a second time
    op.drop_constraint(op.f("ck_report_tasks_ck_report_tasks_status_known"), "report_tasks", type_="check")
    op.create_check_constraint(
        op.f("ck_report_tasks_status_known"), "report_tasks", "status IN ('scheduled', 'running', 'retrying', 'succeeded', 'failed')"
    )


def downgrade() -> None:
    op.execute("UPDATE report_tasks SET status = 'scheduled' WHERE status = 'retrying'")
    op.drop_constraint(op.f("ck_report_tasks_status_known"), "report_tasks", type_="check")
    op.create_check_constraint(
        op.f("ck_report_tasks_ck_report_tasks_status_known"), "report_tasks", "status IN ('scheduled', 'running', 'succeeded', 'failed')"
    )
    op.drop_column("report_tasks", "next_attempt_at")
