"""Each order records the API client that placed it; idempotency keys are each client's own.

Revision ID: orders_0003
Revises: orders_0002
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "orders_0003"
down_revision = "orders_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("client", sa.String(64)))
    op.create_index("ix_orders_client_created_at_id", "orders", ["client", "created_at", "id"])
    # keys sent before clients were told apart belong to no client ('')
    op.add_column("idempotency_keys", sa.Column("client", sa.String(64), nullable=False, server_default=""))
    op.drop_constraint("pk_idempotency_keys", "idempotency_keys", type_="primary")
    op.create_primary_key("pk_idempotency_keys", "idempotency_keys", ["client", "key"])


def downgrade() -> None:
    op.drop_constraint("pk_idempotency_keys", "idempotency_keys", type_="primary")
    op.execute("DELETE FROM idempotency_keys a USING idempotency_keys b WHERE a.key = b.key AND a.client > b.client")
    op.create_primary_key("pk_idempotency_keys", "idempotency_keys", ["key"])
    op.drop_column("idempotency_keys", "client")
    op.drop_index("ix_orders_client_created_at_id", "orders")
    op.drop_column("orders", "client")
