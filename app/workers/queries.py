"""Every statement the bus runs, in one place. Parameters are named; times come from the injected clock.

Ordering rule shared by the claims: a lane's *head* is its oldest message still pending (queued, processing or
retrying). Only heads can be claimed, so a lane advances one message at a time, in id (arrival) order, whatever
the number of workers and processes. Heads are found with a loose index scan over the partial index
``ix_message_pending_lane`` (one probe per lane), never a scan of the backlog; they are then fetched by primary key
as ``id = ANY(ARRAY(…))`` (a join lets the planner misjudge the head count and walk the whole table).

A *waiting* outbound message (held by the service that enqueued it until a *gate* message of its lane succeeds:
an order's calls wait for the order's create, app/services/order_gate.py) is not pending: it is in no lane, neither
blocks one nor is claimed, until RELEASE_WAITING / RELEASE_WAITING_LANE queue it (ix_message_waiting_lane).
"""

from __future__ import annotations

import re

from sqlalchemy import TextClause, text

_PENDING = "('queued', 'processing', 'retrying')"
LARGE_PAYLOAD_BYTES = 16 * 1024  # stored (compressed) size over which a claim may leave the payload in the database

_LANE_HEADS = f"""
    heads AS (
        (SELECT lane, id FROM message
          WHERE direction = CAST(:direction AS message_direction) AND status IN {_PENDING}
          ORDER BY lane, id LIMIT 1)
        UNION ALL
        SELECT following.lane, following.id FROM heads, LATERAL (
            SELECT lane, id FROM message
             WHERE direction = CAST(:direction AS message_direction) AND status IN {_PENDING}
               AND lane > heads.lane
             ORDER BY lane, id LIMIT 1) AS following
    )"""

# Store messages (any direction/status) in one statement; a duplicate accepted id is skipped, not an error.
# The payload is the "params" member of each raw JSON text, so the body is never re-serialised in Python.
INSERT_MESSAGES = text(
    """
    INSERT INTO message (direction, channel, topic, external_id, lane, payload, headers, refs, status,
                         last_error, next_attempt_at, created_at, finished_at)
    SELECT CAST(t.direction AS message_direction), t.channel, t.topic, t.external_id, t.lane,
           COALESCE(CAST(t.document AS jsonb) -> 'params', '{}'::jsonb), CAST(t.headers AS jsonb),
           ARRAY(SELECT jsonb_array_elements_text(CAST(t.refs AS jsonb))),
           CAST(t.status AS message_status), t.last_error, CAST(:now AS timestamptz), CAST(:now AS timestamptz),
           CASE WHEN t.status IN ('rejected', 'discarded') THEN CAST(:now AS timestamptz) END
      FROM unnest(CAST(:directions AS text[]), CAST(:channels AS text[]), CAST(:topics AS text[]),
                  CAST(:external_ids AS text[]), CAST(:lanes AS text[]), CAST(:documents AS text[]),
                  CAST(:headers AS text[]), CAST(:refs AS text[]), CAST(:statuses AS text[]),
                  CAST(:last_errors AS text[]))
           AS t(direction, channel, topic, external_id, lane, document, headers, refs, status, last_error)
    ON CONFLICT (direction, channel, external_id) WHERE status <> 'rejected' DO NOTHING
    RETURNING id, external_id, status::text AS status
    """
)

# Inbound: lock the oldest ready lane head whose topic has a handler. Runs inside the handler's transaction, so
# the row lock is the claim: a crash rolls everything back and the message is simply claimed again.
CLAIM_INBOUND = text(
    f"""
    WITH RECURSIVE {_LANE_HEADS}
    SELECT m.id, m.topic, m.external_id, m.lane, m.attempts, m.first_attempt_at, m.channel, m.created_at,
           CASE WHEN m.topic = ANY(CAST(:topics_leaving_large_payloads AS text[]))
                 AND pg_column_size(m.payload) > :large_payload_bytes THEN NULL ELSE m.payload END AS payload
      FROM message m
     WHERE m.id = ANY(ARRAY(SELECT id FROM heads))
       AND m.status IN ('queued', 'retrying') AND m.next_attempt_at <= :now AND m.topic = ANY(:topics)
     ORDER BY m.id
     LIMIT 1
       FOR UPDATE OF m SKIP LOCKED
    """
)

# Inbound, tried first: the same claim among the :window oldest pending inbound messages (ix_message_inbound_pending),
# each checked to be its lane's head with one probe of ix_message_pending_lane. Order lanes (one per order) are many
# and short, and the loose index scan above costs one probe per lane with anything pending: hundreds of orders
# being shipped at once made every claim slow. When the window holds no claimable head (e.g. one long lane blocked
# by a retrying head), the bus falls back to CLAIM_INBOUND.
CLAIM_INBOUND_OLDEST = text(
    f"""
    SELECT m.id, m.topic, m.external_id, m.lane, m.attempts, m.first_attempt_at, m.channel, m.created_at,
           CASE WHEN m.topic = ANY(CAST(:topics_leaving_large_payloads AS text[]))
                 AND pg_column_size(m.payload) > :large_payload_bytes THEN NULL ELSE m.payload END AS payload
      FROM message m
     WHERE m.direction = 'in' AND m.status IN ('queued', 'retrying')
       AND m.id <= (SELECT max(w.id) FROM (
                        SELECT id FROM message
                         WHERE direction = 'in' AND status IN ('queued', 'retrying')
                         ORDER BY id LIMIT :window) AS w)
       AND m.next_attempt_at <= :now AND m.topic = ANY(:topics)
       AND (SELECT min(older.id) FROM message older
             WHERE older.direction = 'in' AND older.lane = m.lane AND older.status IN {_PENDING}) = m.id
     ORDER BY m.id
     LIMIT 1
       FOR UPDATE OF m SKIP LOCKED
    """
)
INBOUND_CLAIM_WINDOW = 64

# Outbound: lease up to :limit ready lane heads (an expired lease is taken over: its sender died). The lease
# end doubles as the claim token, so a sender whose lease was taken over cannot overwrite the new owner's result.
# Outbound lanes are many and short (one per order), so instead of visiting every lane, due messages of the channel
# are read in due order from ix_message_outbound_due and each is checked to be its lane's head (its id is the
# lane's oldest pending one: one probe of ix_message_pending_lane, written as a correlated min() so that the planner
# always probes by lane, whatever its statistics say). The cost follows the messages skipped before :limit heads are
# found, not the backlog: an OMS outage that leaves thousands of orders retrying does not slow every claim down.
CLAIM_OUTBOUND = text(
    f"""
    WITH claimable AS (
        SELECT m.id FROM message m
         WHERE m.direction = 'out' AND m.status IN {_PENDING} AND m.next_attempt_at <= :now
           AND m.channel = :channel
           AND (m.status <> 'processing' OR m.lease_until < :now)
           AND (SELECT min(older.id) FROM message older
                 WHERE older.direction = 'out' AND older.lane = m.lane AND older.status IN {_PENDING}) = m.id
         ORDER BY m.next_attempt_at, m.id
         LIMIT :limit
           FOR UPDATE OF m SKIP LOCKED
    )
    UPDATE message m
       SET status = 'processing', lease_until = :lease_until, attempts = m.attempts + 1,
           started_at = :now, first_attempt_at = COALESCE(m.first_attempt_at, :now)
      FROM claimable c
     WHERE m.id = c.id
    RETURNING m.id, m.topic, m.external_id, m.lane, m.payload, m.attempts, m.first_attempt_at, m.channel, m.created_at
    """
)

# Inbound: record the outcome (success: in the handler's transaction; permanent failure: in its own).
FINISH_INBOUND = text(
    """
    UPDATE message
       SET status = CAST(:status AS message_status), attempts = attempts + 1, last_error = :last_error,
           result = CAST(:result AS jsonb), started_at = :started_at, finished_at = :now,
           duration_ms = :duration_ms, first_attempt_at = COALESCE(first_attempt_at, :started_at)
     WHERE id = :id AND status IN ('queued', 'retrying')
    """
)

# Inbound transient failure: the effects were rolled back; keep the lane blocked until next_attempt_at.
RETRY_INBOUND = text(
    """
    UPDATE message
       SET status = 'retrying', attempts = attempts + 1, last_error = :last_error, next_attempt_at = :next_attempt_at,
           started_at = :started_at, first_attempt_at = COALESCE(first_attempt_at, :started_at)
     WHERE id = :id AND status IN ('queued', 'retrying')
    """
)

# Outbound: record the outcome of a send, only if we still hold the lease.
FINISH_OUTBOUND = text(
    """
    UPDATE message
       SET status = CAST(:status AS message_status), last_error = :last_error, result = CAST(:result AS jsonb),
           next_attempt_at = COALESCE(:next_attempt_at, next_attempt_at), lease_until = NULL,
           finished_at = CASE WHEN :finished THEN CAST(:now AS timestamptz) END,
           duration_ms = :duration_ms
     WHERE id = :id AND status = 'processing' AND lease_until = :lease_until
    """
)

# Outbound: gate messages whose success was just recorded (:ids, in FINISH_OUTBOUND's transaction) release their
# lanes' waiting messages: queued, due now, behind the gate message (a lane goes in id order). A statement of its
# own after FINISH_OUTBOUND: a transaction that held a message while reading the gate message FOR SHARE made the
# record wait for its commit, and only a statement started after that sees the held message. One probe of the
# (normally empty) partial index ix_message_waiting_lane per lane. Returns how many were released.
RELEASE_WAITING = text(
    """
    WITH released AS (
        UPDATE message w
           SET status = 'queued', next_attempt_at = :now, last_error = NULL
         WHERE w.direction = 'out' AND w.status = 'waiting'
           AND w.lane = ANY(ARRAY(SELECT g.lane FROM message g
                                   WHERE g.id = ANY(CAST(:ids AS bigint[])) AND g.status = 'succeeded'))
        RETURNING 1
    )
    SELECT count(*) FROM released
    """
)

