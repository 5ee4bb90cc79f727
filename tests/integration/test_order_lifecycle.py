"""The order lifecycle on a real PostgreSQL, with a respx OMS and a stub Adobe Commerce on loopback: status trail,
shipments with tracking, cancel, returns, refunds, appeasements and store credit, recorded by the connector and
delivered to Adobe Commerce once, through failures."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest
import respx

from app.clock import FrozenClock
from app.runtime import Runtime
from app.services.commerce_effects import COMMERCE_CHANNEL
from app.workers.registry import HandlerRegistry, build_registry
from tests.conftest import make_settings
from tests.support.oms_events import (
    CREATED,
    GO_STATUSES,
    REFUND_UPDATED,
    RETURN_AUTHORIZE,
    RETURN_UPDATED,
    SHIPMENT_DONE,
    UPDATED,
    product_lines,
    refund_update,
    return_update,
    shipment_done,
    status_update,
)
from tests.support.orders import commerce_order, item, order_body
from tests.support.signing import COMMERCE_TOKEN, operator_headers, rpc_body, signed_headers
from tests.support.stub_commerce import StubCommerce

OMS_URL = "http://oms.test/api/"
CREATE = "magento.sales.order_management.create"
CANCEL = "magento.sales.order_management.cancel"
COMMERCE = {"Authorization": f"Bearer {COMMERCE_TOKEN}", "Content-Type": "application/json"}
NUMBER = "000000101"
ENTITY = 101


@pytest.fixture
def store() -> Iterator[StubCommerce]:
    with StubCommerce() as stub:
        yield stub


@pytest.fixture
def settings_overrides(store: StubCommerce) -> dict[str, Any]:
    return {"oms_url": OMS_URL, "adobe_commerce_url": store.base_url, "adobe_commerce_token": store.token}


@pytest.fixture
def registry() -> HandlerRegistry:
    return build_registry(make_settings())


@pytest.fixture(autouse=True)
def oms_accepts(oms: respx.Router) -> respx.Route:
    def respond(request: httpx.Request) -> httpx.Response:
        document = json.loads(request.content)
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": document["id"], "result": []})

    return oms.post(OMS_URL).mock(side_effect=respond)


class Flow:
    """Drives one runtime step by step: the store posts, the OMS calls, the workers run when told."""

    def __init__(self, client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection, store: StubCommerce):
        self.client = client
        self.runtime = runtime
        self.raw = raw
        self.store = store

    async def export(self, document: dict[str, Any]) -> dict[str, Any]:
        """Post the order, deliver its create to the OMS; the create's ``order`` params."""
        items = [
            {"item_id": int(entry["item_id"]), "sku": entry["sku"], "qty_ordered": entry["qty_ordered"]}
            for entry in document["items"]
        ]
        self.store.add_order(int(document["entity_id"]), document["increment_id"], items)
        response = await self.client.post("/orders", content=order_body(document), headers=COMMERCE)
        assert response.status_code == 202, response.text
        await self.runtime.bus.send_next_outbound("oms")
        payload = await self.raw.fetchval(
            "SELECT payload FROM message WHERE topic = $1 AND external_id LIKE $2",
            CREATE,
            f"%-{document['increment_id']}-1",
        )
        order = json.loads(payload)["order"]
        await self.oms(CREATED, {"order": order})
        return order

    async def oms(self, method: str, params: dict[str, Any], id: str | None = None) -> httpx.Response:
        body = rpc_body(method, params, **({"id": id} if id else {}))
        response = await self.client.post("/oms/rpc", content=body, headers=signed_headers(body))
        assert response.status_code == 200, response.text
        await self.apply()
        return response

    async def apply(self) -> None:
        while await self.runtime.bus.process_next_inbound():
            pass

    async def deliver(self) -> int:
        """Deliver every ready commerce message, lane by lane, until none is ready."""
        total = 0
        while sent := await self.runtime.bus.send_next_outbound(COMMERCE_CHANNEL):
            total += sent
        return total

    async def view(self, number: str = NUMBER) -> dict[str, Any]:
        response = await self.client.get(f"/orders/{number}", headers=operator_headers())
        assert response.status_code == 200, response.text
        return response.json()["lifecycle"]

    async def message(self, message_id: int) -> asyncpg.Record:
        return await self.raw.fetchrow("SELECT * FROM message WHERE id = $1", message_id)

    async def last_inbound(self, method: str) -> asyncpg.Record:
        return await self.raw.fetchrow(
            "SELECT * FROM message WHERE direction = 'in' AND topic = $1 ORDER BY id DESC LIMIT 1", method
        )


@pytest.fixture
async def flow(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection, store: StubCommerce
) -> AsyncIterator[Flow]:
    yield Flow(client, runtime, raw, store)


