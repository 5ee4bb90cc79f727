"""GET /reports/processing and `oms-connector report processing`: which topic got slow, and since when."""

from __future__ import annotations

import asyncio
import csv
import io
import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from app.clock import FrozenClock
from app.db import DatabaseUrl
from app.runtime import Runtime
from app.services.histogram import MAX_RELATIVE_ERROR
from app.services.reports import CSV_COLUMNS, MAX_BUCKETS
from tests.integration.test_cli import refused, run
from tests.integration.test_processing_stats import IN_TOPIC, OUT_TOPIC, add_finished, stored_e2e
from tests.support.signing import COMMERCE_TOKEN, operator_headers

T0 = datetime(2026, 12, 8, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=2, minutes=3, seconds=20)  # 12:03:20
AUTH = operator_headers()
STOCK_TOPIC = "magento.inventory.aggregate_stock_management.updated"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


async def report(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/reports/processing", params=params, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def rows_of(document: dict[str, Any], topic: str) -> list[dict[str, Any]]:
    return [row for row in document["rows"] if row["topic"] == topic]


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered) - 1e-9)) - 1]


async def test_the_report_shows_which_topic_got_slow_and_since_when(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection, clock: FrozenClock
) -> None:
    rng = random.Random(11)
    slow_from = T0 + timedelta(hours=1, minutes=37)  # 11:37: stock updates start taking 20 times longer
    messages = []
    for second in range(0, 2 * 3600 + 180, 15):
        finished = T0 + timedelta(seconds=second)
        messages.append({"finished": finished, "topic": IN_TOPIC, "duration_ms": rng.randint(15, 25)})
        slow = finished >= slow_from
        messages.append(
            {"finished": finished, "topic": STOCK_TOPIC, "duration_ms": rng.randint(300, 500) if slow else 20,
             "e2e_ms": 30_000.0 if slow else 40.0}
        )  # fmt: skip
    await add_finished(raw, messages)
    clock.advance(minutes=-2)
    await runtime.stats.roll_up()  # up to 12:01; the last minutes are read from the journal
    clock.advance(minutes=2)

    by_hour = await report(client, since="3h")
    stock = rows_of(by_hour, STOCK_TOPIC)
    assert [row["bucket"] for row in stock] == ["2026-12-08T10:00:00Z", "2026-12-08T11:00:00Z", "2026-12-08T12:00:00Z"]
    assert stock[0]["processing"]["p95_ms"] == pytest.approx(20, rel=MAX_RELATIVE_ERROR)
    assert stock[1]["processing"]["p95_ms"] > 250  # the hour it got slow in
    assert stock[1]["end_to_end"]["max_ms"] == 30_000.0
    assert all(row["processing"]["p95_ms"] < 30 for row in rows_of(by_hour, IN_TOPIC))  # the other topic did not

    by_minute = await report(client, since="2026-12-08T11:00:00Z", until="2026-12-08T12:00:00Z", bucket="minute",
                             topic=STOCK_TOPIC)  # fmt: skip
    assert {row["topic"] for row in by_minute["rows"]} == {STOCK_TOPIC}
    slow_minutes = [row["bucket"] for row in by_minute["rows"] if row["processing"]["p50_ms"] > 100]
    assert slow_minutes[0] == "2026-12-08T11:37:00Z"  # since when
    assert len(slow_minutes) == 23  # and ever since (11:37 … 11:59)


async def test_the_figures_are_the_same_from_the_journal_alone_and_from_the_rolled_up_stats(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection, clock: FrozenClock
) -> None:
    rng = random.Random(5)
    messages = [
        {"finished": T0 - timedelta(hours=1) + timedelta(seconds=rng.uniform(0, 11_000)),
         "duration_ms": rng.choice([None, 0, 2, 30, 700, 12_000]), "e2e_ms": rng.uniform(0.1, 5e6),
         "status": rng.choice(["succeeded", "failed", "dead", "discarded", "rejected"]),
         "direction": direction, "channel": channel, "topic": topic}
        for direction, channel, topic in [("in", "oms", IN_TOPIC), ("out", "oms", OUT_TOPIC),
                                          ("out", "commerce", "commerce.order.comment")]
        for _ in range(300)
    ]  # fmt: skip
    await add_finished(raw, messages)
    asked = [{"since": "4h"}, {"since": "4h", "bucket": "minute"}, {"since": "2d", "bucket": "day"}]
    live = [await report(client, **params) for params in asked]
    assert all(document["rolled_up_until"] is None for document in live)

    await runtime.stats.roll_up()  # hour rows up to 12:00, minute rows up to 12:03, then the journal
    rolled = [await report(client, **params) for params in asked]
    assert rolled[0]["rolled_up_until"] == "2026-12-08T12:03:00Z"
    assert await raw.fetchval("SELECT count(DISTINCT hour) FROM message_stat_hour") == 3  # 09, 10, 11: final at 12:02
    for before, after in zip(live, rolled, strict=True):
        assert before["rows"] == after["rows"]
    assert sum(row["count"] for row in rolled[0]["rows"]) == len(messages)
    outcome_counts = {"succeeded": 0, "failed": 0, "discarded": 0, "rejected": 0}
    for m in messages:
        outcome_counts["failed" if m["status"] == "dead" else m["status"]] += 1
    for outcome, count in outcome_counts.items():
        assert sum(row[outcome] for row in rolled[1]["rows"]) == count


