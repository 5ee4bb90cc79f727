"""The order lifecycle of an order with gift wrapping (issue #20: wrapping lines of their own, product type
``GIFT_WRAPPING``, no Magento item), on a real PostgreSQL with a respx OMS and the stub Adobe Commerce on loopback.

Wrapping lines are charges like the SHIPPING line: a shipment never ships them, an order whose products are all
refunded is entirely refunded whatever became of them, and their refund reaches Adobe Commerce as an amount
(``adjustment_positive``) once what they belong to was invoiced — a wrapped unit's wrapping with its unit, the
order's wrapping and printed card (and the shipping) with the order's first shipment.

The order (worked out by hand, prices excluding tax, 19 % VAT): two mugs 2 x 10.00 + 3.80 = 23.80 (11.90 a unit),
each wrapped (design 3: 2.00 + 0.38 = 2.38 a unit), a tee 20.00 + 3.80 = 23.80, the order wrapped (design 1: 4.00 +
0.76 = 4.76), a printed card (1.50 + 0.29 = 1.79), shipping 5.00 + 0.95 = 5.95, a 10.00 gift card: grand_total
23.80 + 23.80 + 2 x 2.38 + 4.76 + 1.79 + 5.95 - 10.00 = 54.86.
"""

# ruff: noqa: F811
from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

# The lifecycle tests' set-up: a stub Adobe Commerce, the real handlers, an OMS that accepts every call (pytest
# fixtures, used by name as the tests' parameters: hence F401 and F811 for this file).
from tests.integration.test_order_lifecycle import (  # noqa: F401
    ENTITY,
    Flow,
    flow,
    oms_accepts,
    registry,
    settings_overrides,
    store,
)
from tests.support.commerce_orders import settle_extras, with_gift_wrapping
from tests.support.oms_events import REFUND_UPDATED, SHIPMENT_DONE, refund_update, shipment_done
from tests.support.orders import Selection, bundle, commerce_order, item
from tests.support.stub_commerce import StubCommerce

MUGS = ["1001-1", "1001-2"]
MUG_WRAPPINGS = ["GIFT_WRAPPING_1001_1", "GIFT_WRAPPING_1001_2"]
PRODUCTS = [*MUGS, "1002-1"]


def wrapped_order() -> dict[str, Any]:
    """The module docstring's order, as ``GET /V1/orders/{id}`` returns it."""
    doc = commerce_order(
        items=[
            item(1001, "MUG-STONE-350", qty=2, price="10.00", tax_percent=19),
            item(1002, "TEE-BLU-M", qty=1, price="20.00", tax_percent=19),
        ],
        gift_cards=[("GC-0042", "10.00")],
        shipping_amount="5.00",
        shipping_tax_percent=19,
    )
    with_gift_wrapping(
        doc, order_wrapping=(1, "4.00", "0.76"), card=("1.50", "0.29"), items={1001: (3, "2.00", "0.38")}
    )
    return settle_extras(doc)


def pick(order: dict[str, Any], *line_ids: str) -> list[dict[str, Any]]:
    by_id = {line["id"]: line for line in order["lines"]}
    return [by_id[line_id] for line_id in line_ids]


def money(value: Any) -> Decimal:
    return Decimal(str(value))


async def export(flow: Flow, document: dict[str, Any] | None = None) -> dict[str, Any]:
    """Post the order (``wrapped_order`` unless given) and deliver its create: the create's ``order`` params."""
    return await flow.export(document or wrapped_order())


async def lines_view(flow: Flow) -> dict[str, dict[str, Any]]:
    return {line["line_id"]: line for line in (await flow.view())["lines"]}


