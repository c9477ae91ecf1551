"""Order facts, the lab's reports table, reported days, report tasks, outbox, processed events.

Revision ID: reports_0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

from shared.messaging import migration_ops

revision = "reports_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "order_facts",
        sa.Column("order_id", sa.Uuid, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count_product", sa.Integer, nullable=False),
        sa.Column("total_amount", sa.Numeric(14, 2), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("order_id", name="pk_order_facts"),
    )
    op.create_index("ix_order_facts_created_at", "order_facts", ["created_at"])
    op.create_table(
        "reports",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("report_at", sa.Date, nullable=False),
        sa.Column("order_id", sa.Uuid, nullable=False),
        sa.Column("count_product", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reports"),
        sa.UniqueConstraint("report_at", "order_id", name="uq_reports_report_at"),
    )
    op.create_table(
        "reported_days",
        sa.Column("report_at", sa.Date, nullable=False),
        sa.Column("generated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("report_at", name="pk_reported_days"),
    )
    op.create_table(
        "report_tasks",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("report_date", sa.Date, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(255), nullable=False),
        sa.Column("scheduled_for", sa.DateTime(timezone=True)),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rows", sa.Integer),
        sa.Column("total_products", sa.BigInteger),
        sa.Column("error", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_report_tasks"),
        sa.CheckConstraint("status IN ('scheduled', 'running', 'succeeded', 'failed')", name="ck_report_tasks_status_known"),
    )
    op.create_index("ix_report_tasks_report_date", "report_tasks", ["report_date"])
    migration_ops.create_outbox(op)
    migration_ops.create_processed_events(op)


def downgrade() -> None:
    migration_ops.drop_processed_events(op)
    migration_ops.drop_outbox(op)
    op.drop_table("report_tasks")
    op.drop_table("reported_days")
    op.drop_table("reports")
    op.drop_index("ix_order_facts_created_at", "order_facts")
    op.drop_table("order_facts")
