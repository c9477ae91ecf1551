"""Cancelled orders: a tombstone per order, and ``dropped`` for a confirmation that will not be sent.

Revision ID: notifications_0004
Revises: notifications_0003
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "notifications_0004"
down_revision = "notifications_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cancelled_orders",
        sa.Column("order_id", sa.Uuid, primary_key=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.drop_constraint("ck_notifications_status_known", "notifications", type_="check")
    op.create_check_constraint("status_known", "notifications", "status IN ('pending', 'sent', 'failed', 'dropped')")


def downgrade() -> None:
    op.execute("UPDATE notifications SET status = 'failed' WHERE status = 'dropped'")
    op.drop_constraint("ck_notifications_status_known", "notifications", type_="check")
    op.create_check_constraint("status_known", "notifications", "status IN ('pending', 'sent', 'failed')")
    op.drop_table("cancelled_orders")