async def test_the_order_exports_with_the_wrapping_amounts_worked_out_by_hand(flow: Flow) -> None:
    document = wrapped_order()
    assert document["grand_total"] == Decimal("54.86")
    order = await export(flow, document)
    assert [line["id"] for line in order["lines"]] == [
        *PRODUCTS, *MUG_WRAPPINGS, "GIFT_WRAPPING", "PRINTED_CARD", "SHIPPING"
    ]  # fmt: skip
    grosses = {line["id"]: money(line["amount"]["gross_amount"]) for line in order["lines"]}
    assert grosses == {
        "1001-1": Decimal("11.90"),
        "1001-2": Decimal("11.90"),
        "1002-1": Decimal("23.80"),
        "GIFT_WRAPPING_1001_1": Decimal("2.38"),
        "GIFT_WRAPPING_1001_2": Decimal("2.38"),
        "GIFT_WRAPPING": Decimal("4.76"),
        "PRINTED_CARD": Decimal("1.79"),
        "SHIPPING": Decimal("5.95"),
    }


# --- store credit (defect 1) -----------------------------------------------------------------------------------
async def test_a_gift_card_order_whose_products_are_all_refunded_gets_store_credit_though_its_wrapping_is_not(
    flow: Flow, store: StubCommerce
) -> None:
    order = await export(flow)
    await flow.oms(SHIPMENT_DONE, shipment_done(order, PRODUCTS, shipment_id="S1"))
    await flow.oms(REFUND_UPDATED, refund_update(order, "CDE1", pick(order, *PRODUCTS)))  # the products alone

    result = json.loads((await flow.last_inbound(REFUND_UPDATED))["result"])
    assert "store credit 10.00 issued" in result["store_credit"]
    await flow.deliver()
    credit = (await flow.view())["store_credit"]
    assert money(credit["amount"]) == Decimal("10.00") and credit["delivery"] == "delivered"
    assert any("Store credit of 10.00" in c["comment"] for c in store.order(ENTITY)["status_histories"])
    [memo] = store.creditmemos
    assert memo["items"] == [{"order_item_id": 1001, "qty": 2}, {"order_item_id": 1002, "qty": 1}]
    assert money(memo["arguments"]["adjustment_positive"]) == 0 and money(memo["arguments"]["shipping_amount"]) == 0
    lines = await lines_view(flow)
    assert not any(lines[line_id]["refunded"] for line_id in [*MUG_WRAPPINGS, "GIFT_WRAPPING", "PRINTED_CARD"])


async def test_a_gift_card_order_with_a_product_left_unrefunded_gets_no_store_credit_whatever_the_wrapping(
    flow: Flow,
) -> None:
    order = await export(flow)
    await flow.oms(SHIPMENT_DONE, shipment_done(order, PRODUCTS, shipment_id="S1"))
    wrapping_and_mugs = [*MUGS, *MUG_WRAPPINGS, "GIFT_WRAPPING", "PRINTED_CARD", "SHIPPING"]
    await flow.oms(REFUND_UPDATED, refund_update(order, "CDE1", pick(order, *wrapping_and_mugs)))
    assert "store_credit" not in json.loads((await flow.last_inbound(REFUND_UPDATED))["result"])
    assert (await flow.view())["store_credit"] is None


# --- refunds reaching Adobe Commerce (defect 2) ----------------------------------------------------------------
async def test_a_returned_wrapped_unit_and_its_wrapping_make_one_credit_memo_with_the_wrapping_as_adjustment(
    flow: Flow, store: StubCommerce
) -> None:
    order = await export(flow)
    await flow.oms(SHIPMENT_DONE, shipment_done(order, PRODUCTS, shipment_id="S1"))
    await flow.oms(REFUND_UPDATED, refund_update(order, "CDE2", pick(order, "1001-1", "GIFT_WRAPPING_1001_1")))
    await flow.deliver()

    [recorded] = (await flow.view())["credit_memos"]
    assert recorded["refunded_before_shipment"] == [] and recorded["delivery"] == "delivered"
    assert money(recorded["total"]) == Decimal("11.90") + Decimal("2.38")
    [memo] = store.creditmemos
    assert memo["items"] == [{"order_item_id": 1001, "qty": 1}]
    assert money(memo["arguments"]["adjustment_positive"]) == Decimal("2.38")
    assert money(memo["arguments"]["shipping_amount"]) == 0
    lines = await lines_view(flow)
    assert lines["GIFT_WRAPPING_1001_1"]["refunded"] and not lines["GIFT_WRAPPING_1001_1"]["refunded_before_shipment"]
    assert not lines["GIFT_WRAPPING_1001_2"]["refunded"]


