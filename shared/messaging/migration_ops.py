"""Alembic operations for the messaging tables every service owns (outbox, processed events).

Called from each service's first migration so the tables are identical everywhere.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from shared.messaging.outbox import NOTIFY_CHANNEL


def create_outbox(op: Any) -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("routing_key", sa.String(255), nullable=False),
        sa.Column("event_type", sa.String(255), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("correlation_id", sa.String(255)),
        sa.Column("headers", sa.dialects.postgresql.JSONB),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("available_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("event_id", name="uq_outbox_event_id"),
    )
    op.create_index("ix_outbox_pending", "outbox", ["id"], postgresql_where=sa.text("published_at IS NULL"))
    op.execute(
        f"""
        CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{NOTIFY_CHANNEL}', '');
            RETURN NULL;
        END $$;
        """
    )
    op.execute("CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()")


def drop_outbox(op: Any) -> None:
    op.execute("DROP TRIGGER IF EXISTS outbox_notify ON outbox")
    op.execute("DROP FUNCTION IF EXISTS outbox_notify()")
    op.drop_table("outbox")


def notify_waiting_relays_only(op: Any) -> None:
    """NOTIFY only while a relay waits for it (``outbox_waiters``), checked as the writer commits.

    A transaction that NOTIFYs takes a cluster-wide lock that it holds until its commit is
    durable, so committing writers queue behind one another instead of sharing a WAL flush.
    A busy relay does not need the wake-up: it comes back for more after each batch.
    """
    op.create_table(
        "outbox_waiters",
        sa.Column("backend_pid", sa.Integer, nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("backend_pid", name="pk_outbox_waiters"),
    )
    op.execute("DROP TRIGGER outbox_notify ON outbox")
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM outbox_waiters) THEN
                PERFORM pg_notify('{NOTIFY_CHANNEL}', '');
            END IF;
            RETURN NULL;
        END $$;
        """
    )
    # deferred to the commit: a relay that starts waiting while the writer's transaction is
    # still open is seen (the relay also looks again after it registers)
    op.execute(
        "CREATE CONSTRAINT TRIGGER outbox_notify AFTER INSERT ON outbox DEFERRABLE INITIALLY DEFERRED "
        "FOR EACH ROW EXECUTE FUNCTION outbox_notify()"
    )


def notify_every_insert(op: Any) -> None:
    """Undoes ``notify_waiting_relays_only``."""
    op.execute("DROP TRIGGER outbox_notify ON outbox")
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{NOTIFY_CHANNEL}', '');
            RETURN NULL;
        END $$;
        """
    )
    op.execute("CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()")
    op.drop_table("outbox_waiters")


def create_processed_events(op: Any) -> None:
    op.create_table(
        "processed_events",
        sa.Column("consumer", sa.String(255), nullable=False),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("consumer", "event_id", name="pk_processed_events"),
    )


def drop_processed_events(op: Any) -> None:
    op.drop_table("processed_events")
