"""Each run records the task its fire requested, so a schedule's runs link to their reports.

Revision ID: scheduler_0004
Revises: scheduler_0003
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "scheduler_0004"
down_revision = "scheduler_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("schedule_runs", sa.Column("task_id", sa.Uuid))


def downgrade() -> None:
    op.drop_column("schedule_runs", "task_id")
