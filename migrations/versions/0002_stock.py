"""stock: salable stock per SKU and aggregate, aggregate → websites

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stock",
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("aggregate_id", sa.Text(), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=20, scale=4), nullable=False),
        sa.Column("unlimited", sa.Boolean(), nullable=False),
        sa.Column("source_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sku", "aggregate_id", name=op.f("pk_stock")),
    )
    op.create_index("ix_stock_aggregate_id_sku", "stock", ["aggregate_id", "sku"], unique=False)
    op.create_table(
        "stock_aggregate",
        sa.Column("aggregate_id", sa.Text(), nullable=False),
        sa.Column("websites", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("aggregate_id", name=op.f("pk_stock_aggregate")),
    )


def downgrade() -> None:
    op.drop_table("stock_aggregate")
    op.drop_index("ix_stock_aggregate_id_sku", table_name="stock")
    op.drop_table("stock")
