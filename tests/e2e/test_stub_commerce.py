"""The stub Adobe Commerce REST API itself, over loopback: authorization, order documents with Magento's quantity
checks, search criteria, source items, and the fault controls."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.stub_commerce import StubCommerce

TOKEN = "commerce-integration-token-0123456789"
ORDER = 1042


@pytest.fixture
def stub() -> Iterator[StubCommerce]:
    with StubCommerce() as commerce:
        commerce.add_order(
            ORDER,
            "000000042",
            [{"item_id": 1, "sku": "SKU-A", "qty_ordered": 2}, {"item_id": 2, "sku": "SKU-B", "qty_ordered": 1}],
        )
        yield commerce


@pytest.fixture
def http(stub: StubCommerce) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stub.base_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as client:
        yield client


def _criteria(order_id: int, groups: str = "filter_groups", condition: bool = False) -> dict[str, str]:
    prefix = f"searchCriteria[{groups}][0][filters][0]"
    params = {f"{prefix}[field]": "order_id", f"{prefix}[value]": str(order_id)}
    if condition:
        params[f"{prefix}[condition_type]"] = "eq"
    return params


def test_requests_need_the_bearer_token(stub: StubCommerce):
    assert stub.base_url.endswith("/rest/all/V1")
    response = httpx.get(f"{stub.base_url}/orders/{ORDER}", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401
    assert response.json()["parameters"] == {"resources": "Magento_Sales::sales"}
    assert response.json()["message"] == "The consumer isn't authorized to access %resources."
    [recorded] = stub.requests_to("GET", f"/orders/{ORDER}")
    assert (recorded.path, recorded.authorization, recorded.status) == (f"/orders/{ORDER}", "Bearer wrong", 401)


def test_order_life_cycle_invoice_ship_refund(stub: StubCommerce, http: httpx.Client):
    assert http.get("/orders/9").status_code == 404
    order = http.get(f"/orders/{ORDER}").json()
    assert (order["increment_id"], order["state"], order["status"]) == ("000000042", "new", "pending")
    assert order["items"][0] == {
        "item_id": 1,
        "sku": "SKU-A",
        "qty_ordered": 2,
        "qty_invoiced": 0,
        "qty_shipped": 0,
        "qty_refunded": 0,
        "qty_canceled": 0,
    }

    # Refund before any invoice, and over-invoicing, are refused.
    refused = http.post(f"/order/{ORDER}/refund", json={"items": [{"order_item_id": 1, "qty": 1}]})
    assert refused.status_code == 400 and "creditmemo" in refused.json()["message"]
    too_much = http.post(f"/order/{ORDER}/invoice", json={"capture": True, "items": [{"order_item_id": 1, "qty": 3}]})
    assert too_much.status_code == 400 and "invoice can't be created" in too_much.json()["message"]

    comment = {"comment": "paid", "is_visible_on_front": 0}
    body = {"capture": True, "items": [{"order_item_id": 1, "qty": 1}], "comment": comment}
    invoice_id = http.post(f"/order/{ORDER}/invoice", json=body).json()
    assert isinstance(invoice_id, int)
    assert stub.order(ORDER)["state"] == "processing"
    assert stub.invoices == [
        {
            "entity_id": invoice_id,
            "order_id": ORDER,
            "items": [{"order_item_id": 1, "qty": 1}],
            "comments": [{"comment": "paid"}],
        }
    ]
    http.post(f"/order/{ORDER}/invoice", json={"capture": True})  # the rest: 1 x item 1, 1 x item 2
    assert [i["qty_invoiced"] for i in stub.order(ORDER)["items"]] == [2, 1]

    over_ship = http.post(f"/order/{ORDER}/ship", json={"items": [{"order_item_id": 2, "qty": 2}]})
    assert over_ship.status_code == 400
    assert over_ship.json()["parameters"] == ["The order does not allow a shipment to be created."]
    track = {"track_number": "1Z999", "title": "UPS", "carrier_code": "ups"}
    http.post(f"/order/{ORDER}/ship", json={"items": [{"order_item_id": 1, "qty": 2}], "tracks": [track]})
    assert stub.order(ORDER)["state"] == "processing"
    http.post(f"/order/{ORDER}/ship", json={"items": [{"order_item_id": 2, "qty": 1}], "tracks": []})
    assert (stub.order(ORDER)["state"], stub.order(ORDER)["status"]) == ("complete", "complete")
    assert stub.shipments[0]["tracks"] == [track]

    over_refund = http.post(f"/order/{ORDER}/refund", json={"items": [{"order_item_id": 2, "qty": 2}]})
    assert over_refund.status_code == 400 and over_refund.json()["parameters"] == ["0"]
    arguments = {"shipping_amount": 0, "adjustment_positive": 5, "adjustment_negative": 0}
    memo = http.post(f"/order/{ORDER}/refund", json={"items": [{"order_item_id": 1, "qty": 0}], "arguments": arguments})
    assert memo.status_code == 200, memo.text
    assert stub.creditmemos[0]["arguments"] == arguments
    http.post(f"/order/{ORDER}/refund", json={"items": [{"order_item_id": 1, "qty": 2}]})
    assert stub.order(ORDER)["items"][0]["qty_refunded"] == 2

    # Search criteria, in both spellings; other orders' documents are left out.
    shipments = http.get("/shipments", params=_criteria(ORDER, condition=True)).json()
    assert shipments["total_count"] == 2 and {s["order_id"] for s in shipments["items"]} == {ORDER}
    assert http.get("/invoices", params=_criteria(ORDER, "filterGroups")).json()["total_count"] == 2
    assert http.get("/creditmemos", params=_criteria(7)).json() == {
        "items": [],
        "search_criteria": {},
        "total_count": 0,
    }
    assert http.get("/creditmemos").json()["total_count"] == 2
    assert http.post(f"/orders/{ORDER}/cancel").json() is False


def test_comments_and_cancel(stub: StubCommerce, http: httpx.Client):
    history = {"comment": "on hold", "status": "holded", "is_customer_notified": 0, "is_visible_on_front": 0}
    assert http.post(f"/orders/{ORDER}/comments", json={"statusHistory": history}).json() is True
    assert stub.order(ORDER)["status"] == "holded"
    assert stub.order(ORDER)["status_histories"] == [history]
    assert http.post(f"/orders/{ORDER}/cancel").json() is True
    assert (stub.order(ORDER)["state"], stub.order(ORDER)["status"]) == ("canceled", "canceled")
    assert http.post(f"/orders/{ORDER}/cancel").json() is False
    assert http.post(f"/order/{ORDER}/invoice", json={"capture": True}).status_code == 400


def test_source_items(stub: StubCommerce, http: httpx.Client):
    items = [{"sku": "SKU-A", "source_code": "default", "quantity": 5, "status": 1}]
    assert http.post("/inventory/source-items", json={"sourceItems": items}).json() == []
    http.post("/inventory/source-items", json={"sourceItems": [{**items[0], "quantity": 3}]})
    assert stub.source_items[("SKU-A", "default")]["quantity"] == 3
    assert len(stub.source_item_batches) == 2


def test_fault_controls(stub: StubCommerce, http: httpx.Client):
    stub.down = True
    down = http.get(f"/orders/{ORDER}")
    assert down.status_code == 503 and down.text == "<html>503 Service Unavailable</html>"
    stub.down = False

    stub.fail_next(2, status=500)
    assert [http.get(f"/orders/{ORDER}").status_code for _ in range(3)] == [500, 500, 200]

    # A lost response: the invoice is created, but the client sees 502; a blind retry would invoice twice.
    stub.lose_next_response()
    lost = http.post(f"/order/{ORDER}/invoice", json={"capture": True, "items": [{"order_item_id": 1, "qty": 1}]})
    assert lost.status_code == 502
    assert len(stub.invoices) == 1 and stub.order(ORDER)["items"][0]["qty_invoiced"] == 1
    assert http.post(f"/order/{ORDER}/invoice", json={"capture": True}).status_code == 200
    assert [r.status for r in stub.requests_to("POST", "/invoice")] == [502, 200]
    assert stub.requests_to("post", "/invoice")[0].json == {"capture": True, "items": [{"order_item_id": 1, "qty": 1}]}
