"""Gift wrapping (Adobe Commerce's Magento_GiftWrapping) as lines of their own in the create call: one per wrapped unit
(``parent_line_id`` = that unit), one for the order's wrapping, one for a printed card; product type
``GIFT_WRAPPING``, after the unit lines, before ``SHIPPING``.

Every expected number below was worked out by hand from the rules in ``app.mappers.gift_wrapping``'s docstring and
``app.mappers.money`` (largest remainder, in cents). Inputs are Magento-shaped orders (``GET /V1/orders/{id}``)
through JSON and ``parse_order_body``; shipping is 5.00 + 19 % = 5.95 throughout.
"""

from __future__ import annotations

from decimal import Decimal as D
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.mappers.order_to_mcom import MappingError, OrderMappingOptions, item_of_line_id, order_to_mcom
from tests.support.commerce_orders import Fee, settle_extras, with_fixed_taxes, with_gift_wrapping
from tests.support.orders import CENT, Selection, bundle, commerce_order, configurable, dec, item, parse

FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SHIPPING = {"shipping_amount": "5.00", "shipping_tax_percent": 19}


def mapped(doc: dict[str, Any], options: OrderMappingOptions | None = None) -> dict[str, Any]:
    document, order = parse(doc)
    return order_to_mcom(order, options or OrderMappingOptions(), document)["order"]