# The OMS acknowledged an order: the creates `orders sync` queued again and that are not sent yet (queued, retrying)
# are not needed any more. The order's first create stays: sent again, its id lets the OMS see a repeat.
DISCARD_PENDING_CREATES = text(
    """
    WITH discarded AS (
        UPDATE message SET status = 'discarded', finished_at = :now, last_error = :reason
         WHERE direction = 'out' AND lane = :lane AND topic = :topic AND status IN ('queued', 'retrying')
           AND id <> (SELECT o.export_message_ids[1] FROM sales_order o WHERE o.increment_id = :increment_id)
        RETURNING 1
    )
    SELECT count(*) FROM discarded
    """
)

# The same for one lane whose gate opened another way (the OMS acknowledged the order), in the caller's transaction.
RELEASE_WAITING_LANE = text(
    """
    WITH released AS (
        UPDATE message SET status = 'queued', next_attempt_at = :now, last_error = NULL
         WHERE direction = 'out' AND status = 'waiting' AND lane = :lane
        RETURNING 1
    )
    SELECT count(*) FROM released
    """
)

# Operator's retry: what the journal needs to decide it (an order's call may have to wait, app/services/order_gate.py).
MESSAGE_FOR_RETRY = text(
    "SELECT id, direction::text AS direction, channel, topic, lane, status::text AS status FROM message WHERE id = :id"
)

# Operator: try a failed, dead or retrying message again now (a fresh retry window for outbound): queued, or waiting
# (with :last_error saying why) for a call about an order the OMS does not have yet.
RETRY_MESSAGE = text(
    """
    UPDATE message
       SET status = CAST(:status AS message_status), next_attempt_at = :now, first_attempt_at = NULL,
           lease_until = NULL, finished_at = NULL, last_error = COALESCE(:last_error, last_error)
     WHERE id = :id AND status IN ('failed', 'dead', 'retrying')
    RETURNING id
    """
)

# Operator: drop a message that has not succeeded (a waiting one too); its lane moves on.
DISCARD_MESSAGE = text(
    """
    UPDATE message
       SET status = 'discarded', lease_until = NULL, finished_at = :now,
           last_error = COALESCE(:reason, last_error)
     WHERE id = :id AND status IN ('queued', 'waiting', 'retrying', 'failed', 'dead')
    RETURNING id
    """
)

# Operator's bulk retry (app/services/journal.py): each message of a batch to the status decided for it (queued, or
# waiting with :notes saying why), as RETRY_MESSAGE does one. Returns the messages changed; one that is no longer
# failed, dead or retrying is left as it is.
RETRY_MESSAGES = text(
    """
    UPDATE message m
       SET status = CAST(t.status AS message_status), next_attempt_at = :now, first_attempt_at = NULL,
           lease_until = NULL, finished_at = NULL, last_error = COALESCE(t.note, m.last_error)
      FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS text[]), CAST(:notes AS text[])) AS t(id, status, note)
     WHERE m.id = t.id AND m.status IN ('failed', 'dead', 'retrying')
    RETURNING m.id, m.status::text AS status
    """
)

# Operator's bulk discard: DISCARD_MESSAGE for a batch of ids. Returns the messages discarded.
DISCARD_MESSAGES = text(
    """
    UPDATE message
       SET status = 'discarded', lease_until = NULL, finished_at = :now, last_error = COALESCE(:reason, last_error)
     WHERE id = ANY(CAST(:ids AS bigint[])) AND status IN ('queued', 'waiting', 'retrying', 'failed', 'dead')
    RETURNING id
    """
)

# The newest message id: a bulk action works on the messages that matched when it started, never on later ones.
NEWEST_MESSAGE_ID = text("SELECT coalesce(max(id), 0) FROM message")

# Journal retention (app/services/journal_prune.py): one batch of the messages created before :cutoff, after the
# keyset (:after_at, :after_id) in (created_at, id) order (ix_message_created_at: a batch costs the same at the start
# and at the end of millions of rows, and rows a batch kept are not read again). Each is judged:
#   pending  not finished (queued, waiting, processing, retrying): never deleted, whatever its age;
#   recent   finished at or after :finished_before (the cutoff, or earlier: what the processing-time report has not
#            counted yet), or without a finish time;
#   order    what an order's state is read from: its current create (export status, whether the OMS has it, what
#            `orders sync` queues again), its cancel call (a second cancel answers the same request) and its return
#            requests (whether their lines may be asked for again) — kept as long as the order;
#   doomed   deleted (unless :dry_run), by primary key, only if still finished before :finished_before (an operator
#            may retry it meanwhile).
# Returns the counts per verdict, how many were deleted, and the keyset of the last message read.
PRUNE_JOURNAL_BATCH = text(
    """
    WITH examined AS MATERIALIZED (
        SELECT id, created_at, status, finished_at, direction, channel, lane FROM message
         WHERE created_at < :cutoff AND created_at >= :after_at AND (created_at > :after_at OR id > :after_id)
         ORDER BY created_at, id
         LIMIT :batch
    ),
    judged AS MATERIALIZED (
        SELECT e.id,
               CASE WHEN e.status NOT IN ('succeeded', 'failed', 'dead', 'discarded', 'rejected') THEN 'pending'
                    WHEN e.finished_at IS NULL OR e.finished_at >= :finished_before THEN 'recent'
                    WHEN e.direction = 'out' AND e.channel = :order_channel AND starts_with(e.lane, :order_lane)
                         AND EXISTS (
                             SELECT 1 FROM sales_order o
                              WHERE o.increment_id = substr(e.lane, length(:order_lane) + 1)
                                AND (e.id IN (o.export_message_id, o.cancel_message_id)
                                     OR EXISTS (SELECT 1 FROM order_return r
                                                 WHERE r.order_id = o.id AND r.request_message_id = e.id)))
                    THEN 'order'
                    ELSE 'doomed' END AS verdict
          FROM examined e
    ),
    deleted AS (
        DELETE FROM message m
         WHERE NOT CAST(:dry_run AS boolean)
           AND m.id = ANY(ARRAY(SELECT id FROM judged WHERE verdict = 'doomed'))
           AND m.status IN ('succeeded', 'failed', 'dead', 'discarded', 'rejected')
           AND m.finished_at < :finished_before
        RETURNING 1
    ),
    last AS (SELECT created_at, id FROM examined ORDER BY created_at DESC, id DESC LIMIT 1)
    SELECT (SELECT count(*) FROM examined) AS examined,
           (SELECT count(*) FROM judged WHERE verdict = 'doomed') AS doomed,
           (SELECT count(*) FROM judged WHERE verdict = 'pending') AS pending,
           (SELECT count(*) FROM judged WHERE verdict = 'recent') AS recent,
           (SELECT count(*) FROM judged WHERE verdict = 'order') AS kept_for_orders,
           (SELECT count(*) FROM deleted) AS deleted,
           (SELECT created_at FROM last) AS last_created_at, (SELECT id FROM last) AS last_id
    """
)

# The daily prune: one replica at a time (a session lock, released when its connection closes), at most once a day
# (integration_state.daily_prune_at: when the last one ran, whether or not it deleted anything).
TRY_PRUNE_LOCK = text("SELECT pg_try_advisory_lock(:key)")
LAST_DAILY_PRUNE = text("SELECT daily_prune_at FROM integration_state WHERE id = 1")
MARK_DAILY_PRUNE = text("UPDATE integration_state SET daily_prune_at = :at WHERE id = 1")

# A prune run's journal entry (a finished inbound message of the connector itself: no worker claims it).
JOURNAL_PRUNE_RUN = text(
    """
    INSERT INTO message (direction, channel, topic, external_id, lane, payload, status, attempts, result,
                         next_attempt_at, first_attempt_at, created_at, started_at, finished_at, duration_ms)
    VALUES ('in', :channel, :topic, :external_id, :topic, CAST(:payload AS jsonb), 'succeeded', 1,
            CAST(:result AS jsonb), :now, :started_at, :started_at, :started_at, :now, :duration_ms)
    ON CONFLICT (direction, channel, external_id) WHERE status <> 'rejected' DO NOTHING
    RETURNING id
    """
)

# Stock: apply one message's rows with the timestamp filter (ARCHITECTURE §5), in one statement. A SKU's row is
# written only if the message is not older than the message that last set it (equal ⇒ applied again: idempotent).
# Rows arrive sorted by SKU so concurrent writers lock them in the same order (no deadlock). Returns how many
# rows were written; the others were stale.
APPLY_STOCK = text(
    """
    WITH written AS (
        INSERT INTO stock (sku, aggregate_id, quantity, unlimited, source_ts, message_id, updated_at)
        SELECT t.sku, :aggregate_id, t.quantity, t.unlimited, :source_ts, :message_id, :now
          FROM unnest(CAST(:skus AS text[]), CAST(CAST(:quantities AS text[]) AS numeric[]),
                      CAST(:unlimited AS boolean[]))
               AS t(sku, quantity, unlimited)
         ORDER BY t.sku
        ON CONFLICT (sku, aggregate_id) DO UPDATE
           SET quantity = excluded.quantity, unlimited = excluded.unlimited, source_ts = excluded.source_ts,
               message_id = excluded.message_id, updated_at = excluded.updated_at
         WHERE stock.source_ts <= excluded.source_ts
        RETURNING 1
    )
    SELECT count(*) FROM written
    """
)

# Stock, in PostgreSQL: the snapshot's fields but its rows (NULL when it has no object snapshot with a stock list).
STOCK_HEADER = text(
    """
    SELECT CASE WHEN jsonb_typeof(payload->'snapshot') = 'object'
                 AND jsonb_typeof(payload->'snapshot'->'stock') = 'array'
                THEN (payload->'snapshot') - 'stock' END AS header
      FROM message WHERE id = :message_id
    """
)

# A message's whole payload, for a handler that was claimed without it and needs it after all.
MESSAGE_PAYLOAD = text("SELECT payload FROM message WHERE id = :message_id")

