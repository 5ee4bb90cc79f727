"""The tolerant readers of the OMS lifecycle callbacks (``app.protocol.order_events``, protocol §3.5, 3.6, 3.12, 3.13).

Payloads are built from JSON text in the shapes the two peers send (protocol §6): the PHP peer with numbers as
strings, empty strings, ``{}``/``[]`` for empty arrays and stray spaces; the Go peer with real numbers, ``null`` line
statuses and the misspelt ``shimpent_id``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from app.errors import HandlerError, PermanentHandlerError
from app.protocol.order_events import (
    MAX_TEXT,
    ORDER_CREATED,
    ORDER_UPDATED,
    REFUND_UPDATED,
    RETURN_AUTHORIZE,
    RETURN_UPDATED,
    SHIPMENT_DONE,
    InvalidEvent,
    OrderStatus,
    OrderUpdate,
    Refund,
    RefundLine,
    RefundUpdate,
    Return,
    ReturnUpdate,
    Shipment,
    ShipmentDone,
    ShipmentItem,
    optional_time,
    order_number_of,
    reject_placeholders,
    required,
)

BERLIN = ZoneInfo("Europe/Berlin")

# --- payloads (the ``params`` object of each call) -----------------------------------------------------------------

PHP_ORDER_UPDATED = """
{"order": {"id": "300000183", "store": "main_de", "status": "COMPLETE", "status_reason": "FULLYSHIPPED",
  "status_date": "2025-02-10T19:03:41+01:00", "origin": "FRONTEND", "origin_date": "2025-02-10T19:03:41+01:00",
  "ip": "xx.xx.xx.xx", "language": "de_DE", "vat_country": "DE", "customer_service_agent": "0",
  "customer": {"id": "anonymous", "segment": "B2C", "type": "GUEST"}, "custom_attributes": [],
  "payments": [{"currency": "EUR", "reference": "", "transactions": [{"amount": 29.75}]}],
  "lines": [
   {"id": "2210", "line_number": "1", "product_type": "PHYSICAL", "sku": "TEE-ORG-BLU-L",
    "status": "shipped", "status_reason": "shipped", "status_date": "2025-02-10T19:03:41+01:00",
    "source_id": "WH-BERLIN-01", "amount": {"gross_amount": "29.75", "net_amount": "25.00"}},
   {"id": "SHIPPING", "line_number": "2", "product_type": "PHYSICAL", "sku": "DHL_PAKET",
    "status": "new", "status_reason": "new", "status_date": "2025-02-10T19:03:41+01:00",
    "source_id": "", "amount": {"gross_amount": "4.90", "net_amount": "4.12"}}]}}
"""

# Go re-serialises the create through a generic map: keys sorted, amounts as floats, line statuses as sent (null).
GO_ORDER_UPDATED = """
{"order": {"addresses": [], "customer": {"id": "anonymous", "segment": "B2C", "type": "GUEST"},
  "id": "300000182", "ip": "203.0.113.57", "language": "de_DE",
  "lines": [
   {"amount": {"gross_amount": 29.75, "net_amount": 25, "tax_amount": 4.75, "tax_rate": 19}, "id": "2201",
    "line_number": 1, "product_type": "PHYSICAL", "sku": "TEE-ORG-BLU-M", "status": null},
   {"amount": {"gross_amount": 4.9, "net_amount": 4.12, "tax_amount": 0.78, "tax_rate": 19}, "id": "SHIPPING",
    "line_number": 4, "product_type": "SHIPPING", "sku": "DHL_PAKET", "status": null}],
  "origin": "FRONTEND", "origin_date": "2025-02-10T18:42:05+01:00", "status": "LOGISTICS",
  "status_reason": "READYTOSHIP", "store": "main_de"}}
"""

GO_SHIPMENT_DONE = """
{"shipment": {"shimpent_id": "300000182-001", "order_id": "300000182", "store_id": "main_de",
  "source_id": "WAREHOUSE_1", "method": "STANDARD", "shipment_date": "2025-02-11 14:05:09+01:00",
  "address": {"first_name": "", "last_name": "", "city": ""},
  "items": [
   {"order_line_id": "2201", "order_line_number": 1, "sku": "TEE-ORG-BLU-M", "item_type": "PHYSICAL"},
   {"order_line_id": "SHIPPING", "order_line_number": 4, "sku": "DHL_PAKET", "item_type": "SHIPPING"}],
  "packages": [{"id": "300000182-001", "items": [1, 4]}]}}
