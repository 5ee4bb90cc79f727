"""The processing-time report (the seed's "Connector system report"): per topic and time bucket, how many messages
finished and how, and how long they took — processing (the handler run, or the outbound call) and end to end
(received → done inbound; queued → acknowledged by the peer outbound, retries included).

Read from the stats the rollup keeps (app/workers/stats.py): hour rows for the whole hours they cover, minute rows
for the rest, and the journal itself for the minutes not rolled up yet (normally the last one or two; every minute of
the range while no process runs workers), computed at each request by the rollup's own statement — so a report is
always up to the minute, and the same whichever source a minute comes from. Counts, sums, averages and maxima are
exact; percentiles come from merged histograms (app/services/histogram.py: within ±9.05 %).

Bounded: at most MAX_BUCKETS buckets per report (25 h by minute, 62 days by hour, 1,500 days by day) and
MAX_TOPICS topics; anything else is refused with 422 naming the parameter.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from app.clock import Clock
from app.data.reports import HOUR, MINUTE, PROCESSING_REPORT, ROLLED_UP_UNTIL, STATS_STATE, floor_time
from app.db import Database
from app.errors import InputRejected
from app.models import Direction
from app.services import histogram

BucketSize = Literal["minute", "hour", "day"]
BUCKETS: dict[str, timedelta] = {"minute": MINUTE, "hour": HOUR, "day": timedelta(days=1)}
DEFAULT_SINCE = timedelta(hours=24)
MAX_BUCKETS = 1500
MAX_TOPICS = 50
MAX_TOPIC_CHARS = 200  # message.topic
MAX_CHANNEL_CHARS = 32  # message.channel
MAX_RANGE = timedelta(days=36_500)
QUANTILES = (0.50, 0.95, 0.99)
PERCENTILES_NOTE = (
    f"p50, p95 and p99 are estimated from log-spaced histogram buckets ({histogram.BUCKETS_PER_DOUBLING} per "
    f"doubling): within ±{histogram.MAX_RELATIVE_ERROR * 100:.2f} % of the exact value (±0.5 ms under 1 ms); counts, "
    "averages and maxima are exact"
)

_RELATIVE = re.compile(r"^\s*(\d{1,9}(?:\.\d{1,6})?)\s*(s|sec|m|min|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
# "2026-12-08T10:00:00 01:00": a "+" sent unencoded in a query string arrives as a space.
_SPACED_OFFSET = re.compile(r"^(.*\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$")


# --- the question -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReportQuery:
    """A validated report request: minutes from ``since`` (aligned to the bucket) to the minute holding ``until``."""

    since: datetime
    until: datetime  # exclusive, a whole minute
    bucket: BucketSize
    direction: Direction | None = None
    channel: str | None = None
    topics: tuple[str, ...] = ()


def parse_moment(text: str, now: datetime, field: str) -> datetime:
    """A time as given in ``since`` / ``until``: a duration back from now (``90m``, ``24h``, ``7d``, ``2w``, ``30s``)
    or an ISO 8601 time (UTC when it has no offset)."""
    relative = _RELATIVE.match(text)
    if relative:
        seconds = float(relative.group(1)) * _UNITS[relative.group(2).lower()]
        if seconds > MAX_RANGE.total_seconds():
            raise _rejected(field, f"{text.strip()!r} is too far back (at most {MAX_RANGE.days} days)")
        return now - timedelta(seconds=seconds)
    spaced = _SPACED_OFFSET.match(text.strip())
    candidate = f"{spaced.group(1)}+{spaced.group(2)}" if spaced else text.strip()
    try:
        moment = datetime.fromisoformat(candidate)
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise _rejected(
            field, f"{text[:40]!r} is not a time: give a duration back from now (90m, 24h, 7d) or an ISO 8601 time"
        ) from None
    return moment


def report_query(
    *,
    now: datetime,
    since: str | None = None,
    until: str | None = None,
    bucket: str = "hour",
    direction: str | None = None,
    channel: str | None = None,
    topics: Sequence[str] = (),
) -> ReportQuery:
    """Validate a report request (the API's query parameters, the CLI's options); InputRejected names each one at
    fault. Defaults: the last 24 hours, by hour."""
    if bucket not in BUCKETS:
        raise _rejected("bucket", f"{bucket[:20]!r} is not a bucket: give minute, hour or day")
    size = BUCKETS[bucket]
    if direction is not None and direction not in {d.value for d in Direction}:
        raise _rejected("direction", f"{direction[:20]!r} is not a direction: give in or out")
    if channel is not None and not 0 < len(channel) <= MAX_CHANNEL_CHARS:
        raise _rejected("channel", f"give a channel of 1 to {MAX_CHANNEL_CHARS} characters (oms, commerce)")
    if len(topics) > MAX_TOPICS:
        raise _rejected("topic", f"at most {MAX_TOPICS} topics per report")
    for topic in topics:
        if not 0 < len(topic) <= MAX_TOPIC_CHARS:
            raise _rejected("topic", f"give topics of 1 to {MAX_TOPIC_CHARS} characters")
    start = parse_moment(since, now, "since") if since else now - DEFAULT_SINCE
    end = parse_moment(until, now, "until") if until else now
    if start.year < 2 or end.year > 9998:
        raise _rejected("since" if start.year < 2 else "until", "out of range")
    start = floor_time(start, size)
    end = _ceil_time(end, MINUTE)  # every minute that starts before `until`
    if end <= start:
        raise _rejected("until", "must be after since")
    buckets = math.ceil((end - start) / size)
    if buckets > MAX_BUCKETS + 1:  # the one `since` falls in counts whole: 25h by minute is fine
        longest = {"minute": "25 hours", "hour": "62 days", "day": f"{MAX_BUCKETS} days"}[bucket]
        raise _rejected(
            "since",
            f"{buckets} {bucket} buckets asked for: at most {MAX_BUCKETS} back from until ({longest} by {bucket}); "
            "choose a larger bucket or a shorter range",
        )
    return ReportQuery(
        since=start,
        until=end,
        bucket=bucket,  # type: ignore[arg-type]
        direction=Direction(direction) if direction else None,
        channel=channel,
        topics=tuple(dict.fromkeys(topics)),
    )


# --- the answer ---------------------------------------------------------------------------------------------------
class DurationStats(BaseModel):
    """One duration of the messages of a row, in milliseconds."""

    count: int = Field(description="Messages with this duration (rejected ones have no processing time)")
    avg_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


class ProcessingRow(BaseModel):
    """The messages of one topic that finished in one bucket."""

    bucket: datetime = Field(description="The bucket's start (UTC)")
    direction: Direction
    channel: str
    topic: str
    count: int = Field(description="Messages finished in the bucket")
    succeeded: int
    failed: int = Field(description="Failed or dead")
    discarded: int
    rejected: int
    processing: DurationStats | None = Field(description="The handler run (in) or the outbound call (out)")
    end_to_end: DurationStats = Field(
        description="Received → done (in); queued → acknowledged by the peer, retries included (out)"
    )


class ProcessingReport(BaseModel):
    """Per topic and bucket, oldest bucket first within a topic."""

    since: datetime = Field(description="The first bucket's start (the since asked for, aligned to the bucket)")
    until: datetime = Field(description="Exclusive: the end of the minute holding the until asked for")
    bucket: BucketSize
    direction: Direction | None
    channel: str | None
    topics: list[str]
    rolled_up_until: datetime | None = Field(
        description="Minutes from here on were read from the journal itself (the stats job had not rolled them up)"
    )
    percentiles: str = Field(description="How percentiles are estimated, and how far off they can be")
    rows: list[ProcessingRow]


CSV_COLUMNS = [
    "bucket", "direction", "channel", "topic", "count", "succeeded", "failed", "discarded", "rejected",
    *(f"processing_{name}" for name in ("count", "avg_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms")),
    *(f"end_to_end_{name}" for name in ("count", "avg_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms")),
]  # fmt: skip


def to_csv(report: ProcessingReport) -> str:
    """The report's rows as CSV (a header line, then a line per row; empty cells for a missing processing time)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in report.rows:
        cells: list[Any] = [
            row.bucket.isoformat(), row.direction.value, row.channel, row.topic, row.count, row.succeeded,
            row.failed, row.discarded, row.rejected,
        ]  # fmt: skip
        for stats in (row.processing, row.end_to_end):
            cells += (
                ["", "", "", "", "", ""]
                if stats is None
                else [stats.count, stats.avg_ms, stats.p50_ms, stats.p95_ms, stats.p99_ms, stats.max_ms]
            )
        writer.writerow(cells)
    return out.getvalue()


