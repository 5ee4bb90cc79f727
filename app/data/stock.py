"""Stock's statements: apply a snapshot with the timestamp filter (ARCHITECTURE §5), queue what was applied for
Adobe Commerce, and list the known SKUs for a stock reset."""

from __future__ import annotations

from sqlalchemy import text

from app.protocol.references import MAX_REFERENCES

# The timestamp filter of every stock upsert below: a row is written unless the stored one was set by a newer
# message (equal ⇒ written again: a replay is harmless); RETURNING 1 per row written.
_WRITE_IF_NOT_OLDER = """ON CONFLICT (sku, aggregate_id) DO UPDATE
           SET quantity = excluded.quantity, unlimited = excluded.unlimited, source_ts = excluded.source_ts,
               message_id = excluded.message_id, updated_at = excluded.updated_at
         WHERE stock.source_ts <= excluded.source_ts
        RETURNING 1"""

# Stock: apply one message's rows with the timestamp filter (ARCHITECTURE §5), in one statement. A SKU's row is
# written only if the message is not older than the message that last set it (equal ⇒ applied again: idempotent).
# Rows arrive sorted by SKU so concurrent writers lock them in the same order (no deadlock). Returns how many
# rows were written; the others were stale.
APPLY_STOCK = text(
    f"""
    WITH written AS (
        INSERT INTO stock (sku, aggregate_id, quantity, unlimited, source_ts, message_id, updated_at)
        SELECT t.sku, :aggregate_id, t.quantity, t.unlimited, :source_ts, :message_id, :now
          FROM unnest(CAST(:skus AS text[]), CAST(CAST(:quantities AS text[]) AS numeric[]),
                      CAST(:unlimited AS boolean[]))
               AS t(sku, quantity, unlimited)
         ORDER BY t.sku
        {_WRITE_IF_NOT_OLDER}
    )
    SELECT count(*) FROM written
    """
)

# Stock, in PostgreSQL: the snapshot's fields but its rows (NULL when it has no object snapshot with a stock list),
# how many rows it has, and whether the inbox found them plain (``rows_plain``: the headers hold JSON true under
# :plain_mark, app/protocol/stock.py PLAIN_ROWS_MARK). OFFSET 0 keeps the subquery apart: the payload is read once.
STOCK_HEADER = text(
    """
    SELECT CASE WHEN jsonb_typeof(snapshot->'stock') = 'array' THEN snapshot - 'stock' END AS header,
           CASE WHEN jsonb_typeof(snapshot->'stock') = 'array' THEN jsonb_array_length(snapshot->'stock') END AS rows,
           COALESCE(plain_mark = 'true'::jsonb, false) AS rows_plain
      FROM (SELECT payload->'snapshot' AS snapshot, headers->CAST(:plain_mark AS text) AS plain_mark
              FROM message WHERE id = :message_id OFFSET 0) AS m
    """
)

