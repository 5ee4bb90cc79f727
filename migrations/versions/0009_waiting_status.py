"""message status `waiting`: an outbound call held until its order's create reached the OMS

A cancel or return request about an order the OMS has not received yet (its create is still queued, or failed,
died or was discarded) must not overtake the create: it waits, outside the lane, and is released when a create of
that order succeeds (or the OMS acknowledges the order).

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


def upgrade() -> None:
    # A new enum value cannot be used in the transaction that adds it: add it on its own.
    with op.get_context().autocommit_block():
        op.execute("ALTER TYPE message_status ADD VALUE IF NOT EXISTS 'waiting' AFTER 'queued'")
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
