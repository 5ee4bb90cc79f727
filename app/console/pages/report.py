"""The console's processing-time report (the seed's "Connector system report"): per topic over the chosen range, how
many messages finished, how many failed, and how long they took (processing and end to end: average, p50, p95,
p99); charts of the volume per topic and of p50/p95 for one topic. A thin adapter over app/services/reports.py — the
same figures as GET /reports/processing and `oms-connector report processing`.

Ranges (``range``): 24h by hour, 7d and 30d by day."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from markupsafe import Markup, escape

from app.console.charts import Series, line_chart
from app.console.web import PREFIX, ConsoleRuntime, Viewer, fmt_ms, render
from app.errors import InputRejected
from app.models import Direction
from app.services.reports import (
    BUCKETS,
    MAX_CHANNEL_CHARS,
    MAX_TOPIC_CHARS,
    MAX_TOPICS,
    ProcessingReport,
    ProcessingRow,
    TopicTotals,
)

router = APIRouter()

Range = Literal["24h", "7d", "30d"]
# Each range and the buckets it may be read by (the first is the default).
# 7 days by hour (168 points a line) took 413 ms at p95 at 5M journal rows (bench/console.py; the API alone 244 ms):
# the console shows 7 days by day; `report processing --since 7d --bucket hour` and the API still read it by hour.
RANGE_BUCKETS: dict[str, tuple[str, ...]] = {"24h": ("hour",), "7d": ("day",), "30d": ("day",)}
RANGE_NAMES = {"24h": "last 24 hours", "7d": "last 7 days", "30d": "last 30 days"}
VOLUME_SERIES = 4  # the busiest topics get a line each in the volume chart; the others are added up in one
HALF_WIDTH = 600  # the viewBox of the two latency charts, side by side on a wide screen


@router.get("/report")
async def report_page(
    request: Request,
    _session: Viewer,
    runtime: ConsoleRuntime,
    span: Annotated[Range, Query(alias="range")] = "24h",
    bucket: Literal["hour", "day"] | None = None,
    direction: Direction | None = None,
    channel: Annotated[str | None, Query(max_length=MAX_CHANNEL_CHARS)] = None,
    topic: Annotated[list[str] | None, Query(max_length=MAX_TOPICS)] = None,
    focus: Annotated[str | None, Query(max_length=MAX_TOPIC_CHARS)] = None,
) -> Response:
    allowed = RANGE_BUCKETS[span]
    if bucket is not None and bucket not in allowed:
        raise InputRejected(
            [{"field": "bucket", "message": f"the {span} range is read by {' or '.join(allowed)}, not by {bucket}"}]
        )
    topics = [t for t in (topic or []) if t]
    query = runtime.reports.query(
        since=span,
        bucket=bucket or allowed[0],
        direction=direction.value if direction else None,
        channel=channel or None,
        topics=topics,
    )
    report, totals = await runtime.reports.processing_with_totals(query)
    starts = bucket_starts(report)
    labels = bucket_labels(starts, report.bucket)
    focused = _focus(totals, focus)
    filters = {"range": span, "bucket": bucket, "direction": direction.value if direction else None,
               "channel": channel or None, "topic": topics}  # fmt: skip
    return render(
        request,
        "report.html",
        {
            "title": "Report",
            "report": report,
            "totals": totals,
            "filters": filters,
            "ranges": RANGE_NAMES,
            "focused": focused,
            "focus_missing": focus if focus and focused is None else None,
            "breakable": breakable,
            "focus_link": lambda name: report_link(filters, focus=name) + "#latency",
            "volume_chart": volume_chart(report, totals, starts, labels),
            "processing_chart": latency_chart(report, focused, starts, labels, "processing"),
            "end_to_end_chart": latency_chart(report, focused, starts, labels, "end_to_end"),
            "failures": sum(t.failed for t in totals),
            "count": sum(t.count for t in totals),
        },
    )


def breakable(name: str) -> Markup:
    """A dotted name (a topic) that may wrap after each dot on a narrow screen (``<wbr>``: copied without it)."""
    return Markup(".<wbr>").join(escape(part) for part in name.split("."))


def report_link(filters: dict[str, object], **more: object) -> str:
    """This page's URL with ``filters`` (and ``more``), for links that keep what the operator chose."""
    pairs: list[tuple[str, str]] = []
    for name, value in {**filters, **more}.items():
        if isinstance(value, list):
            pairs += [(name, str(item)) for item in value]
        elif value:
            pairs.append((name, str(value)))
    return f"{PREFIX}/report" + (f"?{urlencode(pairs)}" if pairs else "")


