"""An order is placed, then perhaps cancelled: its status, when and why.

Revision ID: orders_0004
Revises: orders_0003
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "orders_0004"
down_revision = "orders_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("status", sa.String(16), nullable=False, server_default="placed"))
    op.add_column("orders", sa.Column("cancelled_at", sa.DateTime(timezone=True)))
    op.add_column("orders", sa.Column("cancel_reason", sa.String(500)))
    op.create_check_constraint("status_known", "orders", "status IN ('placed', 'cancelled')")


def downgrade() -> None:
    op.drop_constraint("ck_orders_status_known", "orders", type_="check")
    op.drop_column("orders", "cancel_reason")
    op.drop_column("orders", "cancelled_at")
    op.drop_column("orders", "status")
