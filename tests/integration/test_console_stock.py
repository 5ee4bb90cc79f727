"""The console's stock page (/admin/stock) on a real PostgreSQL: a SKU looked up per aggregate and per website, a
SKU the OMS never sent, a website's stock page by page, and the aggregates → websites map edited — stock sent
through the real signed OMS call, inbox and stock handler."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx
import pytest

from app.runtime import Runtime
from app.workers.registry import HandlerRegistry, build_registry
from tests.conftest import make_settings
from tests.support.console import READONLY_TOKEN, sign_in
from tests.support.signing import rpc_body, signed_headers

STOCK = "magento.inventory.aggregate_stock_management.updated"
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
MAP = {"EU-WEB": ["base", "de"], "US-WEB": ["us"]}


@pytest.fixture
def registry() -> HandlerRegistry:
    return build_registry(make_settings())  # the real stock handler


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"oms_aggregate_websites": MAP, "operator_readonly_token": READONLY_TOKEN}


async def send_stock(client: httpx.AsyncClient, runtime: Runtime, aggregate: str, rows: list[dict[str, Any]]) -> None:
    """A DELTA snapshot from the OMS, through the signed webhook, applied by the stock handler."""
    params = {
        "snapshot": {"aggregate_id": aggregate, "mode": "DELTA", "created_on": "2026-03-02 08:00:00", "stock": rows}
    }
    body = rpc_body(STOCK, params)
    response = await client.post("/oms/rpc", content=body, headers=signed_headers(body))
    assert response.status_code == 200, response.text
    while await runtime.bus.process_next_inbound():
        pass


async def stored_map(raw: asyncpg.Connection) -> dict[str, list[str]]:
    rows = await raw.fetch("SELECT aggregate_id, websites FROM stock_aggregate ORDER BY aggregate_id")
    return {row["aggregate_id"]: list(row["websites"]) for row in rows}


def section(page: str, start: str, end: str | None = None) -> str:
    text = page[page.index(start) :]
    return text[: text.index(end)] if end else text


def rows(fragment: str) -> list[str]:
    body = re.search(r"<tbody>(.*?)</tbody>", fragment, re.S)
    assert body is not None, "no table"
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", row)).split()) for row in body.group(1).split("</tr>")[:-1]]


def notice(page: str) -> str:
    found = re.search(r'<p class="notice (\w+)" role="status">(.*?)</p>', page, re.S)
    assert found is not None, "no notice on the page"
    return f"{found.group(1)}: {' '.join(html.unescape(re.sub(r'<[^>]+>', '', found.group(2))).split())}"


async def post_map(
    client: httpx.AsyncClient,
    form_rows: list[tuple[str, str]],
    csrf: str | None,
    *,
    extra: tuple[tuple[str, str], ...] = (),
) -> httpx.Response:
    """Post the map form: its rows (aggregate, websites) in order, as a browser sends repeated fields."""
    fields = [("csrf_token", csrf)] if csrf is not None else []
    for aggregate, websites in form_rows:
        fields += [("aggregate", aggregate), ("websites", websites)]
    return await client.post(
        "/admin/stock/aggregates",
        content=urlencode([*fields, *extra]),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


# --- lookup ----------------------------------------------------------------------------------------------------
async def test_a_sku_shows_each_aggregates_quantity_and_message_and_what_each_website_can_sell(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection
) -> None:
    await send_stock(client, runtime, "EU-WEB", [{"sku": "MUG-1", "quantity": "1250"}])
    await send_stock(client, runtime, "US-WEB", [{"sku": "MUG-1", "quantity": "0"}])
    await send_stock(client, runtime, "ASIA", [{"sku": "MUG-1", "quantity": "0", "unlimited": True}])
    eu_message = await raw.fetchval("SELECT message_id FROM stock WHERE aggregate_id = 'EU-WEB'")
    await sign_in(client)

    page = (await client.get("/admin/stock", params={"sku": "MUG-1"})).text

    aggregates = rows(section(page, "Per aggregate", "Per website"))
    assert aggregates[0].startswith("ASIA ∞ ∞ unlimited") and "no website (unassigned)" in aggregates[0]
    assert aggregates[1].startswith("EU-WEB 1,250 managed 2026-03-02 08:00:00") and "base, de" in aggregates[1]
    assert aggregates[2].startswith("US-WEB 0 managed") and aggregates[2].endswith("us")
    assert f'href="/admin/journal/{eu_message}">#{eu_message}</a>' in page
    websites = rows(section(page, "Per website", "A website's stock"))
    assert websites == [
        "base EU-WEB 1,250 ✓ in stock",
        "de EU-WEB 1,250 ✓ in stock",
        "us US-WEB 0 ✕ out of stock",
    ]
    assert "Stock of this SKU in ASIA reaches no website" in page
    assert 'name="sku" value="MUG-1"' in page


async def test_a_sku_the_oms_never_sent_says_never_received_on_the_page_not_an_error(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await send_stock(client, runtime, "EU-WEB", [{"sku": "MUG-1", "quantity": "3"}])
    await sign_in(client)

    response = await client.get("/admin/stock", params={"sku": "NEVER-SENT"})

    assert response.status_code == 200
    assert notice(response.text).startswith("warn: Never received: the OMS has sent no stock for SKU NEVER-SENT")
    assert "Per aggregate" not in response.text


async def test_a_websites_stock_is_listed_in_sku_order_page_by_page(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await send_stock(client, runtime, "EU-WEB", [{"sku": f"SKU-{n}", "quantity": str(n)} for n in range(5)])
    await send_stock(client, runtime, "US-WEB", [{"sku": "US-ONLY", "quantity": "9"}])
    await sign_in(client)

    seen: list[str] = []
    url: str | None = "/admin/stock?website=de&limit=2"
    while url is not None:
        page = (await client.get(url)).text
        seen += [row.split()[0] for row in rows(section(page, "A website's stock", "Aggregates → websites"))]
        found = re.search(r'<a class="button" href="([^"]+)" rel="next">', page)
        url = html.unescape(found.group(1)) if found else None
        assert len(seen) <= 6

    assert seen == [f"SKU-{n}" for n in range(5)]
    first = (await client.get("/admin/stock?website=de&limit=2")).text
    assert "is fed by aggregate <strong>EU-WEB</strong>" in first and '<option value="de" selected>' in first


async def test_a_website_no_aggregate_feeds_says_so_on_the_page(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    response = await client.get("/admin/stock", params={"website": "mars"})
    assert response.status_code == 200
    assert "website &#39;mars&#39; is fed by no aggregate" in response.text


@pytest.mark.parametrize(
    "query",
    [{"sku": "S" * 201}, {"website": "w" * 201}, {"website": "de", "limit": "0"}, {"limit": "x"}],
)
async def test_a_bad_stock_query_answers_a_422_html_page_not_a_500(
    client: httpx.AsyncClient, query: dict[str, str]
) -> None:
    await sign_in(client)
    response = await client.get("/admin/stock", params=query)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("text/html") and "Invalid input" in response.text


async def test_a_nul_in_the_query_is_refused_with_a_422_before_it_reaches_the_database(
    client: httpx.AsyncClient,
) -> None:
    await sign_in(client)
    response = await client.get("/admin/stock", params={"sku": "A\x00B"})
    assert response.status_code == 422 and "NUL" in response.text  # app/routers/guard.py, for every path


# --- the map ---------------------------------------------------------------------------------------------------
async def test_the_map_form_has_a_row_per_aggregate_and_an_empty_row(client: httpx.AsyncClient, runtime) -> None:
    await send_stock(client, runtime, "ASIA", [{"sku": "MUG-1", "quantity": "1"}])  # stock, but feeds nothing
    await sign_in(client)
    page = section((await client.get("/admin/stock")).text, "Aggregates → websites")
    values = re.findall(r'name="(aggregate|websites)" value="([^"]*)"', page)
    assert values == [
        ("aggregate", "EU-WEB"), ("websites", "base, de"),
        ("aggregate", "US-WEB"), ("websites", "us"),
        ("aggregate", "ASIA"), ("websites", ""),
        ("aggregate", ""), ("websites", ""),
    ]  # fmt: skip


async def test_saving_the_map_changes_which_websites_each_aggregate_feeds(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection
) -> None:
    await send_stock(client, runtime, "US-WEB", [{"sku": "MUG-1", "quantity": "4"}])
    csrf = await sign_in(client)

    answer = await post_map(client, [("EU-WEB", "base"), ("US-WEB", " us , de "), ("ASIA", "jp,"), ("", "")], csrf)

    assert answer.status_code == 303 and answer.headers["location"] == "/admin/stock"
    assert await stored_map(raw) == {"ASIA": ["jp"], "EU-WEB": ["base"], "US-WEB": ["us", "de"]}
    page = (await client.get("/admin/stock", params={"sku": "MUG-1"})).text
    assert notice(page) == "ok: Map saved: ASIA → jp; EU-WEB → base; US-WEB → us, de."
    assert "de US-WEB 4 ✓ in stock" in rows(section(page, "Per website", "A website's stock"))


async def test_clearing_a_rows_websites_leaves_that_aggregate_feeding_no_website(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    csrf = await sign_in(client)
    answer = await post_map(client, [("EU-WEB", "base, de"), ("US-WEB", "")], csrf)
    assert await stored_map(raw) == {"EU-WEB": ["base", "de"], "US-WEB": []}
    assert notice((await client.get(answer.headers["location"])).text) == (
        "ok: Map saved: EU-WEB → base, de. Feeding no website: US-WEB."
    )


@pytest.mark.parametrize(
    ("form_rows", "reason"),
    [
        (
            [("EU-WEB", "base, de"), ("US-WEB", "us, de")],
            "aggregates: website 'de' is fed by both 'EU-WEB' and 'US-WEB'",
        ),
        ([("EU-WEB", "base"), ("EU-WEB", "de")], "row 2: aggregate 'EU-WEB' is in two rows"),
        ([("EU-WEB", "base"), ("", "us")], "row 2: websites given without an aggregate id"),
        ([("A" * 201, "base")], "row 1: an aggregate id or website code over 200 chars"),
    ],
)
async def test_a_map_that_cannot_be_taken_is_refused_with_the_reason_and_nothing_changes(
    client: httpx.AsyncClient, raw: asyncpg.Connection, form_rows: list[tuple[str, str]], reason: str
) -> None:
    csrf = await sign_in(client)
    answer = await post_map(client, form_rows, csrf)
    assert answer.status_code == 303
    assert notice((await client.get(answer.headers["location"])).text) == f"bad: Map not saved: {reason}"
    assert await stored_map(raw) == MAP


async def test_a_map_post_with_uneven_rows_is_refused_and_nothing_changes(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    csrf = await sign_in(client)
    answer = await post_map(client, [], csrf, extra=(("aggregate", "EU-WEB"), ("aggregate", "US-WEB")))
    assert "every row needs an aggregate and a websites field" in notice(
        (await client.get(answer.headers["location"])).text
    )
    assert await stored_map(raw) == MAP


async def test_a_read_only_session_or_a_missing_csrf_token_cannot_change_the_map(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    operator_csrf = await sign_in(client)
    forged = await post_map(client, [("EU-WEB", "x")], None)
    wrong = await post_map(client, [("EU-WEB", "x")], operator_csrf + "x")
    readonly_csrf = await sign_in(client, READONLY_TOKEN)
    page = (await client.get("/admin/stock")).text
    readonly = await post_map(client, [("EU-WEB", "x")], readonly_csrf)

    assert (forged.status_code, wrong.status_code, readonly.status_code) == (403, 403, 403)
    assert 'disabled title="read-only sign-in">Save the map' in page
    assert await stored_map(raw) == MAP
