"""What operators watch, read in bounded statements: the backlog, failures and blocked lanes of /integration
(app/services/integration_status.py) and the cluster-wide gauges of GET /metrics (app/metrics.py). Each statement's
cost follows what is pending, or a limit, never the size of the journal."""

from __future__ import annotations

from sqlalchemy import text

from app.data.statuses import PENDING, UNFINISHED

# What is pending per direction, channel and topic (the JSON-RPC method): order lanes are one per order, so a row
# per lane would be one per order. Read through ix_message_status_id (the pending statuses only) and hashed per
# topic: no count of distinct lanes, which sorts every pending message (6x the cost).
TOPIC_BACKLOG = text(
    f"""
    SELECT direction::text AS direction, channel, topic,
           count(*) FILTER (WHERE status = 'queued') AS queued,
           count(*) FILTER (WHERE status = 'waiting') AS waiting,
           count(*) FILTER (WHERE status = 'processing') AS processing,
           count(*) FILTER (WHERE status = 'retrying') AS retrying,
           min(created_at) AS oldest_pending_at
      FROM message WHERE status IN {UNFINISHED}
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
                                  AND older.status IN {PENDING} AND older.id < m.id)) AS b
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
            FROM message WHERE status IN {UNFINISHED}
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
                                AND older.status IN {PENDING} AND older.id < m.id)
           GROUP BY m.direction, m.channel) AS b) AS blocked,
      (SELECT to_jsonb(e) FROM (
          SELECT status, products_read, products_sent, batches_sent, batches_acknowledged, error_count,
                 extract(epoch FROM started_at) AS started_at_s
            FROM catalog_export ORDER BY id DESC LIMIT 1) AS e) AS catalog_export
    """
)