# Stock, in PostgreSQL: APPLY_STOCK reading the rows straight from the stored message, so a FULL page never travels
# to Python and back. Only if every row is *plain* — what app/protocol/stock.py takes as is: an object, a text SKU of
# 1-200 characters starting and ending with a printable ASCII character, a quantity of up to 15 digits and 4
# decimals (text or number), `unlimited` absent or boolean. Otherwise nothing is written and the position of the
# first other row comes back: the handler then reads the message in Python, which names any bad field. A repeated
# SKU: the last row wins.
APPLY_STOCK_FROM_MESSAGE = text(
    r"""
    WITH rows AS MATERIALIZED (
        SELECT e.ord, e.r->>'sku' AS sku, e.r->>'quantity' AS quantity,
               COALESCE(e.r->'unlimited' = 'true'::jsonb, false) AS unlimited,
               COALESCE(jsonb_typeof(e.r) = 'object'
                        AND jsonb_typeof(e.r->'sku') = 'string'
                        AND length(e.r->>'sku') <= 200
                        AND (e.r->>'sku') ~ '^[!-~](.*[!-~])?$'
                        AND jsonb_typeof(e.r->'quantity') IN ('string', 'number')
                        AND (e.r->>'quantity') ~ '^[0-9]{1,15}(\.[0-9]{1,4})?$'
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
        ON CONFLICT (sku, aggregate_id) DO UPDATE
           SET quantity = excluded.quantity, unlimited = excluded.unlimited, source_ts = excluded.source_ts,
               message_id = excluded.message_id, updated_at = excluded.updated_at
         WHERE stock.source_ts <= excluded.source_ts
        RETURNING 1
    )
    SELECT (SELECT position FROM irregular) AS first_irregular, (SELECT count(*) FROM rows) AS rows,
           (SELECT count(*) FROM latest) AS skus, (SELECT count(*) FROM written) AS applied
    """
)

# Stock a message applied (it passed the timestamp filter: the row now carries this message's id), as batches of
# Adobe Commerce source items in the outbox, one lane per source so that a later snapshot's batch arrives after an
# earlier one. The SKUs come from :skus, or from the stored message when the rows were applied in SQL (:skus NULL);
# every lookup is by the stock table's primary key. Unlimited stock is not a source quantity: it is left out.
QUEUE_SOURCE_ITEMS = text(
    """
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
        SELECT batch, count(*) AS skus,
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
               '{}'::jsonb, ARRAY[CAST(:source_code AS text)], 'queued', :now, :now
          FROM batches ORDER BY batch
        ON CONFLICT (direction, channel, external_id) WHERE status <> 'rejected' DO NOTHING
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM queued) AS messages,
           CAST((SELECT coalesce(sum(skus), 0) FROM batches) AS bigint) AS skus
    """
)

NOTIFY_BUS = text("SELECT pg_notify('oms_connector_bus', '')")
BUS_CHANNEL = "oms_connector_bus"

# /integration (app/services/integration_status.py): each statement's cost follows what is pending, or a limit,
# never the size of the journal.
# What is pending per direction, channel and topic (the JSON-RPC method): order lanes are one per order, so a row
# per lane would be one per order. Read through ix_message_status_id (the pending statuses only) and hashed per
# topic: no count of distinct lanes, which sorts every pending message (6x the cost).
TOPIC_BACKLOG = text(
    """
    SELECT direction::text AS direction, channel, topic,
           count(*) FILTER (WHERE status = 'queued') AS queued,
           count(*) FILTER (WHERE status = 'waiting') AS waiting,
           count(*) FILTER (WHERE status = 'processing') AS processing,
           count(*) FILTER (WHERE status = 'retrying') AS retrying,
           min(created_at) AS oldest_pending_at
      FROM message WHERE status IN ('queued', 'waiting', 'processing', 'retrying')
     GROUP BY direction, channel, topic
    """
)
# Failed and dead messages per direction, channel and topic, among the newest :limit of each status (a backward scan
# of ix_message_status_id): they stay until an operator retries or discards them, so there may be very many.
TOPIC_FAILED = text(
    """
    SELECT direction::text AS direction, channel, topic,
           count(*) FILTER (WHERE status = 'failed') AS failed, count(*) FILTER (WHERE status = 'dead') AS dead
      FROM ((SELECT direction, channel, topic, status FROM message
              WHERE status = 'failed' ORDER BY id DESC LIMIT :limit)
            UNION ALL
            (SELECT direction, channel, topic, status FROM message
              WHERE status = 'dead' ORDER BY id DESC LIMIT :limit)) AS newest
     GROUP BY direction, channel, topic
    """
)
# Lanes blocked by their head: a retrying message that is the oldest pending one of its lane (one probe of
# ix_message_pending_lane each); nothing behind it moves until it succeeds. Failed and dead messages no longer hold
# their lane (TOPIC_FAILED counts them). Only the :count_limit oldest retrying messages are examined (an index-only
# scan of ix_message_status_id; an OMS outage leaves one per order), fetched by primary key as in the claims; the
# :limit oldest heads are returned, each with the number of blocked lanes found and of messages examined.
BLOCKED_LANES = text(
    f"""
    WITH oldest AS MATERIALIZED (
        SELECT id FROM message WHERE status = 'retrying' ORDER BY id LIMIT :count_limit
    )
    SELECT b.*, count(*) OVER () AS counted, (SELECT count(*) FROM oldest) AS examined
      FROM (SELECT m.id AS message_id, m.direction::text AS direction, m.channel, m.lane, m.topic, m.attempts,
                   left(m.last_error, :error_chars) AS last_error,
                   COALESCE(m.first_attempt_at, m.created_at) AS since, m.next_attempt_at
              FROM message m
             WHERE m.id = ANY(ARRAY(SELECT id FROM oldest)) AND m.status = 'retrying'
               AND NOT EXISTS (SELECT 1 FROM message older
                                WHERE older.direction = m.direction AND older.lane = m.lane
                                  AND older.status IN {_PENDING} AND older.id < m.id)) AS b
     ORDER BY b.message_id
     LIMIT :limit
    """
)
# The newest message of a direction (rejected ones aside) among the newest :window messages: a backward scan of the
# primary key that stops there, however long ago that direction last had a message.
LAST_MESSAGE = text(
    """
    SELECT id, topic, status::text AS status, created_at, finished_at, last_error
      FROM message
     WHERE direction = CAST(:direction AS message_direction) AND status <> 'rejected'
       AND id > (SELECT coalesce(max(id), 0) FROM message) - :window
     ORDER BY id DESC LIMIT 1
    """
)
# The cluster-wide gauges of GET /metrics (app/metrics.py), one row of four JSON columns, each part bounded as the
# /integration statements above are: `pending` per direction, channel and status (queued, waiting, processing,
# retrying) with the age of each group's oldest message (an index scan of what is pending only); `settled`, failed and
# dead per direction and channel among the newest :failed_limit of each status (as TOPIC_FAILED); `blocked`, lanes
# whose head is retrying among the oldest :blocked_limit retrying messages, with the age of the oldest head's first
# attempt (as BLOCKED_LANES); `catalog_export`, the latest export's progress (primary key). Ages in seconds at :now.
METRIC_GAUGES = text(
    f"""
    WITH retrying AS MATERIALIZED (
        SELECT id FROM message WHERE status = 'retrying' ORDER BY id LIMIT :blocked_limit
    )
    SELECT
      (SELECT coalesce(jsonb_agg(p), '[]') FROM (
          SELECT direction::text AS direction, channel, status::text AS status, count(*) AS messages,
                 extract(epoch FROM CAST(:now AS timestamptz) - min(created_at)) AS oldest_age_s
            FROM message WHERE status IN ('queued', 'waiting', 'processing', 'retrying')
           GROUP BY direction, channel, status) AS p) AS pending,
      (SELECT coalesce(jsonb_agg(s), '[]') FROM (
          SELECT direction::text AS direction, channel, status::text AS status, count(*) AS messages
            FROM ((SELECT direction, channel, status FROM message
                    WHERE status = 'failed' ORDER BY id DESC LIMIT :failed_limit)
                  UNION ALL
                  (SELECT direction, channel, status FROM message
                    WHERE status = 'dead' ORDER BY id DESC LIMIT :failed_limit)) AS newest
           GROUP BY direction, channel, status) AS s) AS settled,
      (SELECT coalesce(jsonb_agg(b), '[]') FROM (
          SELECT m.direction::text AS direction, m.channel, count(*) AS lanes,
                 extract(epoch FROM CAST(:now AS timestamptz) - min(COALESCE(m.first_attempt_at, m.created_at)))
                   AS oldest_age_s
            FROM message m
           WHERE m.id = ANY(ARRAY(SELECT id FROM retrying)) AND m.status = 'retrying'
             AND NOT EXISTS (SELECT 1 FROM message older
                              WHERE older.direction = m.direction AND older.lane = m.lane
                                AND older.status IN {_PENDING} AND older.id < m.id)
           GROUP BY m.direction, m.channel) AS b) AS blocked,
      (SELECT to_jsonb(e) FROM (
          SELECT status, products_read, products_sent, batches_sent, batches_acknowledged, error_count,
                 extract(epoch FROM started_at) AS started_at_s
            FROM catalog_export ORDER BY id DESC LIMIT 1) AS e) AS catalog_export
    """
)


