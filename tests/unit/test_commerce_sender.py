"""CommerceSender against a respx router behind a real CommerceClient: which REST call each commerce topic makes,
how a retried message (attempts > 1) first looks for its idempotency marker so that it is not delivered twice, how
an invoice is cut down to what is not invoiced yet, how a refused cancel is told apart from an order canceled
already, and that a peer's failure comes back as an outcome rather than raised. Nothing goes on the network."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr

from app.clients.commerce import CommerceClient
from app.data.outbox import OutboundMessage
from app.errors import PeerRejected, PeerUnavailable
from app.mappers.lifecycle_to_commerce import (
    ItemQuantity,
    comment_body,
    invoice_body,
    marker,
    refund_body,
    ship_body,
)
from app.protocol.json_numbers import jsonable
from app.services.commerce_effects import (
    CANCEL,
    COMMENT,
    COMMERCE_CHANNEL,
    INVOICE,
    REFUND,
    SHIP,
    SOURCE_ITEMS,
    commerce_lane,
)
from app.workers.commerce_sender import CommerceSender

BASE_URL = "http://127.0.0.1:9/rest/all/V1"
ENTITY_ID = "7"
INCREMENT_ID = "000000101"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
ORDER_URL = f"{BASE_URL}/orders/{ENTITY_ID}"


@pytest.fixture
def router() -> respx.Router:
    return respx.Router(assert_all_called=False)


@pytest.fixture
async def sender(router: respx.Router) -> AsyncIterator[CommerceSender]:
    client = CommerceClient(
        base_url=BASE_URL, token=SecretStr("token"), transport=httpx.MockTransport(router.async_handler)
    )
    yield CommerceSender(client)
    await client.aclose()


def key(effect: str) -> str:
    return f"oms-commerce-{INCREMENT_ID}-{effect}"


def message(topic: str, body: Any, *, external_id: str, attempts: int = 1, message_id: int = 1) -> OutboundMessage:
    return OutboundMessage(
        id=message_id,
        topic=topic,
        external_id=external_id,
        lane=commerce_lane(INCREMENT_ID),
        channel=COMMERCE_CHANNEL,
        encoded_payload=json.dumps({"entity_id": ENTITY_ID, "increment_id": INCREMENT_ID, "body": jsonable(body)}),
        attempts=attempts,
        first_attempt_at=NOW,
        lease_until=NOW + timedelta(minutes=1),
    )


def comment_message(attempts: int = 1, effect: str = "status-3") -> OutboundMessage:
    body = comment_body(oms_status="SHIPPED", reason=None, commerce_status="shipped_oms", key=key(effect))
    return message(COMMENT, body, external_id=key(effect), attempts=attempts)


def ship_message(attempts: int = 1, effect: str = "shipment-4") -> OutboundMessage:
    body = ship_body(
        items=[ItemQuantity("11", 2)],
        packages=[{"tracking_number": "TRK1", "carrier": "DHL"}],
        source_id="default",
        key=key(effect),
        notify=True,
    )
    return message(SHIP, body, external_id=key(effect), attempts=attempts)


def refund_message(attempts: int = 1, effect: str = "refund-5") -> OutboundMessage:
    body = refund_body(
        items=[ItemQuantity("11", 1)],
        shipping_amount=Decimal("4.95"),
        adjustment_positive=Decimal(0),
        reason="Returned",
        key=key(effect),
        notify=False,
    )
    return message(REFUND, body, external_id=key(effect), attempts=attempts)


def invoice_message(items: list[ItemQuantity], attempts: int = 1, effect: str = "invoice-4") -> OutboundMessage:
    return message(INVOICE, invoice_body(items=items, key=key(effect)), external_id=key(effect), attempts=attempts)


def cancel_message(attempts: int = 1) -> OutboundMessage:
    return message(CANCEL, None, external_id=key("cancel"), attempts=attempts)


def order(
    *items: dict[str, Any], state: str = "processing", histories: tuple[str, ...] | list[str] = ()
) -> dict[str, Any]:
    return {
        "entity_id": int(ENTITY_ID),
        "increment_id": INCREMENT_ID,
        "state": state,
        "items": list(items),
        "status_histories": [{"comment": text, "entity_id": n} for n, text in enumerate(histories, start=1)],
    }


def item(item_id: int, *, ordered: float, invoiced: float = 0, shipped: float = 0, canceled: float = 0) -> dict:
    return {
        "item_id": item_id,
        "sku": f"SKU-{item_id}",
        "qty_ordered": ordered,
        "qty_invoiced": invoiced,
        "qty_shipped": shipped,
        "qty_canceled": canceled,
    }


def document(entity_id: int, *comments: str) -> dict[str, Any]:
    return {"entity_id": entity_id, "order_id": int(ENTITY_ID), "comments": [{"comment": c} for c in comments]}


def body_of(route: respx.Route) -> Any:
    return json.loads(route.calls.last.request.content)


def requests(router: respx.Router) -> list[str]:
    return [f"{call.request.method} {call.request.url.path}" for call in router.calls]


async def deliver_one(sender: CommerceSender, outbound: OutboundMessage) -> Any:
    outcomes = await sender.deliver([outbound])
    assert len(outcomes) == 1
    return outcomes[0]


# --- a first attempt posts straight away --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "path"),
    [
        pytest.param(comment_message, f"/orders/{ENTITY_ID}/comments", id="comment"),
        pytest.param(ship_message, f"/order/{ENTITY_ID}/ship", id="ship"),
        pytest.param(refund_message, f"/order/{ENTITY_ID}/refund", id="refund"),
    ],
)
async def test_a_first_attempt_posts_straight_away_without_looking(router, sender, build, path):
    get = router.get(url__startswith=BASE_URL).mock(return_value=httpx.Response(500))
    post = router.post(BASE_URL + path).mock(return_value=httpx.Response(200, json="31"))
    outbound = build()
    assert await deliver_one(sender, outbound) == "31"
    assert get.call_count == 0
    assert requests(router) == [f"POST /rest/all/V1{path}"]
    assert body_of(post) == outbound.payload["body"]


async def test_the_comment_posted_carries_its_marker(router, sender):
    post = router.post(f"{ORDER_URL}/comments").mock(return_value=httpx.Response(200, json=True))
    await deliver_one(sender, comment_message())
    history = body_of(post)["statusHistory"]
    assert history["comment"].endswith(marker(key("status-3")))
    assert history["status"] == "shipped_oms"


# --- comments -----------------------------------------------------------------------------------------------------


async def test_a_retried_comment_already_in_the_order_history_is_not_posted_again(router, sender):
    histories = ["Order placed", f"OMS status: SHIPPED {marker(key('status-3'))}"]
    get = router.get(ORDER_URL).mock(return_value=httpx.Response(200, json=order(histories=histories)))
    post = router.post(f"{ORDER_URL}/comments").mock(return_value=httpx.Response(200, json=True))
    assert await deliver_one(sender, comment_message(attempts=2)) == {"already_delivered": True}
    assert get.call_count == 1
    assert post.call_count == 0


async def test_a_retried_comment_missing_from_the_order_history_is_posted(router, sender):
    histories = ["Order placed", f"OMS status: PICKING {marker(key('status-2'))}"]
    router.get(ORDER_URL).mock(return_value=httpx.Response(200, json=order(histories=histories)))
    post = router.post(f"{ORDER_URL}/comments").mock(return_value=httpx.Response(200, json=True))
    outbound = comment_message(attempts=2)
    assert await deliver_one(sender, outbound) is True
    assert post.call_count == 1
    assert body_of(post) == outbound.payload["body"]
    assert requests(router) == [
        f"GET /rest/all/V1/orders/{ENTITY_ID}",
        f"POST /rest/all/V1/orders/{ENTITY_ID}/comments",
    ]


async def test_a_marker_whose_key_only_starts_with_ours_does_not_count(router, sender):
    """Key ``...-status-3`` must not be taken as delivered because ``...-status-30`` is in the history."""
    histories = [f"OMS status: SHIPPED {marker(key('status-30'))}"]
    router.get(ORDER_URL).mock(return_value=httpx.Response(200, json=order(histories=histories)))
    post = router.post(f"{ORDER_URL}/comments").mock(return_value=httpx.Response(200, json=True))
    assert await deliver_one(sender, comment_message(attempts=2, effect="status-3")) is True
    assert post.call_count == 1


async def test_a_retried_comment_on_an_order_without_history_is_posted(router, sender):
    bare = {"entity_id": 7, "state": "processing", "status_histories": [{"comment": None}]}
    router.get(ORDER_URL).mock(return_value=httpx.Response(200, json=bare))
    post = router.post(f"{ORDER_URL}/comments").mock(return_value=httpx.Response(200, json=True))
    assert await deliver_one(sender, comment_message(attempts=3)) is True
    assert post.call_count == 1


async def test_a_comment_that_sets_no_status_names_the_orders_current_one(router, sender):
    """Before Magento 2.4.4 a comment without `status` set the order's status to NULL (AC-1342)."""
    current = {"entity_id": 7, "state": "complete", "status": "complete", "status_histories": []}
    get = router.get(ORDER_URL).mock(return_value=httpx.Response(200, json=current))
    post = router.post(f"{ORDER_URL}/comments").mock(return_value=httpx.Response(200, json=True))
    body = comment_body(oms_status="COMPLETE", reason=None, commerce_status="complete", key=key("status-9"))
    assert "status" not in body["statusHistory"]  # a state status is never set through a comment
    assert await deliver_one(sender, message(COMMENT, body, external_id=key("status-9"))) is True
    assert get.call_count == 1
    assert body_of(post)["statusHistory"]["status"] == "complete"