def three_mugs_and_a_tee() -> dict[str, Any]:
    return commerce_order(
        items=[item(1001, "MUG-STONE-350", qty=3, price="12.50"), item(1002, "TEE-BLU-M", qty=1, price="20.00")]
    )


def lines_of(order: dict[str, Any], item_id: str) -> list[dict[str, Any]]:
    return [line for line in product_lines(order) if line["id"].startswith(f"{item_id}-")]


# --- status trail ----------------------------------------------------------------------------------------------
async def test_the_go_sequence_records_five_statuses_then_the_shipment_and_delivers_them_to_the_store(
    flow: Flow, store: StubCommerce
) -> None:
    order = await flow.export(three_mugs_and_a_tee())
    for status, reason in GO_STATUSES:
        await flow.oms(UPDATED, status_update(order, status, reason))
    await flow.oms(SHIPMENT_DONE, shipment_done(order, shimpent_id=f"{NUMBER}-001"))
    assert await flow.deliver() == 7  # 5 comments, an invoice, a shipment: nothing else

    life = await flow.view()
    assert [(h["oms_status"], h["reason"]) for h in life["history"]] == GO_STATUSES
    assert [h["commerce_status"] for h in life["history"]] == [
        "processing", "holded", "processing", "processing", "complete",
    ]  # fmt: skip
    assert all(h["delivery"] == "delivered" for h in life["history"])
    assert life["oms_status"] == "COMPLETE"
    [shipment] = life["shipments"]
    assert shipment["shipment_key"] == f"{NUMBER}-001" and shipment["delivery"] == "delivered"
    assert [(i["item_id"], i["qty"]) for i in shipment["items"]] == [("1001", 3), ("1002", 1)]
    [package] = shipment["packages"]
    assert package["carrier"] == "DHL" and package["tracking_number"] == "00340434161094042557"

    comments = store.order(ENTITY)["status_histories"]
    assert len(comments) == 5 and all("OMS status:" in c["comment"] for c in comments)
    assert "RECEIVED (IMPORTED)" in comments[0]["comment"]
    [invoice] = store.invoices
    assert invoice["items"] == [{"order_item_id": 1001, "qty": 3}, {"order_item_id": 1002, "qty": 1}]
    [shipped] = store.shipments
    assert shipped["items"] == invoice["items"]
    assert shipped["tracks"] == [{"track_number": "00340434161094042557", "title": "DHL", "carrier_code": "dhl"}]
    assert store.order(ENTITY)["state"] == "complete"
    # the invoice went before the shipment
    posts = [r.path for r in store.requests if r.method == "POST"]
    assert posts.index(f"/order/{ENTITY}/invoice") < posts.index(f"/order/{ENTITY}/ship")


async def test_a_repeated_status_adds_nothing_and_statuses_compare_case_insensitively(
    flow: Flow, store: StubCommerce
) -> None:
    order = await flow.export(three_mugs_and_a_tee())
    await flow.oms(UPDATED, status_update(order, "RECEIVED", "IMPORTED"))
    await flow.oms(UPDATED, status_update(order, "received", "IMPORTED"))
    repeated = await flow.last_inbound(UPDATED)
    assert repeated["status"] == "succeeded" and json.loads(repeated["result"])["recorded"] is False
    await flow.deliver()
    assert len((await flow.view())["history"]) == 1
    assert len(store.order(ENTITY)["status_histories"]) == 1


async def test_an_unknown_status_is_recorded_unmapped_and_sent_as_a_comment_without_a_status(
    flow: Flow, store: StubCommerce
) -> None:
    order = await flow.export(three_mugs_and_a_tee())
    await flow.oms(UPDATED, status_update(order, "WAITING_FOR_PAYMENT", "BANKTRANSFER"))
    message = await flow.last_inbound(UPDATED)
    assert message["status"] == "succeeded"
    assert "not in OMS_STATUS_MAP" in json.loads(message["result"])["unmapped"]
    await flow.deliver()
    [entry] = (await flow.view())["history"]
    assert entry["oms_status"] == "WAITING_FOR_PAYMENT" and entry["commerce_status"] is None
    [comment] = store.order(ENTITY)["status_histories"]
    assert "WAITING_FOR_PAYMENT (BANKTRANSFER)" in comment["comment"] and comment["status"] == "pending"


async def test_an_update_never_overwrites_the_order_data_the_store_posted(flow: Flow, raw: asyncpg.Connection) -> None:
    order = await flow.export(three_mugs_and_a_tee())
    before = await raw.fetchrow("SELECT document, mcom FROM sales_order WHERE increment_id = $1", NUMBER)
    changed = status_update(order, "RECEIVED", "IMPORTED")
    changed["order"]["addresses"] = [{"first_name": "Mallory", "city": "Elsewhere"}]
    changed["order"]["lines"][0]["amount"]["gross_amount"] = "0.01"
    await flow.oms(UPDATED, changed)
    after = await raw.fetchrow("SELECT document, mcom FROM sales_order WHERE increment_id = $1", NUMBER)
    assert after["document"] == before["document"] and after["mcom"] == before["mcom"]