# Stock, in PostgreSQL: APPLY_STOCK reading the rows straight from the stored message, so a FULL page never travels
# to Python and back. Only if every row is *plain* — what app/protocol/stock.py takes as is: an object, a text SKU of
# 1-200 characters starting and ending with a printable ASCII character, a quantity of up to 15 digits and 4
# decimals (text or number), `unlimited` absent or boolean. Otherwise nothing is written and the position of the
# first other row comes back: the handler then reads the message in Python, which names any bad field. A repeated
# SKU: the last row wins. (A message the inbox marked plain is applied by APPLY_PLAIN_STOCK_FROM_MESSAGE instead.)
APPLY_STOCK_FROM_MESSAGE = text(
    rf"""
    WITH rows AS MATERIALIZED (
        SELECT e.ord, e.r->>'sku' AS sku, e.r->>'quantity' AS quantity,
               COALESCE(e.r->'unlimited' = 'true'::jsonb, false) AS unlimited,
               COALESCE(jsonb_typeof(e.r) = 'object'
                        AND jsonb_typeof(e.r->'sku') = 'string'
                        AND length(e.r->>'sku') <= 200
                        AND (e.r->>'sku') ~ '^[!-~](.*[!-~])?$'
                        AND jsonb_typeof(e.r->'quantity') IN ('string', 'number')
                        AND (e.r->>'quantity') ~ '^[0-9]{{1,15}}(\.[0-9]{{1,4}})?$'
                        AND COALESCE(jsonb_typeof(e.r->'unlimited'), 'boolean') = 'boolean', false) AS plain
          FROM message m, jsonb_array_elements(m.payload->'snapshot'->'stock') WITH ORDINALITY AS e(r, ord)
         WHERE m.id = :message_id
    ),
    irregular AS (SELECT min(ord) - 1 AS position FROM rows WHERE NOT plain),
    latest AS (
        SELECT DISTINCT ON (sku) sku, quantity, unlimited FROM rows
         WHERE (SELECT position FROM irregular) IS NULL
         ORDER BY sku, ord DESC
    ),
    written AS (
        INSERT INTO stock (sku, aggregate_id, quantity, unlimited, source_ts, message_id, updated_at)
        SELECT sku, :aggregate_id, CAST(quantity AS numeric), unlimited, :source_ts, :message_id, :now
          FROM latest
         ORDER BY sku
        {_WRITE_IF_NOT_OLDER}
    )
    SELECT (SELECT position FROM irregular) AS first_irregular, (SELECT count(*) FROM rows) AS rows,
           (SELECT count(*) FROM latest) AS skus, (SELECT count(*) FROM written) AS applied
    """
)

# Stock, in PostgreSQL: APPLY_STOCK_FROM_MESSAGE for a message the inbox found plain when it stored it — every row
# one app/protocol/stock.py takes as is, no SKU twice (STOCK_HEADER's ``rows_plain``) — so its rows are neither
# checked again nor de-duplicated: the statement is APPLY_STOCK's, reading the stored payload instead of arrays.
# Returns how many rows were written; the others were stale.
APPLY_PLAIN_STOCK_FROM_MESSAGE = text(
    f"""
    WITH written AS (
        INSERT INTO stock (sku, aggregate_id, quantity, unlimited, source_ts, message_id, updated_at)
        SELECT e.r->>'sku', :aggregate_id, CAST(e.r->>'quantity' AS numeric),
               COALESCE(e.r->'unlimited' = 'true'::jsonb, false), :source_ts, :message_id, :now
          FROM message m, jsonb_array_elements(m.payload->'snapshot'->'stock') AS e(r)
         WHERE m.id = :message_id
         ORDER BY e.r->>'sku'
        {_WRITE_IF_NOT_OLDER}
    )
    SELECT count(*) FROM written
    """
)

# Stock a message applied (it passed the timestamp filter: the row now carries this message's id), as batches of
# Adobe Commerce source items in the outbox, one lane per source so that a later snapshot's batch arrives after an
# earlier one. The SKUs come from :skus, or from the stored message when the rows were applied in SQL (:skus NULL);
# every lookup is by the stock table's primary key. Unlimited stock is not a source quantity: it is left out. A batch
# is found in the journal by its source and its SKUs (its refs: the first MAX_REFERENCES; the rest once indexed).
QUEUE_SOURCE_ITEMS = text(
    f"""
    WITH skus AS (
        SELECT DISTINCT sku FROM unnest(CAST(:skus AS text[])) AS sku WHERE CAST(:skus AS text[]) IS NOT NULL
        UNION
        SELECT DISTINCT e.r->>'sku' FROM message m, jsonb_array_elements(m.payload->'snapshot'->'stock') AS e(r)
         WHERE m.id = :message_id AND CAST(:skus AS text[]) IS NULL AND jsonb_typeof(e.r) = 'object'
    ),
    applied AS (
        SELECT s.sku, s.quantity, (row_number() OVER (ORDER BY s.sku) - 1) / :batch AS batch
          FROM stock s JOIN skus USING (sku)
         WHERE s.aggregate_id = :aggregate_id AND s.message_id = :message_id AND NOT s.unlimited
    ),
    batches AS (
        SELECT batch, count(*) AS skus, (array_agg(sku ORDER BY sku))[1:{MAX_REFERENCES - 1}] AS refs,
               jsonb_agg(jsonb_build_object('sku', sku, 'source_code', CAST(:source_code AS text),
                                            'quantity', quantity, 'status', CASE WHEN quantity > 0 THEN 1 ELSE 0 END)
                         ORDER BY sku) AS items
          FROM applied GROUP BY batch
    ),
    queued AS (
        INSERT INTO message (direction, channel, topic, external_id, lane, payload, headers, refs, status,
                             next_attempt_at, created_at)
        SELECT 'out', :channel, :topic, :key_prefix || batch, :lane,
               jsonb_build_object('aggregate_id', CAST(:aggregate_id AS text), 'stock_message_id', :message_id,
                                  'body', jsonb_build_object('sourceItems', items)),
               '{{}}'::jsonb, ARRAY[CAST(:source_code AS text)] || refs, 'queued', :now, :now
          FROM batches ORDER BY batch
        ON CONFLICT (direction, channel, external_id) WHERE status <> 'rejected' DO NOTHING
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM queued) AS messages,
           CAST((SELECT coalesce(sum(skus), 0) FROM batches) AS bigint) AS skus
    """
)

