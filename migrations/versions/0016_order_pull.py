"""order_pull: where the pull of orders from Adobe Commerce stands (its cursor, schedule and last poll)

One row (id = 1), shared by every replica: the cursor (``updated_at`` and ``entity_id`` of the last order fully
handled), when a poll is next due, the failure under way and what the last poll did (app/services/order_pull.py).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 19:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "order_pull",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("cursor_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cursor_entity_id", sa.BigInteger(), nullable=True),
        sa.Column("next_poll_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failures", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("failure_message_id", sa.BigInteger(), nullable=True),
        sa.Column("last_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_outcome", sa.String(length=16), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("last_message_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_pull")),
    )
    op.execute("INSERT INTO order_pull (id) VALUES (1)")


def downgrade() -> None:
    op.drop_table("order_pull")
