"""The outbox trigger NOTIFYs only while a relay is waiting for it.

Revision ID: scheduler_0002
Revises: scheduler_0001
Create Date: 2026-11-22
"""

from alembic import op

from shared.messaging import migration_ops

revision = "scheduler_0002"
down_revision = "scheduler_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    migration_ops.notify_waiting_relays_only(op)


def downgrade() -> None:
    migration_ops.notify_every_insert(op)
