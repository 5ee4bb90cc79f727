"""message bus

Revision ID: 0001
Revises:
Create Date: 2026-11-22 05:33:58.535566
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "integration_state",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("registered_url", sa.Text(), nullable=True),
        sa.Column("registered_version", sa.String(length=64), nullable=True),
        sa.Column("registered_application_id", sa.String(length=64), nullable=True),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("register_error", sa.Text(), nullable=True),
        sa.Column("register_attempted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integration_state")),
    )
    op.create_table(
        "message",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("direction", sa.Enum("in", "out", name="message_direction"), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("lane", sa.String(length=200), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "headers", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
        sa.Column("refs", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "processing",
                "retrying",
                "succeeded",
                "failed",
                "dead",
                "rejected",
                "discarded",
                name="message_status",
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message")),
    )
    op.create_index("ix_message_created_at", "message", ["created_at"], unique=False)
    op.create_index(
        "ix_message_pending_lane",
        "message",
        ["direction", "lane", "id"],
        unique=False,
        postgresql_where=sa.text("status IN ('queued', 'processing', 'retrying')"),
    )
    op.create_index("ix_message_refs", "message", ["refs"], unique=False, postgresql_using="gin")
    op.create_index("ix_message_status_id", "message", ["status", "id"], unique=False)
    op.create_index("ix_message_topic_id", "message", ["topic", "id"], unique=False)
    op.create_index(
        "uq_message_direction_channel_external_id",
        "message",
        ["direction", "channel", "external_id"],
        unique=True,
        postgresql_where=sa.text("status <> 'rejected'"),
    )
    op.create_index("ix_message_external_id", "message", ["external_id"], unique=False)
    op.execute("INSERT INTO integration_state (id, enabled) VALUES (1, true)")
    # Wake the workers of every process when messages are stored: one notification per statement, whatever
    # the number of rows (the ingest path inserts in batches).
    op.execute("""
        CREATE FUNCTION message_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('oms_connector_bus', '');
            RETURN NULL;
        END $$
    """)
    op.execute(
        "CREATE TRIGGER message_inserted AFTER INSERT ON message FOR EACH STATEMENT EXECUTE FUNCTION message_notify()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER message_inserted ON message")
    op.execute("DROP FUNCTION message_notify()")
    op.drop_index("ix_message_external_id", table_name="message")
    op.drop_index(
        "uq_message_direction_channel_external_id",
        table_name="message",
        postgresql_where=sa.text("status <> 'rejected'"),
    )
    op.drop_index("ix_message_topic_id", table_name="message")
    op.drop_index("ix_message_status_id", table_name="message")
    op.drop_index("ix_message_refs", table_name="message", postgresql_using="gin")
    op.drop_index(
        "ix_message_pending_lane",
        table_name="message",
        postgresql_where=sa.text("status IN ('queued', 'processing', 'retrying')"),
    )
    op.drop_index("ix_message_created_at", table_name="message")
    op.drop_table("message")
    op.drop_table("integration_state")
    op.execute("DROP TYPE message_status")
    op.execute("DROP TYPE message_direction")
