"""The console's orders page (/admin/orders) on a real PostgreSQL: the grid with the export status ("exported and
loaded") and the OMS status, its filters and keyset paging, an order's detail (lines, status trail, shipments with
tracking, messages), Cancel allowed or disabled with the reason, and "sync orders not exported" — driven through
the real POST /orders, the OMS's signed calls and the bus."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import asyncpg
import httpx
import pytest
import respx

from app.runtime import Runtime
from app.workers.registry import HandlerRegistry, build_registry
from tests.conftest import make_settings
from tests.support.console import READONLY_TOKEN, sign_in
from tests.support.oms_events import SHIPMENT_DONE, UPDATED, shipment_done, status_update
from tests.support.orders import commerce_order, item, order_body
from tests.support.signing import COMMERCE_TOKEN, operator_headers, rpc_body, signed_headers

OMS_URL = "http://oms.test/api/"
CANCEL = "magento.sales.order_management.cancel"
CREATE = "magento.sales.order_management.create"
COMMERCE = {"Authorization": f"Bearer {COMMERCE_TOKEN}", "Content-Type": "application/json"}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"oms_url": OMS_URL, "operator_readonly_token": READONLY_TOKEN}


@pytest.fixture
def registry() -> HandlerRegistry:
    return build_registry(make_settings())  # the real handlers: the OMS's updates and shipments are recorded


@pytest.fixture(autouse=True)
def oms_accepts(oms: respx.Router) -> respx.Route:
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": json.loads(request.content)["id"], "result": []})

    return oms.post(OMS_URL).mock(side_effect=respond)


# --- helpers ---------------------------------------------------------------------------------------------------
async def post_order(client: httpx.AsyncClient, number: str, status: str = "pending") -> None:
    document = commerce_order(
        increment_id=number,
        entity_id=int(number),
        status=status,
        items=[item(1001, "MUG-STONE-350", qty=2, price="12.50"), item(1002, "TEE-BLU-M", price="20.00")],
    )
    response = await client.post("/orders", content=order_body(document), headers=COMMERCE)
    assert response.status_code == 202, response.text


async def export(client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection, number: str) -> dict:
    """Post the order and deliver its create to the (respx) OMS; the create's ``order`` params."""
    await post_order(client, number)
    assert await runtime.bus.send_next_outbound("oms")
    payload = await raw.fetchval(
        "SELECT payload FROM message WHERE topic = $1 AND external_id LIKE $2", CREATE, f"%-{number}-1"
    )
    return json.loads(payload)["order"]


async def oms_call(client: httpx.AsyncClient, runtime: Runtime, method: str, params: dict[str, Any]) -> None:
    body = rpc_body(method, params)
    response = await client.post("/oms/rpc", content=body, headers=signed_headers(body))
    assert response.status_code == 200, response.text
    while await runtime.bus.process_next_inbound():
        pass


def rows(page: str) -> list[str]:
    """The grid's body rows as text (tags stripped, whitespace collapsed)."""
    body = re.search(r"<tbody>(.*?)</tbody>", page, re.S)
    if body is None:
        return []
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", row)).split()) for row in body.group(1).split("</tr>")[:-1]]


def numbers(page: str) -> list[str]:
    return re.findall(r'href="/admin/orders/(\d+)"', page)


def next_link(page: str) -> str | None:
    found = re.search(r'<a class="button" href="([^"]+)" rel="next">', page)
    return html.unescape(found.group(1)) if found else None


def cancel_form(page: str) -> str:
    return page.split("<h3>Cancel the order</h3>")[1].split("</form>")[0]


def notice(page: str) -> str:
    found = re.search(r'<p class="notice (\w+)" role="status">(.*?)</p>', page, re.S)
    assert found is not None, "no notice on the page"
    return f"{found.group(1)}: {html.unescape(found.group(2))}"


async def export_message_count(raw: asyncpg.Connection) -> int:
    return await raw.fetchval("SELECT count(*) FROM message WHERE topic = $1", CREATE)


# --- the grid --------------------------------------------------------------------------------------------------
async def test_the_grid_shows_each_orders_export_status_and_oms_status_newest_first(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection
) -> None:
    order = await export(client, runtime, raw, "100000001")
    await oms_call(client, runtime, "magento.sales.order_management.created", {"order": order})
    await oms_call(client, runtime, UPDATED, status_update(order, "RECEIVED", "IMPORTED"))
    await post_order(client, "100000002")  # queued, not sent yet
    await post_order(client, "100000003", status="payment_review")  # held: not an exportable status
    await sign_in(client)

    page = (await client.get("/admin/orders")).text

    assert numbers(page) == ["100000003", "100000002", "100000001"]
    held, queued, acknowledged = rows(page)
    assert "payment_review" in held and "held" in held and "not in OMS_EXPORT_STATUSES" in held
    assert "queued" in queued and "RECEIVED" not in queued
    assert "acknowledged" in acknowledged and "RECEIVED" in acknowledged
    assert "Exported &amp; loaded" in page and "OMS status" in page