def positional(clause: TextClause) -> tuple[str, list[str]]:
    """The same statement for plain asyncpg: ``:name`` → ``$n``, with the parameter names in order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return re.sub(r"(?<![:\w]):(\w+)", number, clause.text), names


# --- orders ----------------------------------------------------------------------------------------------------
# An order's export status is read from its export message, so the order and the journal can never disagree:
# held (no export message: status not exportable) · queued (waiting, being sent or retrying) · sent · acknowledged
# (the OMS's `created` arrived; wins over everything) · failed (refused, or discarded by an operator) · dead.
ORDER_EXPORT_STATUS = """
    CASE WHEN o.acknowledged_at IS NOT NULL THEN 'acknowledged'
         WHEN o.export_message_id IS NULL THEN 'held'
         WHEN m.status IN ('queued', 'processing', 'retrying') THEN 'queued'
         WHEN m.status = 'succeeded' THEN 'sent'
         WHEN m.status = 'dead' THEN 'dead'
         ELSE 'failed' END"""

_ORDER_COLUMNS = f"""
    o.id, o.increment_id, o.entity_id, o.store_id, o.commerce_status, o.oms_status, o.received_at, o.updated_at,
    o.export_message_id, o.export_message_ids, o.acknowledged_at, o.acknowledged_message_id,
    m.status::text AS message_status, m.attempts AS export_attempts, m.last_error AS export_error,
    m.finished_at AS sent_at, {ORDER_EXPORT_STATUS} AS export_status"""

# One order with its export status, the stored order and the create params.
ORDER_VIEW = text(
    f"""
    SELECT {_ORDER_COLUMNS}, o.document, o.mcom
      FROM sales_order o LEFT JOIN message m ON m.id = o.export_message_id
     WHERE o.increment_id = :increment_id
    """
)

# A page of orders by primary key, optionally received since a time and of one export status; oldest first after
# :after (GET /orders), or newest first before :before (the console's grid). Each export status is written as
# conditions PostgreSQL can answer from an index, not as the CASE above, which it can only test row by row (a rare
# status among a million orders read most of the table):
#   held, acknowledged        columns of the order (held ones through the partial ix_sales_order_held);
#   sent, or any status with  the primary-key walk, testing each order's export message: a page is found at once
#   RARE_EXPORTS or more      when the status is common;
#   messages
#   queued, failed, dead      when fewer messages have those statuses (COUNT_EXPORT_MESSAGES, bounded): the create
#   with fewer                messages in those statuses first (the status index), then their orders
#                             (ix_sales_order_export_message_id; other topics' messages find none), then the page.
#                             MATERIALIZED, so that a generic plan cannot turn it back into the walk, which reads
#                             every order when the status is rare.
_ORDER_STATUS_FILTERS = {
    None: "TRUE",
    "held": "o.export_message_id IS NULL AND o.acknowledged_at IS NULL",
    "acknowledged": "o.acknowledged_at IS NOT NULL",
    "sent": (
        "o.acknowledged_at IS NULL AND o.export_message_id IN "
        "(SELECT id FROM message WHERE status = ANY(CAST(:message_statuses AS message_status[])))"
    ),
    "rare": "o.acknowledged_at IS NULL AND o.export_message_id IN (SELECT id FROM rare_exports)",
}
RARE_EXPORTS = 5000
COUNT_EXPORT_MESSAGES = text(
    """
    SELECT count(*) FROM (SELECT 1 FROM message WHERE status = ANY(CAST(:message_statuses AS message_status[]))
                           LIMIT :bound) AS found
    """
)
_RARE_EXPORTS = """
        WITH rare_exports AS MATERIALIZED (
            SELECT id FROM message WHERE status = ANY(CAST(:message_statuses AS message_status[]))
        )"""


def order_page(status_filter: str | None, *, newest_first: bool) -> TextClause:
    """The statement of ``OrderService.page`` for one kind of export-status filter (see _ORDER_STATUS_FILTERS)."""
    return _ORDER_PAGES[(status_filter, newest_first)]


_ORDER_PAGES = {
    (kind, newest): text(
        f"""{_RARE_EXPORTS if kind == "rare" else ""}
        SELECT {_ORDER_COLUMNS}
          FROM sales_order o LEFT JOIN message m ON m.id = o.export_message_id
         WHERE {"o.id < :before" if newest else "o.id > :after"}
           AND (CAST(:since AS timestamptz) IS NULL OR o.received_at >= CAST(:since AS timestamptz))
           AND {condition}
         ORDER BY o.id {"DESC" if newest else ""}
         LIMIT :limit
        """
    )
    for kind, condition in _ORDER_STATUS_FILTERS.items()
    for newest in (False, True)
}

# A posted order: stored if new (the caller then holds its row lock); the stored document is the order itself,
# also when it came wrapped as an Adobe I/O event (:path '{data,value}'), taken from the raw JSON text unchanged.
INSERT_ORDER = text(
    """
    INSERT INTO sales_order (increment_id, entity_id, store_id, commerce_status, commerce_updated_at, document,
                             received_at, updated_at)
    VALUES (:increment_id, :entity_id, :store_id, :status, :commerce_updated_at,
            CAST(:body AS jsonb) #> CAST(:path AS text[]), :now, :now)
    ON CONFLICT (increment_id) DO NOTHING
    RETURNING id
    """
)

# A posted order that was stored before: lock it, so two posts of one order decide one after the other.
LOCK_ORDER = text(
    """
    SELECT id, commerce_status, commerce_updated_at, export_message_id, cardinality(export_message_ids) AS exports
      FROM sales_order WHERE increment_id = :increment_id
       FOR UPDATE
    """
)

# A newer post of a stored order: keep what the store says now.
UPDATE_ORDER = text(
    """
    UPDATE sales_order
       SET entity_id = :entity_id, store_id = :store_id, commerce_status = :status,
           commerce_updated_at = :commerce_updated_at, document = CAST(:body AS jsonb) #> CAST(:path AS text[]),
           updated_at = :now
     WHERE id = :id
    """
)

# An export queued: the create params as queued (copied from the message: no second trip of the JSON), the message
# that carries them, and the order's lines as the OMS will know them (what shipments, returns and refunds name).
SET_ORDER_EXPORT = text(
    """
    WITH params AS (SELECT payload FROM message WHERE id = :message_id),
    exported AS (
        UPDATE sales_order
           SET mcom = (SELECT payload FROM params), export_message_id = :message_id,
               export_message_ids = array_append(export_message_ids, CAST(:message_id AS bigint)), updated_at = :now
         WHERE id = :id
    )
    INSERT INTO order_line (order_id, line_id, line_number, item_id, sku, product_type, gross)
    SELECT :id, line ->> 'id', CAST(line ->> 'line_number' AS int),
           CASE WHEN line ->> 'product_type' <> 'SHIPPING' THEN substring(line ->> 'id' from '^(.*)-[0-9]+$') END,
           line ->> 'sku', line ->> 'product_type', CAST(line -> 'amount' ->> 'gross_amount' AS numeric)
      FROM params, jsonb_array_elements(params.payload -> 'order' -> 'lines') AS line
    ON CONFLICT (order_id, line_id) DO UPDATE
       SET line_number = excluded.line_number, item_id = excluded.item_id, sku = excluded.sku,
           product_type = excluded.product_type, gross = excluded.gross
    """
)

# The sourcing rules of the bundles of one order (plain asyncpg: one self-committing statement).
BUNDLE_RULES = text("SELECT sku, rule FROM bundle_sourcing_rule WHERE sku = ANY(CAST(:skus AS text[]))")

# `orders sync`: orders whose status is exportable but that have no export, or whose export failed, was discarded
# or died — oldest first, the next :limit after id :after (one batch). Locked, so two syncs never queue one order
# twice.
ORDERS_TO_SYNC = text(
    """
    SELECT o.id, o.increment_id, o.document::text AS document_text, cardinality(o.export_message_ids) AS exports
      FROM sales_order o LEFT JOIN message m ON m.id = o.export_message_id
     WHERE o.id > :after AND o.acknowledged_at IS NULL
       AND ((o.export_message_id IS NULL AND o.commerce_status = ANY(CAST(:statuses AS text[])))
            OR m.status IN ('failed', 'dead', 'discarded'))
     ORDER BY o.id
     LIMIT :limit
       FOR UPDATE OF o SKIP LOCKED
    """
)

# The OMS's `magento.sales.order_management.created`: the order is acknowledged (the first acknowledgement counts).
ACKNOWLEDGE_ORDER = text(
    """
    UPDATE sales_order
       SET acknowledged_at = COALESCE(acknowledged_at, :now),
           acknowledged_message_id = COALESCE(acknowledged_message_id, :message_id), updated_at = :now
     WHERE increment_id = :increment_id
    RETURNING acknowledged_message_id
    """
)

# Whether the OMS has an order (app/services/order_gate.py): acknowledged, or its current export succeeded. The
# order row is locked, and the export message read FOR SHARE: a success being recorded meanwhile is waited for and
# then read (so a call is never held after the release that would have let it go).
ORDER_GATE = text(
    """
    SELECT o.acknowledged_at IS NOT NULL AS acknowledged, o.export_message_id,
           (SELECT m.status::text FROM message m WHERE m.id = o.export_message_id FOR SHARE) AS export_status
      FROM sales_order o WHERE o.increment_id = :increment_id
       FOR UPDATE OF o
    """
)

# Sync export: the message just queued is leased to the request that delivers it inline, in the transaction that
# queued it, so no worker can take it meanwhile; if that request dies, the lease expires and a worker sends it.
LEASE_FOR_INLINE_SEND = text(
    """
    UPDATE message
       SET status = 'processing', lease_until = :lease_until, attempts = 1, started_at = :now, first_attempt_at = :now
     WHERE id = :id AND status = 'queued'
    RETURNING id, topic, external_id, lane, payload, attempts, first_attempt_at, channel, created_at
    """
)


# --- order lifecycle -------------------------------------------------------------------------------------------
# The order a lifecycle event or request is about, locked: the OMS's messages of one order arrive in one lane, but
# a cancel or return request from the store may come at the same moment.
LOCK_ORDER_LIFECYCLE = text(
    """
    SELECT id, increment_id, entity_id, store_id, mcom -> 'order' ->> 'store' AS oms_store, export_message_id,
           oms_status, oms_status_reason, cancel_requested_at, canceled_at, store_credit, store_credit_note
      FROM sales_order WHERE increment_id = :increment_id
       FOR UPDATE
    """
)

ORDER_LINES = text(
    """
    SELECT line_id, line_number, item_id, sku, product_type, gross, status, status_reason, shipment_id, return_id,
           refund_id, refunded_before_shipment
      FROM order_line WHERE order_id = :order_id ORDER BY line_number
    """
)

ORDER_DOCUMENT_TEXT = text("SELECT document::text FROM sales_order WHERE id = :order_id")

SET_OMS_STATUS = text(
    """
    UPDATE sales_order
       SET oms_status = :status, oms_status_reason = :reason, oms_status_at = :status_at,
           canceled_at = CASE WHEN :canceled THEN COALESCE(canceled_at, :now) ELSE canceled_at END, updated_at = :now
     WHERE id = :order_id
    """
)

INSERT_STATUS_CHANGE = text(
    """
    INSERT INTO order_status_change (order_id, oms_status, reason, commerce_status, status_at, line_statuses,
                                     message_id, recorded_at)
    VALUES (:order_id, :status, :reason, :commerce_status, :status_at, CAST(:line_statuses AS jsonb), :message_id,
            :now)
    RETURNING id
    """
)

SET_STATUS_CHANGE_DELIVERY = text("UPDATE order_status_change SET commerce_message_id = :message_id WHERE id = :id")

# Line statuses from an update; a line the update leaves without a status keeps its own (protocol §6, row 12).
SET_LINE_STATUSES = text(
    """
    UPDATE order_line l
       SET status = t.status, status_reason = NULLIF(t.reason, '')
      FROM unnest(CAST(:line_ids AS text[]), CAST(:statuses AS text[]), CAST(:reasons AS text[]))
           AS t(line_id, status, reason)
     WHERE l.order_id = :order_id AND l.line_id = t.line_id
    """
)

INSERT_SHIPMENT = text(
    """
    INSERT INTO order_shipment (order_id, shipment_key, source_id, method, shipped_at, items, packages, message_id,
                                recorded_at)
    VALUES (:order_id, :shipment_key, :source_id, :method, :shipped_at, CAST(:items AS jsonb),
            CAST(:packages AS jsonb), :message_id, :now)
    ON CONFLICT (order_id, shipment_key) DO NOTHING
    RETURNING id
    """
)

SET_SHIPMENT_DELIVERY = text(
    """
    UPDATE order_shipment SET invoice_message_id = :invoice_message_id, commerce_message_id = :message_id
     WHERE id = :id
    """
)

MARK_LINES = text(
    """
    UPDATE order_line
       SET shipment_id = COALESCE(CAST(:shipment_id AS bigint), shipment_id),
           return_id = COALESCE(CAST(:return_id AS bigint), return_id),
           refund_id = COALESCE(CAST(:refund_id AS bigint), refund_id),
           refunded_before_shipment = refunded_before_shipment OR :before_shipment
     WHERE order_id = :order_id AND line_id = ANY(CAST(:line_ids AS text[]))
    """
)

FIND_RETURN = text(
    """
    SELECT id, rma, status, lines, history FROM order_return
     WHERE order_id = :order_id AND (rma = :rma OR (rma IS NULL AND :match_pending))
     ORDER BY rma IS NULL, id
    """
)

INSERT_RETURN = text(
    """
    INSERT INTO order_return (order_id, rma, status, status_at, source_id, tracking, lines, history,
                              request_message_id, message_id, created_at, updated_at)
    VALUES (:order_id, :rma, :status, :status_at, :source_id, CAST(:tracking AS jsonb), CAST(:lines AS jsonb),
            CAST(:history AS jsonb), :request_message_id, :message_id, :now, :now)
    RETURNING id
    """
)

UPDATE_RETURN = text(
    """
    UPDATE order_return
       SET rma = :rma, status = :status, status_at = :status_at, source_id = COALESCE(:source_id, source_id),
           tracking = tracking || CAST(:tracking AS jsonb), lines = CAST(:lines AS jsonb),
           history = history || CAST(:history AS jsonb), message_id = :message_id, updated_at = :now
     WHERE id = :id
    """
)

INSERT_REFUND = text(
    """
    INSERT INTO order_refund (order_id, credit_note_number, credit_note_date, rma, refund_type, refund_reason, kind,
                              credit_memo, lines, before_shipment, total, message_id, recorded_at)
    VALUES (:order_id, :number, :note_date, :rma, :refund_type, :refund_reason, :kind, CAST(:credit_memo AS jsonb),
            CAST(:lines AS jsonb), CAST(:before_shipment AS text[]), :total, :message_id, :now)
    ON CONFLICT (order_id, credit_note_number) DO NOTHING
    RETURNING id
    """
)

SET_REFUND_DELIVERY = text("UPDATE order_refund SET commerce_message_id = :message_id WHERE id = :id")

SET_STORE_CREDIT = text(
    "UPDATE sales_order SET store_credit = :amount, store_credit_note = :note, updated_at = :now WHERE id = :order_id"
)

REQUEST_CANCEL = text(
    """
    UPDATE sales_order
       SET cancel_requested_at = :now, cancel_reason = :reason, cancel_message_id = :message_id, updated_at = :now
     WHERE id = :order_id
    """
)

CANCEL_MESSAGE_OF_ORDER = text(
    """
    SELECT o.cancel_message_id, m.status::text AS status
      FROM sales_order o LEFT JOIN message m ON m.id = o.cancel_message_id
     WHERE o.id = :order_id
    """
)

# Returns the store asked for that the OMS never took (the authorize call failed, died or was discarded, and no
# RMA came back): their lines may be asked for again.
ABANDONED_RETURNS = text(
    """
    SELECT r.id FROM order_return r JOIN message m ON m.id = r.request_message_id
     WHERE r.order_id = :order_id AND r.rma IS NULL AND m.status IN ('failed', 'dead', 'discarded')
    """
)

# A return the store asked for: its authorize call, and its lines taken so that no second request picks them.
SET_RETURN_REQUEST = text(
    """
    WITH marked AS (
        UPDATE order_line SET return_id = :id
         WHERE order_id = :order_id AND line_id = ANY(CAST(:line_ids AS text[]))
    )
    UPDATE order_return SET request_message_id = :message_id WHERE id = :id
    """
)

SET_CANCEL_DELIVERY = text("UPDATE sales_order SET cancel_commerce_message_id = :message_id WHERE id = :order_id")

SET_STORE_CREDIT_DELIVERY = text("UPDATE sales_order SET store_credit_message_id = :message_id WHERE id = :order_id")

# GET /orders/{id}: what happened since the export, each effect with the state of its delivery to Adobe Commerce
# ('pruned': its message finished longer ago than OMS_JOURNAL_RETENTION_DAYS and was deleted).
_DELIVERY = (
    "COALESCE((SELECT status::text FROM message WHERE id = {column}), CASE WHEN {column} IS NOT NULL THEN 'pruned' END)"
)

ORDER_LIFECYCLE = text(
    f"""
    SELECT o.oms_status, o.oms_status_reason, o.oms_status_at, o.cancel_requested_at, o.cancel_reason,
           o.cancel_message_id, {_DELIVERY.format(column="o.cancel_message_id")} AS cancel_message_status,
           o.canceled_at, o.cancel_commerce_message_id,
           {_DELIVERY.format(column="o.cancel_commerce_message_id")} AS cancel_delivery,
           o.store_credit, o.store_credit_note, o.store_credit_message_id,
           {_DELIVERY.format(column="o.store_credit_message_id")} AS store_credit_delivery,
           (SELECT coalesce(jsonb_agg(jsonb_build_object(
                'oms_status', c.oms_status, 'reason', c.reason, 'commerce_status', c.commerce_status,
                'status_at', c.status_at, 'recorded_at', c.recorded_at, 'message_id', c.message_id,
                'line_statuses', c.line_statuses, 'commerce_message_id', c.commerce_message_id,
                'delivery', {_DELIVERY.format(column="c.commerce_message_id")}) ORDER BY c.id), '[]')
              FROM order_status_change c WHERE c.order_id = o.id) AS history,
           (SELECT coalesce(jsonb_agg(jsonb_build_object(
                'shipment_key', s.shipment_key, 'source_id', s.source_id, 'method', s.method,
                'shipped_at', s.shipped_at, 'items', s.items, 'packages', s.packages, 'message_id', s.message_id,
                'recorded_at', s.recorded_at, 'invoice_message_id', s.invoice_message_id,
                'invoice_delivery', {_DELIVERY.format(column="s.invoice_message_id")},
                'commerce_message_id', s.commerce_message_id,
                'delivery', {_DELIVERY.format(column="s.commerce_message_id")}) ORDER BY s.id), '[]')
              FROM order_shipment s WHERE s.order_id = o.id) AS shipments,
           (SELECT coalesce(jsonb_agg(jsonb_build_object(
                'rma', r.rma, 'status', r.status, 'status_at', r.status_at, 'source_id', r.source_id,
                'tracking', r.tracking, 'lines', r.lines, 'history', r.history,
                'request_message_id', r.request_message_id,
                'request_delivery', {_DELIVERY.format(column="r.request_message_id")},
                'created_at', r.created_at, 'updated_at', r.updated_at) ORDER BY r.id), '[]')
              FROM order_return r WHERE r.order_id = o.id) AS returns,
           (SELECT coalesce(jsonb_agg(jsonb_build_object(
                'credit_note_number', f.credit_note_number, 'credit_note_date', f.credit_note_date, 'rma', f.rma,
                'refund_type', f.refund_type, 'refund_reason', f.refund_reason, 'kind', f.kind,
                'credit_memo', f.credit_memo, 'lines', f.lines, 'refunded_before_shipment', f.before_shipment,
                'total', f.total, 'message_id', f.message_id, 'recorded_at', f.recorded_at,
                'commerce_message_id', f.commerce_message_id,
                'delivery', {_DELIVERY.format(column="f.commerce_message_id")}) ORDER BY f.id), '[]')
              FROM order_refund f WHERE f.order_id = o.id) AS refunds,
           (SELECT coalesce(jsonb_agg(jsonb_build_object(
                'line_id', l.line_id, 'line_number', l.line_number, 'item_id', l.item_id, 'sku', l.sku,
                'product_type', l.product_type, 'status', l.status, 'shipped', l.shipment_id IS NOT NULL,
                'returned', l.return_id IS NOT NULL, 'refunded', l.refund_id IS NOT NULL,
                'refunded_before_shipment', l.refunded_before_shipment) ORDER BY l.line_number), '[]')
              FROM order_line l WHERE l.order_id = o.id) AS lines
      FROM sales_order o WHERE o.increment_id = :increment_id
    """
)


# --- catalog ---------------------------------------------------------------------------------------------------
SEED_CATALOG_SETTING = text(
    """
    INSERT INTO catalog_setting (key, value, updated_at) VALUES (:key, CAST(:value AS jsonb), :now)
    ON CONFLICT (key) DO NOTHING
    """
)

SET_CATALOG_SETTING = text(
    """
    INSERT INTO catalog_setting (key, value, updated_at) VALUES (:key, CAST(:value AS jsonb), :now)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
    """
)

CATALOG_SETTING = text("SELECT value FROM catalog_setting WHERE key = :key")

# Two concurrent PUTs of the shipping methods: one after the other, each seeing what the other left.
LOCK_CATALOG_SETTINGS = text("LOCK TABLE catalog_setting IN SHARE ROW EXCLUSIVE MODE")

# A SKU renamed in the store keeps its Adobe Commerce id: the id leaves the row of the old SKU first.
RELEASE_PRODUCT_ID = text(
    "UPDATE catalog_product SET product_id = NULL WHERE product_id = CAST(:product_id AS bigint) AND sku <> :sku"
)

# A product as the store posted it (again), or a shipping method (:shipping_method): what it is now; a re-posted
# deleted product is back. A row of the other kind is never overwritten: no row comes back then (a SKU conflict).
# Localized names (CSV store-view rows) are kept and returned: the params the OMS receives include them.
UPSERT_CATALOG_PRODUCT = text(
    """
    INSERT INTO catalog_product (sku, product_id, type, name, enabled, deleted, children_skus, child_ids,
                                 custom_attributes, website_ids, shipping_method, created_at, updated_at)
    VALUES (:sku, :product_id, :type, :name, :enabled, false, CAST(:children_skus AS text[]),
            CAST(:child_ids AS bigint[]), CAST(:custom_attributes AS jsonb), CAST(:website_ids AS integer[]),
            :shipping_method, :now, :now)
    ON CONFLICT (sku) DO UPDATE
       SET product_id = COALESCE(excluded.product_id, catalog_product.product_id), type = excluded.type,
           name = excluded.name, enabled = excluded.enabled, deleted = false, children_skus = excluded.children_skus,
           child_ids = excluded.child_ids, custom_attributes = excluded.custom_attributes,
           website_ids = excluded.website_ids, updated_at = excluded.updated_at
     WHERE catalog_product.shipping_method = excluded.shipping_method
    RETURNING localized_names
    """
)

# What holds each of these SKUs in the catalog (a store product or a shipping method), for a SKU conflict's answer.
CATALOG_SKU_HOLDERS = text(
    """
    SELECT sku, type, name, deleted, shipping_method FROM catalog_product
     WHERE sku = ANY(CAST(:skus AS text[])) ORDER BY sku
    """
)

SKUS_OF_PRODUCT_IDS = text("SELECT product_id, sku FROM catalog_product WHERE product_id = ANY(CAST(:ids AS bigint[]))")

# The configurables linking any of these child ids (each once), locked in SKU order.
PARENTS_OF_PRODUCTS = text(
    """
    SELECT sku, type, name, enabled, deleted, children_skus, child_ids, custom_attributes, localized_names
      FROM catalog_product
     WHERE child_ids && CAST(:child_ids AS bigint[])
     ORDER BY sku
       FOR UPDATE
    """
)

SET_PRODUCT_CHILDREN = text("UPDATE catalog_product SET children_skus = CAST(:children AS text[]) WHERE sku = :sku")

LOCK_PRODUCT_EXPORT = text(
    """
    SELECT e.fingerprint AS exported_fingerprint, p.exports
      FROM catalog_product p LEFT JOIN catalog_product_exported e ON e.sku = p.sku
     WHERE p.sku = :sku
       FOR UPDATE OF p
    """
)

# What the OMS was sent last for a product (change detection compares against it).
_RECORD_EXPORTED = """
    INSERT INTO catalog_product_exported AS e (sku, fingerprint)
    SELECT * FROM unnest(CAST(:skus AS text[]), CAST(:fingerprints AS text[]))
    ON CONFLICT (sku) DO UPDATE SET fingerprint = excluded.fingerprint
"""

SET_PRODUCT_EXPORTED = text(
    """
    WITH recorded AS (
        INSERT INTO catalog_product_exported (sku, fingerprint) VALUES (:sku, :fingerprint)
        ON CONFLICT (sku) DO UPDATE SET fingerprint = excluded.fingerprint
    )
    UPDATE catalog_product SET exports = exports + 1, export_message_id = :message_id, exported_at = :now
     WHERE sku = :sku
    """
)

# A shipping method's row is not the store's to delete (PUT /catalog/shipping-methods removes it).
MARK_PRODUCT_DELETED = text(
    """
    UPDATE catalog_product SET deleted = true, updated_at = :now WHERE sku = :sku AND NOT shipping_method
    RETURNING sku, type, name, enabled, deleted, children_skus, child_ids, custom_attributes, localized_names
    """
)

CATALOG_PRODUCT = text(
    """
    SELECT p.sku, p.product_id, p.type, p.name, p.enabled, p.deleted, p.shipping_method, p.children_skus,
           p.child_ids, p.custom_attributes, p.localized_names, p.website_ids, p.exports, p.export_message_id,
           p.exported_at,
           COALESCE((SELECT status::text FROM message WHERE id = p.export_message_id),
                    CASE WHEN p.export_message_id IS NOT NULL THEN 'pruned' END) AS export_status,
           p.created_at, p.updated_at
      FROM catalog_product p WHERE p.sku = :sku
    """
)


# --- catalog export --------------------------------------------------------------------------------------------
_EXPORT_COLUMNS = """id, status, source, send_mode, batch_size, cursor, products_read, products_sent, batches_sent,
    batches_acknowledged, error_count, errors, last_error, created_at, started_at, finished_at"""

# The process running an export changes it only while it holds the lease and the export is running; a canceled
# export or one taken over answers no row, and the process stops.
_HELD = "id = :id AND lease_owner = :owner AND status = 'running'"

LOCK_CATALOG_EXPORTS = text("LOCK TABLE catalog_export IN SHARE ROW EXCLUSIVE MODE")

ACTIVE_CATALOG_EXPORT = text(
    f"SELECT {_EXPORT_COLUMNS} FROM catalog_export WHERE status IN ('pending', 'running') ORDER BY id LIMIT 1"
)

LATEST_CATALOG_EXPORT = text(f"SELECT {_EXPORT_COLUMNS} FROM catalog_export ORDER BY id DESC LIMIT 1")

# How many rows a full export from the connector's catalog sends (every row, deleted products and shipping methods
# included): counted up to :cap (an index-only scan of at most :cap keys), past that the planner's estimate
# (pg_class.reltuples, kept by ANALYZE and autovacuum; -1 before the first). Never a count of a whole large table.
CATALOG_SIZE = text(
    """
    SELECT (SELECT count(*) FROM (SELECT 1 FROM catalog_product LIMIT :cap) AS c) AS counted,
           (SELECT CAST(reltuples AS bigint) FROM pg_class
             WHERE oid = CAST('catalog_product' AS regclass)) AS estimated
    """
)

CREATE_CATALOG_EXPORT = text(
    f"""
    INSERT INTO catalog_export (status, source, send_mode, batch_size, lease_owner, lease_until, created_at,
                                started_at, updated_at)
    VALUES (:status, :source, :send_mode, :batch_size, :owner, :lease_until, :now,
            CASE WHEN CAST(:status AS varchar) = 'running' THEN CAST(:now AS timestamptz) END, :now)
    RETURNING {_EXPORT_COLUMNS}
    """
)

CANCEL_CATALOG_EXPORT = text(
    f"""
    UPDATE catalog_export
       SET status = 'canceled', finished_at = :now, lease_owner = NULL, lease_until = NULL, updated_at = :now
     WHERE status IN ('pending', 'running')
    RETURNING {_EXPORT_COLUMNS}
    """
)

CLAIM_CATALOG_EXPORT = text(
    """
    UPDATE catalog_export
       SET status = 'running', lease_owner = :owner, lease_until = :lease_until,
           started_at = COALESCE(started_at, :now), updated_at = :now
     WHERE id = (SELECT id FROM catalog_export
                  WHERE status = 'pending' OR (status = 'running' AND lease_until < :now)
                  ORDER BY id LIMIT 1
                    FOR UPDATE SKIP LOCKED)
    RETURNING id
    """
)

FINISH_CATALOG_EXPORT = text(
    f"""
    UPDATE catalog_export
       SET status = :status, last_error = COALESCE(:error, last_error), finished_at = :now, lease_owner = NULL,
           lease_until = NULL, updated_at = :now
     WHERE {_HELD}
    """
)

CATALOG_EXPORT_STATE = text(
    "SELECT cursor, batch_size, send_mode, source, batch_acked FROM catalog_export WHERE id = :id"
)

# A batch of the catalog (keyset pagination over the primary key: each batch costs the same at the start and at the
# end of a million SKUs) as three parallel arrays in SKU order, one row per batch (five thousand Python rows would
# cost more than the rest of the batch):
#   skus          every product of the batch;
#   calls         its JSON-RPC request (id = :id_prefix || sku). The params are the ones the catalog row keeps
#                 encoded (migration 0008's trigger) when they were encoded for these settings, else encoded here by
#                 the same function: byte for byte what the Python mapper sends (app/mappers/product_to_mcom.py;
#                 tests/integration/test_catalog_sql_params.py holds them equal);
#   fingerprints  the params' fingerprint where it differs from the one last exported, NULL where the OMS already has
#                 these params (nothing to record once the batch is acknowledged: a re-export writes no row).
# No products past the cursor: one row of NULLs. SHIPPING_METHOD_BATCH_ENCODED: the same of the shipping methods'
# rows only (a full export from Adobe Commerce sends them after the store's products).
_BATCH_ENCODED = """
    SELECT array_agg(b.sku ORDER BY b.sku) AS skus,
           array_agg('{"jsonrpc":"2.0","id":' || to_json(CAST(:id_prefix AS text) || b.sku)::text
                     || ',"method":' || to_json(CAST(:method AS text))::text || ',"params":' || b.params || '}'
                     ORDER BY b.sku) AS calls,
           array_agg(NULLIF(b.fingerprint, b.exported) ORDER BY b.sku) AS fingerprints
      FROM (
        SELECT r.sku, r.params,
               CASE WHEN r.kept THEN r.fingerprint
                    ELSE encode(sha256(convert_to(r.params, 'UTF8')), 'hex') END AS fingerprint,
               -- probed per SKU: a join would merge-scan the exported SKUs from the first one of the catalog
               (SELECT e.fingerprint FROM catalog_product_exported e WHERE e.sku = r.sku) AS exported
          FROM (
            SELECT p.sku, p.fingerprint, p.encoded_for = s.encoding AS kept,
                   CASE WHEN p.encoded_for = s.encoding THEN p.params
                        ELSE catalog_product_params(p.type, p.sku, p.name, p.enabled, p.deleted, p.children_skus,
                                                    p.custom_attributes, p.localized_names,
                                                    CAST(:attributes AS text[]), :locale)
                   END AS params
              FROM catalog_product p,
                   (SELECT catalog_product_encoding(CAST(:attributes AS text[]), :locale) AS encoding
                     OFFSET 0) s  -- computed once (OFFSET 0 keeps the planner from inlining it into every row)
             WHERE p.sku > CAST(:after AS text)  -- '' before the first SKU (no SKU is empty): one plan for all
                   {only}
             ORDER BY p.sku
             LIMIT :limit
          ) AS r
      ) AS b
"""
CATALOG_BATCH_ENCODED = text(_BATCH_ENCODED.replace("{only}", ""))
SHIPPING_METHOD_BATCH_ENCODED = text(_BATCH_ENCODED.replace("{only}", "AND p.shipping_method"))

CATALOG_BATCH_STARTED = text(
    f"""
    UPDATE catalog_export
       SET batches_sent = batches_sent + CASE WHEN batch_open THEN 0 ELSE 1 END, batch_open = true,
           lease_until = :lease_until, updated_at = :now
     WHERE {_HELD}
    RETURNING id
    """
)

CATALOG_EXPORT_PROGRESS = text(
    f"""
    UPDATE catalog_export
       SET batch_acked = batch_acked || CAST(:skus AS text[]),
           products_sent = products_sent + cardinality(CAST(:skus AS text[])),
           error_count = error_count + :error_count,
           errors = CASE WHEN jsonb_array_length(errors) < :max_errors THEN errors || CAST(:errors AS jsonb)
                         ELSE errors END,
           lease_until = :lease_until, updated_at = :now
     WHERE {_HELD}
    RETURNING id
    """
)

CATALOG_EXPORT_ERROR = text(
    f"""
    UPDATE catalog_export SET last_error = :error, lease_until = :lease_until, updated_at = :now WHERE {_HELD}
    RETURNING id
    """
)

# A batch done, in one transaction: the cursor moves past it, the products sent since the last progress record and
# their errors are counted (an rpc-batch answer is recorded here alone), the fingerprints that changed become what
# was exported (product events compare against them), and the next batch, if any, is opened (counted as sent once).
CATALOG_BATCH_ACKNOWLEDGED = text(
    f"""
    WITH exported AS ({_RECORD_EXPORTED})
    UPDATE catalog_export
       SET cursor = :cursor, batch_acked = '{{}}', batch_open = :opens_next,
           batches_sent = batches_sent + CASE WHEN :opens_next THEN 1 ELSE 0 END,
           batches_acknowledged = batches_acknowledged + 1,
           products_read = products_read + :read, products_sent = products_sent + :sent,
           error_count = error_count + :error_count,
           errors = CASE WHEN jsonb_array_length(errors) < :max_errors THEN errors || CAST(:errors AS jsonb)
                         ELSE errors END,
           last_error = NULL, lease_until = :lease_until, updated_at = :now
     WHERE {_HELD}
    RETURNING id
    """
)

# --- catalog import --------------------------------------------------------------------------------------------
# The rows of a batch's SKUs as they are (a row updates a product: its empty cells change nothing), locked.
LOCK_CATALOG_ROWS = text(
    """
    SELECT p.sku, p.type, p.name, p.enabled, p.deleted, p.children_skus, p.custom_attributes, p.localized_names,
           p.shipping_method, e.fingerprint AS exported_fingerprint, p.exports
      FROM catalog_product p LEFT JOIN catalog_product_exported e ON e.sku = p.sku
     WHERE p.sku = ANY(CAST(:skus AS text[]))
     ORDER BY p.sku
       FOR UPDATE OF p
    """
)

# A batch of CSV rows in one statement (each product as the rows left it, merged over the stored one in Python: a
# default row brings a deleted product back, a store-view row does not); rows arrive sorted by SKU (locks in one
# order). The Adobe Commerce id, child ids and websites of a product the
# store posted are kept: a CSV does not carry them. A shipping method's row is never overwritten: only the SKUs
# stored come back.
UPSERT_CATALOG_ROWS = text(
    """
    INSERT INTO catalog_product (sku, type, name, enabled, deleted, children_skus, custom_attributes,
                                 localized_names, created_at, updated_at)
    SELECT t.sku, t.type, t.name, t.enabled, t.deleted,
           ARRAY(SELECT jsonb_array_elements_text(CAST(t.children AS jsonb))), CAST(t.attributes AS jsonb),
           CAST(t.localized AS jsonb), :now, :now
      FROM unnest(CAST(:skus AS text[]), CAST(:types AS text[]), CAST(:names AS text[]),
                  CAST(:enabled AS boolean[]), CAST(:deleted AS boolean[]), CAST(:children AS text[]),
                  CAST(:attributes AS text[]), CAST(:localized_names AS text[]))
           AS t(sku, type, name, enabled, deleted, children, attributes, localized)
     ORDER BY t.sku
    ON CONFLICT (sku) DO UPDATE
       SET type = excluded.type, name = excluded.name, enabled = excluded.enabled, deleted = excluded.deleted,
           children_skus = excluded.children_skus, custom_attributes = excluded.custom_attributes,
           localized_names = excluded.localized_names, updated_at = excluded.updated_at
     WHERE NOT catalog_product.shipping_method
    RETURNING sku
    """
)

SET_PRODUCTS_EXPORTED = text(
    f"""
    WITH exported AS ({_RECORD_EXPORTED})
    UPDATE catalog_product p
       SET exports = p.exports + 1, export_message_id = t.message_id, exported_at = :now
      FROM unnest(CAST(:skus AS text[]), CAST(:message_ids AS bigint[])) AS t(sku, message_id)
     WHERE p.sku = t.sku AND p.sku = ANY(CAST(:skus AS text[]))  -- probes the primary key per SKU, not a merge join
    """
)

SET_JOURNAL_RESULT = text(
    "UPDATE message SET result = CAST(:result AS jsonb), finished_at = :now, started_at = :now WHERE id = :id"
)

# --- stock reset (development only) ----------------------------------------------------------------------------
# A page of every SKU the connector knows, after :after in SKU order: SKUs with stock and the catalog's products
# (not deleted ones, not shipping methods: they are sold as lines, never stocked). Both sides are read in SKU order
# from their primary keys and merged, so a page costs the same at the start and at the end of a million SKUs.
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


# --- processing-time report (app/workers/stats.py, app/services/reports.py) ------------------------------------
# A duration's histogram bucket is width_bucket(duration, :bounds), :bounds being app/services/histogram.py's
# BUCKET_BOUNDS (exact: the same binary search as Python's, no floating-point logarithm); a histogram is kept as its
# non-empty buckets and their counts, two parallel arrays in bucket order.
_STAT_COLUMNS = """direction, channel, topic, outcome, messages, processing_count, processing_sum_ms,
    processing_max_ms, processing_buckets, processing_counts, end_to_end_sum_ms, end_to_end_max_ms,
    end_to_end_buckets, end_to_end_counts"""

# Filters of a report (NULL: any), on a source with direction, channel and topic columns.
_STAT_FILTERS = """(CAST(:direction AS text) IS NULL OR direction = CAST(:direction AS message_direction))
       AND (CAST(:channel AS text) IS NULL OR channel = :channel)
       AND (CAST(:topics AS text[]) IS NULL OR topic = ANY(CAST(:topics AS text[])))"""

# The messages finished in [:from_ts, :to_ts) (ix_message_finished_at), as one stat row per minute (UTC), direction,
# channel, topic and outcome: counts, sums, maxima and histograms of the processing time (duration_ms: the handler
# run or the outbound call; none for a rejected message) and of the end-to-end time (created_at → finished_at:
# received → done, or queued → acknowledged with every retry). A message counts in the minute it finished in.
_STATS_OF_MESSAGES = f"""
    WITH finished AS MATERIALIZED (
        SELECT date_trunc('minute', finished_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS minute,
               direction, channel, topic, status AS outcome, duration_ms AS processing_ms,
               greatest(CAST(extract(epoch FROM finished_at - created_at) AS double precision) * 1000, 0)
                   AS end_to_end_ms
          FROM message
         WHERE finished_at >= :from_ts AND finished_at < :to_ts
           AND status IN ('succeeded', 'failed', 'dead', 'discarded', 'rejected')
           AND {_STAT_FILTERS}
    ),
    totals AS (
        SELECT minute, direction, channel, topic, outcome, CAST(count(*) AS integer) AS messages,
               CAST(count(processing_ms) AS integer) AS processing_count,
               CAST(COALESCE(sum(processing_ms), 0) AS bigint) AS processing_sum_ms,
               max(processing_ms) AS processing_max_ms, sum(end_to_end_ms) AS end_to_end_sum_ms,
               max(end_to_end_ms) AS end_to_end_max_ms
          FROM finished
         GROUP BY minute, direction, channel, topic, outcome
    ),
    processing AS (
        SELECT minute, direction, channel, topic, outcome,
               array_agg(bucket ORDER BY bucket) AS buckets, array_agg(n ORDER BY bucket) AS counts
          FROM (SELECT minute, direction, channel, topic, outcome,
                       CAST(width_bucket(CAST(processing_ms AS double precision), CAST(:bounds AS double precision[]))
                            AS smallint) AS bucket,
                       CAST(count(*) AS integer) AS n
                  FROM finished WHERE processing_ms IS NOT NULL
                 GROUP BY minute, direction, channel, topic, outcome, bucket) AS histogram
         GROUP BY minute, direction, channel, topic, outcome
    ),
    end_to_end AS (
        SELECT minute, direction, channel, topic, outcome,
               array_agg(bucket ORDER BY bucket) AS buckets, array_agg(n ORDER BY bucket) AS counts
          FROM (SELECT minute, direction, channel, topic, outcome,
                       CAST(width_bucket(end_to_end_ms, CAST(:bounds AS double precision[])) AS smallint) AS bucket,
                       CAST(count(*) AS integer) AS n
                  FROM finished
                 GROUP BY minute, direction, channel, topic, outcome, bucket) AS histogram
         GROUP BY minute, direction, channel, topic, outcome
    )
    SELECT t.minute, t.direction, t.channel, t.topic, t.outcome, t.messages, t.processing_count,
           t.processing_sum_ms, t.processing_max_ms, COALESCE(p.buckets, '{{}}') AS processing_buckets,
           COALESCE(p.counts, '{{}}') AS processing_counts, t.end_to_end_sum_ms, t.end_to_end_max_ms,
           e.buckets AS end_to_end_buckets, e.counts AS end_to_end_counts
      FROM totals t
      LEFT JOIN processing p USING (minute, direction, channel, topic, outcome)
      JOIN end_to_end e USING (minute, direction, channel, topic, outcome)
"""

# Stat rows (a `period` column and _STAT_COLUMNS) merged per {period} and {keys}: counts and sums added, maxima
# taken, histograms added bucket by bucket; the outcomes counted apart as well (failed and dead together).
_MERGE_STATS = """
    WITH source AS MATERIALIZED ({source}),
    totals AS (
        SELECT {period} AS period, {keys}, CAST(sum(messages) AS bigint) AS messages,
               CAST(COALESCE(sum(messages) FILTER (WHERE outcome = 'succeeded'), 0) AS bigint) AS succeeded,
               CAST(COALESCE(sum(messages) FILTER (WHERE outcome IN ('failed', 'dead')), 0) AS bigint) AS failed,
               CAST(COALESCE(sum(messages) FILTER (WHERE outcome = 'discarded'), 0) AS bigint) AS discarded,
               CAST(COALESCE(sum(messages) FILTER (WHERE outcome = 'rejected'), 0) AS bigint) AS rejected,
               CAST(sum(processing_count) AS bigint) AS processing_count,
               CAST(sum(processing_sum_ms) AS bigint) AS processing_sum_ms,
               max(processing_max_ms) AS processing_max_ms, sum(end_to_end_sum_ms) AS end_to_end_sum_ms,
               max(end_to_end_max_ms) AS end_to_end_max_ms
          FROM source
         GROUP BY 1, {keys}
    ),
    processing AS (
        SELECT period, {keys}, array_agg(bucket ORDER BY bucket) AS buckets, array_agg(n ORDER BY bucket) AS counts
          FROM (SELECT {period} AS period, {keys}, h.bucket, CAST(sum(h.n) AS bigint) AS n
                  FROM source, unnest(source.processing_buckets, source.processing_counts) AS h(bucket, n)
                 GROUP BY 1, {keys}, h.bucket) AS histogram
         GROUP BY period, {keys}
    ),
    end_to_end AS (
        SELECT period, {keys}, array_agg(bucket ORDER BY bucket) AS buckets, array_agg(n ORDER BY bucket) AS counts
          FROM (SELECT {period} AS period, {keys}, h.bucket, CAST(sum(h.n) AS bigint) AS n
                  FROM source, unnest(source.end_to_end_buckets, source.end_to_end_counts) AS h(bucket, n)
                 GROUP BY 1, {keys}, h.bucket) AS histogram
         GROUP BY period, {keys}
    )
    SELECT t.*, COALESCE(p.buckets, '{{}}') AS processing_buckets, COALESCE(p.counts, '{{}}') AS processing_counts,
           COALESCE(e.buckets, '{{}}') AS end_to_end_buckets, COALESCE(e.counts, '{{}}') AS end_to_end_counts
      FROM totals t
      LEFT JOIN processing p USING (period, {keys})
      LEFT JOIN end_to_end e USING (period, {keys})
"""
_OUTCOME_KEYS = "direction, channel, topic, outcome"

# The rollup, one replica at a time: a transaction lock, so a step that dies releases it with its rollback.
TRY_STATS_ROLLUP_LOCK = text("SELECT pg_try_advisory_xact_lock(:key)")

# How far the rollup got (app/models.py MessageStatState says what each time means).
STATS_STATE = text("SELECT rolled_up_until, counted_until, hours_until FROM message_stat_state WHERE id = 1")

# Where a first rollup starts: the oldest finish time still in the journal, not before :not_before (the retention).
FIRST_FINISHED_AT = text("SELECT min(finished_at) FROM message WHERE finished_at >= :not_before")

# Recompute the minutes [:from_ts, :to_ts) from the journal: their rows are replaced (a step run twice gives the same
# rows; a message committed after its minute was first rolled up is counted by the next step that covers it).
CLEAR_STAT_MINUTES = text("DELETE FROM message_stat_minute WHERE minute >= :from_ts AND minute < :to_ts")
ROLL_UP_MINUTES = text(
    f"""
    INSERT INTO message_stat_minute (minute, {_STAT_COLUMNS})
    SELECT minute, {_STAT_COLUMNS} FROM ({_STATS_OF_MESSAGES}) AS stats
    """
)

# Recompute the hours [:from_ts, :to_ts) from their minute rows (hours whose minutes are final).
CLEAR_STAT_HOURS = text("DELETE FROM message_stat_hour WHERE hour >= :from_ts AND hour < :to_ts")
_HOURS_OF_MINUTES = _MERGE_STATS.format(
    source=f"SELECT minute AS period, {_STAT_COLUMNS} FROM message_stat_minute"
    " WHERE minute >= :from_ts AND minute < :to_ts",
    period="date_trunc('hour', period AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
    keys=_OUTCOME_KEYS,
)
ROLL_UP_HOURS = text(
    f"""
    INSERT INTO message_stat_hour (hour, {_STAT_COLUMNS})
    SELECT period, {_OUTCOME_KEYS}, messages, processing_count, processing_sum_ms, processing_max_ms,
           CAST(processing_buckets AS smallint[]), CAST(processing_counts AS integer[]), end_to_end_sum_ms,
           end_to_end_max_ms, CAST(end_to_end_buckets AS smallint[]), CAST(end_to_end_counts AS integer[])
      FROM ({_HOURS_OF_MINUTES}) AS hours
    """
)

SET_STATS_STATE = text(
    """
    UPDATE message_stat_state
       SET rolled_up_until = :rolled_up_until, counted_until = :counted_until, hours_until = :hours_until,
           updated_at = :now
     WHERE id = 1
    """
)

# OMS_STATS_RETENTION_DAYS: minutes and hours older than :before go. Returns how many rows of each.
DELETE_OLD_STATS = text(
    """
    WITH minutes AS (DELETE FROM message_stat_minute WHERE minute < :before RETURNING 1),
         hours AS (DELETE FROM message_stat_hour WHERE hour < :before RETURNING 1)
    SELECT (SELECT count(*) FROM minutes) AS minutes, (SELECT count(*) FROM hours) AS hours
    """
)

# The contract with journal pruning (app/services/reports.py counted_until): every message finished before this time
# is counted for good (the rollup never recomputes those minutes), so deleting it changes no report. One
# timestamptz, or NULL while nothing is counted (then no finished message may be deleted).
ROLLED_UP_UNTIL = text("SELECT counted_until FROM message_stat_state WHERE id = 1")

# The processing-time report: per :unit bucket (minute | hour | day, UTC), direction, channel and topic, merged from
# hour rows [:hours_from, :hours_to), minute rows [:minutes_from, :minutes_to) and, for minutes not rolled up yet,
# the journal itself [:from_ts, :to_ts) — three ranges that follow each other (app/services/reports.py).
PROCESSING_REPORT = text(
    _MERGE_STATS.format(
        source=f"""
            SELECT hour AS period, {_STAT_COLUMNS} FROM message_stat_hour
             WHERE hour >= :hours_from AND hour < :hours_to AND {_STAT_FILTERS}
            UNION ALL
            SELECT minute, {_STAT_COLUMNS} FROM message_stat_minute
             WHERE minute >= :minutes_from AND minute < :minutes_to AND {_STAT_FILTERS}
            UNION ALL
            SELECT minute, {_STAT_COLUMNS} FROM ({_STATS_OF_MESSAGES}) AS live""",
        period="date_trunc(:unit, period AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
        keys="direction, channel, topic",
    )
    + " ORDER BY direction, channel, topic, period"
)
