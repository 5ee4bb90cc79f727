"""sales_order: indexes behind the order list's export-status filter

The filter read an order's export status from a CASE over its export message, which PostgreSQL can only test row by
row: a rare status (a few queued orders among a million) read most of the table (3.6 s in bench/console.py). The
list now asks for the statuses of the export message, found through ``ix_sales_order_export_message_id``, and for
held orders through the partial ``ix_sales_order_held``. Built CONCURRENTLY: a store's order table may be large and
order exports must not wait for the build.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-11 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Outside a transaction: CONCURRENTLY cannot run in one. An earlier attempt that stopped half-way leaves an
    # invalid index behind: built again from scratch.
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_sales_order_export_message_id")
        op.execute("CREATE INDEX CONCURRENTLY ix_sales_order_export_message_id ON sales_order (export_message_id)")
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_sales_order_held")
        op.execute(
            "CREATE INDEX CONCURRENTLY ix_sales_order_held ON sales_order (id) "
            "WHERE export_message_id IS NULL AND acknowledged_at IS NULL"
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_sales_order_held")
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_sales_order_export_message_id")
