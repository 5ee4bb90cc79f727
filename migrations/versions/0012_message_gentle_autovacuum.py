"""message: a gentler autovacuum (autovacuum_vacuum_cost_delay = 20 ms); integration_state.daily_prune_at

A journal prune deletes millions of rows a day (50 messages/s is 4.3 million); autovacuum then cleans them up.
At PostgreSQL's default cost delay (2 ms) that clean-up reads and dirties pages as fast as the disk allows, and
every webhook's commit waits behind it: bench/prune.py measured the webhook p99 at 6.7x the same rate without a
prune, and 12x while the clean-up ran on after it. At 20 ms (the default before PostgreSQL 12) the same prune
costs ~1.6x and the clean-up of 5 million rows still ends within minutes. Only this table: the others churn little.

``daily_prune_at``: when the workers' daily journal prune last ran (app/services/journal_prune.py), so that a run
that deleted nothing needs no journal entry to be remembered.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-10 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE message SET (autovacuum_vacuum_cost_delay = 20)")
    op.add_column("integration_state", sa.Column("daily_prune_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("integration_state", "daily_prune_at")
    op.execute("ALTER TABLE message RESET (autovacuum_vacuum_cost_delay)")