async def test_the_json_order_list_and_view_carry_the_oms_status_the_grid_shows(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection
) -> None:
    order = await export(client, runtime, raw, "100000001")
    await oms_call(client, runtime, UPDATED, status_update(order, "ONHOLD", "PENDINGREMORSETIME"))
    await post_order(client, "100000002")
    listed = (await client.get("/orders", headers=operator_headers())).json()["items"]
    one = (await client.get("/orders/100000001", headers=operator_headers())).json()
    assert [(o["increment_id"], o["oms_status"]) for o in listed] == [("100000001", "ONHOLD"), ("100000002", None)]
    assert one["oms_status"] == "ONHOLD"


async def test_a_cursor_of_non_ascii_digits_is_refused_by_the_json_list_not_a_500(client: httpx.AsyncClient) -> None:
    response = await client.get("/orders", params={"cursor": "\u00b2"}, headers=operator_headers())
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "cursor"


async def test_the_export_status_filter_narrows_the_grid_and_stays_selected(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection
) -> None:
    await post_order(client, "100000001")
    await post_order(client, "100000002", status="payment_review")
    await sign_in(client)

    held = (await client.get("/admin/orders", params={"export_status": "held"})).text
    queued = (await client.get("/admin/orders", params={"export_status": "queued"})).text
    failed = (await client.get("/admin/orders", params={"export_status": "failed"})).text

    assert numbers(held) == ["100000002"] and '<option value="held" selected>' in held
    assert numbers(queued) == ["100000001"] and '<option value="queued" selected>' in queued
    assert numbers(failed) == [] and "No orders match these filters." in failed


async def test_the_number_and_since_filters_find_one_order_and_round_trip_in_the_form(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection
) -> None:
    await post_order(client, "100000001")
    await post_order(client, "100000002")
    await sign_in(client)

    one = (await client.get("/admin/orders", params={"number": "100000002"})).text
    missing = (await client.get("/admin/orders", params={"number": "999999999"})).text
    since = runtime.clock.now().replace(tzinfo=None, microsecond=0).isoformat()
    recent = (await client.get("/admin/orders", params={"since": since})).text
    future = (await client.get("/admin/orders", params={"since": "2999-01-01T00:00"})).text
    blank = (await client.get("/admin/orders", params={"number": "", "export_status": "", "since": ""})).text

    assert numbers(one) == ["100000002"] and 'name="number" value="100000002"' in one
    assert numbers(missing) == [] and "No order 999999999 matches" in missing
    assert numbers(recent) == ["100000002", "100000001"] and f'name="since" value="{since}"' in recent
    assert numbers(future) == [] and 'name="since" value="2999-01-01T00:00:00"' in future
    assert numbers(blank) == ["100000002", "100000001"]


async def test_the_grid_pages_newest_first_by_keyset_without_repeating_or_skipping(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection
) -> None:
    posted = [f"1000000{n:02d}" for n in range(1, 6)]
    for number in posted:
        await post_order(client, number)
    await sign_in(client)

    seen: list[list[str]] = []
    url: str | None = "/admin/orders?limit=2&export_status=queued"
    while url is not None:
        page = (await client.get(url)).text
        seen.append(numbers(page))
        url = next_link(page)
        if url is not None:
            assert "export_status=queued" in url and "limit=2" in url  # the filters ride along
        assert len(seen) <= 3

    assert seen == [posted[4:2:-1], posted[2:0:-1], posted[:1]]


@pytest.mark.parametrize(
    "query",
    [
        {"export_status": "exported"},
        {"since": "yesterday"},
        {"since": "0001-01-01T00:00+14:00"},
        {"limit": "0"},
        {"limit": "201"},
        {"limit": "many"},
        {"cursor": "abc"},
        {"cursor": "99999999999999999999"},
        {"number": "1" * 65},
    ],
)
async def test_a_bad_grid_query_answers_a_4xx_html_page_not_a_500(
    client: httpx.AsyncClient, query: dict[str, str]
) -> None:
    await sign_in(client)
    response = await client.get("/admin/orders", params=query)
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"].startswith("text/html")
    assert 'class="notice bad"' in response.text


