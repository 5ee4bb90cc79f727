"""POST /orders on a real PostgreSQL with a respx-mocked OMS: stored, held or exported once, export status per order,
the OMS's acknowledgement, sync mode with its outbox fallback, and `orders sync`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import respx

from app.clock import FrozenClock
from app.runtime import Runtime
from app.services import orders as orders_module
from app.services.orders import OrderService
from app.workers.registry import HandlerRegistry, build_registry
from tests.conftest import make_settings
from tests.support.orders import ABSENT, Selection, bundle, commerce_order, order_body
from tests.support.signing import COMMERCE_TOKEN, operator_headers, rpc_body, signed_headers

OMS_URL = "http://oms.test/api/"
CREATE = "magento.sales.order_management.create"
CREATED = "magento.sales.order_management.created"
COMMERCE = {"Authorization": f"Bearer {COMMERCE_TOKEN}", "Content-Type": "application/json"}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"oms_url": OMS_URL}


@pytest.fixture
def registry() -> HandlerRegistry:
    """The release's handlers (the OMS's `created` acknowledges an order)."""
    return build_registry(make_settings())


def answer(result: Any = None) -> Callable[[httpx.Request], httpx.Response]:
    def respond(request: httpx.Request) -> httpx.Response:
        document = json.loads(request.content)
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": document["id"], "result": result})

    return respond


async def post_order(client: httpx.AsyncClient, document: dict[str, Any], **headers: str) -> httpx.Response:
    return await client.post("/orders", content=order_body(document), headers={**COMMERCE, **headers})


async def export_messages(raw: asyncpg.Connection) -> list[asyncpg.Record]:
    return await raw.fetch("SELECT * FROM message WHERE direction = 'out' AND topic = $1 ORDER BY id", CREATE)


async def order_view(client: httpx.AsyncClient, number: str) -> dict[str, Any]:
    response = await client.get(f"/orders/{number}", headers=operator_headers())
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_pending_order_is_queued_once_and_its_status_follows_the_export(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection, oms: respx.Router
) -> None:
    route = oms.post(OMS_URL).mock(side_effect=answer([]))
    response = await post_order(client, commerce_order())
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["export_status"] == "queued" and body["exported_now"] is True and body["mode"] == "async"

    [message] = await export_messages(raw)
    assert body["message_id"] == message["id"]
    assert message["lane"] == "order/000000101" and message["external_id"] == "mdc-order-000000101-1"
    payload = json.loads(message["payload"])
    assert payload["order"]["id"] == "000000101"
    assert [line["id"] for line in payload["order"]["lines"]] == ["1001-1", "SHIPPING"]
    assert "000000101" in message["refs"] and "MUG-STONE-350" in message["refs"]

    view = await order_view(client, "000000101")
    assert view["export_status"] == "queued" and view["message_ids"] == [message["id"]]
    assert view["mcom"] == payload and view["order"]["increment_id"] == "000000101"

    assert await runtime.bus.send_next_outbound() == 1
    assert json.loads(route.calls.last.request.content)["params"] == payload
    view = await order_view(client, "000000101")
    assert view["export_status"] == "sent" and view["sent_at"] is not None and view["export_error"] is None

    # The OMS echoes the create as `created`: the order is acknowledged.
    created = rpc_body(CREATED, {"order": payload["order"]})
    assert (await client.post("/oms/rpc", content=created, headers=signed_headers(created))).status_code == 200
    assert await runtime.bus.process_next_inbound()
    view = await order_view(client, "000000101")
    ack = await raw.fetchrow("SELECT id, status FROM message WHERE topic = $1", CREATED)
    assert view["export_status"] == "acknowledged" and view["acknowledged_message_id"] == ack["id"]
    assert ack["status"] == "succeeded"


async def test_an_order_wrapped_as_an_adobe_io_event_is_stored_unwrapped(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    event = {
        "specversion": "1.0",
        "type": "com.adobe.commerce.observer.sales_order_save_commit_after",
        "data": {"value": commerce_order(increment_id="000000777")},
    }
    response = await client.post("/orders", content=order_body(event), headers=COMMERCE)
    assert response.status_code == 202, response.text
    document = json.loads(await raw.fetchval("SELECT document FROM sales_order WHERE increment_id = '000000777'"))
    assert document["increment_id"] == "000000777" and "specversion" not in document
    assert document["grand_total"] == 17.5  # 12.50 + 5.00 shipping, as sent


async def test_a_held_order_is_exported_when_a_later_post_makes_it_exportable_and_never_twice(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    held = await post_order(client, commerce_order(status="payment_review", updated_at="2025-02-10 17:42:07"))
    assert held.status_code == 202
    assert held.json()["export_status"] == "held" and held.json()["message_id"] is None
    assert "payment_review" in held.json()["reason"] and "OMS_EXPORT_STATUSES" in held.json()["reason"]
    assert await export_messages(raw) == []

    released = await post_order(client, commerce_order(status="pending", updated_at="2025-02-10 17:50:00"))
    assert released.json()["export_status"] == "queued" and released.json()["exported_now"] is True

    again = await post_order(client, commerce_order(status="processing", updated_at="2025-02-10 18:00:00"))
    assert again.status_code == 202
    assert again.json()["exported_now"] is False and again.json()["message_id"] == released.json()["message_id"]
    assert len(await export_messages(raw)) == 1
    assert await raw.fetchval("SELECT commerce_status FROM sales_order") == "processing"  # the store's latest word


async def test_a_late_event_older_than_the_stored_order_changes_nothing(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    await post_order(client, commerce_order(status="holded", updated_at="2025-02-10 18:00:00"))
    late = await post_order(client, commerce_order(status="pending", updated_at="2025-02-10 17:42:07"))
    assert late.json()["export_status"] == "held"
    assert await export_messages(raw) == []
    assert await raw.fetchval("SELECT commerce_status FROM sales_order") == "holded"


async def test_concurrent_posts_of_one_new_order_export_it_once(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    responses = await asyncio.gather(*(post_order(client, commerce_order()) for _ in range(8)))
    assert all(response.status_code == 202 for response in responses)
    assert sum(response.json()["exported_now"] for response in responses) == 1
    assert len({response.json()["message_id"] for response in responses}) == 1
    assert len(await export_messages(raw)) == 1


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (commerce_order(increment_id=ABSENT), "increment_id"),
        (commerce_order(items=[]), "items"),
        (commerce_order(order_currency_code="EURO"), "order_currency_code"),
        (commerce_order(grand_total="18.00"), "grand_total"),
        (commerce_order(billing_address=ABSENT), "billing_address"),
    ],
)
async def test_an_unusable_order_is_refused_with_422_naming_the_field_and_nothing_is_stored(
    client: httpx.AsyncClient, raw: asyncpg.Connection, document: dict[str, Any], field: str
) -> None:
    response = await post_order(client, document)
    assert response.status_code == 422, response.text
    assert field in [error["field"] for error in response.json()["errors"]]
    assert await raw.fetchval("SELECT count(*) FROM sales_order") == 0
    assert await export_messages(raw) == []


async def test_a_fractional_quantity_is_refused_naming_the_item(client: httpx.AsyncClient) -> None:
    order = commerce_order()
    order["items"][0]["qty_ordered"] = "1.5"
    response = await post_order(client, order)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "items[0].qty_ordered"


@pytest.mark.parametrize("body", [b"", b"{not json", b"[1, 2]", b'"an order"'])
async def test_a_body_that_is_not_an_order_object_is_refused_with_422(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post("/orders", content=body, headers=COMMERCE)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "(body)"


async def test_an_oversized_order_is_refused_with_413(client: httpx.AsyncClient, runtime: Runtime) -> None:
    limit = runtime.settings.commerce_max_body_bytes
    response = await client.post("/orders", content=b" " * (limit + 1), headers=COMMERCE)
    assert response.status_code == 413


async def test_order_export_takes_the_commerce_token_only(client: httpx.AsyncClient) -> None:
    body = order_body(commerce_order())
    assert (await client.post("/orders", content=body)).status_code == 401
    assert (await client.post("/orders", content=body, headers=operator_headers())).status_code == 401
    assert (await client.get("/orders/000000101")).status_code == 401
    assert (await client.get("/orders/000000101", headers=operator_headers())).status_code == 404


async def test_orders_are_listed_by_export_status_and_time_with_a_cursor(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock, oms: respx.Router
) -> None:
    oms.post(OMS_URL).mock(side_effect=answer([]))
    for n in range(5):
        await post_order(client, commerce_order(increment_id=f"10{n}", status="pending" if n % 2 == 0 else "holded"))
        clock.advance(minutes=1)
    first, page = [], "/orders?export_status=held&limit=1"
    while page:
        response = await client.get(page, headers=operator_headers())
        assert response.status_code == 200
        first += [item["increment_id"] for item in response.json()["items"]]
        cursor = response.json()["next_cursor"]
        page = f"/orders?export_status=held&limit=1&cursor={cursor}" if cursor else ""
    assert first == ["101", "103"]

    while await runtime.bus.send_next_outbound():
        pass
    sent = await client.get("/orders?export_status=sent", headers=operator_headers())
    assert [item["increment_id"] for item in sent.json()["items"]] == ["100", "102", "104"]
    since = (clock.now() - timedelta(minutes=2, seconds=30)).isoformat()
    recent = await client.get("/orders", params={"since": since}, headers=operator_headers())
    assert [item["increment_id"] for item in recent.json()["items"]] == ["103", "104"]
    assert (await client.get("/orders?export_status=lost", headers=operator_headers())).status_code == 422


async def test_a_refused_export_shows_failed_with_the_oms_reason(
    client: httpx.AsyncClient, runtime: Runtime, oms: respx.Router
) -> None:
    oms.post(OMS_URL).mock(return_value=httpx.Response(200, json={"jsonrpc": "2.0", "id": 1, "error": "bad order"}))
    await post_order(client, commerce_order())
    await runtime.bus.send_next_outbound()
    view = await order_view(client, "000000101")
    assert view["export_status"] == "failed" and "bad order" in view["export_error"]


async def test_an_acknowledgement_for_an_unknown_order_fails_in_the_journal(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection
) -> None:
    created = rpc_body(CREATED, {"order": {"id": "999"}})
    await client.post("/oms/rpc", content=created, headers=signed_headers(created))
    await runtime.bus.process_next_inbound()
    row = await raw.fetchrow("SELECT status, last_error FROM message WHERE topic = $1", CREATED)
    assert row["status"] == "failed" and "999 was never posted" in row["last_error"]


# --- sync mode -------------------------------------------------------------------------------------------------
class TestSyncMode:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"oms_url": OMS_URL, "oms_order_export_mode": "sync"}

    async def test_the_order_is_delivered_inline_and_answered_with_the_oms_outcome(
        self, client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection, oms: respx.Router
    ) -> None:
        route = oms.post(OMS_URL).mock(side_effect=answer({"accepted": True}))
        response = await post_order(client, commerce_order())
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["mode"] == "sync" and body["export_status"] == "sent"
        assert body["delivery"] == {"delivered": True, "result": {"accepted": True}, "error": None, "fallback": None}
        assert route.call_count == 1
        [message] = await export_messages(raw)
        assert message["status"] == "succeeded" and message["attempts"] == 1
        assert await runtime.bus.send_next_outbound() == 0  # nothing left for the workers

    async def test_no_worker_can_take_the_message_while_it_is_being_delivered_inline(
        self, client: httpx.AsyncClient, runtime: Runtime, oms: respx.Router
    ) -> None:
        claimed_meanwhile: list[int] = []

        async def respond(request: httpx.Request) -> httpx.Response:
            claimed_meanwhile.append(len(await runtime.bus.claim_outbound("oms", limit=10)))
            return answer([])(request)

        route = oms.post(OMS_URL).mock(side_effect=respond)
        assert (await post_order(client, commerce_order())).status_code == 200
        assert claimed_meanwhile == [0] and route.call_count == 1

    async def test_with_the_oms_down_it_falls_back_to_the_outbox_and_is_exported_later_once(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        raw: asyncpg.Connection,
        oms: respx.Router,
        clock: FrozenClock,
    ) -> None:
        route = oms.post(OMS_URL).mock(side_effect=httpx.ConnectError("connection refused"))
        response = await post_order(client, commerce_order())
        assert response.status_code == 202
        body = response.json()
        assert body["delivery"]["delivered"] is False and body["delivery"]["fallback"] == "outbox"
        assert "cannot reach the OMS" in body["delivery"]["error"]
        assert body["export_status"] == "queued" and "cannot reach the OMS" in body["reason"]

        route.mock(side_effect=answer([]))
        assert await runtime.bus.send_next_outbound() == 0  # backing off
        clock.advance(minutes=20)
        assert await runtime.bus.send_next_outbound() == 1
        assert await runtime.bus.send_next_outbound() == 0
        [message] = await export_messages(raw)
        assert message["status"] == "succeeded" and message["attempts"] == 2
        assert route.call_count == 2
        assert len({json.loads(call.request.content)["id"] for call in route.calls}) == 1  # one stable id
        assert (await order_view(client, "000000101"))["export_status"] == "sent"

        # Posted again: answered with the status, not sent again.
        again = await post_order(client, commerce_order())
        assert again.status_code == 202 and again.json()["delivery"] is None and route.call_count == 2

    async def test_a_request_that_dies_after_leasing_leaves_the_order_to_the_workers(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        raw: asyncpg.Connection,
        oms: respx.Router,
        clock: FrozenClock,
    ) -> None:
        route = oms.post(OMS_URL).mock(side_effect=answer([]))

        async def die(_message: Any) -> None:
            raise asyncio.CancelledError  # the request's task is cancelled between commit and send

        runtime.bus.send_inline = die  # type: ignore[method-assign]
        with pytest.raises(asyncio.CancelledError):
            await runtime.orders.accept(order_body(commerce_order()))
        assert await runtime.bus.send_next_outbound() == 0  # still leased
        clock.advance(seconds=runtime.bus.lease_s + 1)
        assert await runtime.bus.send_next_outbound() == 1
        [message] = await export_messages(raw)
        assert message["status"] == "succeeded" and route.call_count == 1


class TestSyncModeWithoutOms:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"oms_order_export_mode": "sync"}

    async def test_the_order_waits_in_the_outbox_and_the_answer_says_why(
        self, client: httpx.AsyncClient, raw: asyncpg.Connection
    ) -> None:
        response = await post_order(client, commerce_order())
        assert response.status_code == 202
        assert response.json()["delivery"]["error"] == "the OMS is not configured (OMS_URL)"
        [message] = await export_messages(raw)
        assert message["status"] == "queued"


# --- orders sync -----------------------------------------------------------------------------------------------
async def test_orders_sync_queues_failed_and_dead_exports_again_oldest_first_up_to_n(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection, oms: respx.Router, clock: FrozenClock
) -> None:
    oms.post(OMS_URL).mock(return_value=httpx.Response(400, text="no"))
    for number in ("201", "202", "203"):
        await post_order(client, commerce_order(increment_id=number))
    while await runtime.bus.send_next_outbound():
        pass
    await raw.execute("UPDATE message SET status = 'dead' WHERE external_id = 'mdc-order-202-1'")

    response = await client.post("/orders/sync", json={"limit": 2}, headers=operator_headers())
    assert response.status_code == 200
    assert response.json()["queued"] == 2 and response.json()["increment_ids"] == ["201", "202"]
    messages = await export_messages(raw)
    assert [m["external_id"] for m in messages if m["status"] == "queued"] == ["mdc-order-201-2", "mdc-order-202-2"]
    assert (await order_view(client, "201"))["message_ids"] == [messages[0]["id"], messages[3]["id"]]
    assert (await order_view(client, "201"))["export_status"] == "queued"

    # Queued ones are not queued again; the rest (all) is.
    response = await client.post("/orders/sync", headers=operator_headers())
    assert response.json()["increment_ids"] == ["203"]
    assert (await client.post("/orders/sync", headers=operator_headers())).json()["queued"] == 0
    assert (await client.post("/orders/sync", headers=COMMERCE)).status_code == 401


async def test_orders_sync_works_in_batches_and_names_a_bounded_number_of_orders(
    client: httpx.AsyncClient,
    runtime: Runtime,
    raw: asyncpg.Connection,
    oms: respx.Router,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    oms.post(OMS_URL).mock(return_value=httpx.Response(400, text="no"))
    numbers = [f"30{n}" for n in range(7)]
    for number in numbers:
        await post_order(client, commerce_order(increment_id=number))
    while await runtime.bus.send_next_outbound():
        pass
    monkeypatch.setattr(orders_module, "SYNC_BATCH", 2)
    monkeypatch.setattr(orders_module, "MAX_SYNC_LISTED", 3)

    first = await runtime.orders.sync(5)  # three batches: 2 + 2 + 1
    assert (first.queued, first.increment_ids) == (5, numbers[:3])
    everything = await runtime.orders.sync()
    assert (everything.queued, everything.increment_ids) == (2, numbers[5:])
    queued = await raw.fetch("SELECT external_id FROM message WHERE status = 'queued' ORDER BY id")
    assert [row["external_id"] for row in queued] == [f"mdc-order-{number}-2" for number in numbers]


async def test_orders_sync_exports_held_orders_whose_status_became_exportable(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection
) -> None:
    await post_order(client, commerce_order(status="processing"))
    assert (await runtime.orders.sync()).queued == 0
    settings = runtime.settings.model_copy(update={"oms_export_statuses": ["pending", "processing"]})
    widened = OrderService(runtime.db, runtime.clock, settings, runtime.bus)
    result = await widened.sync()
    assert result.increment_ids == ["000000101"]
    assert len(await export_messages(raw)) == 1


# --- bundle sourcing rules -------------------------------------------------------------------------------------
async def test_a_bundle_sourcing_rule_set_by_an_operator_is_sent_on_the_bundle_lines(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    url = "/catalog/bundles/KIT-YOGA/sourcing-rule"
    default = await client.get(url, headers=operator_headers())
    assert default.json() == {"sku": "KIT-YOGA", "rule": "SHIP_TOGETHER", "source": "default", "updated_at": None}
    assert (await client.put(url, json={"rule": "ship sometime"}, headers=operator_headers())).status_code == 422
    assert (await client.put(url, json={"rule": "ship separately"}, headers=COMMERCE)).status_code == 401
    changed = await client.put(url, json={"rule": "ship separately"}, headers=operator_headers())
    assert changed.status_code == 200 and changed.json()["rule"] == "SHIP_SEPARATELY"
    assert (await client.get(url, headers=COMMERCE)).json()["source"] == "bundle"

    items = bundle(3001, "KIT-YOGA", [Selection(3002, "MAT-01", "90.00"), Selection(3003, "STRAP-02", "24.00")])
    assert (await post_order(client, commerce_order(items=items))).status_code == 202
    [message] = await export_messages(raw)
    lines = json.loads(message["payload"])["order"]["lines"]
    rules = {line["sku"]: {a["attribute_code"]: a["value"] for a in line["custom_attributes"]} for line in lines}
    assert rules["MAT-01"]["sourcing_rule"] == "SHIP_SEPARATELY" and rules["STRAP-02"]["bundle_sku"] == "KIT-YOGA"


async def test_a_rule_changed_by_another_replica_is_used_by_the_next_order_though_this_process_remembered_the_old(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    def sourcing_rules(payload: str) -> dict[str, str]:
        lines = json.loads(payload)["order"]["lines"]
        attributes = {
            line["sku"]: {a["attribute_code"]: a["value"] for a in line["custom_attributes"]} for line in lines
        }
        return {sku: found["sourcing_rule"] for sku, found in attributes.items() if "sourcing_rule" in found}

    items = bundle(3001, "KIT-YOGA", [Selection(3002, "MAT-01", "90.00"), Selection(3003, "STRAP-02", "24.00")])
    assert (await post_order(client, commerce_order(increment_id="501", items=items))).status_code == 202  # remembered
    # Another replica's operator sets a rule: this process still remembers "no rule" for KIT-YOGA.
    await raw.execute(
        "INSERT INTO bundle_sourcing_rule (sku, rule, updated_at) VALUES ('KIT-YOGA', 'SHIP_SEPARATELY', now())"
    )
    assert (await post_order(client, commerce_order(increment_id="502", items=items))).status_code == 202
    first, second = await export_messages(raw)
    assert set(sourcing_rules(first["payload"]).values()) == {"SHIP_TOGETHER"}
    assert set(sourcing_rules(second["payload"]).values()) == {"SHIP_SEPARATELY"}
    assert await raw.fetchval(
        "SELECT count(*) FROM order_line WHERE order_id = (SELECT id FROM sales_order WHERE increment_id = '502')"
    ) == len(json.loads(second["payload"])["order"]["lines"])


async def test_orders_sync_reports_an_order_it_can_no_longer_map_and_queues_the_others(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection
) -> None:
    for number in ("401", "402"):
        await post_order(client, commerce_order(increment_id=number))
    await raw.execute("UPDATE message SET status = 'dead' WHERE direction = 'out'")
    await raw.execute(
        "UPDATE sales_order SET document = jsonb_set(document, '{grand_total}', '999') WHERE increment_id = '401'"
    )
    result = await runtime.orders.sync()
    assert result.increment_ids == ["402"]
    assert [entry["increment_id"] for entry in result.skipped] == ["401"]
    assert "grand_total" in result.skipped[0]["reason"]


async def test_the_api_docs_describe_the_order_endpoints_and_the_example_order_exports(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {"/orders", "/orders/{increment_id}", "/orders/sync", "/catalog/bundles/{sku}/sourcing-rule"} <= set(paths)
    example = paths["/orders"]["post"]["requestBody"]["content"]["application/json"]["example"]
    response = await post_order(client, example)
    assert response.status_code == 202, response.text
    assert response.json()["export_status"] == "queued"


async def test_a_repost_of_an_exported_order_that_no_longer_maps_is_answered_not_refused(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    first = await post_order(client, commerce_order())
    later = commerce_order(status="processing", grand_total="1.00", updated_at="2025-02-11 09:00:00")
    response = await post_order(client, later)
    assert response.status_code == 202, response.text
    assert response.json()["exported_now"] is False and response.json()["message_id"] == first.json()["message_id"]
    assert await raw.fetchval("SELECT commerce_status FROM sales_order") == "processing"