async def test_a_payload_the_sender_cannot_use_is_rejected_not_raised(router, sender):
    broken = OutboundMessage(
        id=1, topic=SHIP, external_id=key("shipment-1"), lane=commerce_lane(INCREMENT_ID), channel=COMMERCE_CHANNEL,
        encoded_payload='{"body": {}}', attempts=1, first_attempt_at=NOW, lease_until=NOW + timedelta(minutes=1),
    )  # fmt: skip
    outcome = await deliver_one(sender, broken)
    assert isinstance(outcome, PeerRejected) and "entity_id" in outcome.message


# --- shipments and credit memos -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "kind", "effect"),
    [
        pytest.param(ship_message, "shipments", "shipment-4", id="ship"),
        pytest.param(refund_message, "creditmemos", "refund-5", id="refund"),
    ],
)
async def test_a_retried_document_already_in_commerce_is_not_posted_again(router, sender, build, kind, effect):
    found = [document(30, "Packed by hand"), document(31, "first", f"Done (OMS) {marker(key(effect))}")]
    search = router.get(f"{BASE_URL}/{kind}").mock(return_value=httpx.Response(200, json={"items": found}))
    post = router.post(url__startswith=f"{BASE_URL}/order/").mock(return_value=httpx.Response(200, json="99"))
    assert await deliver_one(sender, build(attempts=2, effect=effect)) == {"already_delivered": 31}
    assert post.call_count == 0
    params = search.calls.last.request.url.params
    assert params["searchCriteria[filter_groups][0][filters][0][field]"] == "order_id"
    assert params["searchCriteria[filter_groups][0][filters][0][value]"] == ENTITY_ID