async def test_a_nul_in_the_query_or_the_order_number_is_refused_with_a_422(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    grid = await client.get("/admin/orders", params={"number": "10\x0001"})
    detail = await client.get("/admin/orders/10%0001")
    assert (grid.status_code, detail.status_code) == (422, 422)  # app/routers/guard.py, for every path


async def test_signed_out_the_grid_sends_to_the_sign_in_form(client: httpx.AsyncClient) -> None:
    response = await client.get("/admin/orders?export_status=held")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/admin/login?next=")


# --- the detail ------------------------------------------------------------------------------------------------
async def test_the_detail_shows_unit_lines_status_trail_shipment_tracking_and_the_messages_naming_it(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection
) -> None:
    order = await export(client, runtime, raw, "100000001")
    await oms_call(client, runtime, UPDATED, status_update(order, "RECEIVED", "IMPORTED"))
    await oms_call(client, runtime, UPDATED, status_update(order, "COMPLETE", "FULLYSHIPPED"))
    await oms_call(client, runtime, SHIPMENT_DONE, shipment_done(order, shipment_id="S-1", tracking_number="TRK42"))
    await sign_in(client)

    page = (await client.get("/admin/orders/100000001")).text

    for line_id in ("1001-1", "1001-2", "1002-1"):
        assert f'<td class="mono">{line_id}</td>' in page
    trail = page[page.index("<h2>Status trail</h2>") : page.index("<h2>Shipments</h2>")]
    assert trail.index("RECEIVED") < trail.index("COMPLETE") and "IMPORTED" in trail and "FULLYSHIPPED" in trail
    shipments = page[page.index("<h2>Shipments</h2>") : page.index("<h2>Returns</h2>")]
    assert "S-1" in shipments and 'href="https://tracking.example/TRK42"' in shipments and "DHL" in shipments
    assert "2 \u00d7 MUG-STONE-350" in shipments
    assert 'href="/admin/journal?reference=100000001"' in page
    messages = page[page.index("<h2>Messages</h2>") :]
    assert CREATE in messages and UPDATED in messages and SHIPMENT_DONE in messages
    assert "No returns." in page and "No refunds." in page


async def test_an_order_never_posted_is_a_404_page(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    response = await client.get("/admin/orders/404404404")
    assert response.status_code == 404
    assert "no order 404404404 was posted" in response.text


# --- cancel ----------------------------------------------------------------------------------------------------
async def test_cancel_in_an_allowed_status_queues_the_cancel_call_with_the_reason(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection
) -> None:
    order = await export(client, runtime, raw, "100000001")
    await oms_call(client, runtime, UPDATED, status_update(order, "RECEIVED", "IMPORTED"))
    csrf = await sign_in(client)
    before = cancel_form((await client.get("/admin/orders/100000001")).text)
    assert 'name="reason"' in before and "Cancel order</button>" in before and "disabled" not in before

    answer = await client.post(
        "/admin/orders/100000001/cancel", data={"csrf_token": csrf, "reason": "customer changed their mind"}
    )

    assert answer.status_code == 303 and answer.headers["location"] == "/admin/orders/100000001"
    after = (await client.get(answer.headers["location"])).text
    assert notice(after).startswith(f"ok: Cancel of 100000001 requested: {CANCEL} queued")
    payload = await raw.fetchval("SELECT payload FROM message WHERE topic = $1", CANCEL)
    assert json.loads(payload)["order"]["reason"] == "customer changed their mind"
    assert "cancel requested already" in after and "customer changed their mind" in after


async def test_cancel_is_disabled_with_the_reason_in_a_blocked_status_and_a_post_is_refused(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection
) -> None:
    order = await export(client, runtime, raw, "100000001")
    await oms_call(client, runtime, UPDATED, status_update(order, "LOGISTICS", "READYTOSHIP"))
    csrf = await sign_in(client)

    page = (await client.get("/admin/orders/100000001")).text
    cancel = cancel_form(page)
    assert "disabled" in cancel and 'name="reason"' not in cancel
    assert "the OMS has it in status LOGISTICS" in cancel and "OMS_CANCEL_BLOCKED_STATUSES" in cancel

    answer = await client.post("/admin/orders/100000001/cancel", data={"csrf_token": csrf, "reason": "late"})

    assert answer.status_code == 303
    assert notice((await client.get(answer.headers["location"])).text).startswith("bad: Not canceled:")
    assert await raw.fetchval("SELECT count(*) FROM message WHERE topic = $1", CANCEL) == 0
    assert await raw.fetchval("SELECT cancel_requested_at FROM sales_order") is None


async def test_cancel_is_disabled_for_an_order_never_exported(client: httpx.AsyncClient) -> None:
    await post_order(client, "100000001", status="payment_review")
    await sign_in(client)
    page = (await client.get("/admin/orders/100000001")).text
    cancel = cancel_form(page)
    assert "disabled" in cancel and "never exported to the OMS" in cancel


async def test_a_cancel_reason_over_500_characters_is_refused_and_nothing_is_sent(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection
) -> None:
    await export(client, runtime, raw, "100000001")
    csrf = await sign_in(client)
    answer = await client.post("/admin/orders/100000001/cancel", data={"csrf_token": csrf, "reason": "x" * 501})
    assert answer.status_code == 422 and "reason: at most 500" in answer.text
    assert await raw.fetchval("SELECT count(*) FROM message WHERE topic = $1", CANCEL) == 0


# --- sync ------------------------------------------------------------------------------------------------------
async def discarded_export(client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection, number: str) -> None:
    """An order whose export an operator discarded: "not exported", what sync queues again."""
    await post_order(client, number)
    message_id = await raw.fetchval("SELECT export_message_id FROM sales_order WHERE increment_id = $1", number)
    await runtime.journal.discard(message_id, "test: the OMS was wrong")


async def test_sync_queues_again_the_orders_not_exported_and_says_which(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection
) -> None:
    await discarded_export(client, runtime, raw, "100000001")
    await discarded_export(client, runtime, raw, "100000002")
    await post_order(client, "100000003")  # queued already: not touched
    csrf = await sign_in(client)
    assert numbers((await client.get("/admin/orders?export_status=failed")).text) == ["100000002", "100000001"]

    answer = await client.post("/admin/orders/sync", data={"csrf_token": csrf, "limit": ""})

    assert answer.status_code == 303 and answer.headers["location"] == "/admin/orders"
    page = (await client.get("/admin/orders")).text
    assert notice(page) == "ok: Sync: 2 order(s) queued for export again (100000001, 100000002)."
    assert numbers((await client.get("/admin/orders?export_status=failed")).text) == []
    exports = await raw.fetch("SELECT increment_id, cardinality(export_message_ids) AS n FROM sales_order ORDER BY id")
    assert [(row["increment_id"], row["n"]) for row in exports] == [
        ("100000001", 2), ("100000002", 2), ("100000003", 1),
    ]  # fmt: skip


async def test_sync_with_a_limit_queues_only_that_many_oldest_first(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection
) -> None:
    await discarded_export(client, runtime, raw, "100000001")
    await discarded_export(client, runtime, raw, "100000002")
    csrf = await sign_in(client)

    answer = await client.post("/admin/orders/sync", data={"csrf_token": csrf, "limit": "1"})

    assert notice((await client.get(answer.headers["location"])).text) == (
        "ok: Sync: 1 order(s) queued for export again (100000001)."
    )
    assert await export_message_count(raw) == 3


@pytest.mark.parametrize("limit", ["0", "-3", "abc", "1000001", "1" * 40, "²"])
async def test_sync_with_a_bad_limit_is_refused_with_a_422_page_and_queues_nothing(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection, limit: str
) -> None:
    await discarded_export(client, runtime, raw, "100000001")
    csrf = await sign_in(client)
    answer = await client.post("/admin/orders/sync", data={"csrf_token": csrf, "limit": limit})
    assert answer.status_code == 422 and "limit: blank (all) or 1 to 1,000,000" in answer.text
    assert await export_message_count(raw) == 1


# --- who may change things -------------------------------------------------------------------------------------
async def test_a_read_only_session_sees_disabled_buttons_and_its_posts_change_nothing(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection
) -> None:
    order = await export(client, runtime, raw, "100000001")
    await oms_call(client, runtime, UPDATED, status_update(order, "RECEIVED", "IMPORTED"))
    await discarded_export(client, runtime, raw, "100000002")
    csrf = await sign_in(client, READONLY_TOKEN)

    grid = (await client.get("/admin/orders")).text
    detail = (await client.get("/admin/orders/100000001")).text
    sync = await client.post("/admin/orders/sync", data={"csrf_token": csrf})
    cancel = await client.post("/admin/orders/100000001/cancel", data={"csrf_token": csrf, "reason": "no"})

    assert 'disabled title="read-only sign-in">Sync orders' in grid
    assert 'disabled title="read-only sign-in">Cancel order' in detail
    assert sync.status_code == 403 and cancel.status_code == 403 and "Read-only" in sync.text
    assert await export_message_count(raw) == 2
    assert await raw.fetchval("SELECT count(*) FROM message WHERE topic = $1", CANCEL) == 0


async def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection
) -> None:
    await export(client, runtime, raw, "100000001")
    await discarded_export(client, runtime, raw, "100000002")
    await sign_in(client)

    sync = await client.post("/admin/orders/sync", data={"limit": "5"})
    cancel = await client.post("/admin/orders/100000001/cancel", data={"reason": "no", "csrf_token": "forged"})

    assert sync.status_code == 403 and cancel.status_code == 403 and "CSRF" in sync.text
    assert await export_message_count(raw) == 2
    assert await raw.fetchval("SELECT count(*) FROM message WHERE topic = $1", CANCEL) == 0