async def test_counts_averages_and_maxima_are_exact_and_percentiles_within_the_stated_error(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection
) -> None:
    rng = random.Random(17)
    messages = [
        {"finished": T0 + timedelta(seconds=rng.uniform(0, 3599)), "duration_ms": int(math.exp(rng.uniform(0, 13))),
         "e2e_ms": math.exp(rng.uniform(-3, 18))}
        for _ in range(1500)
    ]  # fmt: skip
    await add_finished(raw, messages)
    await runtime.stats.roll_up()

    (row,) = (await report(client, since="2026-12-08T10:00:00Z", until="2026-12-08T11:00:00Z"))["rows"]

    processing = [float(m["duration_ms"]) for m in messages]
    end_to_end = [stored_e2e(m) for m in messages]
    assert row["count"] == row["succeeded"] == 1500
    for figures, values in ((row["processing"], processing), (row["end_to_end"], end_to_end)):
        assert figures["count"] == len(values)
        assert figures["avg_ms"] == pytest.approx(sum(values) / len(values), abs=0.001)
        assert figures["max_ms"] == pytest.approx(max(values), abs=0.001)
        for name, q in (("p50_ms", 0.50), ("p95_ms", 0.95), ("p99_ms", 0.99)):
            exact = nearest_rank(values, q)
            assert abs(figures[name] - exact) <= exact * MAX_RELATIVE_ERROR + 0.001, (name, figures[name], exact)


