"""What a processing-time report may ask for (app/services/reports.py): times, buckets, bounds, and how its minutes
are split between the stats and the journal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.errors import InputRejected
from app.services.reports import MAX_BUCKETS, _ranges, format_ms, parse_moment, report_query

NOW = datetime(2026, 12, 8, 12, 3, 20, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90m", NOW - timedelta(minutes=90)),
        ("24h", NOW - timedelta(hours=24)),
        (" 7D ", NOW - timedelta(days=7)),
        ("2w", NOW - timedelta(weeks=2)),
        ("1.5h", NOW - timedelta(minutes=90)),
        ("30s", NOW - timedelta(seconds=30)),
        ("2026-12-08T10:00:00Z", datetime(2026, 12, 8, 10, tzinfo=UTC)),
        ("2026-12-08 10:00", datetime(2026, 12, 8, 10, tzinfo=UTC)),  # no offset: UTC
        ("2026-12-08T11:00:00+01:00", datetime(2026, 12, 8, 10, tzinfo=UTC)),
        ("2026-12-08T11:00:00 01:00", datetime(2026, 12, 8, 10, tzinfo=UTC)),  # "+" sent unencoded in a URL
        ("2026-12-08", datetime(2026, 12, 8, tzinfo=UTC)),
    ],
)
def test_a_time_is_a_duration_back_from_now_or_an_iso_8601_time(text, expected):
    assert parse_moment(text, NOW, "since") == expected


@pytest.mark.parametrize("text", ["yesterday", "24", "h", "-3h", "1e3h", "2026-12-08T25:00", ""])
def test_anything_else_is_refused_naming_the_parameter(text):
    with pytest.raises(InputRejected) as refused:
        parse_moment(text, NOW, "until")
    assert refused.value.errors[0]["field"] == "until"


def test_the_range_starts_at_its_bucket_and_ends_with_the_minute_holding_until():
    query = report_query(now=NOW, since="2026-12-01T13:45:10Z", bucket="day")
    assert (query.since, query.until) == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 8, 12, 4, tzinfo=UTC))
    query = report_query(now=NOW, since="2h", until="2026-12-08T12:00:00Z", bucket="minute")
    assert (query.since, query.until) == (
        datetime(2026, 12, 8, 10, 3, tzinfo=UTC),
        datetime(2026, 12, 8, 12, tzinfo=UTC),
    )
    assert report_query(now=NOW).since == datetime(2026, 12, 7, 12, tzinfo=UTC)  # default: 24 h, by hour


def test_at_most_1500_buckets_are_reported():
    assert MAX_BUCKETS == 1500
    report_query(now=NOW, since="25h", bucket="minute")  # 1,500 minutes back from until, and the one since is in
    with pytest.raises(InputRejected, match="at most 1500"):
        report_query(now=NOW, since="1501m", bucket="minute")
    report_query(now=NOW, since="62d", bucket="hour")
    report_query(now=NOW, since="1500d", bucket="day")
    with pytest.raises(InputRejected, match=r"62 days by hour"):
        report_query(now=NOW, since="63d", bucket="hour")


def test_each_topic_once_in_the_order_given():
    assert report_query(now=NOW, topics=["b", "a", "b"]).topics == ("b", "a")


def test_hour_rows_serve_whole_hours_minute_rows_the_rest_and_the_journal_what_is_not_rolled_up():
    by_hour = report_query(now=NOW, since="2026-12-08T08:00:00Z")
    ranges = _ranges(by_hour, datetime(2026, 12, 8, 12, 2, tzinfo=UTC), datetime(2026, 12, 8, 11, tzinfo=UTC))
    at = {name: value.strftime("%H:%M") for name, value in ranges.items()}
    assert at == {"hours_from": "08:00", "hours_to": "11:00", "minutes_from": "11:00", "minutes_to": "12:02",
                  "from_ts": "12:02", "to_ts": "12:04"}  # fmt: skip
    by_minute = report_query(now=NOW, since="2026-12-08T11:30:00Z", bucket="minute")
    ranges = _ranges(by_minute, datetime(2026, 12, 8, 12, 2, tzinfo=UTC), datetime(2026, 12, 8, 11, tzinfo=UTC))
    assert (ranges["hours_to"], ranges["minutes_from"]) == (by_minute.since, by_minute.since)  # no hour rows
    never = _ranges(by_hour, None, None)  # nothing rolled up yet: all from the journal
    assert never["from_ts"] == by_hour.since and never["to_ts"] == by_hour.until
    past = report_query(now=NOW, since="2026-12-01T00:00:00Z", until="2026-12-02T00:00:00Z")
    ranges = _ranges(past, datetime(2026, 12, 8, 12, 2, tzinfo=UTC), datetime(2026, 12, 8, 11, tzinfo=UTC))
    assert ranges["hours_to"] == ranges["from_ts"] == ranges["to_ts"] == past.until  # all from hour rows


@pytest.mark.parametrize(
    ("ms", "text"),
    [(None, "-"), (0, "0.0ms"), (4.04, "4.0ms"), (12.4, "12ms"), (999.4, "999ms"), (999.6, "1.00s"), (1200, "1.20s"),
     (95_000, "95.0s"), (150_000, "2.5min"), (3 * 3600_000, "3.0h"), (3 * 86_400_000, "3.0d")],
)  # fmt: skip
def test_durations_are_printed_with_their_unit(ms, text):
    assert format_ms(ms) == text
