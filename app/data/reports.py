"""The processing-time report's statements: the rollup of finished messages into per-minute and per-hour stat rows
(app/workers/stats.py), and the report read from those rows and the journal (app/services/reports.py). The periods
the stats are kept by, and how a time is floored to one, are here too: the SQL's date_trunc and Python must agree."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from app.data.statuses import FAILED_OR_DEAD, FINISHED

MINUTE = timedelta(minutes=1)  # the period of message_stat_minute rows
HOUR = timedelta(hours=1)  # the period of message_stat_hour rows
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # any midnight UTC: the origin floor_time counts whole periods from


def floor_time(moment: datetime, unit: timedelta) -> datetime:
    """The start (UTC) of the minute, hour or day holding ``moment``."""
    return moment - (moment - _EPOCH) % unit


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
           AND status IN {FINISHED}
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
# taken, histograms added bucket by bucket; the outcomes counted apart as well (failed and dead together:
# {failed_or_dead}, FAILED_OR_DEAD).
_MERGE_STATS = """
    WITH source AS MATERIALIZED ({source}),
    totals AS (
        SELECT {period} AS period, {keys}, CAST(sum(messages) AS bigint) AS messages,
               CAST(COALESCE(sum(messages) FILTER (WHERE outcome = 'succeeded'), 0) AS bigint) AS succeeded,
               CAST(COALESCE(sum(messages) FILTER (WHERE outcome IN {failed_or_dead}), 0) AS bigint) AS failed,
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
# What a stat row is per, besides its period.
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
# ... and write them again, a row per minute, direction, channel, topic and outcome.
ROLL_UP_MINUTES = text(
    f"""
    INSERT INTO message_stat_minute (minute, {_STAT_COLUMNS})
    SELECT minute, {_STAT_COLUMNS} FROM ({_STATS_OF_MESSAGES}) AS stats
    """
)

# Recompute the hours [:from_ts, :to_ts) from their minute rows (hours whose minutes are final).
CLEAR_STAT_HOURS = text("DELETE FROM message_stat_hour WHERE hour >= :from_ts AND hour < :to_ts")
# The hours [:from_ts, :to_ts) merged from their minute rows (a fragment of ROLL_UP_HOURS).
_HOURS_OF_MINUTES = _MERGE_STATS.format(
    source=f"SELECT minute AS period, {_STAT_COLUMNS} FROM message_stat_minute"
    " WHERE minute >= :from_ts AND minute < :to_ts",
    period="date_trunc('hour', period AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
    keys=_OUTCOME_KEYS,
    failed_or_dead=FAILED_OR_DEAD,
)
# ... and write them again (_HOURS_OF_MINUTES), a row per hour, direction, channel, topic and outcome.
ROLL_UP_HOURS = text(
    f"""
    INSERT INTO message_stat_hour (hour, {_STAT_COLUMNS})
    SELECT period, {_OUTCOME_KEYS}, messages, processing_count, processing_sum_ms, processing_max_ms,
           CAST(processing_buckets AS smallint[]), CAST(processing_counts AS integer[]), end_to_end_sum_ms,
           end_to_end_max_ms, CAST(end_to_end_buckets AS smallint[]), CAST(end_to_end_counts AS integer[])
      FROM ({_HOURS_OF_MINUTES}) AS hours
    """
)

# How far the rollup got now (the watermarks one step moved; app/models.py MessageStatState).
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
        failed_or_dead=FAILED_OR_DEAD,
    )
    + " ORDER BY direction, channel, topic, period"
)
