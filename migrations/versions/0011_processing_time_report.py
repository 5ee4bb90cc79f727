"""processing-time report: per-minute and per-hour message stats, their rollup state, ix_message_finished_at

The rollup (app/workers/stats.py) reads the messages finished in the last minutes through ix_message_finished_at
and keeps per minute (and, once final, per hour) counts, sums, maxima and duration histograms, which outlive the
journal's pruning. The index is built CONCURRENTLY: on a large journal a plain build would hold up ingest and the
workers for as long as it takes.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-09 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("queued", "waiting", "processing", "retrying", "succeeded", "failed", "dead", "rejected", "discarded")


def _stat_table(name: str, period: str) -> None:
    op.create_table(
        name,
        sa.Column(period, sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "direction", postgresql.ENUM("in", "out", name="message_direction", create_type=False), nullable=False
        ),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("outcome", postgresql.ENUM(*STATUSES, name="message_status", create_type=False), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("processing_count", sa.Integer(), nullable=False),
        sa.Column("processing_sum_ms", sa.BigInteger(), nullable=False),
        sa.Column("processing_max_ms", sa.Integer(), nullable=True),
        sa.Column("processing_buckets", postgresql.ARRAY(sa.SmallInteger()), nullable=False),
        sa.Column("processing_counts", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.Column("end_to_end_sum_ms", sa.Double(), nullable=False),
        sa.Column("end_to_end_max_ms", sa.Double(), nullable=False),
        sa.Column("end_to_end_buckets", postgresql.ARRAY(sa.SmallInteger()), nullable=False),
        sa.Column("end_to_end_counts", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.PrimaryKeyConstraint(period, "direction", "channel", "topic", "outcome", name=op.f(f"pk_{name}")),
    )


def upgrade() -> None:
    # First, outside a transaction: CONCURRENTLY cannot run in one. An earlier attempt that stopped half-way leaves an
    # invalid index behind (and none of the tables below, which commit with the revision): built again from scratch.
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_message_finished_at")
        op.create_index(
            "ix_message_finished_at",
            "message",
            ["finished_at"],
            unique=False,
            postgresql_where=sa.text("finished_at IS NOT NULL"),
            postgresql_concurrently=True,
        )
    _stat_table("message_stat_minute", "minute")
    _stat_table("message_stat_hour", "hour")
    op.create_table(
        "message_stat_state",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("rolled_up_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("counted_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("hours_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_stat_state")),
    )
    op.execute("INSERT INTO message_stat_state (id) VALUES (1)")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(
            "ix_message_finished_at",
            table_name="message",
            postgresql_where=sa.text("finished_at IS NOT NULL"),
            postgresql_concurrently=True,
        )
    op.drop_table("message_stat_state")
    op.drop_table("message_stat_hour")
    op.drop_table("message_stat_minute")