async def test_line_statuses_of_an_update_are_recorded_on_the_lines(flow: Flow) -> None:
    order = await flow.export(three_mugs_and_a_tee())
    update = status_update(order, "LOGISTICS", "READYTOSHIP")
    update["order"]["lines"][0]["status"] = "allocated"
    await flow.oms(UPDATED, update)
    lines = {line["line_id"]: line for line in (await flow.view())["lines"]}
    assert lines["1001-1"]["status"] == "ALLOCATED" and lines["1001-2"]["status"] is None


async def test_an_update_for_an_order_never_posted_fails_in_the_journal(flow: Flow) -> None:
    await flow.oms(UPDATED, {"order": {"id": "999999", "status": "RECEIVED"}})
    message = await flow.last_inbound(UPDATED)
    assert message["status"] == "failed" and "never posted" in message["last_error"]


# --- shipments -------------------------------------------------------------------------------------------------
async def test_a_partial_shipment_then_the_rest_makes_two_shipments_for_the_right_quantities(
    flow: Flow, store: StubCommerce
) -> None:
    order = await flow.export(three_mugs_and_a_tee())
    mugs = lines_of(order, "1001")
    first = [mugs[0]["id"], mugs[1]["id"]]
    await flow.oms(SHIPMENT_DONE, shipment_done(order, first, shipment_id="S1", tracking_number="T1"))
    await flow.oms(
        SHIPMENT_DONE,
        shipment_done(order, [mugs[2]["id"], "1002-1"], shipment_id="S2", tracking_number="T2", carrier="UPS"),
    )
    await flow.deliver()
    life = await flow.view()
    assert [s["shipment_key"] for s in life["shipments"]] == ["S1", "S2"]
    assert [[(i["item_id"], i["qty"]) for i in s["items"]] for s in life["shipments"]] == [
        [("1001", 2)],
        [("1001", 1), ("1002", 1)],
    ]
    assert [s["items"] for s in store.shipments] == [
        [{"order_item_id": 1001, "qty": 2}],
        [{"order_item_id": 1001, "qty": 1}, {"order_item_id": 1002, "qty": 1}],
    ]
    assert [s["tracks"][0]["track_number"] for s in store.shipments] == ["T1", "T2"]
    assert store.shipments[1]["tracks"][0]["carrier_code"] == "ups"
    assert [i["items"] for i in store.invoices] == [s["items"] for s in store.shipments]
    assert store.order(ENTITY)["state"] == "complete"


async def test_a_duplicate_shipment_is_recorded_and_delivered_once(flow: Flow, store: StubCommerce) -> None:
    order = await flow.export(three_mugs_and_a_tee())
    await flow.oms(SHIPMENT_DONE, shipment_done(order, shimpent_id="X-001"))
    await flow.oms(SHIPMENT_DONE, shipment_done(order, shimpent_id="X-001"))  # a new message id, the same shipment
    again = await flow.last_inbound(SHIPMENT_DONE)
    assert again["status"] == "succeeded" and json.loads(again["result"])["recorded"] is False
    await flow.deliver()
    assert len((await flow.view())["shipments"]) == 1 and len(store.shipments) == 1


async def test_a_php_shipment_without_ids_gets_a_derived_key_and_package_line_numbers_resolve(
    flow: Flow, store: StubCommerce
) -> None:
    order = await flow.export(three_mugs_and_a_tee())
    mugs = [line["id"] for line in lines_of(order, "1001")]
    await flow.oms(SHIPMENT_DONE, shipment_done(order, mugs, php=True))
    await flow.oms(SHIPMENT_DONE, shipment_done(order, list(reversed(mugs)), php=True))  # the same, resent
    await flow.deliver()
    [shipment] = (await flow.view())["shipments"]
    assert shipment["shipment_key"] == f"{NUMBER}:WAREHOUSE_1:" + ",".join(sorted(mugs))
    assert shipment["packages"][0]["line_ids"] == mugs  # "1", "2", "3" are line numbers here
    assert len(store.shipments) == 1


async def test_a_shipment_after_complete_is_accepted(flow: Flow, store: StubCommerce) -> None:
    order = await flow.export(three_mugs_and_a_tee())
    await flow.oms(UPDATED, status_update(order, "COMPLETE", "FULLYSHIPPED"))
    await flow.oms(SHIPMENT_DONE, shipment_done(order, shipment_id="S1"))
    assert (await flow.last_inbound(SHIPMENT_DONE))["status"] == "succeeded"
    await flow.deliver()
    assert len(store.shipments) == 1


