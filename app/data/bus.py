"""The message bus's statements: store messages, claim lane heads, record outcomes, release waiting messages, wake
the workers. Parameters are named; times come from the injected clock.

Ordering rule shared by the claims: a lane's *head* is its oldest message still pending (queued, processing or
retrying). Only heads can be claimed, so a lane advances in id (arrival) order under one claim at a time, whatever
the number of workers and processes (an inbound claim may take the ready messages behind its head along:
FOLLOWERS_OF_HEAD). Heads are found with a loose index scan over the partial index
``ix_message_pending_lane`` (one probe per lane), never a scan of the backlog; they are then fetched by primary key
as ``id = ANY(ARRAY(…))`` (a join lets the planner misjudge the head count and walk the whole table).

A *waiting* outbound message (held by the service that enqueued it until a *gate* message of its lane succeeds:
an order's calls wait for the order's create, app/services/order_gate.py) is not pending: it is in no lane, neither
blocks one nor is claimed, until RELEASE_WAITING / RELEASE_WAITING_LANE queue it (ix_message_waiting_lane).

Predicates that a partial index must answer are written exactly as the index's (app/data/statuses.py): PENDING as
``ix_message_pending_lane`` and ``ix_message_outbound_due``, UNCLAIMED as ``ix_message_inbound_pending``.
"""

from __future__ import annotations

from sqlalchemy import text

from app.data.statuses import FINISHED_ON_ARRIVAL, PENDING, UNCLAIMED

LARGE_PAYLOAD_BYTES = 16 * 1024  # stored (compressed) size over which a claim may leave the payload in the database

# The heads of every lane of :direction (a fragment of the claims): a loose index scan of ix_message_pending_lane,
# whose predicate PENDING repeats.
_LANE_HEADS = f"""
    heads AS (
        (SELECT lane, id FROM message
          WHERE direction = CAST(:direction AS message_direction) AND status IN {PENDING}
          ORDER BY lane, id LIMIT 1)
        UNION ALL
        SELECT following.lane, following.id FROM heads, LATERAL (
            SELECT lane, id FROM message
             WHERE direction = CAST(:direction AS message_direction) AND status IN {PENDING}
               AND lane > heads.lane
             ORDER BY lane, id LIMIT 1) AS following
    )"""

# Store messages (any direction/status) in one statement; a duplicate accepted id is skipped, not an error.
# The payload is the "params" member of each raw JSON text, so the body is never re-serialised in Python.
INSERT_MESSAGES = text(
    f"""
    INSERT INTO message (direction, channel, topic, external_id, lane, payload, headers, refs, status,
                         last_error, next_attempt_at, created_at, finished_at)
    SELECT CAST(t.direction AS message_direction), t.channel, t.topic, t.external_id, t.lane,
           COALESCE(CAST(t.document AS jsonb) -> 'params', '{{}}'::jsonb), CAST(t.headers AS jsonb),
           ARRAY(SELECT jsonb_array_elements_text(CAST(t.refs AS jsonb))),
           CAST(t.status AS message_status), t.last_error, CAST(:now AS timestamptz), CAST(:now AS timestamptz),
           CASE WHEN t.status IN {FINISHED_ON_ARRIVAL} THEN CAST(:now AS timestamptz) END
      FROM unnest(CAST(:directions AS text[]), CAST(:channels AS text[]), CAST(:topics AS text[]),
                  CAST(:external_ids AS text[]), CAST(:lanes AS text[]), CAST(:documents AS text[]),
                  CAST(:headers AS text[]), CAST(:refs AS text[]), CAST(:statuses AS text[]),
                  CAST(:last_errors AS text[]))
           AS t(direction, channel, topic, external_id, lane, document, headers, refs, status, last_error)
    ON CONFLICT (direction, channel, external_id) WHERE status <> 'rejected' DO NOTHING
    RETURNING id, external_id, status::text AS status
    """
)

# What an inbound claim reads of each message it takes: the payload, unless it is large and its topic's handler
# works on it in the database (register(fetch_large_payload=False)); ``size`` (stored, compressed) bounds a batch.
_CLAIMED_COLUMNS = """m.id, m.topic, m.external_id, m.lane, m.attempts, m.first_attempt_at, m.channel, m.created_at,
           pg_column_size(m.payload) AS size,
           CASE WHEN m.topic = ANY(CAST(:topics_leaving_large_payloads AS text[]))
                 AND pg_column_size(m.payload) > :large_payload_bytes THEN NULL ELSE m.payload END AS payload"""

# Whether a claimed head has anything pending behind it in its lane (one probe of ix_message_pending_lane): when
# not — an order's lane, usually — the worker skips FOLLOWERS_OF_HEAD, a round trip for nothing.
_HAS_FOLLOWERS = f"""EXISTS (SELECT 1 FROM message n
                   WHERE n.direction = 'in' AND n.lane = m.lane AND n.id > m.id AND n.status IN {PENDING}
                ) AS has_followers"""