def bucket_starts(report: ProcessingReport) -> list[datetime]:
    """The start of every bucket of the report's range, those without a message too."""
    size = BUCKETS[report.bucket]
    starts: list[datetime] = []
    moment = report.since
    while moment < report.until:
        starts.append(moment)
        moment += size
    return starts


def bucket_labels(starts: Sequence[datetime], bucket: str) -> list[str]:
    """x labels (UTC): the hour within a day, the day and hour across days, the day by day."""
    if bucket == "day":
        return [f"{start:%m-%d}" for start in starts]
    if starts and starts[-1] - starts[0] >= timedelta(days=1, hours=1):
        return [f"{start:%m-%d %H:%M}" for start in starts]
    return [f"{start:%H:%M}" for start in starts]


def volume_chart(
    report: ProcessingReport, totals: Sequence[TopicTotals], starts: Sequence[datetime], labels: Sequence[str]
) -> Markup:
    """Messages finished per bucket: a line per busiest topic (VOLUME_SERIES), the rest added up in one."""
    position = {start: index for index, start in enumerate(starts)}
    busiest = sorted(totals, key=lambda t: (-t.count, t.topic))
    shown = [_key(t) for t in busiest[:VOLUME_SERIES]]
    lines: dict[tuple[str, str, str], list[float | None]] = {key: [0] * len(starts) for key in shown}
    others: list[float | None] = [0] * len(starts)
    for row in report.rows:
        index = position.get(row.bucket.astimezone(UTC))
        if index is None:
            continue
        values = lines.get(_key(row), others)
        values[index] = (values[index] or 0) + row.count
    series = [Series(_short(key), lines[key]) for key in shown]
    if len(busiest) > VOLUME_SERIES:
        series.append(Series(f"{len(busiest) - VOLUME_SERIES} other topics", others))
    return line_chart(f"Messages finished per {report.bucket}", labels, series, y_title=f"messages per {report.bucket}")


def latency_chart(
    report: ProcessingReport,
    focused: TopicTotals | None,
    starts: Sequence[datetime],
    labels: Sequence[str],
    duration: Literal["processing", "end_to_end"],
) -> Markup:
    """p50 and p95 of one duration of the focused topic per bucket (no dot where it had no message)."""
    p50: list[float | None] = [None] * len(starts)
    p95: list[float | None] = [None] * len(starts)
    if focused is not None:
        position = {start: index for index, start in enumerate(starts)}
        for row in _rows_of(report.rows, focused):
            stats = row.processing if duration == "processing" else row.end_to_end
            index = position.get(row.bucket.astimezone(UTC))
            if stats is None or not stats.count or index is None:
                continue
            p50[index], p95[index] = stats.p50_ms, stats.p95_ms
    name = "Processing time" if duration == "processing" else "End-to-end time"
    return line_chart(
        f"{name} p50 and p95" + (f" of {focused.topic}" if focused else ""),
        labels,
        [Series("p50", p50), Series("p95", p95)],
        formatter=fmt_ms,
        y_title="milliseconds",
        width=HALF_WIDTH,
    )


def _focus(totals: Sequence[TopicTotals], focus: str | None) -> TopicTotals | None:
    """The topic the latency charts show: the one asked for, else the busiest."""
    if focus:
        return next((t for t in totals if t.topic == focus), None)
    return max(totals, key=lambda t: (t.count, t.topic), default=None)


def _rows_of(rows: Sequence[ProcessingRow], focused: TopicTotals) -> list[ProcessingRow]:
    return [row for row in rows if _key(row) == _key(focused)]


def _key(item: ProcessingRow | TopicTotals) -> tuple[str, str, str]:
    return (item.direction.value, item.channel, item.topic)


def _short(key: tuple[str, str, str]) -> str:
    """A legend entry: the topic's last two dotted parts, and its direction."""
    direction, channel, topic = key
    parts = topic.split(".")
    name = ".".join(parts[-2:]) if len(parts) > 2 else topic
    return f"{name} ({direction}{', ' + channel if channel != 'oms' else ''})"
