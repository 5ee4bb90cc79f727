"""message status `waiting`: an outbound call held until its order's create reached the OMS

A cancel or return request about an order the OMS has not received yet (its create is still queued, or failed,
died or was discarded) must not overtake the create: it waits, outside the lane, and is released when a create of
that order succeeds (or the OMS acknowledges the order). Calls already queued behind such a create are held too.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HOLD_QUEUED_CALLS = """
    UPDATE message m
       SET status = 'waiting',
           last_error = 'waits for order ' || o.increment_id || '''s create to reach the OMS (held at the upgrade); '
                        || 'sent once a create of the order succeeds or the OMS acknowledges the order'
      FROM sales_order o LEFT JOIN message c ON c.id = o.export_message_id
     WHERE m.direction = 'out' AND m.channel = 'oms' AND m.status = 'queued'
       AND m.topic <> 'magento.sales.order_management.create' AND m.lane = 'order/' || o.increment_id
       AND o.acknowledged_at IS NULL AND c.status IS DISTINCT FROM 'succeeded'
"""


def upgrade() -> None:
    # A new enum value cannot be used in the transaction that adds it: add it on its own.
    with op.get_context().autocommit_block():
        op.execute("ALTER TYPE message_status ADD VALUE IF NOT EXISTS 'waiting' AFTER 'queued'")
    # Calls already queued behind a create that has not reached the OMS wait from now on, like new ones (a create
    # that then failed or was discarded would otherwise let them through first).
    op.execute(HOLD_QUEUED_CALLS)
    op.create_index(
        "ix_message_waiting_lane",
        "message",
        ["lane", "id"],
        unique=False,
        postgresql_where=sa.text("direction = 'out' AND status = 'waiting'"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_message_waiting_lane",
        table_name="message",
        postgresql_where=sa.text("direction = 'out' AND status = 'waiting'"),
    )
    # PostgreSQL cannot drop an enum value; waiting calls become plain queued ones (the lane order of 0008) and the
    # value stays, unused.
    op.execute("UPDATE message SET status = 'queued' WHERE status = 'waiting'")