TABLE_COLUMNS = [
    "BUCKET (UTC)", "DIR", "CHANNEL", "TOPIC", "COUNT", "OK", "FAILED", "DISCARDED", "REJECTED",
    "PROC AVG", "P50", "P95", "P99", "MAX", "E2E AVG", "P50", "P95", "P99", "MAX",
]  # fmt: skip
_LEFT_ALIGNED = 4  # the bucket, direction, channel and topic; counts and durations are right-aligned


def render_table(report: ProcessingReport) -> str:
    """The report as an aligned text table (`oms-connector report processing`): a line saying what it covers, a
    header, a line per row (durations with their unit: ms, s, min, h, d)."""
    lines = [
        f"processing report {report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M} UTC by {report.bucket}"
        f"{_filters(report)}: {len(report.rows)} rows; percentiles within ±"
        f"{histogram.MAX_RELATIVE_ERROR * 100:.2f} %"
    ]
    cells = [TABLE_COLUMNS]
    for row in report.rows:
        line = [f"{row.bucket:%Y-%m-%d %H:%M}", row.direction.value, row.channel, row.topic]
        line += [str(n) for n in (row.count, row.succeeded, row.failed, row.discarded, row.rejected)]
        for stats in (row.processing, row.end_to_end):
            figures = [None] * 5 if stats is None else [stats.avg_ms, stats.p50_ms, stats.p95_ms, stats.p99_ms,
                                                          stats.max_ms]  # fmt: skip
            line += [format_ms(value) for value in figures]
        cells.append(line)
    widths = [max(len(line[i]) for line in cells) for i in range(len(TABLE_COLUMNS))]
    for line in cells:
        lines.append(
            "  ".join(
                cell.ljust(width) if i < _LEFT_ALIGNED else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(line, widths, strict=True))
            )
        )
    return "\n".join(lines)