def wrapping_line(
    line_id: str,
    number: int,
    *,
    gross: str,
    net: str,
    tax: str,
    sku: str = "GIFT_WRAPPING",
    name: str = "Gift wrapping",
    parent: str | None = None,
    design: str | None = None,
    rate: str = "19",
    promotions: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    return {
        "id": line_id,
        "line_number": number,
        "product_type": "GIFT_WRAPPING",
        "sku": sku,
        "product_name": name,
        "parent_line_id": parent,
        "image_url": None,
        "product_url": None,
        "source_id": None,
        "shipping_address_reference": "502",
        "payment_reference": "401",
        "amount": {
            "net_amount": D(net),
            "gross_amount": D(gross),
            "tax_amount": D(tax),
            "tax_rate": D(rate),
            "taxes": [{"type": "VAT", "amount": D(tax), "rate": D(rate)}] if D(tax) or D(rate) else [],
            "currency": "EUR",
        },
        "status": None,
        "promotions_info": {"original_price": D(gross), "promotions": list(promotions)},
        "pre_order_street_date": None,
        "source_location": None,
        "pickup_location": None,
        "custom_attributes": [] if design is None else [{"attribute_code": "gift_wrapping_id", "value": design}],
    }


def line_ids(order: dict[str, Any]) -> list[str]:
    return [line["id"] for line in order["lines"]]


def by_id(order: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {line["id"]: line for line in order["lines"]}


def mugs(**wrapping: Any) -> dict[str, Any]:
    """2 mugs at 12.50 + 19 % (units 14.88 and 14.87), shipping 5.95, and the wrapping asked for."""
    doc = commerce_order(items=[item(1001, "MUG-STONE-350", qty=2, price="12.50", tax_percent=19)], **SHIPPING)
    return settle_extras(with_gift_wrapping(doc, **wrapping))


# --- each level ------------------------------------------------------------------------------------------------
def test_each_wrapped_unit_gets_its_own_line_sharing_the_orders_item_wrapping_total_to_the_cent():
    # Design 3 at 2.50 + 0.4750 tax a unit (Magento keeps 4 decimals); the order: gw_items_price 5.00,
    # gw_items_tax_amount 0.95. grand_total = 29.75 + 5.95 + 5.95 = 41.65.
    # Shares (weights equal): gross 5.95 -> 2.98, 2.97; tax 0.95 by gross: 0.4758… and 0.4742… -> 0.48, 0.47;
    # net 2.50 each. Rate: 2.50 x 19 % = 0.475, within a cent of both: 19.
    doc = mugs(items={1001: (3, "2.50", "0.4750")})
    assert doc["extension_attributes"]["gw_items_tax_amount"] == D("0.95") and doc["grand_total"] == D("41.65")

    order = mapped(doc)
    assert line_ids(order) == ["1001-1", "1001-2", "GIFT_WRAPPING_1001_1", "GIFT_WRAPPING_1001_2", "SHIPPING"]
    lines = by_id(order)
    assert lines["GIFT_WRAPPING_1001_1"] == wrapping_line(
        "GIFT_WRAPPING_1001_1", 3, gross="2.98", net="2.50", tax="0.48", parent="1001-1", design="3"
    )
    assert lines["GIFT_WRAPPING_1001_2"] == wrapping_line(
        "GIFT_WRAPPING_1001_2", 4, gross="2.97", net="2.50", tax="0.47", parent="1001-2", design="3"
    )
    # the unit lines keep the product's own price
    assert [lines[f"1001-{n}"]["amount"]["gross_amount"] for n in (1, 2)] == [D("14.88"), D("14.87")]
    assert order["payments"][0]["transactions"][0]["amount"] == D("41.65")


def test_the_orders_wrapping_and_a_printed_card_are_lines_of_their_own():
    # Order wrapping design 1: 4.00 + 0.76; printed card 1.50 + 0.29 (1.50 x 19 % = 0.285: rate 19).
    # grand_total = 29.75 + 4.76 + 1.79 + 5.95 = 42.25.
    doc = mugs(order_wrapping=(1, "4.00", "0.76"), card=("1.50", "0.29"))
    assert doc["grand_total"] == D("42.25")

    order = mapped(doc)
    assert line_ids(order) == ["1001-1", "1001-2", "GIFT_WRAPPING", "PRINTED_CARD", "SHIPPING"]
    lines = by_id(order)
    assert lines["GIFT_WRAPPING"] == wrapping_line("GIFT_WRAPPING", 3, gross="4.76", net="4.00", tax="0.76", design="1")
    assert lines["PRINTED_CARD"] == wrapping_line(
        "PRINTED_CARD", 4, gross="1.79", net="1.50", tax="0.29", sku="PRINTED_CARD", name="Printed card"
    )
    assert lines["SHIPPING"]["line_number"] == 5


@pytest.mark.parametrize("level", ["order", "item"])
def test_wrapping_sent_as_columns_of_a_raw_io_event_maps_like_the_rest_payload(level):
    rest = mugs(order_wrapping=(1, "4.00", "0.76"), card=("1.50", "0.29"), items={1001: (3, "2.50", "0.4750")})
    raw = mugs(order_wrapping=(1, "4.00", "0.76"), card=("1.50", "0.29"), items={1001: (3, "2.50", "0.4750")})
    holder = raw if level == "order" else raw["items"][0]
    holder.update(holder.pop("extension_attributes") if level == "item" else _pop_wrapping(raw))
    assert mapped(raw) == mapped(rest)


def _pop_wrapping(order: dict[str, Any]) -> dict[str, Any]:
    extension = order["extension_attributes"]
    return {key: extension.pop(key) for key in list(extension) if key.startswith("gw_")}


def test_a_free_wrapping_that_was_chosen_is_still_a_line_telling_the_warehouse_to_wrap():
    doc = mugs(order_wrapping=(7, "0", "0"), card=("0", "0"), items={1001: (5, "0", "0")})
    order = mapped(doc)
    assert line_ids(order) == [
        "1001-1",
        "1001-2",
        "GIFT_WRAPPING_1001_1",
        "GIFT_WRAPPING_1001_2",
        "GIFT_WRAPPING",
        "PRINTED_CARD",
        "SHIPPING",
    ]
    lines = by_id(order)
    assert lines["GIFT_WRAPPING"] == wrapping_line(
        "GIFT_WRAPPING", 5, gross="0", net="0", tax="0", rate="0", design="7"
    )
    assert lines["GIFT_WRAPPING_1001_2"]["custom_attributes"] == [{"attribute_code": "gift_wrapping_id", "value": "5"}]
    assert lines["PRINTED_CARD"]["amount"]["gross_amount"] == 0


def test_no_wrapping_no_wrapping_line():
    doc = mugs()
    doc["extension_attributes"].update({"gw_id": None, "gw_add_card": False, "gw_price": "0.0000"})
    assert line_ids(mapped(doc)) == ["1001-1", "1001-2", "SHIPPING"]


def test_an_item_wrapping_total_no_item_claims_is_one_line():
    doc = mugs(items={1001: (3, "2.50", "0.4750")})
    del doc["items"][0]["extension_attributes"]
    order = mapped(doc)
    assert line_ids(order) == ["1001-1", "1001-2", "GIFT_WRAPPING_ITEMS", "SHIPPING"]
    assert by_id(order)["GIFT_WRAPPING_ITEMS"] == wrapping_line(
        "GIFT_WRAPPING_ITEMS", 3, gross="5.95", net="5.00", tax="0.95", name="Gift wrapping (items)"
    )


def test_without_the_orders_totals_the_items_per_unit_amounts_are_the_total():
    # 2 x (2.50 + 0.4750) = 5.00 + 0.95: the same lines as with the order's totals.
    with_totals = mugs(items={1001: (3, "2.50", "0.4750")})
    without = mugs(items={1001: (3, "2.50", "0.4750")})
    for key in [key for key in without["extension_attributes"] if key.startswith("gw_items")]:
        del without["extension_attributes"][key]
    assert mapped(without)["lines"] == mapped(with_totals)["lines"]


def test_a_price_given_only_including_tax_is_that_less_the_tax():
    doc = mugs(order_wrapping=(1, "4.00", "0.76"))  # gw_price_incl_tax 4.76, gw_tax_amount 0.76
    del doc["extension_attributes"]["gw_price"]
    assert by_id(mapped(doc))["GIFT_WRAPPING"]["amount"]["net_amount"] == D("4.00")


@pytest.mark.parametrize(
    ("where", "field"),
    [
        ("order", "extension_attributes.gw_price"),
        ("card", "extension_attributes.gw_card_tax_amount"),
        ("item", "items[0].extension_attributes.gw_price"),
    ],
)
def test_a_negative_wrapping_amount_is_refused_naming_it(where, field):
    doc = mugs(order_wrapping=(1, "4.00", "0.76"), card=("1.50", "0.29"), items={1001: (3, "2.50", "0.4750")})
    if where == "order":
        doc["extension_attributes"]["gw_price"] = D("-4.00")
    elif where == "card":
        doc["extension_attributes"]["gw_card_tax_amount"] = D("-0.29")
    else:
        doc["items"][0]["extension_attributes"]["gw_price"] = D("-2.50")
    with pytest.raises(MappingError) as refused:
        mapped(doc)
    assert refused.value.field == field


def test_more_wrapped_units_than_an_order_may_have_lines_is_refused_before_any_is_built():
    # A bundle of 5 whose one child says 1 unit: 1 unit line (within 2), 5 wrapped units (beyond).
    kit = bundle(6001, "KIT-TEA", [Selection(6002, "TEAPOT", "30.00")], qty=5)
    kit[1]["qty_ordered"] = 1
    doc = settle_extras(with_gift_wrapping(commerce_order(items=kit, **SHIPPING), items={6001: (1, "1.00", "0")}))
    with pytest.raises(MappingError) as refused:
        mapped(doc, OrderMappingOptions(max_lines=2))
    assert refused.value.field == "items" and "wraps 5 units" in refused.value.message


def test_wrapping_line_ids_are_never_read_back_as_a_magento_items_unit():
    order = mapped(mugs(order_wrapping=(1, "4.00", "0.76"), card=("1.50", "0.29"), items={1001: (3, "2.50", "0.4750")}))
    wrapping = [line["id"] for line in order["lines"] if line["product_type"] == "GIFT_WRAPPING"]
    assert len(wrapping) == 4
    assert [item_of_line_id(line_id) for line_id in wrapping] == [None] * 4


# --- together: FPT, a discount, a bundle, a gift card ---------------------------------------------------------------
def test_fees_and_wrapping_with_a_discount_a_bundle_and_a_gift_card_add_up_and_the_gift_card_covers_every_line():
    # Laptop as in test_order_fpt (2 x 250.00 + 19 %, 10 % off, WEEE 0.85 + 0.16): units 268.76.
    # Fixed-price bundle KIT-YOGA 114.00 + 19 % = 135.66, shared 90 : 24 -> 107.10 (tax 17.10), 28.56 (tax 4.56);
    # wrapped with design 2 (3.00 + 0.57). Order wrapping 4.00 + 0.76, printed card 1.50 + 0.29, gift card 50.00.
    # Lines: 268.76 x 2 + 107.10 + 28.56 + 3.57 + 4.76 + 1.79 + 5.95 = 689.25 = grand_total 639.25 + 50.00.
    laptop = with_fixed_taxes(
        item(2004, "LAPTOP-14", qty=2, price="250.00", tax_percent=19, discount_percent=10),
        [Fee("WEEE", "0.85", tax="0.16")],
    )
    kit = bundle(5001, "KIT-YOGA", [Selection(5002, "MAT-01", 90), Selection(5003, "STRAP-02", 24)], tax_percent=19)
    doc = commerce_order(items=[laptop, *kit], gift_cards=[("GC-0042", "50.00")], coupon_code="SAVE10", **SHIPPING)
    with_gift_wrapping(
        doc, order_wrapping=(1, "4.00", "0.76"), card=("1.50", "0.29"), items={5001: (2, "3.00", "0.57")}
    )
    settle_extras(doc)
    assert doc["grand_total"] == D("639.25")

    order = mapped(doc)
    assert line_ids(order) == [
        "2004-1",
        "2004-2",
        "5002-1",
        "5003-1",
        "GIFT_WRAPPING_5001_1",
        "GIFT_WRAPPING",
        "PRINTED_CARD",
        "SHIPPING",
    ]
    lines = by_id(order)
    assert [lines[i]["amount"]["gross_amount"] for i in line_ids(order)] == [
        D(amount) for amount in ("268.76", "268.76", "107.10", "28.56", "3.57", "4.76", "1.79", "5.95")
    ]
    assert lines["2004-1"]["amount"]["taxes"] == [
        {"type": "VAT", "amount": D("42.91"), "rate": D("19")},
        {"type": "WEEE", "amount": D("0.85"), "rate": D(0)},
    ]
    assert lines["GIFT_WRAPPING_5001_1"]["parent_line_id"] == lines["5002-1"]["parent_line_id"] == "5001-1"
    assert [(t["payment_method"], t["amount"]) for t in order["payments"][0]["transactions"]] == [
        ("OFFLINE", D("639.25")),
        ("GIFT_CARD", D("50.00")),
    ]
    # the gift card: one GIFT_CARD promotion per line, each within a cent of its share by gross, 50.00 in all
    shares = {line["id"]: _gift_card(line) for line in order["lines"]}
    assert sum(shares.values(), D(0)) == D("50.00")
    for line_id, share in shares.items():
        exact = Fraction(50) * Fraction(lines[line_id]["amount"]["gross_amount"]) / Fraction("689.25")
        assert abs(Fraction(share) - exact) < Fraction(CENT), (line_id, share, float(exact))


def _gift_card(line: dict[str, Any]) -> D:
    return sum((p["discount"] for p in line["promotions_info"]["promotions"] if p["code"] == "GIFT_CARD"), D(0))


# --- property: random wrapping and fees on random orders -----------------------------------------------------------
prices = st.integers(1, 30_000).map(lambda n: D(n) / 100)
wrap_prices = st.integers(0, 2_000).map(lambda n: D(n) / 100)
unit_taxes = st.integers(0, 40_000).map(lambda n: D(n) / 10_000)  # 4 decimals, as Magento keeps them


@st.composite
def wrapped_orders(draw: st.DrawFn) -> dict[str, Any]:
    """1-4 items (simple with maybe a fee, configurable + child, fixed bundle + children), qty 1-4, 19 % or 7 % tax,
    a percentage discount, some top-level items wrapped (random design, price, 4-decimal tax), maybe the order
    wrapped, maybe a printed card, maybe a gift card and store credit. Totals as Adobe Commerce computes them."""
    ids = iter(range(1001, 2000))
    entries: list[dict[str, Any]] = []
    wrapped: dict[Any, tuple[int, D, D]] = {}
    for _ in range(draw(st.integers(1, 4), label="items")):
        kind = draw(st.sampled_from(["simple", "configurable", "bundle"]), label="kind")
        terms = {
            "qty": draw(st.integers(1, 4), label="qty"),
            "tax_percent": draw(st.sampled_from((7, 19)), label="rate"),
            "discount_percent": draw(st.sampled_from((0, 10, 25)), label="discount %"),
        }
        top = next(ids)
        if kind == "simple":
            entry = item(top, f"SKU-{top}", price=draw(prices), **terms)
            if draw(st.booleans(), label="fee"):
                fee_amount = draw(prices, label="fee amount")
                with_fixed_taxes(entry, [Fee("WEEE", fee_amount, tax=(fee_amount * terms["tax_percent"] / 100))])
            entries.append(entry)
        elif kind == "configurable":
            entries += configurable(top, next(ids), f"TEE-{top}", price=draw(prices), **terms)
        else:
            selections = [Selection(next(ids), f"PART-{n}", draw(prices)) for n in range(2)]
            entries += bundle(top, f"KIT-{top}", selections, **terms)
        if draw(st.booleans(), label="wrapped"):
            wrapped[top] = (draw(st.integers(1, 9)), draw(wrap_prices), draw(unit_taxes))
    doc = commerce_order(items=entries, **SHIPPING)
    payable = int(doc["grand_total"] * 100)
    tenders: dict[str, Any] = {}
    if draw(st.booleans(), label="gift card"):
        tenders["gift_cards"] = [("GC-1", draw(st.integers(0, payable), label="gift card cents") * CENT)]
    if draw(st.booleans(), label="store credit"):
        tenders["store_credit"] = draw(st.integers(0, payable // 2), label="store credit cents") * CENT
    if tenders.get("gift_cards") and tenders.get("store_credit"):
        tenders["store_credit"] = min(tenders["store_credit"], (payable * CENT) - tenders["gift_cards"][0][1])
    if tenders:
        doc = commerce_order(items=entries, **SHIPPING, **tenders)
    wrapping: dict[str, Any] = {"items": wrapped}
    if draw(st.booleans(), label="order wrapped"):
        wrapping["order_wrapping"] = (draw(st.integers(1, 9)), draw(wrap_prices), draw(wrap_prices))
    if draw(st.booleans(), label="printed card"):
        wrapping["card"] = (draw(wrap_prices), draw(wrap_prices))
    return settle_extras(with_gift_wrapping(doc, **wrapping))


@FAST
@given(doc=wrapped_orders())
def test_with_random_wrapping_and_fees_the_lines_add_up_and_each_wrapped_unit_has_one_wrapping_line(doc):
    order = mapped(doc)
    lines = order["lines"]
    extension = doc["extension_attributes"]
    tenders = sum((abs(dec(extension.get(key) or 0)) for key in ("gift_cards_amount", "customer_balance_amount")), D(0))
    assert sum((line["amount"]["gross_amount"] for line in lines), D(0)) == doc["grand_total"] + tenders
    transactions = order["payments"][0]["transactions"]
    assert sum((t["amount"] for t in transactions), D(0)) == doc["grand_total"] + tenders
    assert sum((_gift_card(line) for line in lines), D(0)) == abs(dec(extension.get("gift_cards_amount") or 0))

    kinds = [line["product_type"] for line in lines]
    first_wrap = kinds.index("GIFT_WRAPPING") if "GIFT_WRAPPING" in kinds else len(kinds) - 1
    assert all(kind in ("PHYSICAL", "VIRTUAL") for kind in kinds[:first_wrap])  # units, then wrapping
    assert lines[-1]["id"] == "SHIPPING" and [line["line_number"] for line in lines] == list(range(1, len(lines) + 1))
    for line in lines:
        amount = line["amount"]
        assert amount["net_amount"] + amount["tax_amount"] == amount["gross_amount"], line["id"]
        assert amount["net_amount"] >= 0 and amount["tax_amount"] >= 0, line["id"]

    wraps = {line["id"]: line for line in lines if line["product_type"] == "GIFT_WRAPPING"}
    per_item = {line_id: line for line_id, line in wraps.items() if line["parent_line_id"] is not None}
    expected_parents = sorted(
        f"{entry['item_id']}-{n}"
        for entry in doc["items"]
        if "extension_attributes" in entry
        for n in range(1, int(entry["qty_ordered"]) + 1)
    )
    assert sorted(line["parent_line_id"] for line in per_item.values()) == expected_parents
    gross = {kind: D(0) for kind in ("items", "order", "card")}
    for line_id, line in wraps.items():
        kind = "items" if line["parent_line_id"] else ("card" if line_id == "PRINTED_CARD" else "order")
        gross[kind] += line["amount"]["gross_amount"]
    for kind, prefix in (("items", "gw_items"), ("order", "gw"), ("card", "gw_card")):
        assert gross[kind] == dec(extension.get(f"{prefix}_price") or 0) + dec(
            extension.get(f"{prefix}_tax_amount") or 0
        )