async def test_an_order_invoiced_at_checkout_is_shipped_without_a_second_invoice(
    flow: Flow, store: StubCommerce
) -> None:
    order = await flow.export(three_mugs_and_a_tee())
    store.invoice_at_checkout(ENTITY)  # paid online
    await flow.oms(SHIPMENT_DONE, shipment_done(order, shipment_id="S1"))
    await flow.deliver()
    assert store.invoices == [] and len(store.shipments) == 1
    [shipment] = (await flow.view())["shipments"]
    invoice = await flow.message(shipment["invoice_message_id"])
    assert invoice["status"] == "succeeded" and "already invoiced" in invoice["result"]


async def test_a_shipment_naming_a_line_not_on_the_order_fails_with_the_field(flow: Flow) -> None:
    order = await flow.export(three_mugs_and_a_tee())
    shipment = shipment_done(order, shipment_id="S1")
    shipment["shipment"]["items"][0]["order_line_id"] = "7777-1"
    shipment["shipment"]["items"][0]["order_line_number"] = 77
    await flow.oms(SHIPMENT_DONE, shipment)
    message = await flow.last_inbound(SHIPMENT_DONE)
    assert message["status"] == "failed" and "shipment.items[0].order_line_id" in message["last_error"]
    assert (await flow.view())["shipments"] == []


# --- cancel ----------------------------------------------------------------------------------------------------
async def test_a_cancel_goes_to_the_oms_and_the_canceled_update_cancels_the_order_in_the_store(
    flow: Flow, store: StubCommerce, oms_accepts: respx.Route
) -> None:
    order = await flow.export(three_mugs_and_a_tee())
    await flow.oms(UPDATED, status_update(order, "RECEIVED", "IMPORTED"))
    response = await flow.client.post(f"/orders/{NUMBER}/cancel", json={"reason": "customer asked"}, headers=COMMERCE)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["outcome"] == "requested" and answer["method"] == CANCEL
    again = await flow.client.post(f"/orders/{NUMBER}/cancel", headers=operator_headers())
    assert again.status_code == 202 and again.json()["outcome"] == "already_requested"
    assert again.json()["message_id"] == answer["message_id"]

    await flow.runtime.bus.send_next_outbound("oms")
    sent = json.loads(oms_accepts.calls.last.request.content)
    assert sent["method"] == CANCEL
    assert sent["params"] == {"order": {"id": NUMBER, "store": order["store"], "reason": "customer asked"}}
    life = await flow.view()
    assert life["cancel"]["requested_at"] and life["cancel"]["canceled_at"] is None
    assert life["cancel"]["request_delivery"] == "delivered"

    await flow.oms(UPDATED, status_update(order, "CANCELED", "CUSTOMERREQUEST"))
    await flow.deliver()
    life = await flow.view()
    assert life["cancel"]["canceled_at"] and life["cancel"]["delivery"] == "delivered"
    assert store.order(ENTITY)["state"] == "canceled"
    assert len(store.requests_to("POST", f"/orders/{ENTITY}/cancel")) == 1
    late = await flow.client.post(f"/orders/{NUMBER}/cancel", headers=COMMERCE)
    assert late.status_code == 202 and late.json()["outcome"] == "already_canceled"


@pytest.mark.parametrize("status", ["LOGISTICS", "logisticscomplete", "COMPLETE"])
async def test_a_cancel_is_refused_with_409_naming_the_status_once_the_order_is_in_logistics(
    flow: Flow, raw: asyncpg.Connection, status: str
) -> None:
    order = await flow.export(three_mugs_and_a_tee())
    await flow.oms(UPDATED, status_update(order, status, "READYTOSHIP"))
    response = await flow.client.post(f"/orders/{NUMBER}/cancel", headers=COMMERCE)
    assert response.status_code == 409, response.text
    assert status.upper() in response.json()["detail"]
    assert await raw.fetchval("SELECT count(*) FROM message WHERE topic = $1", CANCEL) == 0


async def test_a_cancel_of_an_unknown_held_or_anonymous_order_is_refused(flow: Flow) -> None:
    assert (await flow.client.post("/orders/404404/cancel", headers=COMMERCE)).status_code == 404
    held = commerce_order(increment_id="000000102", entity_id=102, status="payment_review")
    assert (await flow.client.post("/orders", content=order_body(held), headers=COMMERCE)).status_code == 202
    refused = await flow.client.post("/orders/000000102/cancel", headers=COMMERCE)
    assert refused.status_code == 409 and "never exported" in refused.json()["detail"]
    assert (await flow.client.post("/orders/000000102/cancel")).status_code == 401