@pytest.mark.parametrize(
    ("build", "kind", "path"),
    [
        pytest.param(ship_message, "shipments", f"/order/{ENTITY_ID}/ship", id="ship"),
        pytest.param(refund_message, "creditmemos", f"/order/{ENTITY_ID}/refund", id="refund"),
    ],
)
async def test_a_retried_document_not_in_commerce_is_posted(router, sender, build, kind, path):
    other = [document(30, f"Shipped (OMS) {marker(key('other-1'))}"), {"entity_id": 32}]
    search = router.get(f"{BASE_URL}/{kind}").mock(return_value=httpx.Response(200, json={"items": other}))
    post = router.post(BASE_URL + path).mock(return_value=httpx.Response(200, json="33"))
    outbound = build(attempts=2)
    assert await deliver_one(sender, outbound) == "33"
    assert search.call_count == 1
    assert post.call_count == 1
    assert body_of(post) == outbound.payload["body"]


async def test_the_refund_posted_has_its_amounts_as_json_numbers(router, sender):
    post = router.post(f"{BASE_URL}/order/{ENTITY_ID}/refund").mock(return_value=httpx.Response(200, json="40"))
    await deliver_one(sender, refund_message())
    assert body_of(post)["arguments"] == {"shipping_amount": 4.95, "adjustment_positive": 0, "adjustment_negative": 0}