async def test_the_orders_wrapping_and_card_refunded_alone_are_an_adjustment_naming_an_item_at_quantity_zero_once(
    flow: Flow, store: StubCommerce
) -> None:
    order = await export(flow)
    await flow.oms(SHIPMENT_DONE, shipment_done(order, PRODUCTS, shipment_id="S1"))
    refund = refund_update(order, "CDE3", pick(order, "GIFT_WRAPPING", "PRINTED_CARD"))
    await flow.oms(REFUND_UPDATED, refund)
    await flow.oms(REFUND_UPDATED, refund)  # the same credit note again
    await flow.deliver()

    [recorded] = (await flow.view())["credit_memos"]
    assert recorded["credit_memo"]["items"] == [{"item_id": "1001", "qty": 0, "line_ids": []}]
    [memo] = store.creditmemos  # once
    # an item at quantity 0: a credit memo naming none would refund every item left
    assert memo["items"] == [{"order_item_id": 1001, "qty": 0}]
    assert money(memo["arguments"]["adjustment_positive"]) == Decimal("6.55")  # 4.76 + 1.79, to the cent
    assert money(memo["arguments"]["shipping_amount"]) == 0
    assert all(entry["qty_refunded"] == 0 for entry in store.order(ENTITY)["items"])


async def test_a_wrapping_refunded_before_its_unit_shipped_makes_no_credit_memo_but_a_shipped_orders_shipping_does(
    flow: Flow, store: StubCommerce
) -> None:
    order = await export(flow)
    await flow.oms(SHIPMENT_DONE, shipment_done(order, ["1002-1"], shipment_id="S1"))  # the tee alone
    refunded = pick(order, "1001-1", "GIFT_WRAPPING_1001_1", "SHIPPING")
    await flow.oms(REFUND_UPDATED, refund_update(order, "CDE4", refunded))
    await flow.deliver()

    [recorded] = (await flow.view())["credit_memos"]
    assert recorded["refunded_before_shipment"] == ["1001-1", "GIFT_WRAPPING_1001_1"]
    [memo] = store.creditmemos
    assert memo["items"] == [{"order_item_id": 1002, "qty": 0}]  # the shipped (invoiced) tee names the memo
    assert money(memo["arguments"]["shipping_amount"]) == Decimal("5.95")
    assert money(memo["arguments"]["adjustment_positive"]) == 0
    lines = await lines_view(flow)
    assert lines["GIFT_WRAPPING_1001_1"]["refunded_before_shipment"] and lines["GIFT_WRAPPING_1001_1"]["refunded"]
    assert lines["SHIPPING"]["refunded"] and not lines["SHIPPING"]["refunded_before_shipment"]


async def test_before_any_shipment_refunding_everything_makes_no_credit_memo_and_lists_every_line(
    flow: Flow, store: StubCommerce
) -> None:
    order = await export(flow)
    await flow.oms(REFUND_UPDATED, refund_update(order, "CDE5", order["lines"]))
    await flow.deliver()
    [recorded] = (await flow.view())["credit_memos"]
    assert recorded["credit_memo"] is None and recorded["delivery"] == "recorded_only"
    assert recorded["refunded_before_shipment"] == [line["id"] for line in order["lines"]]
    assert store.creditmemos == []