"""

PHP_SHIPMENT_DONE = """
{"shipment": {"shipment_id": "", "order_id": "300000182", "store_id": "main_de", "source_id": "WH-BERLIN-01",
  "method": "STANDARD",
  "address": {"first_name": "Lena", "custom_attributes": [], "latitude": "", "longitude": "", "reference": ""},
  "items": [
   {"order_line_id": "2202", "order_line_number": "2", "sku": "MUG-STONE-350", "name": "Stoneware Mug 350 ml",
    "item_type": "", "image_url": "", "custom_details": [{"name": "imageUrl", "value": ""}],
    "order_line_price": {"net_amount": "10.50", "gross_amount": "12.50", "currency": "EUR"},
    "status": "SHIPPED", "status_reason": "OSREPORT"},
   {"order_line_id": "2203", "order_line_number": "3", "sku": "MUG-STONE-350", "name": "Stoneware Mug 350 ml",
    "item_type": "", "image_url": "", "custom_details": [], "status": "SHIPPED", "status_reason": "OSREPORT"}],
  "packages": [{"id": "", "items": ["2", "3"],
   "aggregated_items": [{"aggregated_line_id": "2202", "order_lines": ["2202", "2203"], "quantity": 1,
                         "sku": "MUG-STONE-350"}],
   "carrier": "DHL ", "details": [], "tracking_number": "00340434161094042557",
   "tracking_link": "https://www.dhl.de/track?piececode=00340434161094042557",
   "tracking_comment": "Left with neighbour"}]}}
"""

PHP_RETURN_UPDATED = """
{"return": {"rma": "RMA-CS-300000182-1", "order_id": "300000182", "sales_channel_id": "main_de",
  "source_id": "WH-BERLIN-01",
  "status": {"code": "APPROVED", "name": "APPROVED", "date": "2025-02-14T10:12:44+01:00", "reason_code": "CSRREQUEST"},
  "return_tracking_number": "RT7781204455DE", "return_tracking_carrier": "DHL",
  "return_tracking_label_url": "https://connector.shop.example/labels/rt7781.pdf",
  "return_tracking_url": "https://www.dhl.de/track?piececode=RT7781204455DE", "custom_attributes": [],
  "lines": [{"id": "2202", "line_number": "2", "sku": "MUG-STONE-350", "reason": "DAMAGED",
             "reason_description": "Handle broke off in transit", "status": "APPROVED", "custom_attributes": []}]}}
"""

PHP_REFUND_UPDATED = """
{"refund": {"rma": "RMA-CS-300000182-1", "order_id": "300000182", "credit_note_number": "CDE17",
  "credit_note_date": "2025-02-14T10:12:45+01:00", "refund_type": "Return", "refund_reason": "RELEASESUCCESS",
  "status": {"code": "RELEASED", "name": "RELEASED", "date": "2025-02-14T10:12:45+01:00",
             "reason_code": "REQUESTED", "reason_name": "REQUESTED"},
  "sales_channel_id": "main_de", "store_id": "WH-BERLIN-01", "user": "LOGISTICS", "custom_attributes": [],
  "lines": [
   {"order_item_id": "2202", "order_line": "2", "reason": "DAMAGED", "reason_description": "Handle broke off",
    "payments": [{"details": {"cost_gross": "12.50", "cost_net": "10.50", "cost_vat": "2.00", "vat_rate": "19",
                              "vat_detail": [{"amount": "2.00", "rate": "19", "type": "VAT"}]},
                  "status": {"code": "REFUNDED", "name": "REFUNDED"}}]},
   {"order_item_id": "2203", "order_line": "3", "reason": "DAMAGED", "reason_description": "",
    "payments": [{"details": {"cost_gross": "12.50", "cost_net": "10.50", "cost_vat": "2.00", "vat_rate": "19",
                              "vat_detail": []},
                  "status": {"code": "REFUNDED", "name": "REFUNDED"}}]}]}}