# --- invoices -----------------------------------------------------------------------------------------------------


async def test_an_invoice_looks_at_the_order_first_and_posts_what_is_requested(router, sender):
    get = router.get(ORDER_URL).mock(return_value=httpx.Response(200, json=order(item(11, ordered=2))))
    post = router.post(f"{BASE_URL}/order/{ENTITY_ID}/invoice").mock(return_value=httpx.Response(200, json="50"))
    outbound = invoice_message([ItemQuantity("11", 2)])
    assert await deliver_one(sender, outbound) == "50"
    assert get.call_count == 1
    assert requests(router) == [f"GET /rest/all/V1/orders/{ENTITY_ID}", f"POST /rest/all/V1/order/{ENTITY_ID}/invoice"]
    sent = body_of(post)
    assert sent["items"] == [{"order_item_id": 11, "qty": 2}]
    assert sent["capture"] is False
    assert sent["comment"] == outbound.payload["body"]["comment"]


async def test_an_order_invoiced_at_checkout_gets_no_invoice(router, sender):
    router.get(ORDER_URL).mock(return_value=httpx.Response(200, json=order(item(11, ordered=2, invoiced=2))))
    post = router.post(f"{BASE_URL}/order/{ENTITY_ID}/invoice").mock(return_value=httpx.Response(200, json="50"))
    result = await deliver_one(sender, invoice_message([ItemQuantity("11", 2)]))
    assert isinstance(result, dict)
    assert "skipped" in result
    assert post.call_count == 0


async def test_a_partly_invoiced_order_is_invoiced_only_for_the_rest(router, sender):
    lines = order(item(11, ordered=3, invoiced=2), item(12, ordered=1), item(13, ordered=1, invoiced=1))
    router.get(ORDER_URL).mock(return_value=httpx.Response(200, json=lines))
    post = router.post(f"{BASE_URL}/order/{ENTITY_ID}/invoice").mock(return_value=httpx.Response(200, json="51"))
    items = [ItemQuantity("11", 3), ItemQuantity("12", 1), ItemQuantity("13", 1)]
    assert await deliver_one(sender, invoice_message(items)) == "51"
    assert body_of(post)["items"] == [{"order_item_id": 11, "qty": 1}, {"order_item_id": 12, "qty": 1}]


@pytest.mark.parametrize(
    ("line", "requested", "expected"),
    [
        pytest.param(item(11, ordered=5), 2, 2, id="nothing-invoiced-yet"),
        pytest.param(item(11, ordered=5, canceled=4), 2, 1, id="room-left-after-cancel"),
        pytest.param(item(11, ordered=5, invoiced=3, shipped=1), 2, 0, id="shipped-and-requested-already-invoiced"),
        pytest.param(item(11, ordered=5, invoiced=2, shipped=1), 2, 1, id="part-of-the-shipment-invoiced"),
        pytest.param(item(11, ordered=5, invoiced=1, shipped=1), 3, 3, id="earlier-shipment-invoiced"),
        pytest.param(item(11, ordered=4, invoiced=3, canceled=1), 1, 0, id="no-room-left"),
    ],
)
async def test_the_invoiced_quantity_is_the_least_of_requested_room_and_uninvoiced(
    router, sender, line, requested, expected
):
    router.get(ORDER_URL).mock(return_value=httpx.Response(200, json=order(line)))
    post = router.post(f"{BASE_URL}/order/{ENTITY_ID}/invoice").mock(return_value=httpx.Response(200, json="52"))
    result = await deliver_one(sender, invoice_message([ItemQuantity("11", requested)]))
    if expected:
        assert result == "52"
        assert body_of(post)["items"] == [{"order_item_id": 11, "qty": expected}]
    else:
        assert "skipped" in result
        assert post.call_count == 0


