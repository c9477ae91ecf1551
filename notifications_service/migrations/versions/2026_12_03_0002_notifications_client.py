"""Each notification of an order records the client that placed the order.

Revision ID: notifications_0002
Revises: notifications_0001
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "notifications_0002"
down_revision = "notifications_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("notifications", sa.Column("client", sa.String(64)))
    op.create_index("ix_notifications_client_created_at", "notifications", ["client", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_notifications_client_created_at", "notifications")
    op.drop_column("notifications", "client")