class TestConfiguredCancel:
    @pytest.fixture
    def settings_overrides(self, store: StubCommerce) -> dict[str, Any]:
        return {
            "oms_url": OMS_URL,
            "adobe_commerce_url": store.base_url,
            "adobe_commerce_token": store.token,
            "oms_cancel_blocked_statuses": ["onhold"],
            "oms_cancel_method": "acme.order.cancel",
        }

    async def test_the_blocking_statuses_and_the_cancel_method_come_from_the_settings(
        self, flow: Flow, oms_accepts: respx.Route
    ) -> None:
        order = await flow.export(three_mugs_and_a_tee())
        await flow.oms(UPDATED, status_update(order, "ONHOLD", "PENDINGREMORSETIME"))
        refused = await flow.client.post(f"/orders/{NUMBER}/cancel", headers=COMMERCE)
        assert refused.status_code == 409 and "ONHOLD" in refused.json()["detail"]
        await flow.oms(UPDATED, status_update(order, "LOGISTICS", "READYTOSHIP"))
        allowed = await flow.client.post(f"/orders/{NUMBER}/cancel", headers=COMMERCE)
        assert allowed.status_code == 202 and allowed.json()["method"] == "acme.order.cancel"
        await flow.runtime.bus.send_next_outbound("oms")
        assert json.loads(oms_accepts.calls.last.request.content)["method"] == "acme.order.cancel"


# --- returns ---------------------------------------------------------------------------------------------------
async def test_a_return_request_picks_shipped_units_and_the_oms_answer_updates_the_same_return(
    flow: Flow, store: StubCommerce, oms_accepts: respx.Route
) -> None:
    order = await flow.export(three_mugs_and_a_tee())
    await flow.oms(SHIPMENT_DONE, shipment_done(order, shipment_id="S1"))
    request = {
        "items": [{"item_id": 1001, "qty": 1, "reason": "DAMAGED", "condition": "BROKEN"}],
        "source_id": "WH-BERLIN-01",
        "return_tracking_number": "RT1",
    }
    response = await flow.client.post(f"/orders/{NUMBER}/returns", json=request, headers=COMMERCE)
    assert response.status_code == 202, response.text
    [picked] = response.json()["lines"]
    first_mug = lines_of(order, "1001")[0]
    assert picked == {"line_number": first_mug["line_number"], "sku": "MUG-STONE-350", "item_id": "1001"}

    await flow.runtime.bus.send_next_outbound("oms")
    sent = json.loads(oms_accepts.calls.last.request.content)
    assert sent["method"] == RETURN_AUTHORIZE
    assert sent["params"]["return"]["order_id"] == NUMBER and sent["params"]["return"]["source_id"] == "WH-BERLIN-01"
    assert sent["params"]["return"]["lines"] == [
        {
            "line_number": first_mug["line_number"],
            "sku": "MUG-STONE-350",
            "reason": "DAMAGED",
            "reason_description": "",
            "condition": "BROKEN",
            "condition_description": "",
        }
    ]
    rma = f"RMA-CS-{NUMBER}-1"
    await flow.oms(RETURN_UPDATED, return_update(order, rma, "REQUESTED", [first_mug]))
    await flow.oms(RETURN_UPDATED, return_update(order, rma, "APPROVED", [first_mug]))
    [returned] = (await flow.view())["returns"]
    assert returned["rma"] == rma and returned["status"] == "APPROVED"
    assert [h["status"] for h in returned["history"]] == ["AUTHORIZE_REQUESTED", "REQUESTED", "APPROVED"]
    assert returned["request_delivery"] == "delivered"
    assert returned["lines"][0]["condition"] == "BROKEN"  # what only the store's request said is kept

    await flow.oms(REFUND_UPDATED, refund_update(order, "CDE1", [first_mug], rma=rma))
    await flow.deliver()
    [memo] = (await flow.view())["credit_memos"]
    assert memo["credit_note_number"] == "CDE1" and memo["kind"] == "return" and memo["delivery"] == "delivered"
    [credit] = store.creditmemos
    assert credit["items"] == [{"order_item_id": 1001, "qty": 1}]
    assert credit["arguments"]["shipping_amount"] == "0" or Decimal(str(credit["arguments"]["shipping_amount"])) == 0


