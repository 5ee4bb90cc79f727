"""Adobe Commerce orders → `magento.sales.order_management.create` params, table by table.

Every expected number below was worked out by hand from the rules in ``app.mappers.order_to_mcom``'s docstring
and ``app.mappers.money`` (largest remainder, in cents): gross = row_total + tax + compensation - discount,
original = row_total_incl_tax, promotion = original - gross; a row's units get the left-over cents of gross and
tax first and of the discount last. The working is in the comments; nothing here was produced by running the
mapper. Inputs are Magento-shaped orders (magento-rest.md §2) going through JSON and ``parse_order_body``.
"""

from __future__ import annotations

import json
from decimal import Decimal as D
from typing import Any

import pytest
from pydantic import ValidationError

from app.mappers.order_to_mcom import MappingError, OrderMappingOptions, item_of_line_id, order_to_mcom
from app.protocol.commerce_order import describe_errors, parse_order_body
from tests.support.orders import ABSENT, Selection, bundle, commerce_order, item, order_body, parse, shipping_assignment

BUNDLE_ATTRIBUTES = (
    {"attribute_code": "bundle_sku", "value": "KIT-YOGA"},
    {"attribute_code": "sourcing_rule", "value": "SHIP_TOGETHER"},
)
BACKORDERED = {"attribute_code": "backordered", "value": True}
BILLING = {
    "reference": "501",
    "address_type": "customer",
    "first_name": "Lena",
    "last_name": "Vogel",
    "address1": "Hauptstraße 5",
    "address2": "2. OG",
    "city": "Berlin",
    "state": "BE",
    "zip": "10115",
    "country_code": "DE",
    "phone": "+49 30 1234567",
    "email": "lena.vogel@example.com",
}
SHIPPING_TO = {
    **BILLING,
    "reference": "502",
    "address1": "Torstraße 1",
    "address2": "",
    "zip": "10119",
    "email": "lena.vogel@example.com",  # the address has none: the order's customer_email
}


# --- expected MCOM parts (literals arranged, nothing computed) --------------------------------------------------
def promo(code: str | None, name: str, discount: str, percentage: str) -> dict[str, Any]:
    return {"code": code, "name": name, "discount": D(discount), "percentage": D(percentage)}


def gift_card(discount: str, percentage: str) -> dict[str, Any]:
    return promo("GIFT_CARD", "Gift card", discount, percentage)


def line(
    line_id: str,
    number: int,
    sku: str,
    name: str,
    *,
    gross: str,
    net: str,
    tax: str,
    rate: str,
    original: str,
    promotions: tuple[dict[str, Any], ...] = (),
    product_type: str = "PHYSICAL",
    parent: str | None = None,
    attributes: tuple[dict[str, Any], ...] = (),
    ship_to: str | None = "502",
    payment: str = "401",
    currency: str = "EUR",
) -> dict[str, Any]:
    taxes = [{"type": "VAT", "amount": D(tax), "rate": D(rate)}] if D(tax) or D(rate) else []
    return {
        "id": line_id,
        "line_number": number,
        "product_type": product_type,
        "sku": sku,
        "product_name": name,
        "parent_line_id": parent,
        "image_url": None,
        "product_url": None,
        "source_id": None,
        "shipping_address_reference": ship_to,
        "payment_reference": payment,
        "amount": {
            "net_amount": D(net),
            "gross_amount": D(gross),
            "tax_amount": D(tax),
            "tax_rate": D(rate),
            "taxes": taxes,
            "currency": currency,
        },
        "status": None,
        "promotions_info": {"original_price": D(original), "promotions": list(promotions)},
        "pre_order_street_date": None,
        "source_location": None,
        "pickup_location": None,
        "custom_attributes": list(attributes),
    }


def shipping_line(number: int, sku: str = "flatrate_flatrate", name: str = "Flat Rate - Fixed", **money: Any) -> dict:
    return line("SHIPPING", number, sku, name, product_type="SHIPPING", **money)


def transaction(
    method: str,
    amount: str,
    processor: str,
    *,
    submethod: str | None = None,
    transaction_id: str | None = None,
    billing: str = "501",
) -> dict[str, Any]:
    return {
        "payment_method": method,
        "payment_submethod": submethod,
        "amount": D(amount),
        "billing_address_reference": billing,
        "gateway_information": {
            "gateway_id": processor.upper(),
            "account": None,
            "transaction_id": transaction_id,
            "authorization_status": "AUTHORIZED",
            "original_auth_request_id": None,
            "payment_account_unique_id": None,
            "payment_service_response": None,
            "custom_attributes": [
                {"attribute_code": "mdc_gateway_processor", "value": processor, "name": "mdc_gateway_processor"}
            ],
        },
    }


# --- running the mapper ----------------------------------------------------------------------------------------
def mapped(doc: dict[str, Any], options: OrderMappingOptions | None = None) -> dict[str, Any]:
    document, order = parse(doc)
    return order_to_mcom(order, options or OrderMappingOptions(), document)["order"]