async def test_a_bundles_wrapping_follows_its_own_bundle_unit_not_the_orders_first_shipment(
    flow: Flow, store: StubCommerce
) -> None:
    kit = bundle(5001, "KIT-YOGA", [Selection(5002, "MAT-01", 90), Selection(5003, "STRAP-02", 24)], qty=2)
    document = commerce_order(items=[item(1002, "TEE-BLU-M", price="20.00"), *kit])
    with_gift_wrapping(document, items={5001: (2, "3.00", "0.57")})
    order = await export(flow, settle_extras(document))
    wrappings = pick(order, "GIFT_WRAPPING_5001_1", "GIFT_WRAPPING_5001_2")
    assert [line["parent_line_id"] for line in wrappings] == ["5001-1", "5001-2"]  # bundle units: no line of their own
    assert [money(line["amount"]["gross_amount"]) for line in wrappings] == [Decimal("3.57")] * 2
    first_kit = [line["id"] for line in order["lines"] if line.get("parent_line_id") == "5001-1"]
    assert sorted(first_kit) == ["5002-1", "5003-1", "GIFT_WRAPPING_5001_1"]

    await flow.oms(SHIPMENT_DONE, shipment_done(order, ["1002-1", "5002-1", "5003-1"], shipment_id="S1"))
    await flow.oms(REFUND_UPDATED, refund_update(order, "CDE6", wrappings))
    await flow.deliver()

    [recorded] = (await flow.view())["credit_memos"]
    assert recorded["refunded_before_shipment"] == ["GIFT_WRAPPING_5001_2"]  # its kit did not ship
    [memo] = store.creditmemos
    assert money(memo["arguments"]["adjustment_positive"]) == Decimal("3.57")


async def test_an_appeasement_on_the_wrapping_and_the_shipping_gives_both_amounts_as_an_adjustment(
    flow: Flow, store: StubCommerce
) -> None:
    order = await export(flow)
    await flow.oms(SHIPMENT_DONE, shipment_done(order, PRODUCTS, shipment_id="S1"))
    lines = pick(order, "GIFT_WRAPPING", "SHIPPING")
    await flow.oms(REFUND_UPDATED, refund_update(order, "APP-1", lines, refund_type="Appeasement", gross="1.25"))
    await flow.deliver()

    [recorded] = (await flow.view())["credit_memos"]
    assert recorded["kind"] == "appeasement" and money(recorded["total"]) == Decimal("2.50")
    [memo] = store.creditmemos
    assert memo["items"] == [{"order_item_id": 1001, "qty": 0}]
    assert money(memo["arguments"]["adjustment_positive"]) == Decimal("2.50")
    assert money(memo["arguments"]["shipping_amount"]) == 0
    assert not (await lines_view(flow))["GIFT_WRAPPING"]["refunded"]  # an appeasement takes no line back


# --- shipments (defect 3: the SHIPPING rule applied to the wrapping lines) ---------------------------------------
async def test_a_shipment_naming_the_wrapping_lines_ships_the_products_alone(flow: Flow, store: StubCommerce) -> None:
    order = await export(flow)
    shipment = shipment_done(order, shipment_id="S1")  # every line but SHIPPING: the wrapping lines too
    assert {entry["order_line_id"] for entry in shipment["shipment"]["items"]} >= set(MUG_WRAPPINGS)
    await flow.oms(SHIPMENT_DONE, shipment)
    await flow.deliver()

    [recorded] = (await flow.view())["shipments"]
    assert [(i["item_id"], i["qty"]) for i in recorded["items"]] == [("1001", 2), ("1002", 1)]
    assert recorded["packages"][0]["line_ids"] == PRODUCTS
    assert [s["items"] for s in store.shipments] == [
        [{"order_item_id": 1001, "qty": 2}, {"order_item_id": 1002, "qty": 1}]
    ]
    lines = await lines_view(flow)
    assert [line_id for line_id, line in lines.items() if line["shipped"]] == PRODUCTS


async def test_a_shipment_naming_wrapping_lines_alone_fails_and_ships_nothing_in_the_store(
    flow: Flow, store: StubCommerce
) -> None:
    order = await export(flow)
    await flow.oms(SHIPMENT_DONE, shipment_done(order, [*MUG_WRAPPINGS, "PRINTED_CARD"], shipment_id="S1"))
    message = await flow.last_inbound(SHIPMENT_DONE)
    assert message["status"] == "failed" and "no product line is shipped" in message["last_error"]
    await flow.deliver()
    assert (await flow.view())["shipments"] == [] and store.shipments == []
