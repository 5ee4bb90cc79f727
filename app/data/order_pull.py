"""The order pull's statements (app/services/order_pull.py): its lock, its state row (cursor, schedule, last poll),
what the connector already knows of the orders of a page, and its journal entries."""

from __future__ import annotations

from sqlalchemy import text

from app.data.statuses import UNCLAIMED

# One replica polls at a time: a session lock, held on a connection of its own while the poll runs on others (no
# long transaction), released when that connection closes. The workers try it and skip a round when it is taken;
# `oms-connector orders pull` waits for it (a poll under way ends after a bounded number of pages).
TRY_PULL_LOCK = text("SELECT pg_try_advisory_lock(:key)")
TAKE_PULL_LOCK = text("SELECT pg_advisory_lock(:key)")

# Where the pull stands (the one row of order_pull).
PULL_STATE = text(
    """
    SELECT cursor_updated_at, cursor_entity_id, next_poll_at, failures, failure_message_id, last_started_at,
           last_finished_at, last_outcome, last_error, last_result, last_message_id
      FROM order_pull WHERE id = 1
    """
)

# The cursor moves to the order (:updated_at, :entity_id) fully handled, never backwards (a backfill from an earlier
# time, or the overlap of a poll, reads orders before it again). Returns the cursor in force.
MOVE_CURSOR = text(
    """
    UPDATE order_pull
       SET cursor_updated_at = :updated_at, cursor_entity_id = :entity_id
     WHERE id = 1
       AND (cursor_updated_at IS NULL
            OR (cursor_updated_at, cursor_entity_id) < (CAST(:updated_at AS timestamptz), CAST(:entity_id AS bigint)))
    RETURNING cursor_updated_at, cursor_entity_id
    """
)

# A poll starts.
START_POLL = text("UPDATE order_pull SET last_started_at = :now WHERE id = 1")

# A poll ended well: the next one is due at :next_poll_at; a failure under way is over.
POLL_SUCCEEDED = text(
    """
    UPDATE order_pull
       SET next_poll_at = :next_poll_at, failures = 0, failure_message_id = NULL, last_finished_at = :now,
           last_outcome = 'succeeded', last_error = NULL, last_result = CAST(:result AS jsonb),
           last_message_id = COALESCE(:message_id, last_message_id)
     WHERE id = 1
    """
)

# A poll failed: one more failure in a row, the next try at :next_poll_at (the backoff), its journal entry.
POLL_FAILED = text(
    """
    UPDATE order_pull
       SET next_poll_at = :next_poll_at, failures = failures + 1, failure_message_id = :message_id,
           last_finished_at = :now, last_outcome = 'failed', last_error = :error, last_result = CAST(:result AS jsonb),
           last_message_id = :message_id
     WHERE id = 1
    """
)

# The orders of a page the connector has stored already (by POST /orders or an earlier poll): its status and
# ``updated_at`` as last stored, to leave alone the ones that did not change.
KNOWN_ORDERS = text(
    """
    SELECT increment_id, commerce_status, commerce_updated_at
      FROM sales_order WHERE increment_id = ANY(CAST(:numbers AS text[]))
    """
)

# A journal entry of the connector's own (no peer sent it; no worker claims it: no handler has its topic): a poll
# that did something, a poll failing, or an order refused. Written once per :external_id (an order refused is
# keyed by its content, so a poll reading it again does not journal it again; ix_message_external_id).
JOURNAL_PULL_ENTRY = text(
    """
    INSERT INTO message (direction, channel, topic, external_id, lane, payload, refs, status, attempts, last_error,
                         result, next_attempt_at, first_attempt_at, created_at, started_at, finished_at, duration_ms)
    SELECT 'in', CAST(:channel AS text), CAST(:topic AS text), CAST(:external_id AS text), CAST(:topic AS text),
           CAST(:payload AS jsonb), CAST(:refs AS text[]), CAST(:status AS message_status), 1,
           CAST(:last_error AS text), CAST(:result AS jsonb), CAST(:next_attempt_at AS timestamptz),
           CAST(:started_at AS timestamptz), CAST(:started_at AS timestamptz), CAST(:started_at AS timestamptz),
           CAST(:finished_at AS timestamptz), CAST(:duration_ms AS integer)
     WHERE NOT EXISTS (SELECT 1 FROM message WHERE external_id = CAST(:external_id AS text) AND direction = 'in'
                                              AND channel = CAST(:channel AS text))
    ON CONFLICT (direction, channel, external_id) WHERE status <> 'rejected' DO NOTHING
    RETURNING id
    """
)

# The failure under way failed again: one more attempt, its error, when it is tried next. Nothing when an operator
# discarded its entry meanwhile (a new one is written then).
FAILED_AGAIN = text(
    f"""
    UPDATE message
       SET attempts = attempts + 1, last_error = :last_error, next_attempt_at = :next_attempt_at
     WHERE id = :id AND status IN {UNCLAIMED}
    RETURNING id
    """
)

# The failure under way is over: a poll succeeded (its entry reads as a message that succeeded after retries; its
# duration is the one of the poll that succeeded).
FAILURE_OVER = text(
    f"""
    UPDATE message
       SET status = 'succeeded', started_at = :started_at, finished_at = :now, result = CAST(:result AS jsonb),
           duration_ms = :duration_ms
     WHERE id = :id AND status IN {UNCLAIMED}
    """
)
