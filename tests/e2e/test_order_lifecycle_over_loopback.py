"""The order lifecycle over real sockets: a `serve` process between a stub OMS and a stub Adobe Commerce. The OMS
sends what the Go peer sends after a create (created, RECEIVED … COMPLETE, then the shipment), the store receives
the comments, an invoice and the shipment; then a partial return and its refund while the store is down for a
while: the credit memo arrives once it is back, exactly once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from app.db import DatabaseUrl
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
from tests.support.processes import Processes, free_port, wait_until
from tests.support.signing import COMMERCE_TOKEN, SECRET, operator_headers
from tests.support.stub_commerce import StubCommerce
from tests.support.stub_oms import StubOms

CREATE = "magento.sales.order_management.create"
COMMERCE = {"Authorization": f"Bearer {COMMERCE_TOKEN}", "Content-Type": "application/json"}
NUMBER, ENTITY = "700000001", 7001


def _env(oms: StubOms, store: StubCommerce, port: int) -> dict[str, str]:
    return {
        "OMS_URL": oms.rpc_url,
        "OMS_OAUTH_SERVER_URL": oms.token_url,
        "OMS_OAUTH_CLIENT_ID": "mom",
        "OMS_OAUTH_CLIENT_SECRET": "mom-client-secret",
        "OMS_APPLICATION_BASE_URL": f"http://127.0.0.1:{port}",
        "OMS_SECRET": SECRET,
        "OMS_REGISTER_AT_STARTUP": "true",
        "ADOBE_COMMERCE_URL": store.base_url,
        "ADOBE_COMMERCE_TOKEN": store.token,
        "HANDLER_PLUGINS": "[]",
    }


async def test_the_oms_lifecycle_reaches_the_store_in_order_and_once(tmp_path: Path, database_url: DatabaseUrl):
    document = commerce_order(
        increment_id=NUMBER,
        entity_id=ENTITY,
        items=[item(11, "MUG-STONE-350", qty=2, price="12.50"), item(12, "TEE-BLU-M", qty=1, price="20.00")],
    )
    with (
        StubOms(require_token=True) as oms,
        StubCommerce() as store,
        Processes(tmp_path, database_url) as procs,
    ):
        store.add_order(ENTITY, NUMBER, [{"item_id": 11, "qty_ordered": 2}, {"item_id": 12, "qty_ordered": 1}])
        port = free_port()
        service = procs.serve("serve", workers=True, port=port, **_env(oms, store, port))
        await service.wait_ready()
        async with httpx.AsyncClient(base_url=service.base_url, timeout=30) as http:
            response = await http.post("/orders", content=order_body(document), headers=COMMERCE)
            assert response.status_code == 202, response.text

            async def exported() -> bool:
                return bool(oms.calls_of(CREATE)) and oms.registration() is not None

            await wait_until(exported, 30, "the order never reached the stub OMS", service)
            order: dict[str, Any] = oms.calls_of(CREATE)[0].params["order"]

            # What the Go peer sends after a create, in its order: the shipment comes after COMPLETE.
            assert (await oms.send_callback(CREATED, {"order": order})).status_code == 200
            for status, reason in GO_STATUSES:
                assert (await oms.send_callback(UPDATED, status_update(order, status, reason))).status_code == 200
            shipment = shipment_done(order, shimpent_id=f"{NUMBER}-001", tracking_number="00340434161094042557")
            assert (await oms.send_callback(SHIPMENT_DONE, shipment)).status_code == 200

            async def shipped() -> bool:
                return len(store.shipments) == 1

            await wait_until(shipped, 30, "the shipment never reached the stub store", service)
            view = (await http.get(f"/orders/{NUMBER}", headers=operator_headers())).json()
            life = view["lifecycle"]
            assert view["export_status"] == "acknowledged"
            assert [entry["oms_status"] for entry in life["history"]] == [status for status, _ in GO_STATUSES]
            [recorded] = life["shipments"]
            assert recorded["packages"][0]["tracking_number"] == "00340434161094042557"
            assert [(i["item_id"], i["qty"]) for i in recorded["items"]] == [("11", 2), ("12", 1)]

            comments = store.order(ENTITY)["status_histories"]
            assert [c["comment"].split(" [")[0] for c in comments] == [
                f"OMS status: {status} ({reason})" for status, reason in GO_STATUSES
            ]
            [invoice] = store.invoices
            [shipped_doc] = store.shipments
            wanted = [{"order_item_id": 11, "qty": 2}, {"order_item_id": 12, "qty": 1}]
            assert invoice["items"] == wanted and shipped_doc["items"] == wanted
            assert shipped_doc["tracks"][0]["track_number"] == "00340434161094042557"
            assert store.order(ENTITY)["state"] == "complete"

            # A partial return (one mug), answered by the OMS, then refunded while the store is down.
            returned = await http.post(
                f"/orders/{NUMBER}/returns",
                json={"items": [{"item_id": 11, "qty": 1, "reason": "DAMAGED"}]},
                headers=COMMERCE,
            )
            assert returned.status_code == 202, returned.text

            async def authorized() -> bool:
                return bool(oms.calls_of(RETURN_AUTHORIZE))

            await wait_until(authorized, 30, "the return never reached the stub OMS", service)
            [asked] = oms.calls_of(RETURN_AUTHORIZE)[0].params["return"]["lines"]
            mug = next(line for line in product_lines(order) if line["line_number"] == asked["line_number"])
            rma = f"RMA-CS-{NUMBER}-1"
            await oms.send_callback(RETURN_UPDATED, return_update(order, rma, "APPROVED", [mug]))
            store.down = True
            await oms.send_callback(REFUND_UPDATED, refund_update(order, "CDE1", [mug], rma=rma))

            async def refused_once() -> bool:
                return any(r.path.endswith("/refund") for r in store.requests)

            await wait_until(refused_once, 30, "the credit memo was never attempted", service)
            store.down = False

            async def refunded() -> bool:
                life = (await http.get(f"/orders/{NUMBER}", headers=operator_headers())).json()["lifecycle"]
                return [memo["delivery"] for memo in life["credit_memos"]] == ["delivered"]

            await wait_until(refunded, 60, "the credit memo was never delivered after the outage", service)
            life = (await http.get(f"/orders/{NUMBER}", headers=operator_headers())).json()["lifecycle"]
            assert life["returns"][0]["rma"] == rma and life["returns"][0]["status"] == "APPROVED"
        service.stop_cleanly()
    assert store.creditmemos[0]["items"] == [{"order_item_id": 11, "qty": 1}]
    assert len(store.shipments) == 1 and len(store.invoices) == 1 and len(store.creditmemos) == 1
    assert len(oms.calls_of(CREATE)) == 1
