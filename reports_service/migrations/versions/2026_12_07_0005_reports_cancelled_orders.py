"""A cancelled order's fact stays as a tombstone, marked with when it was cancelled.

Revision ID: reports_0005
Revises: reports_0004
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "reports_0005"
down_revision = "reports_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("order_facts", sa.Column("cancelled_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.execute("DELETE FROM order_facts WHERE cancelled_at IS NOT NULL")
    op.drop_column("order_facts", "cancelled_at")