async def test_quantities_given_as_decimal_strings_are_read_and_whole_numbers_sent_as_integers(router, sender):
    line = {"item_id": "11", "qty_ordered": "3.0000", "qty_invoiced": "1.0000", "qty_shipped": "0.0000"}
    router.get(ORDER_URL).mock(return_value=httpx.Response(200, json=order(line)))
    post = router.post(f"{BASE_URL}/order/{ENTITY_ID}/invoice").mock(return_value=httpx.Response(200, json="53"))
    await deliver_one(sender, invoice_message([ItemQuantity("11", 3)]))
    sent = body_of(post)["items"][0]
    assert sent == {"order_item_id": 11, "qty": 2}
    assert isinstance(sent["qty"], int)


async def test_an_invoice_for_an_item_the_order_lacks_is_rejected(router, sender):
    router.get(ORDER_URL).mock(return_value=httpx.Response(200, json=order(item(11, ordered=1))))
    post = router.post(f"{BASE_URL}/order/{ENTITY_ID}/invoice").mock(return_value=httpx.Response(200, json="54"))
    outcome = await deliver_one(sender, invoice_message([ItemQuantity("99", 1)]))
    assert isinstance(outcome, PeerRejected)
    assert "no item 99" in outcome.message
    assert post.call_count == 0


async def test_a_retried_invoice_already_in_commerce_is_not_posted_again(router, sender):
    found = [document(60, f"Invoiced on shipment (OMS) {marker(key('invoice-4'))}")]
    router.get(f"{BASE_URL}/invoices").mock(return_value=httpx.Response(200, json={"items": found}))
    get_order = router.get(ORDER_URL).mock(return_value=httpx.Response(200, json=order(item(11, ordered=2))))
    post = router.post(f"{BASE_URL}/order/{ENTITY_ID}/invoice").mock(return_value=httpx.Response(200, json="55"))
    assert await deliver_one(sender, invoice_message([ItemQuantity("11", 2)], attempts=2)) == {"already_delivered": 60}
    assert get_order.call_count == 0
    assert post.call_count == 0


async def test_a_first_invoice_attempt_does_not_search_the_invoices(router, sender):
    search = router.get(f"{BASE_URL}/invoices").mock(return_value=httpx.Response(200, json={"items": []}))
    router.get(ORDER_URL).mock(return_value=httpx.Response(200, json=order(item(11, ordered=2))))
    router.post(f"{BASE_URL}/order/{ENTITY_ID}/invoice").mock(return_value=httpx.Response(200, json="56"))
    assert await deliver_one(sender, invoice_message([ItemQuantity("11", 2)])) == "56"
    assert search.call_count == 0


# --- cancel -------------------------------------------------------------------------------------------------------


async def test_a_cancel_answered_true_is_delivered(router, sender):
    post = router.post(f"{ORDER_URL}/cancel").mock(return_value=httpx.Response(200, json=True))
    get = router.get(ORDER_URL).mock(return_value=httpx.Response(200, json=order()))
    assert await deliver_one(sender, cancel_message()) is True
    assert post.call_count == 1
    assert post.calls.last.request.content == b""
    assert get.call_count == 0