async def test_a_return_request_names_each_item_not_on_the_order_or_not_shipped_in_that_quantity(
    flow: Flow, raw: asyncpg.Connection
) -> None:
    order = await flow.export(three_mugs_and_a_tee())
    await flow.oms(SHIPMENT_DONE, shipment_done(order, [line["id"] for line in lines_of(order, "1001")[:2]]))
    request = {"items": [{"item_id": "9999", "qty": 1}, {"item_id": "1001", "qty": 3}, {"item_id": "1002", "qty": 1}]}
    response = await flow.client.post(f"/orders/{NUMBER}/returns", json=request, headers=COMMERCE)
    assert response.status_code == 422, response.text
    errors = {error["field"]: error["message"] for error in response.json()["errors"]}
    assert set(errors) == {"items[0].item_id", "items[1].qty", "items[2].qty"}
    assert "9999 is not on this order" in errors["items[0].item_id"]
    assert "3 asked, 2 shipped" in errors["items[1].qty"]
    assert await raw.fetchval("SELECT count(*) FROM message WHERE topic = $1", RETURN_AUTHORIZE) == 0

    ok = await flow.client.post(
        f"/orders/{NUMBER}/returns", json={"items": [{"item_id": "1001", "qty": 2}]}, headers=COMMERCE
    )
    assert ok.status_code == 202
    twice = await flow.client.post(
        f"/orders/{NUMBER}/returns", json={"items": [{"item_id": "1001", "qty": 1}]}, headers=COMMERCE
    )
    assert twice.status_code == 422 and "1 asked, 0 shipped" in twice.json()["errors"][0]["message"]
    bad = await flow.client.post(f"/orders/{NUMBER}/returns", json={"items": []}, headers=COMMERCE)
    assert bad.status_code == 422


# --- refunds ---------------------------------------------------------------------------------------------------
async def test_a_refund_makes_a_credit_memo_for_the_shipped_lines_only(flow: Flow, store: StubCommerce) -> None:
    order = await flow.export(three_mugs_and_a_tee())
    mugs = lines_of(order, "1001")
    await flow.oms(SHIPMENT_DONE, shipment_done(order, [line["id"] for line in mugs], shipment_id="S1"))
    tee = lines_of(order, "1002")
    await flow.oms(REFUND_UPDATED, refund_update(order, "CDE7", [mugs[0], tee[0]]))
    await flow.deliver()
    [memo] = (await flow.view())["credit_memos"]
    assert memo["refunded_before_shipment"] == ["1002-1"]
    assert [(i["item_id"], i["qty"]) for i in memo["credit_memo"]["items"]] == [("1001", 1)]
    assert Decimal(memo["total"]) == Decimal("12.50") + Decimal("20.00")
    [credit] = store.creditmemos
    assert credit["items"] == [{"order_item_id": 1001, "qty": 1}]
    lines = {line["line_id"]: line for line in (await flow.view())["lines"]}
    assert lines["1002-1"]["refunded_before_shipment"] and lines["1002-1"]["refunded"]
    assert lines["1001-1"]["refunded"] and not lines["1001-2"]["refunded"]

    await flow.oms(REFUND_UPDATED, refund_update(order, "CDE7", [mugs[0], tee[0]]))  # the same credit note again
    await flow.deliver()
    assert len((await flow.view())["credit_memos"]) == 1 and len(store.creditmemos) == 1


async def test_a_refund_of_unshipped_lines_only_records_them_and_makes_no_credit_memo(
    flow: Flow, store: StubCommerce
) -> None:
    order = await flow.export(three_mugs_and_a_tee())
    await flow.oms(REFUND_UPDATED, refund_update(order, "CDE8", lines_of(order, "1002")))
    await flow.deliver()
    [memo] = (await flow.view())["credit_memos"]
    assert memo["credit_memo"] is None and memo["refunded_before_shipment"] == ["1002-1"]
    assert memo["delivery"] == "recorded_only" and store.creditmemos == []


async def test_an_appeasement_for_a_shipped_line_is_an_adjustment_credit_memo(flow: Flow, store: StubCommerce) -> None:
    order = await flow.export(three_mugs_and_a_tee())
    await flow.oms(SHIPMENT_DONE, shipment_done(order, shipment_id="S1"))
    mug = lines_of(order, "1001")[0]
    await flow.oms(REFUND_UPDATED, refund_update(order, "APP-1", [mug], refund_type="Appeasement", gross="5.00"))
    await flow.deliver()
    [memo] = (await flow.view())["credit_memos"]
    assert memo["kind"] == "appeasement"
    assert Decimal(str(memo["credit_memo"]["adjustment_positive"])) == Decimal("5.00")
    [credit] = store.creditmemos
    assert credit["items"] == [{"order_item_id": 1001, "qty": 0}]
    assert Decimal(str(credit["arguments"]["adjustment_positive"])) == Decimal("5.00")
    assert Decimal(str(credit["arguments"]["shipping_amount"])) == 0
    lines = {line["line_id"]: line for line in (await flow.view())["lines"]}
    assert not lines[mug["id"]]["refunded"]  # the item is kept: it can still be returned