"""


def params(text: str) -> dict:
    return json.loads(text)


# --- order_management.updated (§3.5) --------------------------------------------------------------------------------


def test_php_order_update_reads_order_and_line_statuses_with_string_line_numbers():
    order = OrderUpdate.model_validate(params(PHP_ORDER_UPDATED)).order
    assert (order.id, order.status, order.status_reason) == ("300000183", "COMPLETE", "FULLYSHIPPED")
    assert order.status_date == "2025-02-10T19:03:41+01:00"
    assert [(line.id, line.line_number, line.status, line.status_reason) for line in order.lines] == [
        ("2210", 1, "shipped", "shipped"),
        ("SHIPPING", 2, "new", "new"),
    ]


def test_go_order_update_with_float_amounts_and_null_line_statuses_is_read():
    order = OrderUpdate.model_validate(params(GO_ORDER_UPDATED)).order
    assert (order.id, order.status, order.status_reason, order.status_date) == (
        "300000182",
        "LOGISTICS",
        "READYTOSHIP",
        "",
    )
    assert [(line.id, line.line_number, line.status) for line in order.lines] == [("2201", 1, ""), ("SHIPPING", 4, "")]


def test_only_the_status_fields_are_kept_from_an_order_update():
    order = OrderUpdate.model_validate(params(PHP_ORDER_UPDATED)).order
    assert set(OrderStatus.model_fields) == {"id", "status", "status_reason", "status_date", "lines"}
    assert not hasattr(order, "customer")
    assert not hasattr(order.lines[0], "amount")


def test_numbers_become_text_and_text_is_stripped():
    order = OrderStatus.model_validate(
        {"id": 300000183, "status": " ONHOLD ", "status_reason": "\tPENDINGREMORSETIME\n"}
    )
    assert (order.id, order.status, order.status_reason) == ("300000183", "ONHOLD", "PENDINGREMORSETIME")


def test_a_float_becomes_its_text():
    assert OrderStatus.model_validate({"id": 4.5}).id == "4.5"


def test_missing_and_null_text_fields_are_empty_strings():
    order = OrderStatus.model_validate({"id": "300000182", "status": None})
    assert (order.status, order.status_reason, order.status_date, order.lines) == ("", "", "", [])


def test_text_is_cut_at_max_text():
    order = OrderStatus.model_validate({"id": "1", "status_reason": "  " + "x" * (MAX_TEXT + 50)})
    assert order.status_reason == "x" * MAX_TEXT


@pytest.mark.parametrize("value", [True, False, {"code": "COMPLETE"}, ["COMPLETE"]])
def test_a_boolean_or_container_is_not_text(value):
    with pytest.raises(ValidationError) as caught:
        OrderStatus.model_validate({"id": "1", "status": value})
    assert caught.value.errors()[0]["loc"] == ("status",)


@pytest.mark.parametrize("empty", [{}, None, []])
def test_php_empty_object_or_null_lines_are_no_lines(empty):
    assert OrderStatus.model_validate({"id": "1", "lines": empty}).lines == []


def test_a_single_line_object_where_a_list_is_expected_is_one_line():
    order = OrderStatus.model_validate({"id": "1", "lines": {"id": "2201", "line_number": "1", "status": "new"}})
    assert [(line.id, line.line_number, line.status) for line in order.lines] == [("2201", 1, "new")]


@pytest.mark.parametrize(("raw", "number"), [("7", 7), (" 7 ", 7), (7, 7), ("", None), ("   ", None), (None, None)])
def test_line_numbers_accept_numbers_numeric_strings_and_empty(raw, number):
    assert OrderStatus.model_validate({"lines": [{"id": "2201", "line_number": raw}]}).lines[0].line_number == number


@pytest.mark.parametrize("raw", ["two", "-1", "1.5", "1e2", True])
def test_a_line_number_that_is_not_a_whole_number_is_rejected(raw):
    with pytest.raises(ValidationError) as caught:
        OrderStatus.model_validate({"lines": [{"id": "2201", "line_number": raw}]})
    assert caught.value.errors()[0]["loc"] == ("lines", 0, "line_number")


def test_an_update_without_order_is_rejected():
    with pytest.raises(ValidationError) as caught:
        OrderUpdate.model_validate({"shipment": {}})
    assert caught.value.errors()[0]["loc"] == ("order",)


def test_the_models_are_frozen():
    order = OrderUpdate.model_validate(params(PHP_ORDER_UPDATED)).order
    with pytest.raises(ValidationError):
        order.status = "CANCELED"


# --- customer_shipment_done (§3.6) ----------------------------------------------------------------------------------


def test_go_shipment_reads_the_misspelt_shimpent_id_and_integer_numbers():
    shipment = ShipmentDone.model_validate(params(GO_SHIPMENT_DONE)).shipment
    assert (shipment.shipment_id, shipment.shimpent_id) == ("", "300000182-001")
    assert (shipment.order_id, shipment.store_id, shipment.source_id, shipment.method) == (
        "300000182",
        "main_de",
        "WAREHOUSE_1",
        "STANDARD",
    )
    assert shipment.shipment_date == "2025-02-11 14:05:09+01:00"
    assert [(i.order_line_id, i.order_line_number, i.sku, i.item_type) for i in shipment.items] == [
        ("2201", 1, "TEE-ORG-BLU-M", "PHYSICAL"),
        ("SHIPPING", 4, "DHL_PAKET", "SHIPPING"),
    ]
    (package,) = shipment.packages
    assert package.id == "300000182-001"
    assert package.items == ["1", "4"]  # integer line numbers, kept as text
    assert (package.carrier, package.tracking_number) == ("", "")


def test_php_shipment_with_string_numbers_empty_ids_and_a_padded_carrier_is_read():
    shipment = ShipmentDone.model_validate(params(PHP_SHIPMENT_DONE)).shipment
    assert (shipment.shipment_id, shipment.shimpent_id, shipment.shipment_date) == ("", "", "")
    assert [(i.order_line_id, i.order_line_number, i.item_type) for i in shipment.items] == [
        ("2202", 2, ""),
        ("2203", 3, ""),
    ]
    (package,) = shipment.packages
    assert package.id == ""
    assert package.items == ["2", "3"]
    assert package.carrier == "DHL"  # "DHL " from the PHP peer
    assert package.tracking_number == "00340434161094042557"
    assert package.tracking_link == "https://www.dhl.de/track?piececode=00340434161094042557"
    assert package.tracking_comment == "Left with neighbour"


def test_a_shipment_with_both_ids_keeps_both():
    shipment = Shipment.model_validate({"shipment_id": "300000182-S1", "shimpent_id": "300000182-001"})
    assert (shipment.shipment_id, shipment.shimpent_id) == ("300000182-S1", "300000182-001")


def test_a_single_package_object_is_one_package_and_its_single_item_one_item():
    shipment = Shipment.model_validate({"order_id": "1", "packages": {"id": "PKG-1", "items": 2, "carrier": "UPS"}})
    assert [(p.id, p.items, p.carrier) for p in shipment.packages] == [("PKG-1", ["2"], "UPS")]


def test_a_shipment_without_items_or_packages_has_empty_lists():
    shipment = ShipmentDone.model_validate({"shipment": {"order_id": "300000182", "items": {}, "packages": None}})
    assert (shipment.shipment.items, shipment.shipment.packages) == ([], [])


def test_a_shipment_done_without_shipment_is_rejected():
    with pytest.raises(ValidationError) as caught:
        ShipmentDone.model_validate({"order": {"id": "1"}})
    assert caught.value.errors()[0]["loc"] == ("shipment",)


def test_a_non_numeric_order_line_number_is_rejected():
    with pytest.raises(ValidationError) as caught:
        Shipment.model_validate({"items": [{"order_line_id": "2201", "order_line_number": "first"}]})
    assert caught.value.errors()[0]["loc"] == ("items", 0, "order_line_number")


# --- return_management.updated (§3.12) ------------------------------------------------------------------------------


def test_php_return_is_read_under_its_return_key():
    update = ReturnUpdate.model_validate(params(PHP_RETURN_UPDATED))
    rma = update.return_
    assert isinstance(rma, Return)
    assert (rma.rma, rma.order_id, rma.sales_channel_id, rma.source_id) == (
        "RMA-CS-300000182-1",
        "300000182",
        "main_de",
        "WH-BERLIN-01",
    )
    assert (rma.status.code, rma.status.name, rma.status.date, rma.status.reason_code) == (
        "APPROVED",
        "APPROVED",
        "2025-02-14T10:12:44+01:00",
        "CSRREQUEST",
    )
    assert (rma.return_tracking_number, rma.return_tracking_carrier) == ("RT7781204455DE", "DHL")
    assert rma.return_tracking_label_url == "https://connector.shop.example/labels/rt7781.pdf"
    assert rma.return_tracking_url == "https://www.dhl.de/track?piececode=RT7781204455DE"
    (line,) = rma.lines
    assert (line.id, line.line_number, line.sku, line.reason, line.status) == (
        "2202",
        2,
        "MUG-STONE-350",
        "DAMAGED",
        "APPROVED",
    )
    assert line.reason_description == "Handle broke off in transit"
    assert (line.condition, line.condition_description) == ("", "")


def test_the_return_model_reads_the_wire_key_return_not_the_python_name():
    with pytest.raises(ValidationError) as caught:
        ReturnUpdate.model_validate({"return_": {"rma": "RMA-1", "order_id": "300000182"}})
    assert caught.value.errors()[0]["loc"] == ("return",)


def test_a_return_status_given_as_text_is_its_code():
    rma = Return.model_validate({"rma": "RMA-1", "status": " REQUESTED "})
    assert (rma.status.code, rma.status.name, rma.status.date) == ("REQUESTED", "", "")


def test_a_return_without_status_has_an_empty_code():
    assert Return.model_validate({"rma": "RMA-1"}).status.code == ""


def test_the_return_model_lets_a_placeholder_through_so_the_handler_must_reject_it_first():
    payload = params(PHP_RETURN_UPDATED)
    payload["return"]["lines"][0]["id"] = "{{order_item.id}}"
    assert ReturnUpdate.model_validate(payload).return_.lines[0].id == "{{order_item.id}}"
    with pytest.raises(InvalidEvent, match=r"params\.return\.lines\[0\]\.id"):
        reject_placeholders(payload)


# --- refund_management.updated (§3.13) ------------------------------------------------------------------------------


def test_php_refund_amounts_as_strings_are_exact_decimals():
    refund = RefundUpdate.model_validate(params(PHP_REFUND_UPDATED)).refund
    assert (refund.rma, refund.order_id, refund.credit_note_number, refund.refund_type, refund.refund_reason) == (
        "RMA-CS-300000182-1",
        "300000182",
        "CDE17",
        "Return",
        "RELEASESUCCESS",
    )
    assert refund.credit_note_date == "2025-02-14T10:12:45+01:00"
    assert (refund.status.code, refund.status.reason_code) == ("RELEASED", "REQUESTED")
    first = refund.lines[0]
    assert (first.order_item_id, first.order_line, first.reason) == ("2202", 2, "DAMAGED")
    details = first.payments[0].details
    assert (details.cost_gross, details.cost_net, details.cost_vat, details.vat_rate) == (
        Decimal("12.50"),
        Decimal("10.50"),
        Decimal("2.00"),
        Decimal("19"),
    )
    assert all(
        type(value) is Decimal for value in (details.cost_gross, details.cost_net, details.cost_vat, details.vat_rate)
    )
    assert str(details.cost_gross) == "12.50"  # the scale the OMS sent, not 12.5


def test_refund_line_gross_and_tax_are_decimal_sums_of_its_payments():
    refund = RefundUpdate.model_validate(params(PHP_REFUND_UPDATED)).refund
    assert [(line.gross, line.tax) for line in refund.lines] == [
        (Decimal("12.50"), Decimal("2.00")),
        (Decimal("12.50"), Decimal("2.00")),
    ]
    line = RefundLine.model_validate(
        {
            "order_item_id": "2202",
            "payments": [
                {"details": {"cost_gross": "10.00", "cost_vat": "1.60"}},
                {"details": {"cost_gross": "2.50", "cost_vat": "0.40"}},
            ],
        }
    )
    assert (line.gross, line.tax) == (Decimal("12.50"), Decimal("2.00"))
    assert type(line.gross) is Decimal and type(line.tax) is Decimal


def test_float_amounts_are_read_through_their_text_so_they_sum_exactly():
    line = RefundLine.model_validate(
        {"payments": [{"details": {"cost_gross": 0.1, "cost_vat": 0.7}}, {"details": {"cost_gross": 0.2}}]}
    )
    assert line.payments[0].details.cost_gross == Decimal("0.1")
    assert line.gross == Decimal("0.3")  # as floats, 0.1 + 0.2 is 0.30000000000000004
    assert line.tax == Decimal("0.7")


def test_missing_or_empty_amounts_count_as_zero():
    line = RefundLine.model_validate(
        {"order_item_id": "2202", "payments": [{"details": {"cost_gross": "", "cost_vat": None}}, {}]}
    )
    assert line.payments[0].details.cost_gross is None
    assert line.payments[1].details.cost_gross is None
    assert (line.gross, line.tax) == (Decimal(0), Decimal(0))
    no_payments = RefundLine.model_validate({"order_item_id": "2202", "payments": {}})
    assert (no_payments.payments, no_payments.gross, no_payments.tax) == ([], Decimal(0), Decimal(0))


@pytest.mark.parametrize("raw", ["12,50", "twelve", "NaN", "Infinity", "-inf", True])
def test_an_amount_that_is_not_a_finite_number_is_rejected(raw):
    with pytest.raises(ValidationError) as caught:
        Refund.model_validate({"lines": [{"payments": [{"details": {"cost_gross": raw}}]}]})
    assert caught.value.errors()[0]["loc"] == ("lines", 0, "payments", 0, "details", "cost_gross")


def test_a_refund_status_given_as_text_is_its_code():
    assert Refund.model_validate({"status": "RELEASED"}).status.code == "RELEASED"


# --- reject_placeholders --------------------------------------------------------------------------------------------


def test_a_clean_payload_passes_the_placeholder_check():
    for text in (PHP_ORDER_UPDATED, GO_ORDER_UPDATED, GO_SHIPMENT_DONE, PHP_SHIPMENT_DONE, PHP_RETURN_UPDATED):
        assert reject_placeholders(params(text)) is None
    assert reject_placeholders(params(PHP_REFUND_UPDATED)) is None


def test_an_unfilled_placeholder_is_rejected_with_its_path():
    payload = params(PHP_REFUND_UPDATED)
    payload["refund"]["lines"][1]["order_item_id"] = "{{order_item.id}}"
    with pytest.raises(InvalidEvent) as caught:
        reject_placeholders(payload)
    assert caught.value.message.startswith("params.refund.lines[1].order_item_id: ")
    assert "'{{order_item.id}}'" in caught.value.message


def test_a_placeholder_inside_longer_text_is_rejected():
    with pytest.raises(InvalidEvent, match=r"^shipment\.packages\[0\]\.tracking_link: "):
        reject_placeholders(
            {"packages": [{"tracking_link": "https://www.dhl.de/track?piececode={{package.tracking}}"}]},
            "shipment",
        )


def test_a_placeholder_in_a_list_of_strings_is_rejected():
    with pytest.raises(InvalidEvent, match=r"params\.shipment\.packages\[0\]\.items\[1\]"):
        reject_placeholders({"shipment": {"packages": [{"items": ["2", "{{order_item.line_number}}"]}]}})


def test_the_quoted_placeholder_text_is_bounded():
    with pytest.raises(InvalidEvent) as caught:
        reject_placeholders({"comment": "{{" + "x" * 500})
    assert "{{" + "x" * 78 in caught.value.message
    assert "x" * 79 not in caught.value.message


def test_single_braces_and_non_text_values_are_not_placeholders():
    assert reject_placeholders({"a": "{x}", "b": "}}", "c": 12, "d": None, "e": True, "f": 1.5, "g": []}) is None


# --- required / optional_time ---------------------------------------------------------------------------------------


def test_required_returns_a_present_value():
    assert required("300000182", "order.id") == "300000182"


def test_required_names_the_missing_field():
    with pytest.raises(InvalidEvent) as caught:
        required("", "shipment.order_id")
    assert caught.value.message == "shipment.order_id: missing"


def test_a_missing_order_id_in_a_parsed_payload_is_an_invalid_event():
    payload = params(PHP_REFUND_UPDATED)
    payload["refund"]["order_id"] = "   "
    refund = RefundUpdate.model_validate(payload).refund
    with pytest.raises(InvalidEvent, match=r"^refund\.order_id: missing$"):
        required(refund.order_id, "refund.order_id")


def test_invalid_event_is_a_permanent_handler_error():
    error = InvalidEvent("order.id: missing")
    assert isinstance(error, PermanentHandlerError)
    assert isinstance(error, HandlerError)
    assert error.retryable is False
    assert error.message == "order.id: missing"


def test_an_empty_time_is_none():
    assert optional_time("", "shipment.shipment_date", BERLIN) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-02-14T10:12:44+01:00", datetime(2025, 2, 14, 9, 12, 44, tzinfo=UTC)),  # PHP, ISO 8601
        ("2025-02-11 14:05:09+01:00", datetime(2025, 2, 11, 13, 5, 9, tzinfo=UTC)),  # Go, space and offset
        ("2025-02-11 09:30:00", datetime(2025, 2, 11, 8, 30, 0, tzinfo=UTC)),  # zoneless: OMS-local (CET)
        ("2025-07-11 09:30:00", datetime(2025, 7, 11, 7, 30, 0, tzinfo=UTC)),  # zoneless in summer (CEST)
    ],
)
def test_the_three_timestamp_shapes_are_read_as_utc(text, expected):
    parsed = optional_time(text, "refund.credit_note_date", BERLIN)
    assert parsed == expected
    assert parsed.utcoffset().total_seconds() == 0


@pytest.mark.parametrize("text", ["2025-02-30 10:00:00", "14.02.2025 10:12", "yesterday", "2025-02-14T25:00:00"])
def test_an_unreadable_time_is_an_invalid_event_naming_the_field(text):
    with pytest.raises(InvalidEvent) as caught:
        optional_time(text, "shipment.shipment_date", BERLIN)
    assert caught.value.message.startswith("shipment.shipment_date: ")
    assert repr(text) in caught.value.message


# --- order_number_of ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "text", "number"),
    [
        (ORDER_UPDATED, PHP_ORDER_UPDATED, "300000183"),
        (ORDER_UPDATED, GO_ORDER_UPDATED, "300000182"),
        (SHIPMENT_DONE, GO_SHIPMENT_DONE, "300000182"),
        (SHIPMENT_DONE, PHP_SHIPMENT_DONE, "300000182"),
        (RETURN_UPDATED, PHP_RETURN_UPDATED, "300000182"),
        (REFUND_UPDATED, PHP_REFUND_UPDATED, "300000182"),
    ],
)
def test_the_order_number_is_read_from_each_lifecycle_call(method, text, number):
    assert order_number_of(method, params(text)) == number


def test_the_order_number_of_a_created_call_is_the_order_id():
    assert order_number_of(ORDER_CREATED, {"order": {"id": " 300000183 ", "order_id": "other"}}) == "300000183"


def test_an_integer_order_number_becomes_text():
    assert order_number_of(SHIPMENT_DONE, {"shipment": {"order_id": 300000182}}) == "300000182"
    assert order_number_of(ORDER_UPDATED, {"order": {"id": 300000182}}) == "300000182"


def test_the_order_container_is_read_by_id_and_the_others_by_order_id():
    assert order_number_of(ORDER_UPDATED, {"order": {"order_id": "300000182"}}) is None
    assert order_number_of(RETURN_UPDATED, {"return": {"id": "300000182"}}) is None


@pytest.mark.parametrize(
    "order_id",
    [None, "", "   ", True, 3.0, ["300000182"], {"id": "300000182"}],
)
def test_no_usable_order_number_is_none(order_id):
    assert order_number_of(REFUND_UPDATED, {"refund": {"order_id": order_id}}) is None


@pytest.mark.parametrize("body", [None, [], "300000182", [{"order_id": "300000182"}]])
def test_a_container_that_is_not_an_object_has_no_order_number(body):
    assert order_number_of(SHIPMENT_DONE, {"shipment": body}) is None


def test_a_call_under_the_wrong_container_has_no_order_number():
    assert order_number_of(SHIPMENT_DONE, {"order": {"id": "300000182"}}) is None


def test_methods_that_are_not_order_lifecycle_calls_have_no_order_number():
    assert order_number_of(RETURN_AUTHORIZE, {"return": {"order_id": "300000182"}}) is None
    assert order_number_of("magento.inventory.aggregate_stock_management.updated", {"order": {"id": "1"}}) is None


def test_a_whole_float_line_number_is_read_as_that_number_and_a_fraction_is_refused() -> None:
    assert ShipmentItem.model_validate({"order_line_number": 2.0}).order_line_number == 2
    with pytest.raises(ValidationError):
        ShipmentItem.model_validate({"order_line_number": 2.5})
    with pytest.raises(ValidationError):
        ShipmentItem.model_validate({"order_line_number": float("inf")})


def test_an_empty_refund_details_array_and_a_null_status_read_as_empty_objects() -> None:
    refund = Refund.model_validate({"status": None, "lines": [{"payments": [{"details": []}]}]})
    assert refund.status.code == "" and refund.lines[0].gross == 0