def format_ms(value: float | None) -> str:
    """A duration for a person: 0.4ms, 12ms, 1.20s, 95.0s, 2.5min, 3.1h, 2.0d ("-" for none)."""
    if value is None:
        return "-"
    if value < 10:
        return f"{value:.1f}ms"
    if value < 999.5:
        return f"{value:.0f}ms"
    seconds = value / 1000
    if seconds < 9.995:
        return f"{seconds:.2f}s"
    if seconds < 99.95:
        return f"{seconds:.1f}s"
    if seconds < 5997:
        return f"{seconds / 60:.1f}min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def _filters(report: ProcessingReport) -> str:
    parts = [f"{name} {value}" for name, value in (("direction", report.direction), ("channel", report.channel))
             if value is not None]  # fmt: skip
    if report.topics:
        parts.append("topics " + ", ".join(report.topics))
    return f" ({'; '.join(parts)})" if parts else ""


# --- the service --------------------------------------------------------------------------------------------------
class ProcessingReports:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def query(self, **parameters: Any) -> ReportQuery:
        """``report_query`` at this runtime's now."""
        return report_query(now=self.clock.now(), **parameters)

    async def processing(self, query: ReportQuery) -> ProcessingReport:
        state, rows = await self._fetch(query)
        return self._report(query, state, rows)

    async def processing_with_totals(self, query: ReportQuery) -> tuple[ProcessingReport, list[TopicTotals]]:
        """The report, and per topic its figures over the whole range (histograms merged, not percentiles
        averaged): what the console's report page tabulates, from the same single read."""
        state, rows = await self._fetch(query)
        return self._report(query, state, rows), _totals(rows)

    async def _fetch(self, query: ReportQuery) -> tuple[Any, Sequence[Any]]:
        async with self.db.connect() as connection:
            state = (await connection.execute(STATS_STATE)).one()
            ranges = _ranges(query, state.rolled_up_until, state.hours_until)
            rows = (
                await connection.execute(
                    PROCESSING_REPORT,
                    {
                        **ranges,
                        "unit": query.bucket,
                        "bounds": list(histogram.BUCKET_BOUNDS),
                        "direction": query.direction.value if query.direction else None,
                        "channel": query.channel,
                        "topics": list(query.topics) if query.topics else None,
                    },
                )
            ).all()
        return state, rows

    @staticmethod
    def _report(query: ReportQuery, state: Any, rows: Sequence[Any]) -> ProcessingReport:
        return ProcessingReport(
            since=query.since,
            until=query.until,
            bucket=query.bucket,
            direction=query.direction,
            channel=query.channel,
            topics=list(query.topics),
            rolled_up_until=state.rolled_up_until,
            percentiles=PERCENTILES_NOTE,
            rows=[_row(row) for row in rows],
        )


async def counted_until(connection: AsyncConnection) -> datetime | None:
    """The contract with journal pruning: every message finished before this time is counted in the report for good
    (the rollup never recomputes those minutes), so deleting it changes no report. Prune deletes only finished
    messages with ``finished_at < counted_until``; None (nothing counted yet): no finished message may be deleted.
    Read in the caller's transaction (app/data/reports.py ROLLED_UP_UNTIL)."""
    return (await connection.execute(ROLLED_UP_UNTIL)).scalar()