def _one_mug(**extra: Any) -> dict[str, Any]:
    return commerce_order(items=[item(1001, "MUG-STONE-350", qty=1, price="12.50")], **extra)


async def test_an_order_partly_paid_by_gift_card_and_entirely_refunded_gets_the_gift_card_part_as_store_credit(
    flow: Flow, store: StubCommerce
) -> None:
    order = await flow.export(_one_mug(gift_cards=[("GC-AB12", "5.00")]))
    await flow.oms(SHIPMENT_DONE, shipment_done(order, shipment_id="S1"))
    await flow.oms(REFUND_UPDATED, refund_update(order, "CDE9", [line for line in order["lines"]]))
    message = await flow.last_inbound(REFUND_UPDATED)
    assert "store credit 5.00 issued" in json.loads(message["result"])["store_credit"]
    await flow.deliver()
    credit = (await flow.view())["store_credit"]
    assert Decimal(credit["amount"]) == Decimal("5.00") and credit["delivery"] == "delivered"
    assert any("Store credit of 5.00" in c["comment"] for c in store.order(ENTITY)["status_histories"])


async def test_an_order_paid_entirely_by_gift_cards_gets_no_store_credit_and_the_journal_says_why(
    flow: Flow, store: StubCommerce
) -> None:
    order = await flow.export(_one_mug(gift_cards=[("GC-ALL", "17.50")]))
    await flow.oms(SHIPMENT_DONE, shipment_done(order, shipment_id="S1"))
    await flow.oms(REFUND_UPDATED, refund_update(order, "CDE10", order["lines"]))
    message = await flow.last_inbound(REFUND_UPDATED)
    assert "paid entirely by gift cards" in json.loads(message["result"])["store_credit"]
    await flow.deliver()
    credit = (await flow.view())["store_credit"]
    assert credit["amount"] is None and "no store credit" in credit["note"]
    assert not any("Store credit" in c["comment"] for c in store.order(ENTITY)["status_histories"])


async def test_a_partial_refund_of_a_gift_card_order_issues_no_store_credit_yet(flow: Flow) -> None:
    order = await flow.export(
        commerce_order(items=[item(1001, "MUG", qty=2, price="12.50")], gift_cards=[("GC", "5.00")])
    )
    await flow.oms(REFUND_UPDATED, refund_update(order, "CDE11", product_lines(order)[:1]))
    assert (await flow.view())["store_credit"] is None


# --- delivery to Adobe Commerce: failures --------------------------------------------------------------------
async def test_with_the_store_down_effects_wait_and_arrive_once_when_it_is_back(
    flow: Flow, store: StubCommerce, clock: FrozenClock, raw: asyncpg.Connection
) -> None:
    order = await flow.export(three_mugs_and_a_tee())
    store.down = True
    await flow.oms(UPDATED, status_update(order, "RECEIVED", "IMPORTED"))
    await flow.oms(SHIPMENT_DONE, shipment_done(order, shipment_id="S1"))
    await flow.deliver()
    head = await raw.fetchrow("SELECT * FROM message WHERE channel = 'commerce' ORDER BY id LIMIT 1")
    assert head["status"] == "retrying" and "HTTP 503" in head["last_error"]
    behind = await raw.fetchval("SELECT count(*) FROM message WHERE channel = 'commerce' AND attempts = 0")
    assert behind == 2  # the invoice and the shipment wait behind the comment: one order's effects stay in order
    store.down = False
    for _ in range(5):
        clock.advance(minutes=20)
        await flow.deliver()
    assert await raw.fetchval("SELECT count(*) FROM message WHERE channel = 'commerce' AND status <> 'succeeded'") == 0
    assert len(store.order(ENTITY)["status_histories"]) == 1
    assert len(store.invoices) == 1 and len(store.shipments) == 1


async def test_a_shipment_whose_answer_was_lost_is_not_created_twice(
    flow: Flow, store: StubCommerce, clock: FrozenClock, raw: asyncpg.Connection
) -> None:
    order = await flow.export(three_mugs_and_a_tee())
    await flow.oms(SHIPMENT_DONE, shipment_done(order, shipment_id="S1"))
    store.lose_next_response(2)  # the invoice and the shipment are made, their answers lost
    for _ in range(4):
        await flow.deliver()
        clock.advance(minutes=20)
    assert len(store.invoices) == 1 and len(store.shipments) == 1
    ship = await raw.fetchrow("SELECT * FROM message WHERE topic = 'commerce.order.ship'")
    assert ship["status"] == "succeeded" and ship["attempts"] == 2 and "already_delivered" in ship["result"]


