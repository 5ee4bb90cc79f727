"""message: the insert notification names what was stored (direction/channel), so only those workers wake

Every insert woke one worker of each kind — inbound, and outbound per channel — whatever it stored: an order export
cost an empty inbound claim (two statements) and a webhook an empty outbound claim per channel. The payload is now
the distinct ``direction/channel`` pairs of the statement's rows (``in/oms``, ``out/oms``, ``out/commerce``), read
from its transition table (nothing stored: no notification); an empty payload (NOTIFY_BUS, an older process) still
wakes every kind.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-12 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("""
        CREATE FUNCTION message_notify_kinds() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            kinds text;
        BEGIN
            SELECT string_agg(DISTINCT direction::text || '/' || channel, ',') INTO kinds FROM inserted;
            IF kinds IS NOT NULL THEN  -- a statement that stored nothing (duplicates only) wakes nobody
                PERFORM pg_notify('oms_connector_bus', kinds);
            END IF;
            RETURN NULL;
        END $$
    """)
    op.execute("DROP TRIGGER message_inserted ON message")
    op.execute("""
        CREATE TRIGGER message_inserted AFTER INSERT ON message REFERENCING NEW TABLE AS inserted
        FOR EACH STATEMENT EXECUTE FUNCTION message_notify_kinds()
    """)
    op.execute("DROP FUNCTION message_notify()")


def downgrade() -> None:
    op.execute("""
        CREATE FUNCTION message_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('oms_connector_bus', '');
            RETURN NULL;
        END $$
    """)
    op.execute("DROP TRIGGER message_inserted ON message")
    op.execute(
        "CREATE TRIGGER message_inserted AFTER INSERT ON message FOR EACH STATEMENT EXECUTE FUNCTION message_notify()"
    )
    op.execute("DROP FUNCTION message_notify_kinds()")
