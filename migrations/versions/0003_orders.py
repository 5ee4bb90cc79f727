"""orders: exported Adobe Commerce orders, bundle sourcing rules

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sales_order",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("increment_id", sa.Text(), nullable=False),
        sa.Column("entity_id", sa.Text(), nullable=True),
        sa.Column("store_id", sa.Text(), nullable=True),
        sa.Column("commerce_status", sa.Text(), nullable=False),
        sa.Column("commerce_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("document", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("mcom", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("export_message_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "export_message_ids",
            postgresql.ARRAY(sa.BigInteger()),
            server_default=sa.text("'{}'::bigint[]"),
            nullable=False,
        ),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_message_id", sa.BigInteger(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_order")),
        sa.UniqueConstraint("increment_id", name=op.f("uq_sales_order_increment_id")),
    )
    op.create_index("ix_sales_order_received_at", "sales_order", ["received_at"], unique=False)
    op.create_table(
        "bundle_sourcing_rule",
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sku", name=op.f("pk_bundle_sourcing_rule")),
    )


def downgrade() -> None:
    op.drop_table("bundle_sourcing_rule")
    op.drop_index("ix_sales_order_received_at", table_name="sales_order")
    op.drop_table("sales_order")