async def test_a_comment_whose_answer_was_lost_is_not_posted_twice(
    flow: Flow, store: StubCommerce, clock: FrozenClock
) -> None:
    order = await flow.export(three_mugs_and_a_tee())
    await flow.oms(UPDATED, status_update(order, "RECEIVED", "IMPORTED"))
    store.lose_next_response(1)
    await flow.deliver()
    clock.advance(minutes=20)
    await flow.deliver()
    assert len(store.order(ENTITY)["status_histories"]) == 1


async def test_a_refusal_by_the_store_fails_with_magentos_message_in_the_journal(
    flow: Flow, store: StubCommerce, raw: asyncpg.Connection
) -> None:
    order = await flow.export(three_mugs_and_a_tee())
    await flow.oms(SHIPMENT_DONE, shipment_done(order, lines_of_ids(order, "1002"), shipment_id="S1"))
    store.set_item(ENTITY, 1002, qty_canceled=1)  # canceled in the admin meanwhile: nothing left to ship
    await flow.deliver()
    ship = await raw.fetchrow("SELECT * FROM message WHERE topic = 'commerce.order.ship'")
    assert ship["status"] == "failed"
    assert (
        "HTTP 400" in ship["last_error"] and "The order does not allow a shipment to be created." in ship["last_error"]
    )
    assert (await flow.view())["shipments"][0]["delivery"] == "failed"


def lines_of_ids(order: dict[str, Any], item_id: str) -> list[str]:
    return [line["id"] for line in lines_of(order, item_id)]


# --- the OMS calls the connector does not serve -------------------------------------------------------------
@pytest.mark.parametrize(
    "method",
    [
        "magento.logistics.carrier_management.request_shipping_details",
        "magento.logistics.warehouse_management.request_shipment",
    ],
)
async def test_an_unserved_oms_call_gets_a_json_rpc_error_and_is_journaled(
    client: httpx.AsyncClient, raw: asyncpg.Connection, method: str
) -> None:
    body = rpc_body(method, {"shipment": {"order_id": NUMBER}}, id="req-1")
    response = await client.post("/oms/rpc", content=body, headers=signed_headers(body))
    assert response.json()["error"]["code"] == -32004 and "not served" in response.json()["error"]["message"]
    message = await raw.fetchrow("SELECT * FROM message WHERE topic = $1", method)
    assert message["status"] == "rejected" and message["external_id"] == "req-1"


class TestWithoutAdobeCommerce:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"oms_url": OMS_URL}  # no ADOBE_COMMERCE_URL / ADOBE_COMMERCE_TOKEN

    async def test_effects_are_recorded_only_and_nothing_is_queued_for_the_store(
        self, flow: Flow, raw: asyncpg.Connection
    ) -> None:
        order = await flow.export(three_mugs_and_a_tee())
        await flow.oms(UPDATED, status_update(order, "RECEIVED", "IMPORTED"))
        await flow.oms(SHIPMENT_DONE, shipment_done(order, shipment_id="S1"))
        await flow.oms(REFUND_UPDATED, refund_update(order, "CDE1", lines_of(order, "1001")[:1]))
        life = await flow.view()
        assert [h["delivery"] for h in life["history"]] == ["recorded_only"]
        assert life["shipments"][0]["delivery"] == "recorded_only"
        assert life["shipments"][0]["invoice_delivery"] == "recorded_only"
        assert life["credit_memos"][0]["delivery"] == "recorded_only"
        assert await raw.fetchval("SELECT count(*) FROM message WHERE channel = 'commerce'") == 0


async def test_lines_of_a_return_the_oms_refused_can_be_asked_for_again(
    flow: Flow, oms: respx.Router, oms_accepts: respx.Route
) -> None:
    order = await flow.export(three_mugs_and_a_tee())
    await flow.oms(SHIPMENT_DONE, shipment_done(order, shipment_id="S1"))
    ask = {"items": [{"item_id": "1002", "qty": 1, "reason": "TOO_SMALL"}]}
    first = await flow.client.post(f"/orders/{NUMBER}/returns", json=ask, headers=COMMERCE)
    assert first.status_code == 202
    pending = await flow.client.post(f"/orders/{NUMBER}/returns", json=ask, headers=COMMERCE)
    assert pending.status_code == 422  # asked already, not answered yet: the line is taken

    def refuse(request: httpx.Request) -> httpx.Response:
        document = json.loads(request.content)
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": document["id"], "error": "Order not found"})

    oms_accepts.mock(side_effect=refuse)
    await flow.runtime.bus.send_next_outbound("oms")
    refused = await flow.message(first.json()["message_id"])
    assert refused["status"] == "failed"
    [returned] = (await flow.view())["returns"]
    assert returned["rma"] is None and returned["request_delivery"] == "failed"

    again = await flow.client.post(f"/orders/{NUMBER}/returns", json=ask, headers=COMMERCE)
    assert again.status_code == 202, again.text
    assert again.json()["lines"] == first.json()["lines"]
