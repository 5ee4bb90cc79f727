"""message: every reference of a large message searchable — message_refs, filled after the message is stored

``message.refs`` keeps at most the first 200 references of a message (app/protocol/references.py), so a FULL stock
page of 5,000 SKUs was found by its first 200 only. Indexing all of them at ingest would add ~20 ms of database time
to each page's webhook (extracting them, then 5,000 index entries; in an index on ``message`` itself, again at every
status change of the row: its updates are never HOT), so a message that filled its ``refs`` is indexed after it is
stored:

* ``message_references(payload)``: every reference a payload names, by the rules of app/protocol/references.py
  ``extract_references`` (tests/integration/test_journal_sku_search.py holds the two equal);
* the trigger ``message_refs_capped`` queues each message stored with 200 references or more in
  ``message_refs_pending`` (the WHEN clause is all that other messages pay);
* app/workers/references.py moves them, one at a time, to ``message_refs`` (one row per message, every reference,
  GIN-indexed, read through ``messages_naming(reference)``), and the journal's search reads ``message.refs``,
  ``message_refs`` and, for messages still waiting, their payload (app/data/references.py).

No index is built on ``message``. Creating the trigger locks ``message`` against writes for the moment this
revision's transaction takes; the messages stored before it that filled their ``refs`` are queued afterwards, in a
statement of their own outside that transaction (a scan of the table that does not block ingest).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 19:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What Python's str.strip() strips (every character whose isspace() is true), for btrim().
_SPACES = (
    r"E'\u0009\u000a\u000b\u000c\u000d\u001c\u001d\u001e\u001f\u0020\u0085\u00a0\u1680\u2000\u2001\u2002\u2003"
    r"\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000'"
)

# extract_references in SQL. Objects down to depth 8 (the root is 0; a member or an item one deeper); "sku" — the key
# large messages repeat — read by a path of its own (about twice as fast as the general branch on a FULL page);
# every other reference key from the objects that have one; the text stripped and cut to 200 characters, an
# integer as written (a number written with an exponent, 1e+16, counts as one here: PostgreSQL keeps no trace of
# the notation). 15 to 25 ms for a page of 5,000 SKUs (hence COST: the planner tests anything cheaper first).
_MESSAGE_REFERENCES = rf"""
    CREATE FUNCTION message_references(payload jsonb) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE COST 10000 AS $$
        SELECT coalesce(array_agg(DISTINCT found.ref), '{{}}')
          FROM (SELECT jsonb_path_query(payload, 'strict $.**{{0 to 8}}.sku')
                UNION ALL
                SELECT named.value
                  FROM jsonb_path_query(payload, 'strict $.**{{0 to 8}} ? (@.type() == "object" && (
                           exists(@.order_id) || exists(@.increment_id) || exists(@.order_number) || exists(@.rma)
                           || exists(@.shipment_id) || exists(@.shimpent_id) || exists(@.order)
                           || exists(@.children_skus)))') AS node(object)
                 CROSS JOIN LATERAL jsonb_each(node.object) AS member(key, value)
                 CROSS JOIN LATERAL jsonb_array_elements(
                       CASE WHEN member.key IN ('order_id', 'increment_id', 'order_number', 'rma', 'shipment_id',
                                                'shimpent_id')
                                THEN jsonb_build_array(member.value)
                            WHEN member.key = 'order' AND jsonb_typeof(member.value) = 'object'
                                THEN jsonb_build_array(member.value -> 'id')
                            WHEN member.key = 'children_skus' AND jsonb_typeof(member.value) = 'array'
                                THEN member.value
                       END) AS named(value)
               ) AS candidate(value)
         CROSS JOIN LATERAL (
               SELECT left(CASE jsonb_typeof(candidate.value)
                               WHEN 'string' THEN btrim(candidate.value #>> '{{}}', {_SPACES})
                               WHEN 'number' THEN substring(candidate.value::text FROM '^-?[0-9]+$')
                           END, 200)) AS found(ref)
         WHERE found.ref <> ''
    $$
"""

# The messages whose full references hold :reference, through the GIN index always: each row of message_refs holds
# thousands of references out of line, which the planner does not see — a few hundred rows look cheaper to scan than
# the index, and a scan decompresses every one of them (40 ms for 400 FULL pages, growing with the table).
_MESSAGES_NAMING = """
    CREATE FUNCTION messages_naming(reference text) RETURNS SETOF bigint
    LANGUAGE sql STABLE PARALLEL SAFE SET enable_seqscan = off AS $$
        SELECT message_id FROM message_refs WHERE refs @> ARRAY[reference]
    $$
"""

# 200: app/protocol/references.py MAX_REFERENCES (a message that names fewer has them all in message.refs).
_QUEUE_CAPPED = """
    CREATE FUNCTION message_refs_queue() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO message_refs_pending (message_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
        RETURN NULL;
    END $$
"""
_CAPPED_TRIGGER = """
    CREATE TRIGGER message_refs_capped AFTER INSERT ON message
    FOR EACH ROW WHEN (cardinality(NEW.refs) >= 200) EXECUTE FUNCTION message_refs_queue()
"""


def upgrade() -> None:
    op.execute(_MESSAGE_REFERENCES)
    op.create_table(
        "message_refs",
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("refs", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_message_refs")),
    )
    op.create_index("ix_message_refs_refs", "message_refs", ["refs"], unique=False, postgresql_using="gin")
    op.execute(_MESSAGES_NAMING)
    op.create_table(
        "message_refs_pending",
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_message_refs_pending")),
    )
    op.execute(_QUEUE_CAPPED)
    op.execute(_CAPPED_TRIGGER)
    # After the trigger is in place (committed): the messages stored before it. One scan of the table, outside the
    # revision's transaction, so that ingest is never held up behind it.
    with op.get_context().autocommit_block():
        op.execute(
            "INSERT INTO message_refs_pending (message_id) SELECT id FROM message WHERE cardinality(refs) >= 200 "
            "ON CONFLICT DO NOTHING"
        )


def downgrade() -> None:
    op.execute("DROP TRIGGER message_refs_capped ON message")
    op.execute("DROP FUNCTION message_refs_queue()")
    op.drop_table("message_refs_pending")
    op.execute("DROP FUNCTION messages_naming(text)")
    op.drop_index("ix_message_refs_refs", table_name="message_refs", postgresql_using="gin")
    op.drop_table("message_refs")
    op.execute("DROP FUNCTION message_references(jsonb)")
