"""outbound claims in due order: ix_message_outbound_due

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 16:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_message_outbound_due",
        "message",
        ["next_attempt_at", "id"],
        unique=False,
        postgresql_where=sa.text("direction = 'out' AND status IN ('queued', 'processing', 'retrying')"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_message_outbound_due",
        table_name="message",
        postgresql_where=sa.text("direction = 'out' AND status IN ('queued', 'processing', 'retrying')"),
    )