async def test_a_cancel_answered_false_on_an_order_canceled_already_is_fine(router, sender):
    router.post(f"{ORDER_URL}/cancel").mock(return_value=httpx.Response(200, json=False))
    get = router.get(ORDER_URL).mock(return_value=httpx.Response(200, json=order(state="canceled")))
    outcome = await deliver_one(sender, cancel_message(attempts=2))
    assert not isinstance(outcome, Exception)
    assert outcome == {"already_canceled": True}
    assert get.call_count == 1


async def test_a_cancel_answered_false_on_a_processing_order_is_rejected(router, sender):
    router.post(f"{ORDER_URL}/cancel").mock(return_value=httpx.Response(200, json=False))
    router.get(ORDER_URL).mock(return_value=httpx.Response(200, json=order(state="processing")))
    outcome = await deliver_one(sender, cancel_message())
    assert isinstance(outcome, PeerRejected)
    assert "refused to cancel order 7" in outcome.message
    assert "'processing'" in outcome.message


# --- source items, unknown topics, failures -------------------------------------------------------------------------


async def test_source_items_are_posted_to_the_inventory_route(router, sender):
    body = {"sourceItems": [{"sku": "SKU-11", "source_code": "default", "quantity": 5, "status": 1}]}
    post = router.post(f"{BASE_URL}/inventory/source-items").mock(return_value=httpx.Response(200, json=[]))
    outbound = OutboundMessage(
        id=9,
        topic=SOURCE_ITEMS,
        external_id="oms-commerce-stock-1",
        lane="commerce/stock",
        channel=COMMERCE_CHANNEL,
        encoded_payload=json.dumps({"body": body}),
        attempts=2,
        first_attempt_at=NOW,
        lease_until=NOW + timedelta(minutes=1),
    )
    assert await deliver_one(sender, outbound) == []
    assert body_of(post) == body
    assert requests(router) == ["POST /rest/all/V1/inventory/source-items"]


async def test_a_topic_without_a_route_is_rejected(router, sender):
    outcome = await deliver_one(sender, message("commerce.order.unknown", {}, external_id=key("x")))
    assert isinstance(outcome, PeerRejected)
    assert "commerce.order.unknown" in outcome.message
    assert router.calls.call_count == 0


@pytest.mark.parametrize(
    ("response", "error"),
    [
        pytest.param(httpx.Response(503, headers={"Retry-After": "20"}), PeerUnavailable, id="unavailable"),
        pytest.param(
            httpx.Response(400, json={"message": "Cannot do shipment for the order."}), PeerRejected, id="400"
        ),
    ],
)
async def test_a_peer_error_comes_back_as_the_outcome_not_raised(router, sender, response, error):
    router.post(f"{BASE_URL}/order/{ENTITY_ID}/ship").mock(return_value=response)
    outcome = await deliver_one(sender, ship_message())
    assert isinstance(outcome, error)
    assert "HTTP" in outcome.message


async def test_a_failed_lookup_on_a_retry_comes_back_as_the_outcome_and_nothing_is_posted(router, sender):
    router.get(f"{BASE_URL}/shipments").mock(side_effect=httpx.ReadTimeout)
    post = router.post(f"{BASE_URL}/order/{ENTITY_ID}/ship").mock(return_value=httpx.Response(200, json="31"))
    outcome = await deliver_one(sender, ship_message(attempts=2))
    assert isinstance(outcome, PeerUnavailable)
    assert post.call_count == 0


async def test_each_message_gets_its_own_outcome_in_order(router, sender):
    router.post(f"{ORDER_URL}/comments").mock(return_value=httpx.Response(200, json=True))
    router.post(f"{BASE_URL}/order/{ENTITY_ID}/ship").mock(return_value=httpx.Response(500, json={"message": "down"}))
    router.post(f"{ORDER_URL}/cancel").mock(return_value=httpx.Response(200, json=True))
    outcomes = await sender.deliver([comment_message(), ship_message(), cancel_message()])
    assert len(outcomes) == 3
    assert outcomes[0] is True
    assert isinstance(outcomes[1], PeerUnavailable)
    assert "down" in outcomes[1].message
    assert outcomes[2] is True
