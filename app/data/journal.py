"""The journal's statements: an operator's retry and discard (one message or a batch), and retention (prune)."""

from __future__ import annotations

from sqlalchemy import text

from app.data.statuses import DISCARDABLE, FINISHED, RETRYABLE

# Operator's retry: what the journal needs to decide it (an order's call may have to wait, app/services/order_gate.py).
MESSAGE_FOR_RETRY = text(
    "SELECT id, direction::text AS direction, channel, topic, lane, status::text AS status FROM message WHERE id = :id"
)

# Operator: try a failed, dead or retrying message again now (a fresh retry window for outbound): queued, or waiting
# (with :last_error saying why) for a call about an order the OMS does not have yet.
RETRY_MESSAGE = text(
    f"""
    UPDATE message
       SET status = CAST(:status AS message_status), next_attempt_at = :now, first_attempt_at = NULL,
           lease_until = NULL, finished_at = NULL, last_error = COALESCE(:last_error, last_error)
     WHERE id = :id AND status IN {RETRYABLE}
    RETURNING id
    """
)

# Operator: drop a message that has not succeeded (a waiting one too); its lane moves on.
DISCARD_MESSAGE = text(
    f"""
    UPDATE message
       SET status = 'discarded', lease_until = NULL, finished_at = :now,
           last_error = COALESCE(:reason, last_error)
     WHERE id = :id AND status IN {DISCARDABLE}
    RETURNING id
    """
)

# Operator's bulk retry (app/services/journal.py): each message of a batch to the status decided for it (queued, or
# waiting with :notes saying why), as RETRY_MESSAGE does one. Returns the messages changed; one that is no longer
# failed, dead or retrying is left as it is.
RETRY_MESSAGES = text(
    f"""
    UPDATE message m
       SET status = CAST(t.status AS message_status), next_attempt_at = :now, first_attempt_at = NULL,
           lease_until = NULL, finished_at = NULL, last_error = COALESCE(t.note, m.last_error)
      FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS text[]), CAST(:notes AS text[])) AS t(id, status, note)
     WHERE m.id = t.id AND m.status IN {RETRYABLE}
    RETURNING m.id, m.status::text AS status
    """
)

# Operator's bulk discard: DISCARD_MESSAGE for a batch of ids. Returns the messages discarded.
DISCARD_MESSAGES = text(
    f"""
    UPDATE message
       SET status = 'discarded', lease_until = NULL, finished_at = :now, last_error = COALESCE(:reason, last_error)
     WHERE id = ANY(CAST(:ids AS bigint[])) AND status IN {DISCARDABLE}
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
#            may retry it meanwhile), with its full references (message_refs, by primary key: most have none).
# Returns the counts per verdict, how many were deleted, and the keyset of the last message read.
PRUNE_JOURNAL_BATCH = text(
    f"""
    WITH examined AS MATERIALIZED (
        SELECT id, created_at, status, finished_at, direction, channel, lane FROM message
         WHERE created_at < :cutoff AND created_at >= :after_at AND (created_at > :after_at OR id > :after_id)
         ORDER BY created_at, id
         LIMIT :batch
    ),
    judged AS MATERIALIZED (
        SELECT e.id,
               CASE WHEN e.status NOT IN {FINISHED} THEN 'pending'
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
           AND m.status IN {FINISHED}
           AND m.finished_at < :finished_before
        RETURNING m.id
    ),
    references_deleted AS (
        DELETE FROM message_refs r WHERE r.message_id = ANY(ARRAY(SELECT id FROM deleted))
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

# A prune holds autovacuum of `message` off while it runs and gives it back after (JournalPrune.autovacuum_held
# says why). Every running prune holds the hold key shared; whoever gets it exclusively knows no prune is running.
HOLD_AUTOVACUUM_SHARED = text("SELECT pg_advisory_lock_shared(:key)")
RELEASE_AUTOVACUUM_SHARED = text("SELECT pg_advisory_unlock_shared(:key)")
TRY_AUTOVACUUM_EXCLUSIVE = text("SELECT pg_try_advisory_lock(:key)")
RELEASE_AUTOVACUUM_EXCLUSIVE = text("SELECT pg_advisory_unlock(:key)")
# Bounded waits: the ALTER queues behind a running (auto)vacuum of the table, never behind ingest (its lock, SHARE
# UPDATE EXCLUSIVE, does not conflict with INSERT / UPDATE / DELETE).
AUTOVACUUM_LOCK_TIMEOUT = text("SET lock_timeout = '5s'")
STOP_MESSAGE_AUTOVACUUM = text("ALTER TABLE message SET (autovacuum_enabled = false)")
RESUME_MESSAGE_AUTOVACUUM = text("ALTER TABLE message RESET (autovacuum_enabled)")
# Whether autovacuum of `message` is off (a prune's hold, or one a crashed prune left behind).
MESSAGE_AUTOVACUUM_STOPPED = text(
    "SELECT coalesce('autovacuum_enabled=false' = ANY(reloptions), false) FROM pg_class WHERE oid = 'message'::regclass"
)

# The daily prune: one replica at a time (a session lock, released when its connection closes), at most once a day
# (integration_state.daily_prune_at: when the last one ran, whether or not it deleted anything).
TRY_PRUNE_LOCK = text("SELECT pg_try_advisory_lock(:key)")
# When the last daily prune ran (NULL: never).
LAST_DAILY_PRUNE = text("SELECT daily_prune_at FROM integration_state WHERE id = 1")
# A daily prune ran (:at: when it was found due).
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

# A journal entry the connector writes itself, finished (a CSV import's): its summary, and when it ran.
SET_JOURNAL_RESULT = text(
    "UPDATE message SET result = CAST(:result AS jsonb), finished_at = :now, started_at = :now WHERE id = :id"
)