def _ranges(query: ReportQuery, rolled_up_until: datetime | None, hours_until: datetime | None) -> dict[str, datetime]:
    """Where each minute of the query is read from, as three ranges that follow each other: hour rows (whole hours
    only, and not for a minute report), minute rows, and the journal for the minutes not rolled up yet."""
    start, end = query.since, query.until
    hours_to = start
    if query.bucket != "minute" and hours_until is not None:
        hours_to = min(max(hours_until, start), floor_time(end, HOUR))  # `since` is aligned to the hour already
        hours_to = max(hours_to, start)
    minutes_to = min(max(rolled_up_until or start, hours_to), end)
    return {
        "hours_from": start,
        "hours_to": hours_to,
        "minutes_from": hours_to,
        "minutes_to": minutes_to,
        "from_ts": minutes_to,
        "to_ts": end,
    }


def _row(row: Any) -> ProcessingRow:
    processing = None
    if row.processing_count:
        processing = _duration(
            row.processing_count,
            row.processing_sum_ms,
            row.processing_max_ms,
            row.processing_buckets,
            row.processing_counts,
        )
    return ProcessingRow(
        bucket=row.period,
        direction=row.direction,
        channel=row.channel,
        topic=row.topic,
        count=row.messages,
        succeeded=row.succeeded,
        failed=row.failed,
        discarded=row.discarded,
        rejected=row.rejected,
        processing=processing,
        end_to_end=_duration(
            row.messages, row.end_to_end_sum_ms, row.end_to_end_max_ms, row.end_to_end_buckets, row.end_to_end_counts
        ),
    )


class TopicTotals(BaseModel):
    """The messages of one topic that finished anywhere in the report's range."""

    direction: Direction
    channel: str
    topic: str
    count: int
    succeeded: int
    failed: int = Field(description="Failed or dead")
    discarded: int
    rejected: int
    processing: DurationStats | None
    end_to_end: DurationStats


def _totals(rows: Sequence[Any]) -> list[TopicTotals]:
    """The bucket rows of each topic merged: counts and sums added, maxima taken, histograms added bucket by bucket
    (so the range's percentiles are read from the range's histogram)."""
    merged: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in rows:
        entry = merged.setdefault(
            (row.direction, row.channel, row.topic),
            {"messages": 0, "succeeded": 0, "failed": 0, "discarded": 0, "rejected": 0,
             "processing": [0, 0, 0.0, {}], "end_to_end": [0, 0, 0.0, {}]},
        )  # fmt: skip
        for name in ("messages", "succeeded", "failed", "discarded", "rejected"):
            entry[name] += getattr(row, name)
        for name, count in (("processing", row.processing_count or 0), ("end_to_end", row.messages)):
            if not count:
                continue
            figures = entry[name]
            figures[0] += count
            figures[1] += getattr(row, f"{name}_sum_ms")
            figures[2] = max(figures[2], float(getattr(row, f"{name}_max_ms")))
            for bucket, n in zip(getattr(row, f"{name}_buckets"), getattr(row, f"{name}_counts"), strict=True):
                figures[3][bucket] = figures[3].get(bucket, 0) + n
    totals = []
    for (direction, channel, topic), entry in merged.items():
        stats = {}
        for name in ("processing", "end_to_end"):
            count, total, maximum, buckets = entry[name]
            ordered = sorted(buckets)
            stats[name] = _duration(count, total, maximum, ordered, [buckets[b] for b in ordered]) if count else None
        totals.append(
            TopicTotals(
                direction=direction,
                channel=channel,
                topic=topic,
                count=entry["messages"],
                succeeded=entry["succeeded"],
                failed=entry["failed"],
                discarded=entry["discarded"],
                rejected=entry["rejected"],
                processing=stats["processing"],
                end_to_end=stats["end_to_end"]
                or DurationStats(count=0, avg_ms=0, p50_ms=0, p95_ms=0, p99_ms=0, max_ms=0),
            )
        )
    return totals


def _duration(count: int, total: float, maximum: float, buckets: list[int], counts: list[int]) -> DurationStats:
    p50, p95, p99 = histogram.percentiles(buckets, counts, QUANTILES, float(maximum))
    return DurationStats(
        count=count,
        avg_ms=round(float(total) / count, 3),
        p50_ms=round(p50 or 0.0, 3),
        p95_ms=round(p95 or 0.0, 3),
        p99_ms=round(p99 or 0.0, 3),
        max_ms=round(float(maximum), 3),
    )


def _ceil_time(moment: datetime, unit: timedelta) -> datetime:
    floor = floor_time(moment, unit)
    return floor if floor == moment else floor + unit


def _rejected(field: str, message: str) -> InputRejected:
    return InputRejected([{"field": field, "message": message}])