# Inbound: lock the oldest ready lane head whose topic has a handler. Runs inside the handler's transaction, so
# the row lock is the claim: a crash rolls everything back and the message is simply claimed again.
CLAIM_INBOUND = text(
    f"""
    WITH RECURSIVE {_LANE_HEADS}
    SELECT {_CLAIMED_COLUMNS}, {_HAS_FOLLOWERS}
      FROM message m
     WHERE m.id = ANY(ARRAY(SELECT id FROM heads))
       AND m.status IN {UNCLAIMED} AND m.next_attempt_at <= :now AND m.topic = ANY(:topics)
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
    SELECT {_CLAIMED_COLUMNS}, {_HAS_FOLLOWERS}
      FROM message m
     WHERE m.direction = 'in' AND m.status IN {UNCLAIMED}
       AND m.id <= (SELECT max(w.id) FROM (
                        SELECT id FROM message
                         WHERE direction = 'in' AND status IN {UNCLAIMED}
                         ORDER BY id LIMIT :window) AS w)
       AND m.next_attempt_at <= :now AND m.topic = ANY(:topics)
       AND (SELECT min(older.id) FROM message older
             WHERE older.direction = 'in' AND older.lane = m.lane AND older.status IN {PENDING}) = m.id
     ORDER BY m.id
     LIMIT 1
       FOR UPDATE OF m SKIP LOCKED
    """
)
INBOUND_CLAIM_WINDOW = 64  # :window, the oldest pending inbound messages CLAIM_INBOUND_OLDEST looks at

# Outbound: lease up to :limit ready lane heads (an expired lease is taken over: its sender died). The lease
# end doubles as the claim token, so a sender whose lease was taken over cannot overwrite the new owner's result.
# Outbound lanes are many and short (one per order), so instead of visiting every lane, due messages of the channel
# are read in due order from ix_message_outbound_due and each is checked to be its lane's head (its id is the
# lane's oldest pending one: one probe of ix_message_pending_lane, written as a correlated min() so that the planner
# always probes by lane, whatever its statistics say). The cost follows the messages skipped before :limit heads are
# found, not the backlog: an OMS outage that leaves thousands of orders retrying does not slow every claim down.
# ``has_followers``: something waits behind the message in its lane (one probe of ix_message_pending_lane), so the
# sender claims again once it has recorded it (app/workers/bus.py ``send_next_outbound``).
CLAIM_OUTBOUND = text(
    f"""
    WITH claimable AS (
        SELECT m.id FROM message m
         WHERE m.direction = 'out' AND m.status IN {PENDING} AND m.next_attempt_at <= :now
           AND m.channel = :channel
           AND (m.status <> 'processing' OR m.lease_until < :now)
           AND (SELECT min(older.id) FROM message older
                 WHERE older.direction = 'out' AND older.lane = m.lane AND older.status IN {PENDING}) = m.id
         ORDER BY m.next_attempt_at, m.id
         LIMIT :limit
           FOR UPDATE OF m SKIP LOCKED
    )
    UPDATE message m
       SET status = 'processing', lease_until = :lease_until, attempts = m.attempts + 1,
           started_at = :now, first_attempt_at = COALESCE(m.first_attempt_at, :now)
      FROM claimable c
     WHERE m.id = c.id
    RETURNING m.id, m.topic, m.external_id, m.lane, CAST(m.payload AS text) AS encoded_payload, m.attempts,
              m.first_attempt_at, m.channel, m.created_at,
              EXISTS (SELECT 1 FROM message n
                       WHERE n.direction = 'out' AND n.lane = m.lane AND n.id > m.id AND n.status IN {PENDING}
                     ) AS has_followers
    """
)

# Inbound: record the outcome (success: in the handler's transaction; permanent failure: in its own).
FINISH_INBOUND = text(
    f"""
    UPDATE message
       SET status = CAST(:status AS message_status), attempts = attempts + 1, last_error = :last_error,
           result = CAST(:result AS jsonb), started_at = :started_at, finished_at = :now,
           duration_ms = :duration_ms, first_attempt_at = COALESCE(first_attempt_at, :started_at)
     WHERE id = :id AND status IN {UNCLAIMED}
    """
)

# Inbound, after a claim: the messages behind the claimed head in its lane (ix_message_pending_lane), in arrival
# order, locked, so that the worker applies them in the head's transaction (app/workers/bus.py, "batches"). Nobody
# else claims them meanwhile (only a lane's head is claimable, and the head is ours); the lock also makes an
# operator's discard or retry of one of them wait for the batch's commit, after which its status guard sees it
# finished. SKIP LOCKED (an operator's bulk action holding one of them must not deadlock with the batch) can leave
# holes: ``position`` numbers the lane's next messages, and the worker keeps those up to the first one missing.
# ``size`` is the stored payload's size: the worker stops at INBOUND_BATCH_BYTES.
FOLLOWERS_OF_HEAD = text(
    f"""
    WITH following AS MATERIALIZED (
        SELECT id, row_number() OVER (ORDER BY id) AS position FROM (
            SELECT id FROM message
             WHERE direction = 'in' AND lane = :lane AND id > :head_id AND status IN {PENDING}
             ORDER BY id
             LIMIT :limit) AS next
    )
    SELECT f.position, m.status::text AS status, m.next_attempt_at, {_CLAIMED_COLUMNS}
      FROM message m JOIN following f ON f.id = m.id
     WHERE m.status IN {PENDING}
     ORDER BY m.id
       FOR UPDATE OF m SKIP LOCKED
    """
)