def assert_lines(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert [line["id"] for line in got] == [line["id"] for line in expected]
    for got_line, expected_line in zip(got, expected, strict=True):
        for key in expected_line.keys() | got_line.keys():
            assert got_line.get(key, "<absent>") == expected_line.get(key, "<absent>"), (got_line["id"], key)


def transactions(order: dict[str, Any]) -> list[dict[str, Any]]:
    (payment,) = order["payments"]
    assert payment["reference"] == "401"
    assert payment["currency"] == "EUR"
    return payment["transactions"]


# --- scenarios -------------------------------------------------------------------------------------------------
def test_simple_item_qty_3_with_a_15_percent_discount_and_19_percent_tax():
    # Magento's row: 3 x 9.99 = 29.97; 15 % of it = 4.4955 -> 4.50; tax 19 % after the discount: 25.47 x 0.19 =
    # 4.8393 -> 4.84; row_total_incl_tax = 29.97 + 19 % before the discount (5.6943 -> 5.69) = 35.66.
    # Mapped row: gross 29.97 + 4.84 - 4.50 = 30.31, tax 4.84, net 25.47, original 35.66, promotion 5.35.
    # Units (cents): gross 3031 / 3 = 1010 r 1 -> 10.11, 10.10, 10.10; tax 484 / 3 = 161 r 1 -> 1.62, 1.61, 1.61;
    # net 8.49 each; promotion 535 / 3 = 178 r 1, the extra cent last -> 1.78, 1.78, 1.79;
    # original = gross + promotion -> 11.89, 11.88, 11.89 (Σ 35.66).
    # Shipping 5.00 + 19 % (0.95) = 5.95, rate 0.95 / 5.00 = 19.00 %. grand_total = 30.31 + 5.95 = 36.26.
    mug = item(
        1001,
        "MUG-STONE-350",
        name="Stone Mug 350 ml",
        qty=3,
        price=9.99,
        tax_percent=19,
        discount_percent=15,
        row_total=29.97,
        discount_amount=4.50,
        tax_amount=4.84,
        row_total_incl_tax=35.66,
        price_incl_tax=11.89,
    )
    doc = commerce_order(
        items=[mug],
        shipping_amount=5.00,
        shipping_tax_percent=19,
        shipping_tax_amount=0.95,
        shipping_incl_tax=5.95,
        coupon_code="SPRING15",
        discount_description="Spring sale",
        grand_total=36.26,
    )
    spring = "SPRING15", "Spring sale"
    expected = {
        "id": "000000101",
        "store": "default",
        "status": None,
        "status_reason": None,
        "ip": "203.0.113.57",
        "language": None,
        "vat_country": "DE",
        "origin": "FRONTEND",
        "origin_date": "2025-02-10T17:42:05+00:00",
        "customer_service_agent": None,
        "customer": {"id": "77", "type": "REGISTERED", "segment": "B2C"},
        "addresses": [BILLING, SHIPPING_TO],
        "payments": [
            {"reference": "401", "currency": "EUR", "transactions": [transaction("OFFLINE", "36.26", "checkmo")]}
        ],
        "lines": [
            line(
                "1001-1",
                1,
                "MUG-STONE-350",
                "Stone Mug 350 ml",
                gross="10.11",
                net="8.49",
                tax="1.62",
                rate="19",
                original="11.89",
                promotions=(promo(*spring, "1.78", "15"),),
            ),
            line(
                "1001-2",
                2,
                "MUG-STONE-350",
                "Stone Mug 350 ml",
                gross="10.10",
                net="8.49",
                tax="1.61",
                rate="19",
                original="11.88",
                promotions=(promo(*spring, "1.78", "15"),),
            ),
            line(
                "1001-3",
                3,
                "MUG-STONE-350",
                "Stone Mug 350 ml",
                gross="10.10",
                net="8.49",
                tax="1.61",
                rate="19",
                original="11.89",
                promotions=(promo(*spring, "1.79", "15"),),
            ),
            shipping_line(4, gross="5.95", net="5.00", tax="0.95", rate="19.00", original="5.95"),
        ],
        "custom_attributes": [],
    }

    order = mapped(doc)

    assert_lines(order["lines"], expected["lines"])
    for key in expected.keys() | order.keys():
        assert order.get(key, "<absent>") == expected.get(key, "<absent>"), key
    assert all(type(line["amount"]["gross_amount"]) is D for line in order["lines"])  # never a float


def test_fixed_price_bundle_shares_the_parents_amounts_by_the_childrens_original_price():
    # Bundle x2 at 99.99, 10 % off, 19 % tax: row 199.98; discount 19.998 -> 20.00; tax 179.98 x 0.19 = 34.1962 ->
    # 34.20; row_total_incl_tax 199.98 + 37.9962 -> 38.00 = 237.98. Mapped bundle row: gross 199.98 + 34.20 - 20.00 =
    # 214.18, tax 34.20, promotion 237.98 - 214.18 = 23.80. The children show 0; original_price 90 and 30, qty 2
    # each: weights 180 and 60, 3/4 and 1/4.
    # Gross 21418 cents: 16063.5 / 5354.5 -> floors 16063 + 5354, 1 left, tie -> the mat: 160.64 / 53.54.
    # Tax 3420 by gross: 2565.08 / 854.92 -> 2565 + 854, 1 left -> the strap (.92): 25.65 / 8.55.
    # Promotion 2380 by gross: 1785.06 / 594.94 -> 1785 + 594, 1 left -> the strap: 17.85 / 5.95.
    # Mat units: gross 8032 + 8032; tax 2565 -> 12.83, 12.82; promotion 1785 -> 8.92, 8.93 (extra last);
    #   net 67.49, 67.50; original 89.24, 89.25.
    # Strap units: gross 2677 + 2677; tax 855 -> 4.28, 4.27; promotion 595 -> 2.97, 2.98; net 22.49, 22.50;
    #   original 29.74, 29.75.
    # Shipping 4.90 + 19 % (0.931 -> 0.93) = 5.83; rate 19: the items' 19 % explains 0.93 to the cent.
    # grand_total 214.18 + 5.83 = 220.01.
    items = [
        item(
            3001,
            "KIT-YOGA",
            name="Yoga Kit",
            product_type="bundle",
            qty=2,
            price=99.99,
            tax_percent=19,
            discount_percent=10,
            row_total=199.98,
            discount_amount=20.00,
            tax_amount=34.20,
            row_total_incl_tax=237.98,
            price_incl_tax=118.99,
        ),
        item(
            3002, "MAT-01", name="Yoga Mat", qty=2, price=0, original_price=90.00, tax_percent=19, parent_item_id=3001
        ),
        item(
            3003,
            "STRAP-02",
            name="Yoga Strap",
            qty=2,
            price=0,
            original_price=30.00,
            tax_percent=19,
            parent_item_id=3001,
        ),
    ]
    doc = commerce_order(
        items=items,
        shipping_amount=4.90,
        shipping_tax_amount=0.93,
        shipping_incl_tax=5.83,
        discount_description="Yoga week",
        grand_total=220.01,
    )
    week = None, "Yoga week"
    bundled = {"rate": "19", "attributes": BUNDLE_ATTRIBUTES}

    order = mapped(doc)

    assert_lines(
        order["lines"],
        [
            line(
                "3002-1",
                1,
                "MAT-01",
                "Yoga Mat",
                parent="3001-1",
                gross="80.32",
                net="67.49",
                tax="12.83",
                original="89.24",
                promotions=(promo(*week, "8.92", "10"),),
                **bundled,
            ),
            line(
                "3002-2",
                2,
                "MAT-01",
                "Yoga Mat",
                parent="3001-2",
                gross="80.32",
                net="67.50",
                tax="12.82",
                original="89.25",
                promotions=(promo(*week, "8.93", "10"),),
                **bundled,
            ),
            line(
                "3003-1",
                3,
                "STRAP-02",
                "Yoga Strap",
                parent="3001-1",
                gross="26.77",
                net="22.49",
                tax="4.28",
                original="29.74",
                promotions=(promo(*week, "2.97", "10"),),
                **bundled,
            ),
            line(
                "3003-2",
                4,
                "STRAP-02",
                "Yoga Strap",
                parent="3001-2",
                gross="26.77",
                net="22.50",
                tax="4.27",
                original="29.75",
                promotions=(promo(*week, "2.98", "10"),),
                **bundled,
            ),
            shipping_line(5, gross="5.83", net="4.90", tax="0.93", rate="19", original="5.83"),
        ],
    )
    assert transactions(order) == [transaction("OFFLINE", "220.01", "checkmo")]


def test_fixed_price_bundle_with_a_child_of_unknown_price_shares_equally():
    # 100.00 over 3 children (one has no original_price): 33.34, 33.33, 33.33 - not 0 for the unpriced one.
    items = bundle(
        3001,
        "KIT",
        [Selection(3002, "A", "90.00"), Selection(3003, "B", "30.00"), Selection(3004, "C", "10.00")],
        price="100.00",
    )
    items[3]["original_price"] = None
    lines = mapped(commerce_order(items=items, shipping_amount="0"))["lines"]
    gross = [line["amount"]["gross_amount"] for line in lines if line["product_type"] != "SHIPPING"]
    assert gross == [D("33.34"), D("33.33"), D("33.33")]


def test_dynamic_price_bundle_takes_the_childrens_amounts_and_does_not_count_the_parent_again():
    # Children, 10 % off, 19 % tax after the discount:
    #   mat 1 x 90.00: discount 9.00, tax 81.00 x 0.19 = 15.39, incl. tax before discount 107.10 ->
    #     gross 90.00 + 15.39 - 9.00 = 96.39, net 81.00, promotion 107.10 - 96.39 = 10.71;
    #   strap 2 x 12.00 = 24.00: discount 2.40, tax 21.60 x 0.19 = 4.104 -> 4.10, incl. 28.56 ->
    #     gross 25.70 (2 x 12.85), tax 2 x 2.05, net 2 x 10.80, promotion 2.86 (2 x 1.43), original 2 x 14.28.
    # The parent shows the sums (114.00, 11.40, 19.49, 135.66): counted once, grand_total = 96.39 + 25.70 = 122.09.
    # Free shipping: a SHIPPING line of 0 with no tax entry.
    items = [
        item(
            3001,
            "KIT-YOGA",
            name="Yoga Kit",
            product_type="bundle",
            qty=1,
            price=114.00,
            tax_percent=19,
            discount_percent=10,
            row_total=114.00,
            discount_amount=11.40,
            tax_amount=19.49,
            row_total_incl_tax=135.66,
            price_incl_tax=135.66,
        ),
        item(
            3002,
            "MAT-01",
            name="Yoga Mat",
            qty=1,
            price=90.00,
            tax_percent=19,
            discount_percent=10,
            parent_item_id=3001,
            row_total=90.00,
            discount_amount=9.00,
            tax_amount=15.39,
            row_total_incl_tax=107.10,
            price_incl_tax=107.10,
        ),
        item(
            3003,
            "STRAP-02",
            name="Yoga Strap",
            qty=2,
            price=12.00,
            tax_percent=19,
            discount_percent=10,
            parent_item_id=3001,
            row_total=24.00,
            discount_amount=2.40,
            tax_amount=4.10,
            row_total_incl_tax=28.56,
            price_incl_tax=14.28,
        ),
    ]
    doc = commerce_order(
        items=items,
        shipping_amount=0,
        shipping_method="freeshipping_freeshipping",
        shipping_description="Free Shipping - Free",
        grand_total=122.09,
    )
    bundled = {"rate": "19", "parent": "3001-1", "attributes": BUNDLE_ATTRIBUTES}

    order = mapped(doc)

    assert_lines(
        order["lines"],
        [
            line(
                "3002-1",
                1,
                "MAT-01",
                "Yoga Mat",
                gross="96.39",
                net="81.00",
                tax="15.39",
                original="107.10",
                promotions=(promo(None, "Discount", "10.71", "10"),),
                **bundled,
            ),
            *(
                line(
                    f"3003-{n}",
                    n + 1,
                    "STRAP-02",
                    "Yoga Strap",
                    gross="12.85",
                    net="10.80",
                    tax="2.05",
                    original="14.28",
                    promotions=(promo(None, "Discount", "1.43", "10"),),
                    **bundled,
                )
                for n in (1, 2)
            ),
            shipping_line(
                4,
                "freeshipping_freeshipping",
                "Free Shipping - Free",
                gross="0.00",
                net="0.00",
                tax="0.00",
                rate="0",
                original="0.00",
            ),
        ],
    )
    assert transactions(order) == [transaction("OFFLINE", "122.09", "checkmo")]


def test_configurable_parent_carries_the_money_and_the_simple_sku_the_child_adds_nothing():
    # Parent 2 x 24.99 = 49.98, 10 % off: 4.998 -> 5.00; 21 % tax after the discount: 44.98 x 0.21 = 9.4458 -> 9.45;
    # incl. tax before discount 49.98 + 10.4958 -> 10.50 = 60.48. Gross 49.98 + 9.45 - 5.00 = 54.43 -> 27.22, 27.21;
    # tax 945 -> 4.73, 4.72; net 22.49 each; promotion 60.48 - 54.43 = 6.05 -> 3.02, 3.03; original 30.24 each.
    # Shipping 5.00 + 21 % = 6.05. grand_total 60.48. The child (price 0) is no line of its own.
    items = [
        item(
            2001,
            "TEE-RED-M",
            name="Organic Tee",
            product_type="configurable",
            qty=2,
            price=24.99,
            tax_percent=21,
            discount_percent=10,
            row_total=49.98,
            discount_amount=5.00,
            tax_amount=9.45,
            row_total_incl_tax=60.48,
            price_incl_tax=30.24,
            product_option={
                "extension_attributes": {"configurable_item_options": [{"option_id": "93", "option_value": 58}]}
            },
        ),
        item(2002, "TEE-RED-M", name="Organic Tee Red M", qty=2, price=0, tax_percent=21, parent_item_id=2001),
    ]
    doc = commerce_order(
        items=items, shipping_amount=5.00, shipping_tax_amount=1.05, shipping_incl_tax=6.05, grand_total=60.48
    )

    order = mapped(doc)

    tee = "TEE-RED-M", "Organic Tee Red M"
    assert_lines(
        order["lines"],
        [
            line(
                "2001-1",
                1,
                *tee,
                gross="27.22",
                net="22.49",
                tax="4.73",
                rate="21",
                original="30.24",
                promotions=(promo(None, "Discount", "3.02", "10"),),
            ),
            line(
                "2001-2",
                2,
                *tee,
                gross="27.21",
                net="22.49",
                tax="4.72",
                rate="21",
                original="30.24",
                promotions=(promo(None, "Discount", "3.03", "10"),),
            ),
            shipping_line(3, gross="6.05", net="5.00", tax="1.05", rate="21.00", original="6.05"),
        ],
    )
    assert [item_of_line_id(line["id"]) for line in order["lines"]] == [("2001", 1), ("2001", 2), None]


def test_virtual_product_needs_no_shipping_address_and_gets_no_shipping_line():
    # 49.00 + 7 % (3.43) = 52.43; no shipping method, no shipping amount: no SHIPPING line, only the billing
    # address, and the line points at no shipping address. Paid by card through Braintree.
    warranty = item(
        4001,
        "WARRANTY-2Y",
        name="2-year warranty",
        product_type="virtual",
        price=49.00,
        tax_percent=7,
        row_total=49.00,
        tax_amount=3.43,
        row_total_incl_tax=52.43,
        price_incl_tax=52.43,
    )
    doc = commerce_order(
        items=[warranty],
        shipping_amount=0,
        shipping_method=None,
        ship_to=None,
        payment={"method": "braintree", "cc_type": "VI", "last_trans_id": "7kq2m9xd"},
        grand_total=52.43,
    )
    assert doc["extension_attributes"]["shipping_assignments"] == [
        {"shipping": {"total": {"shipping_amount": 0}}, "items": []}
    ]

    order = mapped(doc)

    assert order["addresses"] == [BILLING]
    assert_lines(
        order["lines"],
        [
            line(
                "4001-1",
                1,
                "WARRANTY-2Y",
                "2-year warranty",
                product_type="VIRTUAL",
                ship_to=None,
                gross="52.43",
                net="49.00",
                tax="3.43",
                rate="7",
                original="52.43",
            )
        ],
    )
    assert transactions(order) == [
        transaction("BRAINTREE", "52.43", "braintree", submethod="VI", transaction_id="7kq2m9xd")
    ]


def _mugs_order(**changes: Any) -> dict[str, Any]:
    # 2 x 40.00 + 19 % (15.20) = 95.20 -> 47.60 per unit (tax 7.60, net 40.00); shipping 5.00 + 0.95 = 5.95.
    # Lines add up to 101.15.
    mugs = item(
        5001,
        "MUG-STONE-350",
        name="Stone Mug",
        qty=2,
        price=40.00,
        tax_percent=19,
        row_total=80.00,
        tax_amount=15.20,
        row_total_incl_tax=95.20,
        price_incl_tax=47.60,
    )
    return commerce_order(
        items=[mugs], shipping_amount=5.00, shipping_tax_amount=0.95, shipping_incl_tax=5.95, **changes
    )


def test_gift_card_covering_part_of_the_order_is_shared_over_the_lines_and_paid_as_a_transaction():
    # 30.00 redeemed over gross 4760 / 4760 / 595 (Σ 10115): 1411.76 / 1411.76 / 176.47 -> floors 1411 + 1411 + 176,
    # 2 left -> the two mugs (.76 > .47): 14.12 / 14.12 / 1.76. Percentages of gross: 1412 / 4760 = 29.66 %,
    # 176 / 595 = 29.58 %. Not taken off gross. grand_total 101.15 - 30.00 = 71.15, paid by card.
    doc = _mugs_order(
        gift_cards=[("GC-7H2K-QX", 30.00)],
        payment={"method": "braintree", "cc_type": "MC", "last_trans_id": "p2x9"},
        grand_total=71.15,
    )
    assert doc["extension_attributes"]["gift_cards_amount"] == D("30.00")

    order = mapped(doc)

    mug = {"gross": "47.60", "net": "40.00", "tax": "7.60", "rate": "19", "original": "47.60"}
    assert_lines(
        order["lines"],
        [
            line("5001-1", 1, "MUG-STONE-350", "Stone Mug", promotions=(gift_card("14.12", "29.66"),), **mug),
            line("5001-2", 2, "MUG-STONE-350", "Stone Mug", promotions=(gift_card("14.12", "29.66"),), **mug),
            shipping_line(
                3,
                gross="5.95",
                net="5.00",
                tax="0.95",
                rate="19.00",
                original="5.95",
                promotions=(gift_card("1.76", "29.58"),),
            ),
        ],
    )
    assert transactions(order) == [
        transaction("BRAINTREE", "71.15", "braintree", submethod="MC", transaction_id="p2x9"),
        transaction("GIFT_CARD", "30.00", "giftcardaccount"),
    ]
    assert order["custom_attributes"] == [
        {"attribute_code": "gift_card_accounts", "value": [{"code": "GC-7H2K-QX", "amount": D("30.00")}]}
    ]


def test_gift_card_covering_the_whole_order_leaves_only_the_gift_card_transaction():
    # 101.15 redeemed = Σ gross: every share is its line's gross (100 %). grand_total 0 and payment method "free":
    # the mapper sends no zero-amount main transaction, only GIFT_CARD 101.15 (= Σ gross) - sensible: the OMS sees
    # what paid for the order, and the transactions still add up to the lines.
    doc = _mugs_order(gift_cards=[("GC-FULL-01", 101.15)], grand_total=0)
    assert doc["payment"]["method"] == "free"

    order = mapped(doc)

    mug = {"gross": "47.60", "net": "40.00", "tax": "7.60", "rate": "19", "original": "47.60"}
    assert_lines(
        order["lines"],
        [
            line("5001-1", 1, "MUG-STONE-350", "Stone Mug", promotions=(gift_card("47.60", "100.00"),), **mug),
            line("5001-2", 2, "MUG-STONE-350", "Stone Mug", promotions=(gift_card("47.60", "100.00"),), **mug),
            shipping_line(
                3,
                gross="5.95",
                net="5.00",
                tax="0.95",
                rate="19.00",
                original="5.95",
                promotions=(gift_card("5.95", "100.00"),),
            ),
        ],
    )
    assert transactions(order) == [transaction("GIFT_CARD", "101.15", "giftcardaccount")]
    assert order["custom_attributes"] == [
        {"attribute_code": "gift_card_accounts", "value": [{"code": "GC-FULL-01", "amount": D("101.15")}]}
    ]


def test_a_free_order_without_gift_card_or_store_credit_gets_one_zero_transaction():
    # 100 % off and free shipping: gross 0 everywhere, grand_total 0, method "free" -> ZEROPAY 0.00.
    doc = commerce_order(
        items=[item(9001, "SAMPLE-TEA", name="Tea sample", price=4.00, discount_percent=100, discount_amount=4.00)],
        shipping_amount=0,
        shipping_method="freeshipping_freeshipping",
        shipping_description="Free Shipping - Free",
        grand_total=0,
    )
    assert doc["payment"]["method"] == "free"

    order = mapped(doc)

    assert_lines(
        order["lines"],
        [
            line(
                "9001-1",
                1,
                "SAMPLE-TEA",
                "Tea sample",
                gross="0.00",
                net="0.00",
                tax="0.00",
                rate="0",
                original="4.00",
                promotions=(promo(None, "Discount", "4.00", "100"),),
            ),
            shipping_line(
                2,
                "freeshipping_freeshipping",
                "Free Shipping - Free",
                gross="0.00",
                net="0.00",
                tax="0.00",
                rate="0",
                original="0.00",
            ),
        ],
    )
    assert transactions(order) == [transaction("ZEROPAY", "0.00", "free")]


@pytest.mark.parametrize("where", ["extension_attributes", "top-level column (raw I/O event)"])
def test_store_credit_is_a_store_credit_transaction_and_no_line_promotion(where):
    # 50.00 candle + 5.00 shipping, no tax = 55.00; 20.00 store credit -> grand_total 35.00 by check.
    candle = item(6001, "CANDLE-SOY", name="Soy Candle", price=50.00, row_total=50.00, row_total_incl_tax=50.00)
    doc = commerce_order(items=[candle], shipping_amount=5.00, store_credit=20.00, grand_total=35.00)
    if where != "extension_attributes":
        del doc["extension_attributes"]["customer_balance_amount"]
        doc["customer_balance_amount"] = 20.00

    order = mapped(doc)

    assert_lines(
        order["lines"],
        [
            line(
                "6001-1", 1, "CANDLE-SOY", "Soy Candle", gross="50.00", net="50.00", tax="0", rate="0", original="50.00"
            ),
            shipping_line(2, gross="5.00", net="5.00", tax="0", rate="0", original="5.00"),
        ],
    )
    assert transactions(order) == [
        transaction("OFFLINE", "35.00", "checkmo"),
        transaction("STORE_CREDIT", "20.00", "customerbalance"),
    ]
    assert order["custom_attributes"] == []


@pytest.mark.parametrize("where", ["extension_attributes", "top-level column (raw I/O event)"])
def test_reward_points_are_a_reward_points_transaction_beside_store_credit(where):
    # 50.00 candle + 5.00 shipping = 55.00; 20.00 store credit and 4.50 of reward points -> grand_total 30.50.
    candle = item(6001, "CANDLE-SOY", name="Soy Candle", price=50.00, row_total=50.00, row_total_incl_tax=50.00)
    doc = commerce_order(items=[candle], shipping_amount=5.00, store_credit=20.00, grand_total=30.50)
    if where == "extension_attributes":
        doc["extension_attributes"]["reward_currency_amount"] = 4.50
    else:
        doc["reward_currency_amount"] = -4.50  # raw event columns may carry it signed

    order = mapped(doc)

    assert transactions(order) == [
        transaction("OFFLINE", "30.50", "checkmo"),
        transaction("STORE_CREDIT", "20.00", "customerbalance"),
        transaction("REWARD_POINTS", "4.50", "reward"),
    ]


def test_backordered_units_are_the_last_ones():
    # qty 3, 2 of them backordered: units 2 and 3 carry backordered = true.
    lamp = item(7001, "LAMP-ARC", name="Arc Lamp", qty=3, price=30.00, qty_backordered=2)
    doc = commerce_order(items=[lamp], shipping_amount=0, grand_total=90.00)

    order = mapped(doc)

    unit = {"gross": "30.00", "net": "30.00", "tax": "0", "rate": "0", "original": "30.00"}
    assert_lines(
        order["lines"],
        [
            line("7001-1", 1, "LAMP-ARC", "Arc Lamp", **unit),
            line("7001-2", 2, "LAMP-ARC", "Arc Lamp", attributes=(BACKORDERED,), **unit),
            line("7001-3", 3, "LAMP-ARC", "Arc Lamp", attributes=(BACKORDERED,), **unit),
            shipping_line(4, gross="0", net="0", tax="0", rate="0", original="0"),
        ],
    )


def test_an_item_whose_product_no_longer_exists_maps_from_the_orders_own_data():
    # The product behind the line was deleted from the catalog (its product_id points nowhere, no product options
    # left). The mapper reads nothing but the order, so the line is exported as the order recorded it.
    gone = item(
        8001,
        "DISCONTINUED-LAMP",
        name="Retired Desk Lamp",
        price=19.99,
        product_id=987654,
        product_option=ABSENT,
        row_total=19.99,
        row_total_incl_tax=19.99,
    )
    doc = commerce_order(items=[gone], shipping_amount=5.00, grand_total=24.99)

    order = mapped(doc)

    assert_lines(
        order["lines"],
        [
            line(
                "8001-1",
                1,
                "DISCONTINUED-LAMP",
                "Retired Desk Lamp",
                gross="19.99",
                net="19.99",
                tax="0",
                rate="0",
                original="19.99",
            ),
            shipping_line(2, gross="5.00", net="5.00", tax="0", rate="0", original="5.00"),
        ],
    )


def test_whole_yen_amounts_are_split_in_yen():
    # JPY has no minor unit: 3 x 1234 = 3702, tax 10 % = 370.2 -> 370 (stored as 370.0000), gross 4072 -> 1358, 1357,
    # 1357; tax 370 -> 124, 123, 123; net 1234 each. Shipping 500 + 50 tax = 550. grand_total 4622.
    doc = commerce_order(
        items=[
            item(
                1101,
                "MATCHA-TIN",
                name="Matcha tin",
                qty=3,
                price=1234,
                tax_percent=10,
                row_total=3702,
                tax_amount=370,
                row_total_incl_tax=4072,
                price_incl_tax=1357,
            )
        ],
        shipping_amount=500,
        shipping_tax_amount=50,
        shipping_incl_tax=550,
        order_currency_code="JPY",
        base_currency_code="JPY",
        grand_total=4622,
    )

    order = mapped(doc)

    yen = {"currency": "JPY", "rate": "10", "net": "1234"}
    assert_lines(
        order["lines"],
        [
            line("1101-1", 1, "MATCHA-TIN", "Matcha tin", gross="1358", tax="124", original="1358", **yen),
            line("1101-2", 2, "MATCHA-TIN", "Matcha tin", gross="1357", tax="123", original="1357", **yen),
            line("1101-3", 3, "MATCHA-TIN", "Matcha tin", gross="1357", tax="123", original="1357", **yen),
            shipping_line(4, gross="550", net="500", tax="50", rate="10.00", original="550", currency="JPY"),
        ],
    )
    assert order["payments"][0]["currency"] == "JPY"
    assert order["payments"][0]["transactions"][0]["amount"] == D(4622)


def test_the_reference_example_order_as_json_text():
    # magento-rest.md §2's example, its totals made consistent (the reference's own grand_total 104 and order
    # discount -10 do not match its items: 25 - 2 + 114 + 5 = 142). A guest, no entity ids on the addresses and
    # the payment, amounts as JSON numbers, a configurable and a dynamic bundle (114 = 90 + 24, not counted twice).
    # The configurable has no discount_percent: 2.00 of the 25.00 original = 8.00 %.
    body = """{
      "entity_id": 1042, "increment_id": "000001042", "state": "processing", "status": "processing",
      "store_id": 1, "created_at": "2024-05-01 13:45:10", "updated_at": "2024-05-01 13:47:02",
      "customer_email": "ana@example.com", "customer_firstname": "Ana", "customer_lastname": "Lopez",
      "customer_is_guest": 1, "base_currency_code": "EUR", "order_currency_code": "EUR",
      "subtotal": 139.0, "discount_amount": -2.0, "shipping_amount": 5.0, "tax_amount": 0.0,
      "grand_total": 142.0, "shipping_description": "Flat Rate - Fixed",
      "billing_address": {"address_type": "billing", "firstname": "Ana", "lastname": "Lopez",
        "street": ["Calle Mayor 1"], "city": "Madrid", "postcode": "28013", "country_id": "ES",
        "telephone": "600000000", "email": "ana@example.com"},
      "payment": {"method": "checkmo", "amount_ordered": 142.0, "additional_information": ["Check / Money order"]},
      "items": [
        {"item_id": 2001, "product_type": "configurable", "sku": "TEE-RED-M", "name": "Tee",
         "qty_ordered": 1, "price": 25.0, "row_total": 25.0, "discount_amount": 2.0, "tax_percent": 0},
        {"item_id": 2002, "parent_item_id": 2001, "product_type": "simple", "sku": "TEE-RED-M",
         "name": "Tee-M-Red", "qty_ordered": 1, "price": 0, "row_total": 0},
        {"item_id": 2003, "product_type": "bundle", "sku": "KIT-YOGA", "name": "Yoga Kit",
         "qty_ordered": 1, "price": 114.0, "row_total": 114.0},
        {"item_id": 2004, "parent_item_id": 2003, "product_type": "simple", "sku": "MAT-01",
         "qty_ordered": 1, "price": 90.0, "row_total": 90.0},
        {"item_id": 2005, "parent_item_id": 2003, "product_type": "simple", "sku": "STRAP-02",
         "qty_ordered": 1, "price": 24.0, "row_total": 24.0}
      ],
      "status_histories": [],
      "extension_attributes": {
        "shipping_assignments": [{"shipping": {"method": "flatrate_flatrate",
          "address": {"address_type": "shipping", "firstname": "Ana", "lastname": "Lopez",
            "street": ["Calle Mayor 1"], "city": "Madrid", "postcode": "28013", "country_id": "ES",
            "telephone": "600000000"}}, "items": []}],
        "payment_additional_info": [{"key": "method_title", "value": "Check / Money order"}]
      }
    }"""
    parsed = parse_order_body(body.encode())

    order = order_to_mcom(parsed.order, OrderMappingOptions(sales_channel="main_es"), parsed.document)["order"]

    ana = {
        "address_type": "customer",
        "first_name": "Ana",
        "last_name": "Lopez",
        "address1": "Calle Mayor 1",
        "address2": "",
        "city": "Madrid",
        "state": None,
        "zip": "28013",
        "country_code": "ES",
        "phone": "600000000",
        "email": "ana@example.com",
    }
    assert order["addresses"] == [{"reference": "billing", **ana}, {"reference": "shipping", **ana}]
    assert order["customer"] == {"id": "anonymous", "type": "GUEST", "segment": "B2C"}
    assert (order["id"], order["store"], order["vat_country"]) == ("000001042", "main_es", "ES")
    assert order["origin_date"] == "2024-05-01T13:45:10+00:00"
    refs = {"ship_to": "shipping", "payment": "payment"}
    kit = {"parent": "2003-1", "attributes": BUNDLE_ATTRIBUTES, **refs}
    assert_lines(
        order["lines"],
        [
            line(
                "2001-1",
                1,
                "TEE-RED-M",
                "Tee-M-Red",
                gross="23.00",
                net="23.00",
                tax="0",
                rate="0",
                original="25.00",
                promotions=(promo(None, "Discount", "2.00", "8.00"),),
                **refs,
            ),
            line(
                "2004-1", 2, "MAT-01", "MAT-01", gross="90.00", net="90.00", tax="0", rate="0", original="90.00", **kit
            ),
            line(
                "2005-1",
                3,
                "STRAP-02",
                "STRAP-02",
                gross="24.00",
                net="24.00",
                tax="0",
                rate="0",
                original="24.00",
                **kit,
            ),
            shipping_line(4, gross="5.00", net="5.00", tax="0", rate="0", original="5.00", **refs),
        ],
    )
    assert order["payments"] == [
        {
            "reference": "payment",
            "currency": "EUR",
            "transactions": [transaction("OFFLINE", "142.00", "checkmo", billing="billing")],
        }
    ]


# --- refusals --------------------------------------------------------------------------------------------------
def test_an_inconsistent_grand_total_is_refused_naming_grand_total():
    # The default order: 12.50 mug + 5.00 shipping = 17.50; the order claims 17.49.
    doc = commerce_order(grand_total=17.49)

    with pytest.raises(MappingError) as refused:
        mapped(doc)

    assert refused.value.field == "grand_total"
    assert "17.50" in refused.value.message and "17.49" in refused.value.message
    assert "difference 0.01" in refused.value.message


def test_a_fractional_quantity_is_refused_by_the_model_naming_the_item_field():
    doc = commerce_order(items=[item(1001, "CHEESE-KG", qty=1.5, price=20.00)])

    with pytest.raises(ValidationError) as refused:
        parse_order_body(order_body(doc))

    problems = describe_errors(refused.value)
    assert [problem["field"] for problem in problems] == ["items[0].qty_ordered"]
    assert "whole number" in problems[0]["message"]


def test_a_fractional_quantity_in_plain_json_is_refused_too():
    doc = {
        "increment_id": "000000102",
        "status": "pending",
        "order_currency_code": "EUR",
        "grand_total": 30.0,
        "items": [{"item_id": 1, "sku": "CHEESE-KG", "qty_ordered": 1.5, "price": 20.0, "row_total": 30.0}],
    }

    with pytest.raises(ValidationError) as refused:
        parse_order_body(json.dumps(doc).encode())

    assert [problem["field"] for problem in describe_errors(refused.value)] == ["items[0].qty_ordered"]


@pytest.mark.parametrize(
    "assignments",
    [
        [shipping_assignment("flatrate_flatrate", ship_to=None)],  # a method but no address
        [],  # no shipping assignment at all
    ],
    ids=["method-without-address", "no-assignment"],
)
def test_a_physical_item_without_a_shipping_address_is_refused(assignments):
    doc = commerce_order()
    doc["extension_attributes"]["shipping_assignments"] = assignments

    with pytest.raises(MappingError) as refused:
        mapped(doc)

    assert refused.value.field == "extension_attributes.shipping_assignments"


@pytest.mark.parametrize(
    ("store_id", "channel"), [(1, "main_de"), (2, "main_fr"), (7, "default-channel"), (None, "default-channel")]
)
def test_the_store_maps_to_its_sales_channel_or_the_default(store_id: Any, channel: str) -> None:
    options = OrderMappingOptions(sales_channel="default-channel", store_channels={"1": "main_de", "2": "main_fr"})
    order = mapped(commerce_order(store_id=store_id if store_id is not None else ABSENT), options)
    assert order["store"] == channel


def test_an_origin_date_with_an_offset_keeps_it_and_an_unreadable_one_is_refused() -> None:
    assert mapped(commerce_order(created_at="2025-02-10T18:42:05+01:00"))["origin_date"] == "2025-02-10T18:42:05+01:00"
    with pytest.raises(MappingError) as refused:
        mapped(commerce_order(created_at="yesterday"))
    assert refused.value.field == "created_at"