# Stock reset (development only): a page of every SKU the connector knows, after :after in SKU order: SKUs with
# stock and the catalog's products (not deleted ones, not shipping methods: they are sold as lines, never stocked).
# Both sides are read in SKU order from their primary keys and merged, so a page costs the same at the start and at
# the end of a million SKUs.
STOCK_RESET_SKUS = text(
    """
    SELECT DISTINCT known.sku FROM (
        (SELECT DISTINCT sku FROM stock WHERE sku > :after ORDER BY sku LIMIT :limit)  -- a row per aggregate
        UNION ALL
        (SELECT sku FROM catalog_product WHERE sku > :after AND NOT deleted AND NOT shipping_method
          ORDER BY sku LIMIT :limit)
    ) AS known
     ORDER BY known.sku
     LIMIT :limit
    """
)

# Stock: apply the rows of several messages of a lane (an inbound batch, app/workers/bus.py) in one statement, with
# the result of applying them one by one in arrival order (:message_ids etc. are one element per row, rows in
# arrival order). A row passes the timestamp filter when it is not older than the stored row nor than any earlier
# row of the batch for its SKU and aggregate; the last row that passed is what stays, exactly what the messages
# applied in turn would leave. Returns, per message with rows, how many of them passed (its ``applied``).
APPLY_STOCK_BATCH = text(
    f"""
    WITH rows AS MATERIALIZED (
        SELECT * FROM unnest(CAST(:message_ids AS bigint[]), CAST(:aggregate_ids AS text[]),
                             CAST(:source_ts AS timestamptz[]), CAST(:skus AS text[]),
                             CAST(CAST(:quantities AS text[]) AS numeric[]), CAST(:unlimited AS boolean[]))
               WITH ORDINALITY AS t(message_id, aggregate_id, source_ts, sku, quantity, unlimited, ord)
    ),
    judged AS MATERIALIZED (
        SELECT r.*, COALESCE(r.source_ts >= GREATEST(
                   s.source_ts,
                   max(r.source_ts) OVER (PARTITION BY r.sku, r.aggregate_id ORDER BY r.ord
                                          ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)), true) AS applied
          FROM rows r LEFT JOIN stock s ON s.sku = r.sku AND s.aggregate_id = r.aggregate_id
    ),
    latest AS (
        SELECT DISTINCT ON (sku, aggregate_id) * FROM judged WHERE applied ORDER BY sku, aggregate_id, ord DESC
    ),
    written AS (
        INSERT INTO stock (sku, aggregate_id, quantity, unlimited, source_ts, message_id, updated_at)
        SELECT sku, aggregate_id, quantity, unlimited, source_ts, message_id, :now
          FROM latest
         ORDER BY sku, aggregate_id
        {_WRITE_IF_NOT_OLDER}
    )
    SELECT message_id, count(*) FILTER (WHERE applied) AS applied, (SELECT count(*) FROM written) AS written
      FROM judged GROUP BY message_id
    """
)
