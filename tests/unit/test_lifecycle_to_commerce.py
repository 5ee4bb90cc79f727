"""The Adobe Commerce REST bodies built from what the OMS told us (``app.mappers.lifecycle_to_commerce``).

Every body carries ``[oms-connector <key>]`` in its comment, so a sender can look for it before posting again.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.mappers.lifecycle_to_commerce import (
    STATE_STATUSES,
    ItemQuantity,
    carrier_code,
    comment_body,
    invoice_body,
    item_quantities,
    items_body,
    marker,
    note_body,
    refund_body,
    ship_body,
)

KEY = "300000182:shipment-7"


# --- marker / item_quantities / items_body --------------------------------------------------------------------------


def test_the_marker_names_the_connector_and_the_key():
    assert marker("300000182:status-3") == "[oms-connector 300000182:status-3]"


def test_unit_lines_are_counted_back_to_items_in_first_seen_order():
    # one unit line per unit: 2 mugs (item 12), a tee (item 11), a second tee unit later, then a cap
    unit_lines = ["12", "11", "12", "11", "15", "12"]
    assert item_quantities(unit_lines) == [
        ItemQuantity("12", 3),
        ItemQuantity("11", 2),
        ItemQuantity("15", 1),
    ]


def test_the_shipping_line_is_dropped():
    assert item_quantities([None, "12", None, "12"]) == [ItemQuantity("12", 2)]
    assert item_quantities([None]) == []


def test_no_unit_lines_are_no_items():
    assert item_quantities([]) == []


def test_a_one_shot_iterable_is_counted():
    assert item_quantities(line for line in ("7", "8", "7")) == [ItemQuantity("7", 2), ItemQuantity("8", 1)]


def test_numeric_item_ids_are_sent_as_numbers():
    body = items_body([ItemQuantity("12", 3), ItemQuantity("11", 1)])
    assert body == [{"order_item_id": 12, "qty": 3}, {"order_item_id": 11, "qty": 1}]
    assert all(type(row["order_item_id"]) is int for row in body)


def test_non_numeric_item_ids_are_sent_as_text():
    body = items_body([ItemQuantity("quote-12", 1), ItemQuantity("-3", 2)])
    assert body == [{"order_item_id": "quote-12", "qty": 1}, {"order_item_id": "-3", "qty": 2}]


def test_items_body_keeps_the_order_of_its_input():
    assert [row["order_item_id"] for row in items_body(item_quantities(["30", "10", "20", "10"]))] == [30, 10, 20]


# --- comment_body / note_body ---------------------------------------------------------------------------------------


def test_a_status_comment_names_the_oms_status_and_reason_and_carries_the_marker():
    body = comment_body(oms_status="LOGISTICS", reason="READYTOSHIP", commerce_status="processing", key=KEY)
    assert body == {
        "statusHistory": {
            "comment": f"OMS status: LOGISTICS (READYTOSHIP) [oms-connector {KEY}]",
            "is_customer_notified": 0,
            "is_visible_on_front": 0,
            "status": "processing",
        }
    }


def test_a_status_comment_without_reason_has_no_parentheses():
    body = comment_body(oms_status="RECEIVED", reason=None, commerce_status="processing", key=KEY)
    assert body["statusHistory"]["comment"] == f"OMS status: RECEIVED [oms-connector {KEY}]"
    empty_reason = comment_body(oms_status="RECEIVED", reason="", commerce_status=None, key=KEY)
    assert empty_reason["statusHistory"]["comment"] == f"OMS status: RECEIVED [oms-connector {KEY}]"


def test_a_note_follows_the_status_before_the_marker():
    body = comment_body(
        oms_status="ONHOLD", reason="PENDINGREMORSETIME", commerce_status=None, key=KEY, note="Waiting for payment"
    )
    assert body["statusHistory"]["comment"] == (
        f"OMS status: ONHOLD (PENDINGREMORSETIME). Waiting for payment [oms-connector {KEY}]"
    )


@pytest.mark.parametrize("commerce_status", [None, ""])
def test_an_unmapped_status_is_a_comment_without_status(commerce_status):
    body = comment_body(oms_status="LOGISTICSCOMPLETE", reason="FULLYSHIPPED", commerce_status=commerce_status, key=KEY)
    assert "status" not in body["statusHistory"]
    assert body["statusHistory"]["comment"].startswith("OMS status: LOGISTICSCOMPLETE (FULLYSHIPPED) ")


@pytest.mark.parametrize("commerce_status", sorted(STATE_STATUSES))
def test_a_status_reached_through_an_action_is_not_set_by_a_comment(commerce_status):
    body = comment_body(oms_status="COMPLETE", reason="FULLYSHIPPED", commerce_status=commerce_status, key=KEY)
    assert "status" not in body["statusHistory"]
    assert body["statusHistory"]["comment"] == f"OMS status: COMPLETE (FULLYSHIPPED) [oms-connector {KEY}]"


@pytest.mark.parametrize("commerce_status", ["processing", "pending", "oms_ready_to_ship", "payment_review"])
def test_a_mapped_status_outside_the_state_statuses_is_set(commerce_status):
    body = comment_body(oms_status="LOGISTICS", reason="READYTOSHIP", commerce_status=commerce_status, key=KEY)
    assert body["statusHistory"]["status"] == commerce_status


def test_the_state_statuses_are_the_ones_commerce_reaches_through_an_action():
    assert frozenset({"holded", "complete", "closed", "canceled"}) == STATE_STATUSES


def test_a_note_is_a_plain_comment_keeping_the_status():
    body = note_body("Store credit of 25.00 issued for the gift-card part (OMS)", KEY)
    assert body == {
        "statusHistory": {
            "comment": f"Store credit of 25.00 issued for the gift-card part (OMS) [oms-connector {KEY}]",
            "is_customer_notified": 0,
            "is_visible_on_front": 0,
        }
    }


# --- carrier_code / ship_body ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("carrier", "code"),
    [
        ("DHL ", "dhl"),  # the PHP peer's padded carrier
        ("dhl", "dhl"),
        ("Ups", "ups"),
        (" USPS", "usps"),
        ("FedEx", "fedex"),
        ("GLS", "custom"),
        ("DHL Express", "custom"),
        ("", "custom"),
    ],
)
def test_carriers_map_case_insensitively_to_known_codes_else_custom(carrier, code):
    assert carrier_code(carrier) == code


def test_a_shipment_tracks_only_packages_with_a_tracking_number():
    packages = [
        {"id": "PKG-1", "carrier": "DHL", "tracking_number": "00340434161094042557", "line_ids": ["2201"]},
        {"id": "PKG-2", "carrier": "UPS", "tracking_number": None, "line_ids": ["2202"]},
        {"id": "PKG-3", "carrier": "GLS", "tracking_number": "", "line_ids": ["2203"]},
        {"id": "PKG-4", "carrier": "GLS", "line_ids": ["2204"]},
        {"id": "PKG-5", "carrier": None, "tracking_number": "1Z999AA10123456784", "line_ids": ["2205"]},
        {"id": "PKG-6", "carrier": "Hermes", "tracking_number": "H1001", "line_ids": ["2206"]},
    ]
    body = ship_body(items=[ItemQuantity("11", 1)], packages=packages, source_id="WH-BERLIN-01", key=KEY, notify=True)
    assert body["tracks"] == [
        {"track_number": "00340434161094042557", "title": "DHL", "carrier_code": "dhl"},
        {"track_number": "1Z999AA10123456784", "title": "Carrier", "carrier_code": "custom"},
        {"track_number": "H1001", "title": "Hermes", "carrier_code": "custom"},
    ]


def test_a_shipment_body_has_items_notify_a_marked_comment_and_no_appended_comment():
    body = ship_body(
        items=item_quantities(["12", "11", "12"]),
        packages=[{"carrier": "DHL", "tracking_number": "00340434161094042557"}],
        source_id="WH-BERLIN-01",
        key=KEY,
        notify=True,
    )
    assert body == {
        "items": [{"order_item_id": 12, "qty": 2}, {"order_item_id": 11, "qty": 1}],
        "notify": True,
        "appendComment": False,
        "comment": {"comment": f"Shipped from WH-BERLIN-01 (OMS) [oms-connector {KEY}]", "is_visible_on_front": 0},
        "tracks": [{"track_number": "00340434161094042557", "title": "DHL", "carrier_code": "dhl"}],
    }


def test_a_shipment_without_source_or_packages_still_ships_its_items():
    body = ship_body(items=[ItemQuantity("12", 2)], packages=[], source_id=None, key=KEY, notify=False)
    assert body["notify"] is False
    assert body["appendComment"] is False
    assert body["tracks"] == []
    assert body["items"] == [{"order_item_id": 12, "qty": 2}]
    assert body["comment"]["comment"] == f"Shipped (OMS) [oms-connector {KEY}]"


# --- invoice_body / refund_body -------------------------------------------------------------------------------------


def test_an_invoice_is_offline_silent_and_marked():
    body = invoice_body(items=item_quantities(["12", "12", None, "11"]), key="300000182:invoice-7")
    assert body == {
        "capture": False,
        "items": [{"order_item_id": 12, "qty": 2}, {"order_item_id": 11, "qty": 1}],
        "notify": False,
        "appendComment": False,
        "comment": {
            "comment": "Invoiced on shipment (OMS) [oms-connector 300000182:invoice-7]",
            "is_visible_on_front": 0,
        },
    }


def test_a_refund_body_is_an_offline_credit_memo_with_all_adjustment_arguments():
    body = refund_body(
        items=item_quantities(["12", "12"]),
        shipping_amount=Decimal("4.90"),
        adjustment_positive=Decimal("1.50"),
        reason="Refund CDE17",
        key="300000182:creditmemo-3",
        notify=True,
    )
    assert body == {
        "items": [{"order_item_id": 12, "qty": 2}],
        "notify": True,
        "appendComment": False,
        "comment": {"comment": "Refund CDE17 (OMS) [oms-connector 300000182:creditmemo-3]", "is_visible_on_front": 0},
        "arguments": {
            "shipping_amount": Decimal("4.90"),
            "adjustment_positive": Decimal("1.50"),
            "adjustment_negative": Decimal(0),
        },
    }


def test_a_refund_without_shipping_still_says_shipping_amount_zero():
    body = refund_body(
        items=[ItemQuantity("12", 1)],
        shipping_amount=Decimal("0.00"),
        adjustment_positive=Decimal(0),
        reason="Refund CDE18",
        key=KEY,
        notify=False,
    )
    assert set(body["arguments"]) == {"shipping_amount", "adjustment_positive", "adjustment_negative"}
    assert body["arguments"]["shipping_amount"] == Decimal(0)
    assert body["notify"] is False


def test_refund_amounts_stay_the_decimals_given():
    shipping, adjustment = Decimal("4.90"), Decimal("0.10")
    arguments = refund_body(
        items=[],
        shipping_amount=shipping,
        adjustment_positive=adjustment,
        reason="Appeasement CDE19",
        key=KEY,
        notify=False,
    )["arguments"]
    assert arguments["shipping_amount"] is shipping
    assert arguments["adjustment_positive"] is adjustment
    assert all(type(value) is Decimal for value in arguments.values())
    assert str(arguments["shipping_amount"]) == "4.90"


def test_an_appeasement_refund_can_carry_zero_quantities():
    body = refund_body(
        items=[ItemQuantity("12", 0)],
        shipping_amount=Decimal(0),
        adjustment_positive=Decimal("5.00"),
        reason="Appeasement CDE20",
        key=KEY,
        notify=False,
    )
    assert body["items"] == [{"order_item_id": 12, "qty": 0}]
    assert body["comment"]["comment"] == f"Appeasement CDE20 (OMS) [oms-connector {KEY}]"


@pytest.mark.parametrize(
    "body",
    [
        comment_body(oms_status="COMPLETE", reason=None, commerce_status="complete", key=KEY)["statusHistory"],
        note_body("Store credit issued", KEY)["statusHistory"],
        ship_body(items=[], packages=[], source_id=None, key=KEY, notify=False)["comment"],
        invoice_body(items=[], key=KEY)["comment"],
        refund_body(
            items=[],
            shipping_amount=Decimal(0),
            adjustment_positive=Decimal(0),
            reason="Refund",
            key=KEY,
            notify=False,
        )["comment"],
    ],
    ids=["comment", "note", "ship", "invoice", "refund"],
)
def test_every_body_ends_its_comment_with_the_marker_and_hides_it_from_the_storefront(body):
    assert body["comment"].endswith(" " + marker(KEY))
    assert body["is_visible_on_front"] == 0