async def test_by_default_the_report_covers_the_last_24_hours_by_hour(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    await add_finished(
        raw,
        [{"finished": NOW - timedelta(hours=24, minutes=2)}, {"finished": NOW - timedelta(hours=24, minutes=4)},
         {"finished": NOW - timedelta(seconds=5)}],
    )  # fmt: skip

    document = await report(client)

    assert document["bucket"] == "hour"
    assert document["since"] == "2026-12-07T12:00:00Z"  # 24 h before 12:03:20, at the start of its hour
    assert document["until"] == "2026-12-08T12:04:00Z"  # the end of the minute under way
    assert [(row["bucket"], row["count"]) for row in document["rows"]] == [
        ("2026-12-07T12:00:00Z", 1), ("2026-12-08T12:00:00Z", 1)
    ]  # fmt: skip


async def test_direction_channel_and_topic_filter_the_rows(client: httpx.AsyncClient, raw: asyncpg.Connection) -> None:
    when = NOW - timedelta(minutes=30)
    await add_finished(
        raw,
        [{"finished": when, "direction": "in", "topic": IN_TOPIC},
         {"finished": when, "direction": "out", "topic": OUT_TOPIC},
         {"finished": when, "direction": "out", "channel": "commerce", "topic": "commerce.order.ship"},
         {"finished": when, "direction": "out", "channel": "commerce", "topic": "commerce.order.comment"}],
    )  # fmt: skip

    def topics(document: dict[str, Any]) -> list[str]:
        return [row["topic"] for row in document["rows"]]

    assert topics(await report(client, direction="in")) == [IN_TOPIC]
    assert topics(await report(client, channel="commerce")) == ["commerce.order.comment", "commerce.order.ship"]
    assert topics(await report(client, direction="out", channel="oms")) == [OUT_TOPIC]
    picked = await report(client, topic=["commerce.order.ship", IN_TOPIC])
    assert topics(picked) == [IN_TOPIC, "commerce.order.ship"]
    assert picked["topics"] == ["commerce.order.ship", IN_TOPIC]
    assert topics(await report(client, topic="no.such.topic")) == []


async def test_accept_text_csv_gives_the_same_report_as_csv(client: httpx.AsyncClient, raw: asyncpg.Connection) -> None:
    when = NOW - timedelta(minutes=30)
    await add_finished(
        raw,
        [{"finished": when, "duration_ms": 12, "e2e_ms": 40.0}, {"finished": when, "duration_ms": 30, "e2e_ms": 90.0},
         {"finished": when, "status": "rejected", "duration_ms": None, "topic": "unknown.method", "e2e_ms": 0.0}],
    )  # fmt: skip
    document = await report(client)

    response = await client.get("/reports/processing", headers={**AUTH, "Accept": "text/csv"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(response.text)))
    assert list(lines[0]) == CSV_COLUMNS
    assert [(line["topic"], line["count"], line["succeeded"], line["rejected"]) for line in lines] == [
        (IN_TOPIC, "2", "2", "0"), ("unknown.method", "1", "0", "1")
    ]  # fmt: skip
    first = document["rows"][0]
    assert lines[0]["bucket"] == "2026-12-08T11:00:00+00:00"
    assert float(lines[0]["processing_avg_ms"]) == first["processing"]["avg_ms"] == 21.0
    assert float(lines[0]["end_to_end_max_ms"]) == first["end_to_end"]["max_ms"] == 90.0
    assert lines[1]["processing_p50_ms"] == ""  # a rejected message was never processed


@pytest.mark.parametrize(
    ("params", "field", "says"),
    [
        ({"since": "1h", "until": "2h"}, "until", "must be after since"),
        ({"since": "3d", "bucket": "minute"}, "since", f"at most {MAX_BUCKETS}"),
        ({"since": "100d", "bucket": "hour"}, "since", "62 days by hour"),
        ({"since": "yesterday"}, "since", "not a time"),
        ({"until": "2026-13-45"}, "until", "not a time"),
        ({"since": "0001-01-01T00:00:00+14:00"}, "since", "not a time"),
        ({"since": "999999999w"}, "since", "too far back"),
        ({"bucket": "week"}, "bucket", ""),
        ({"direction": "sideways"}, "direction", ""),
        ({"topic": ["t"] * 51}, "topic", "at most 50"),
        ({"topic": "x" * 201}, "topic", ""),
    ],
)
async def test_a_range_or_filter_that_cannot_be_reported_is_refused_with_422_naming_it(
    client: httpx.AsyncClient, params: dict[str, Any], field: str, says: str
) -> None:
    response = await client.get("/reports/processing", params=params, headers=AUTH)

    assert response.status_code == 422, response.text
    document = response.json()
    assert document["error"] in ("InputRejected", "RequestValidationError")
    assert document["errors"][0]["field"].endswith(field)
    assert says in document["errors"][0]["message"]


async def test_the_report_needs_the_operator_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/reports/processing")).status_code == 401
    commerce = {"Authorization": f"Bearer {COMMERCE_TOKEN}"}
    assert (await client.get("/reports/processing", headers=commerce)).status_code == 401


async def test_report_processing_prints_the_report_as_a_table(raw: asyncpg.Connection, database_url: DatabaseUrl):
    now = datetime.now(UTC)  # the command reads the system clock
    await add_finished(
        raw,
        [{"finished": now - timedelta(minutes=20), "duration_ms": 1200, "e2e_ms": 95_000.0, "topic": STOCK_TOPIC},
         {"finished": now - timedelta(minutes=20), "duration_ms": 800, "e2e_ms": 5_000.0, "topic": STOCK_TOPIC,
          "status": "dead"},
         {"finished": now - timedelta(minutes=20), "duration_ms": 4, "topic": IN_TOPIC}],
    )  # fmt: skip
    env = {"DATABASE_URL": database_url.libpq, "RUN_MIGRATIONS": "false"}

    result = await asyncio.to_thread(run, ["report", "processing", "--since", "2h", "--topic", STOCK_TOPIC], **env)

    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()[1:]  # after the line saying what the report covers
    assert header.split()[:5] == ["BUCKET", "(UTC)", "DIR", "CHANNEL", "TOPIC"]
    assert len(rows) == 1
    cells = rows[0].split()  # bucket (date, time), dir, channel, topic, 5 counts, 5 processing, 5 end-to-end figures
    assert cells[2:10] == ["in", "oms", STOCK_TOPIC, "2", "1", "1", "0", "0"]  # count, ok, failed or dead, …
    assert (cells[10], cells[14]) == ("1.00s", "1.20s")  # processing: average and maximum (exact)
    assert (cells[15], cells[19]) == ("50.0s", "95.0s")  # end to end
    assert cells[11] == "790ms"  # p50: the rank-1 value (800 ms), as its bucket [724, 861) ms gives it
    assert IN_TOPIC not in result.stdout
    widths = {len(line) for line in result.stdout.splitlines()[1:]}
    assert len(widths) == 1  # aligned

    bad = await asyncio.to_thread(run, ["report", "processing", "--since", "last week"], **env)
    assert bad.returncode == 2 and bad.stdout == ""
    assert "--since" in bad.stderr and "not a time" in bad.stderr


def test_report_processing_refuses_a_bad_variable_with_the_usual_one_line(tmp_path):
    result = run(["report", "processing"], DATA_DIR=str(tmp_path), OMS_EXPORT_STATUSES="pending")
    assert refused(result).startswith("oms-connector: OMS_EXPORT_STATUSES: not valid JSON")
