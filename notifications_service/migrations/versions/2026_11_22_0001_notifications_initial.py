"""Notifications (one per event) with a NOTIFY trigger for the dispatcher, and processed events.

Revision ID: notifications_0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

from shared.messaging import migration_ops

revision = "notifications_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("body_text", sa.Text, nullable=False),
        sa.Column("body_html", sa.Text, nullable=False),
        sa.Column("order_id", sa.Uuid),
        sa.Column("status", sa.String(8), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
        sa.UniqueConstraint("event_id", name="uq_notifications_event_id"),
        sa.CheckConstraint("status IN ('pending', 'sent', 'failed')", name="ck_notifications_status_known"),
    )
    op.create_index("ix_notifications_due", "notifications", ["next_attempt_at"], postgresql_where=sa.text("status = 'pending'"))
    op.create_index("ix_notifications_recipient", "notifications", ["recipient"])
    op.create_index("ix_notifications_order_id", "notifications", ["order_id"])
    op.execute(
        """
        CREATE FUNCTION notifications_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('notifications', '');
            RETURN NULL;
        END $$;
        """
    )
    op.execute(
        "CREATE TRIGGER notifications_notify AFTER INSERT ON notifications FOR EACH STATEMENT EXECUTE FUNCTION notifications_notify()"
    )
    migration_ops.create_processed_events(op)


def downgrade() -> None:
    migration_ops.drop_processed_events(op)
    op.execute("DROP TRIGGER IF EXISTS notifications_notify ON notifications")
    op.execute("DROP FUNCTION IF EXISTS notifications_notify()")
    op.drop_table("notifications")
