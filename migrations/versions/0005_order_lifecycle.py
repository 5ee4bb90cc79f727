"""order lifecycle: OMS status and history, lines, shipments, returns, refunds, cancel, store credit

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ORDER_COLUMNS = [
    sa.Column("oms_status", sa.Text(), nullable=True),
    sa.Column("oms_status_reason", sa.Text(), nullable=True),
    sa.Column("oms_status_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("cancel_reason", sa.Text(), nullable=True),
    sa.Column("cancel_message_id", sa.BigInteger(), nullable=True),
    sa.Column("canceled_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("cancel_commerce_message_id", sa.BigInteger(), nullable=True),
    sa.Column("store_credit", sa.Numeric(20, 4), nullable=True),
    sa.Column("store_credit_note", sa.Text(), nullable=True),
    sa.Column("store_credit_message_id", sa.BigInteger(), nullable=True),
]


def _order_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["order_id"], ["sales_order.id"], name=op.f(f"fk_{table}_order_id_sales_order"), ondelete="CASCADE"
    )


_INBOUND_PENDING = sa.text("direction = 'in' AND status IN ('queued', 'retrying')")
_OUTBOUND_PENDING = sa.text("direction = 'out' AND status IN ('queued', 'processing', 'retrying')")


def upgrade() -> None:
    # Inbound lanes are now many and short too (one per order): claims look at the oldest pending first.
    op.create_index("ix_message_inbound_pending", "message", ["id"], postgresql_where=_INBOUND_PENDING)
    # Outbound claims by channel: the commerce channel's claims must not read through a backlog of OMS messages.
    op.drop_index("ix_message_outbound_due", table_name="message", postgresql_where=_OUTBOUND_PENDING)
    op.create_index(
        "ix_message_outbound_due", "message", ["channel", "next_attempt_at", "id"], postgresql_where=_OUTBOUND_PENDING
    )
    for column in _ORDER_COLUMNS:
        op.add_column("sales_order", column)
    op.create_table(
        "order_line",
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("line_id", sa.Text(), nullable=False),
        sa.Column("line_number", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Text(), nullable=True),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("product_type", sa.Text(), nullable=False),
        sa.Column("gross", sa.Numeric(20, 4), nullable=False),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("shipment_id", sa.BigInteger(), nullable=True),
        sa.Column("return_id", sa.BigInteger(), nullable=True),
        sa.Column("refund_id", sa.BigInteger(), nullable=True),
        sa.Column("refunded_before_shipment", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        _order_fk("order_line"),
        sa.PrimaryKeyConstraint("order_id", "line_id", name=op.f("pk_order_line")),
    )
    op.create_table(
        "order_status_change",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("oms_status", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("commerce_status", sa.Text(), nullable=True),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "line_statuses",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("commerce_message_id", sa.BigInteger(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        _order_fk("order_status_change"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_status_change")),
    )
    op.create_index("ix_order_status_change_order_id", "order_status_change", ["order_id", "id"], unique=False)
    op.create_table(
        "order_shipment",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("shipment_key", sa.Text(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=True),
        sa.Column("method", sa.Text(), nullable=True),
        sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("items", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("packages", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("invoice_message_id", sa.BigInteger(), nullable=True),
        sa.Column("commerce_message_id", sa.BigInteger(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        _order_fk("order_shipment"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_shipment")),
        sa.UniqueConstraint("order_id", "shipment_key", name=op.f("uq_order_shipment_order_id")),
    )
    op.create_table(
        "order_return",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("rma", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source_id", sa.Text(), nullable=True),
        sa.Column(
            "tracking", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
        sa.Column("lines", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "history", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False
        ),
        sa.Column("request_message_id", sa.BigInteger(), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _order_fk("order_return"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_return")),
        sa.UniqueConstraint("order_id", "rma", name=op.f("uq_order_return_order_id")),
    )
    op.create_table(
        "order_refund",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("credit_note_number", sa.Text(), nullable=False),
        sa.Column("credit_note_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rma", sa.Text(), nullable=True),
        sa.Column("refund_type", sa.Text(), nullable=False),
        sa.Column("refund_reason", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("credit_memo", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("lines", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "before_shipment", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=False
        ),
        sa.Column("total", sa.Numeric(20, 4), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("commerce_message_id", sa.BigInteger(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        _order_fk("order_refund"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_refund")),
        sa.UniqueConstraint("order_id", "credit_note_number", name=op.f("uq_order_refund_order_id")),
    )
    # Orders exported before this revision: their lines, from the create params kept with them.
    op.execute(
        """
        INSERT INTO order_line (order_id, line_id, line_number, item_id, sku, product_type, gross)
        SELECT o.id, line ->> 'id', (line ->> 'line_number')::int,
               CASE WHEN line ->> 'product_type' <> 'SHIPPING' THEN substring(line ->> 'id' from '^(.*)-[0-9]+$') END,
               line ->> 'sku', line ->> 'product_type', (line -> 'amount' ->> 'gross_amount')::numeric
          FROM sales_order o, jsonb_array_elements(o.mcom -> 'order' -> 'lines') AS line
         WHERE o.mcom IS NOT NULL
        ON CONFLICT DO NOTHING
        """
    )


def downgrade() -> None:
    op.drop_index("ix_message_inbound_pending", table_name="message", postgresql_where=_INBOUND_PENDING)
    op.drop_index("ix_message_outbound_due", table_name="message", postgresql_where=_OUTBOUND_PENDING)
    op.create_index("ix_message_outbound_due", "message", ["next_attempt_at", "id"], postgresql_where=_OUTBOUND_PENDING)
    op.drop_table("order_refund")
    op.drop_table("order_return")
    op.drop_table("order_shipment")
    op.drop_index("ix_order_status_change_order_id", table_name="order_status_change")
    op.drop_table("order_status_change")
    op.drop_table("order_line")
    for column in reversed(_ORDER_COLUMNS):
        op.drop_column("sales_order", column.name)
