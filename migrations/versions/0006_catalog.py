"""catalog: the connector's own product table, catalog settings

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 20:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "catalog_product",
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("product_id", sa.BigInteger(), nullable=True),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("deleted", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("children_skus", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=False),
        sa.Column(
            "child_ids", postgresql.ARRAY(sa.BigInteger()), server_default=sa.text("'{}'::bigint[]"), nullable=False
        ),
        sa.Column(
            "custom_attributes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "website_ids", postgresql.ARRAY(sa.Integer()), server_default=sa.text("'{}'::integer[]"), nullable=False
        ),
        sa.Column("exported_fingerprint", sa.Text(), nullable=True),
        sa.Column("exports", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("export_message_id", sa.BigInteger(), nullable=True),
        sa.Column("exported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sku", name=op.f("pk_catalog_product")),
        sa.UniqueConstraint("product_id", name=op.f("uq_catalog_product_product_id")),
    )
    op.create_index(
        "ix_catalog_product_child_ids", "catalog_product", ["child_ids"], unique=False, postgresql_using="gin"
    )
    op.create_table(
        "catalog_setting",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_catalog_setting")),
    )


def downgrade() -> None:
    op.drop_table("catalog_setting")
    op.drop_index("ix_catalog_product_child_ids", table_name="catalog_product", postgresql_using="gin")
    op.drop_table("catalog_product")
