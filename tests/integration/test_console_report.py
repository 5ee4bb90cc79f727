"""The console's report page (/admin/report): per topic over the range (count, failures, average, p50, p95, p99 of
processing and end to end), the volume chart and p50/p95 charts, the range and filters in the URL."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from app.clock import FrozenClock
from app.console.web import fmt_ms
from app.runtime import Runtime
from app.services.histogram import MAX_RELATIVE_ERROR
from tests.integration.test_processing_stats import add_finished
from tests.support.charts import chart, points
from tests.support.console import READONLY_TOKEN, sign_in

NOW = datetime(2026, 12, 8, 12, 3, 20, tzinfo=UTC)
HOUR = NOW.replace(minute=0, second=0)  # 12:00, the bucket NOW is in
CREATED = "magento.sales.order_management.created"
CREATE = "magento.sales.order_management.create"
STOCK = "magento.inventory.aggregate_stock_management.updated"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"operator_readonly_token": READONLY_TOKEN}


async def page_of(client: httpx.AsyncClient, **params: Any) -> str:
    response = await client.get("/admin/report", params=params)
    assert response.status_code == 200, response.text
    return html.unescape(response.text).replace("<wbr>", "")  # where a long topic may wrap


def table_rows(page: str) -> dict[str, list[str]]:
    """The per-topic table: topic → the text of its cells."""
    body = page[page.index('id="topics-heading"') :]
    rows: dict[str, list[str]] = {}
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S):
        cells = [re.sub(r"<[^>]+>", " ", cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        if cells:
            rows[" ".join(cells[1].split())] = [" ".join(cell.split()) for cell in cells]
    return rows


def two_hours_of_orders() -> list[dict[str, Any]]:
    """50 fast created orders at 10:xx, 50 slow ones at 11:xx, 4 of them failed; 10 stock updates at 11:xx."""
    fast = [{"finished": HOUR - timedelta(hours=2, minutes=-i), "topic": CREATED, "duration_ms": 10, "e2e_ms": 40.0}
            for i in range(50)]  # fmt: skip
    slow = [{"finished": HOUR - timedelta(hours=1, minutes=-i), "topic": CREATED, "duration_ms": 1000,
             "e2e_ms": 2000.0, "status": "failed" if i < 3 else "dead" if i == 3 else "succeeded"}
            for i in range(50)]  # fmt: skip
    stock = [{"finished": HOUR - timedelta(minutes=50 - i), "topic": STOCK, "duration_ms": 3} for i in range(10)]
    return fast + slow + stock


async def test_the_table_gives_each_topic_its_count_failures_and_percentiles_over_the_whole_range(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection
) -> None:
    await add_finished(raw, two_hours_of_orders())
    await sign_in(client)

    rows = table_rows(await page_of(client))

    report, totals = await runtime.reports.processing_with_totals(runtime.reports.query(since="24h"))
    created = next(t for t in totals if t.topic == CREATED)
    assert (created.count, created.failed) == (100, 4)
    assert created.processing is not None
    assert created.processing.avg_ms == pytest.approx(505.0)  # exact: sums are added, not averages averaged
    assert created.processing.p50_ms == pytest.approx(10, rel=MAX_RELATIVE_ERROR)  # from the merged histogram
    assert created.processing.p95_ms == pytest.approx(1000, rel=MAX_RELATIVE_ERROR)
    assert created.end_to_end.p99_ms == pytest.approx(2000, rel=MAX_RELATIVE_ERROR)
    cells = rows[CREATED]
    assert cells[:4] == ["← in oms", CREATED, "100", "✕ 4"]
    shown = [created.processing.avg_ms, created.processing.p50_ms, created.processing.p95_ms,
             created.processing.p99_ms, created.end_to_end.avg_ms, created.end_to_end.p50_ms,
             created.end_to_end.p95_ms, created.end_to_end.p99_ms]  # fmt: skip
    assert cells[4:] == [fmt_ms(value) for value in shown]
    assert rows[STOCK][2:4] == ["10", "0"]
    assert sum(row.count for row in report.rows) == 110


async def test_the_volume_chart_has_a_point_per_bucket_of_the_range_for_each_busy_topic(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    await add_finished(raw, two_hours_of_orders())
    await sign_in(client)

    by_range = {}
    for params, buckets in (({}, 25), ({"range": "7d", "bucket": "day"}, 8), ({"range": "7d"}, 8),
                            ({"range": "30d"}, 31)):  # fmt: skip
        series = points(chart(await page_of(client, **params), "volume"))
        assert [len(values) for values in series.values()] == [buckets, buckets], params
        by_range[str(params)] = series

    day = by_range["{}"]
    busiest = [text for text in day[0] if not text.endswith(": 0")]
    assert busiest == ["order_management.created (in) · 10:00: 50", "order_management.created (in) · 11:00: 50"]
    assert [text for text in by_range["{'range': '30d'}"][1] if not text.endswith(": 0")] == [
        "aggregate_stock_management.updated (in) · 12-08: 10"
    ]


async def test_beyond_the_busiest_topics_the_volume_chart_adds_the_others_up_in_one_line(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    counts = {f"magento.test.topic_{n}": n for n in range(1, 7)}  # topic_6 is the busiest, topic_1 the quietest
    await add_finished(
        raw,
        [{"finished": HOUR - timedelta(minutes=10), "topic": topic} for topic, n in counts.items() for _ in range(n)],
    )
    await sign_in(client)

    svg = chart(await page_of(client), "volume")

    series = points(svg)
    names = [text.split(" · ")[0] for text in (values[0] for values in series.values())]
    assert names == ["test.topic_6 (in)", "test.topic_5 (in)", "test.topic_4 (in)", "test.topic_3 (in)",
                     "2 other topics"]  # fmt: skip
    assert [text.rsplit(": ", 1)[1] for text in (values[-2] for values in series.values())] == ["6", "5", "4", "3", "3"]


async def test_the_latency_charts_show_p50_and_p95_of_the_busiest_topic_only_where_it_had_messages(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection
) -> None:
    await add_finished(raw, two_hours_of_orders())
    await sign_in(client)

    page = await page_of(client)

    report = await runtime.reports.processing(runtime.reports.query(since="24h"))
    early, late = [row for row in report.rows if row.topic == CREATED]
    assert early.processing is not None and late.processing is not None
    processing = points(chart(page, "processing"))
    assert processing == {
        0: [f"p50 · 10:00: {fmt_ms(early.processing.p50_ms)}", f"p50 · 11:00: {fmt_ms(late.processing.p50_ms)}"],
        1: [f"p95 · 10:00: {fmt_ms(early.processing.p95_ms)}", f"p95 · 11:00: {fmt_ms(late.processing.p95_ms)}"],
    }  # a point for 10:00 and 11:00 only: the other hours had no created order
    assert late.processing.p95_ms == pytest.approx(1000, rel=MAX_RELATIVE_ERROR)
    assert f"of <code>{CREATED}</code>" in page
    end_to_end = points(chart(page, "end-to-end"))
    assert end_to_end[1][1] == f"p95 · 11:00: {fmt_ms(late.end_to_end.p95_ms)}"


async def test_focus_chooses_the_topic_the_latency_charts_show_and_an_absent_one_says_so(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    await add_finished(raw, two_hours_of_orders())
    await sign_in(client)

    page = await page_of(client, focus=STOCK)
    assert f"of <code>{STOCK}</code>" in page
    assert [len(values) for values in points(chart(page, "processing")).values()] == [1, 1]  # 11:00 only
    assert f'href="/admin/report?range=24h&focus={STOCK}#latency"' in page  # the table links to each topic

    page = await page_of(client, focus="magento.nothing.here")
    assert "No message of <code>magento.nothing.here</code> finished" in page
    assert points(chart(page, "processing")) == {}


async def test_the_filters_narrow_the_report_and_stay_in_the_url(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    await add_finished(
        raw,
        two_hours_of_orders()
        + [{"finished": HOUR - timedelta(minutes=5), "direction": "out", "topic": CREATE}] * 2
        + [{"finished": HOUR - timedelta(minutes=5), "direction": "out", "channel": "commerce",
            "topic": "commerce.order.comment"}],
    )  # fmt: skip
    await sign_in(client)

    assert set(table_rows(await page_of(client, direction="out"))) == {CREATE, "commerce.order.comment"}
    assert set(table_rows(await page_of(client, channel="commerce"))) == {"commerce.order.comment"}
    page = await page_of(client, topic=[STOCK, CREATE], range="7d", bucket="day")
    assert set(table_rows(page)) == {STOCK, CREATE}
    assert '<option value="7d" selected>' in page and '<option value="day" selected>' in page
    assert f'value="{STOCK}"' in page and f'value="{CREATE}"' in page


async def test_an_empty_range_says_so_and_draws_empty_charts(client: httpx.AsyncClient) -> None:
    await sign_in(client)

    page = await page_of(client, range="30d")

    assert "No message finished in this range with these filters." in page
    assert [len(values) for values in points(chart(page, "volume")).values()] == []


async def test_a_read_only_session_sees_the_report(client: httpx.AsyncClient, raw: asyncpg.Connection) -> None:
    await add_finished(raw, two_hours_of_orders())
    await sign_in(client, READONLY_TOKEN)

    assert CREATED in table_rows(await page_of(client))


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"range": "1y"}, "range"),
        ({"range": "24h", "bucket": "day"}, "bucket"),
        ({"range": "30d", "bucket": "hour"}, "bucket"),
        ({"range": "7d", "bucket": "hour"}, "bucket"),
        ({"bucket": "minute"}, "bucket"),
        ({"direction": "sideways"}, "direction"),
        ({"channel": "c" * 33}, "channel"),
        ({"topic": "t" * 201}, "topic"),
        ({"topic": [f"t{n}" for n in range(51)]}, "topic"),
        ({"focus": "f" * 201}, "focus"),
    ],
)
async def test_bad_query_input_answers_a_422_html_page_naming_the_parameter(
    client: httpx.AsyncClient, params: dict[str, Any], named: str
) -> None:
    await sign_in(client)

    response = await client.get("/admin/report", params=params)

    assert response.status_code == 422
    assert "text/html" in response.headers["content-type"]
    assert named in response.text
