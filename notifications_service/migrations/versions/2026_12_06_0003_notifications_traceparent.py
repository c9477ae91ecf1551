"""Each notification keeps the trace of the event that asked for it: its SMTP send continues that trace.

Revision ID: notifications_0003
Revises: notifications_0002
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "notifications_0003"
down_revision = "notifications_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("notifications", sa.Column("traceparent", sa.String(55)))


def downgrade() -> None:
    op.drop_column("notifications", "traceparent")