# Inbound, again after a batch failed behind its head: the same head, if it is still its lane's ready head (the
# messages before the failing one are applied again without it; app/workers/bus.py says why).
CLAIM_INBOUND_HEAD = text(
    f"""
    SELECT {_CLAIMED_COLUMNS}, {_HAS_FOLLOWERS}
      FROM message m
     WHERE m.id = :head_id AND m.direction = 'in' AND m.status IN {UNCLAIMED} AND m.next_attempt_at <= :now
       AND (SELECT min(older.id) FROM message older
             WHERE older.direction = 'in' AND older.lane = m.lane AND older.status IN {PENDING}) = m.id
       FOR UPDATE OF m SKIP LOCKED
    """
)

# Inbound: record the success of a batch of messages (one row per message: its own start, duration and summary), in
# the handlers' transaction. Returns how many were recorded: all of them, since the batch holds their row locks.
FINISH_INBOUND_BATCH = text(
    f"""
    WITH finished AS (
        UPDATE message m
           SET status = 'succeeded', attempts = m.attempts + 1, last_error = NULL, result = CAST(t.result AS jsonb),
               started_at = t.started_at, finished_at = :now, duration_ms = t.duration_ms,
               first_attempt_at = COALESCE(m.first_attempt_at, t.started_at)
          FROM unnest(CAST(:ids AS bigint[]), CAST(:results AS text[]), CAST(:started_ats AS timestamptz[]),
                      CAST(:durations_ms AS integer[])) AS t(id, result, started_at, duration_ms)
         WHERE m.id = t.id AND m.status IN {UNCLAIMED}
        RETURNING 1
    )
    SELECT count(*) FROM finished
    """
)

# Inbound transient failure: the effects were rolled back; keep the lane blocked until next_attempt_at.
RETRY_INBOUND = text(
    f"""
    UPDATE message
       SET status = 'retrying', attempts = attempts + 1, last_error = :last_error, next_attempt_at = :next_attempt_at,
           started_at = :started_at, first_attempt_at = COALESCE(first_attempt_at, :started_at)
     WHERE id = :id AND status IN {UNCLAIMED}
    """
)

# Outbound: record the outcomes of a claim's sends in one statement (arrays: one element per message), each only if
# its lease is still held.
FINISH_OUTBOUND = text(
    """
    UPDATE message m
       SET status = CAST(o.status AS message_status), last_error = o.last_error, result = CAST(o.result AS jsonb),
           next_attempt_at = COALESCE(o.next_attempt_at, m.next_attempt_at), lease_until = NULL,
           finished_at = CASE WHEN o.finished THEN CAST(:now AS timestamptz) END, duration_ms = o.duration_ms
      FROM unnest(CAST(:ids AS bigint[]), CAST(:lease_untils AS timestamptz[]), CAST(:statuses AS text[]),
                  CAST(:last_errors AS text[]), CAST(:results AS text[]), CAST(:next_attempt_ats AS timestamptz[]),
                  CAST(:finished AS boolean[]), CAST(:durations_ms AS int[]))
           AS o(id, lease_until, status, last_error, result, next_attempt_at, finished, duration_ms)
     WHERE m.id = o.id AND m.status = 'processing' AND m.lease_until = o.lease_until
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

# A message's whole payload, for a handler that was claimed without it and needs it after all.
MESSAGE_PAYLOAD = text("SELECT payload FROM message WHERE id = :message_id")

# Sync export: the message just queued is leased to the request that delivers it inline, in the transaction that
# queued it, so no worker can take it meanwhile; if that request dies, the lease expires and a worker sends it.
LEASE_FOR_INLINE_SEND = text(
    """
    UPDATE message
       SET status = 'processing', lease_until = :lease_until, attempts = 1, started_at = :now, first_attempt_at = :now
     WHERE id = :id AND status = 'queued'
    RETURNING id, topic, external_id, lane, CAST(payload AS text) AS encoded_payload, attempts, first_attempt_at,
              channel, created_at
    """
)

# Wake every worker listening on BUS_CHANNEL (app/workers/runner.py): something became claimable.
NOTIFY_BUS = text("SELECT pg_notify('oms_connector_bus', '')")
BUS_CHANNEL = "oms_connector_bus"  # what the workers LISTEN on
