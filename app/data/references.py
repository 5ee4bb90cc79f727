"""The journal's references: what finds a message by an order number or SKU it names, whatever its size.

A message names its references in ``message.refs`` (GIN-indexed), all of them or the first MAX_REFERENCES
(app/protocol/references.py). One stored with its ``refs`` full is queued in ``message_refs_pending`` by migration
0015's trigger, and INDEX_PENDING_REFERENCES (app/workers/references.py) later writes every reference of its
payload to ``message_refs`` (one row per message, GIN-indexed). A search reads all three: ``refs``,
``message_refs``, and the payloads of the messages still queued (MESSAGE_NAMES_REFERENCE).
"""

from __future__ import annotations

from sqlalchemy import text

from app.data.statuses import UNCLAIMED

PENDING_SEARCHED = 100  # queued messages a search reads the payload of (the newest): ~2 ms each, more if they match

# A search by :reference (a condition of the journal's WHERE, on ``message``): the message names it in its refs, in
# its full references (messages_naming(), migration 0015: through the GIN index of message_refs), or — one of the
# PENDING_SEARCHED newest messages not indexed yet — in its payload: its JSON text holds the reference as JSON
# writes it (a cheap test that every reference passes, one stripped or cut to its first characters too, since the
# quotes are left out), then message_references() decides. Each list of ids is a subquery run once (an InitPlan),
# its ids fetched by primary key: a bitmap per branch.
MESSAGE_NAMES_REFERENCE = text(
    f"""(
    message.refs @> ARRAY[CAST(:reference AS text)]
    OR message.id = ANY(ARRAY(SELECT messages_naming(CAST(:reference AS text))))
    OR (message.id = ANY(ARRAY(SELECT p.message_id FROM message_refs_pending p
                                ORDER BY p.message_id DESC LIMIT {PENDING_SEARCHED}))
        AND strpos(CAST(message.payload AS text), btrim(CAST(to_jsonb(CAST(:reference AS text)) AS text), '"')) > 0
        AND message_references(message.payload) @> ARRAY[CAST(:reference AS text)])
)"""
)

# Index the oldest queued message nobody else is indexing (at most :batch): its references, read from its payload by
# message_references(), to message_refs, and out of the queue — one statement, so that a search sees the message in
# one place or the other, never neither. The bus comes first: while an inbound message waits for a worker (a FULL
# snapshot's pages being applied), only a message queued before :deferred_before is taken. A queued message whose
# message was pruned meanwhile just leaves the queue. Returns how many were taken and indexed.
INDEX_PENDING_REFERENCES = text(
    f"""
    WITH taken AS (
        DELETE FROM message_refs_pending p
         WHERE p.message_id = ANY(ARRAY(
                   SELECT q.message_id FROM message_refs_pending q
                    WHERE NOT EXISTS (SELECT 1 FROM message i WHERE i.direction = 'in' AND i.status IN {UNCLAIMED})
                       OR EXISTS (SELECT 1 FROM message m WHERE m.id = q.message_id AND m.created_at < :deferred_before)
                    ORDER BY q.message_id
                    LIMIT :batch
                      FOR UPDATE SKIP LOCKED))
        RETURNING p.message_id
    ),
    indexed AS (
        INSERT INTO message_refs (message_id, refs)
        SELECT m.id, message_references(m.payload) FROM message m WHERE m.id = ANY(ARRAY(SELECT message_id FROM taken))
        ON CONFLICT (message_id) DO NOTHING
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM taken) AS taken, (SELECT count(*) FROM indexed) AS indexed
    """
)
