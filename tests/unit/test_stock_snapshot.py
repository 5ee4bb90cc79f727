"""Reading stock messages: tolerant of what real peers send, strict where it protects stock."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.protocol.methods import lane_for
from app.protocol.stock import (
    STOCK_UPDATED,
    EmptySnapshot,
    InvalidSnapshot,
    StockMode,
    _checked_row,
    parse_snapshot,
)
from app.protocol.timestamps import InvalidTimestamp, parse_oms_timestamp

RECEIVED = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


def snapshot(*rows: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body = {"aggregate_id": "EU-WEB", "mode": "DELTA", "created_on": "2025-02-11 09:30:00", "stock": list(rows)}
    body.update(fields)
    return {"snapshot": {k: v for k, v in body.items() if v is not ...}}


def parse(params: dict[str, Any], zone=UTC):
    return parse_snapshot(params, zone=zone, received_at=RECEIVED)


def test_the_php_peers_message_is_read_with_string_quantities_and_no_unlimited_flag():
    result = parse(snapshot({"sku": "MUG-STONE-350", "quantity": "7"}, {"sku": "TEE", "quantity": "2.5"}))
    assert result.aggregate_id == "EU-WEB"
    assert result.mode is StockMode.DELTA
    assert result.created_on == datetime(2025, 2, 11, 9, 30, tzinfo=UTC)
    assert result.created_on_given is True
    assert result.skus == ["MUG-STONE-350", "TEE"]
    assert result.quantities == ["7", "2.5"]  # validated decimal text, cast to numeric by PostgreSQL
    assert result.unlimited == [False, False]


def test_rows_come_out_sorted_by_sku_so_concurrent_writers_lock_in_one_order():
    result = parse(snapshot({"sku": "C", "quantity": 1}, {"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 3}))
    assert result.skus == ["A", "B", "C"]
    assert result.quantities == ["2", "3", "1"]


def test_a_repeated_sku_keeps_its_last_row_and_is_counted():
    result = parse(snapshot({"sku": "A", "quantity": 1}, {"sku": "A", "quantity": 9}))
    assert (result.skus, result.quantities, result.repeated_skus) == (["A"], ["9"], 1)


@pytest.mark.parametrize("mode", ["FULL", "DELTA", "NONZERO", "full", " Delta "])
def test_every_known_mode_is_accepted_in_any_case(mode):
    assert parse(snapshot(mode=mode)).mode.value == mode.strip().upper()


@pytest.mark.parametrize(
    ("value", "expected"), [(True, True), ("true", True), (1, True), ("1", True), (False, False), ("0", False)]
)
def test_the_unlimited_flag_is_read_from_booleans_numbers_and_words(value, expected):
    assert parse(snapshot({"sku": "A", "quantity": 1, "unlimited": value})).unlimited == [expected]


@pytest.mark.parametrize(
    ("value", "text"), [("7", "7"), (7, "7"), (7.5, "7.5"), (" 8 ", "8"), ("2.50", "2.50"), ("1e2", "100"), ("٣", "3")]
)
def test_quantities_in_any_numeric_shape_become_plain_decimal_text(value, text):
    assert parse(snapshot({"sku": "A", "quantity": value})).quantities == [text]


def test_skus_are_stripped_of_surrounding_blanks():
    assert parse(snapshot({"sku": " A ", "quantity": 1}, {"sku": 42, "quantity": 1})).skus == ["42", "A"]


def test_an_unlimited_sku_needs_no_quantity():
    result = parse(snapshot({"sku": "A", "unlimited": True}))
    assert (result.quantities, result.unlimited) == (["0"], [True])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        (snapshot({"sku": "A", "quantity": 1}, {"sku": "B", "quantity": -1}), "snapshot.stock[1].quantity"),
        (snapshot({"sku": "A", "quantity": "seven"}), "snapshot.stock[0].quantity"),
        (snapshot({"sku": "A", "quantity": "NaN"}), "snapshot.stock[0].quantity"),
        (snapshot({"sku": "A", "quantity": "Infinity"}), "snapshot.stock[0].quantity"),
        (snapshot({"sku": "A", "quantity": True}), "snapshot.stock[0].quantity"),
        (snapshot({"sku": "A", "quantity": None}), "snapshot.stock[0].quantity"),
        (snapshot({"sku": "A", "quantity": "1.00001"}), "snapshot.stock[0].quantity"),
        (snapshot({"sku": "A", "quantity": "1e20"}), "snapshot.stock[0].quantity"),
        (snapshot({"sku": "A", "quantity": 1}, {"quantity": 1}), "snapshot.stock[1].sku"),
        (snapshot({"sku": "  ", "quantity": 1}), "snapshot.stock[0].sku"),
        (snapshot({"sku": "A", "quantity": 1, "unlimited": "maybe"}), "snapshot.stock[0].unlimited"),
        (snapshot("not an object"), "snapshot.stock[0]"),
        (snapshot({"sku": "A", "quantity": 1}, aggregate_id=...), "snapshot.aggregate_id"),
        (snapshot({"sku": "A", "quantity": 1}, aggregate_id=""), "snapshot.aggregate_id"),
        (snapshot({"sku": "A", "quantity": 1}, mode="PARTIAL"), "snapshot.mode"),
        (snapshot({"sku": "A", "quantity": 1}, mode=...), "snapshot.mode"),
        (snapshot({"sku": "A", "quantity": 1}, created_on="yesterday"), "snapshot.created_on"),
        (snapshot({"sku": "A", "quantity": 1}, created_on=1739266200), "snapshot.created_on"),
        (snapshot(stock={"sku": "A"}), "snapshot.stock"),
        ({"snapshot": ["not", "an", "object"]}, "snapshot"),
    ],
)
def test_an_unusable_message_is_refused_naming_the_field_and_position(params, field):
    with pytest.raises(InvalidSnapshot) as error:
        parse(params)
    assert str(error.value).startswith(field + ":"), str(error.value)


def test_a_missing_created_on_is_the_time_the_message_was_received():
    result = parse(snapshot({"sku": "A", "quantity": 1}, created_on=...))
    assert (result.created_on, result.created_on_given) == (RECEIVED, False)


@pytest.mark.parametrize(
    "params",
    [
        {"Snapshot": {"AggregateId": "AGG1", "Mode": "", "Stock": None}},  # the Go mock's broken message
        {"snapshot": {"aggregate_id": "AGG1", "mode": "", "stock": None}},
        {},
    ],
)
def test_a_message_with_no_stock_list_is_empty_not_an_error(params):
    assert isinstance(parse(params), EmptySnapshot)


def test_an_empty_stock_list_with_a_mode_is_a_valid_message_that_changes_nothing():
    result = parse(snapshot(mode="FULL"))
    assert result.skus == [] and result.mode is StockMode.FULL


@pytest.mark.parametrize(
    ("text", "zone", "expected"),
    [
        ("2025-02-11 09:30:00", UTC, datetime(2025, 2, 11, 9, 30, tzinfo=UTC)),
        ("2025-02-11 10:30:00", BERLIN, datetime(2025, 2, 11, 9, 30, tzinfo=UTC)),  # winter: UTC+1
        ("2025-07-11 11:30:00", BERLIN, datetime(2025, 7, 11, 9, 30, tzinfo=UTC)),  # summer: UTC+2
        ("2025-02-11T09:30:00+02:00", BERLIN, datetime(2025, 2, 11, 7, 30, tzinfo=UTC)),  # an offset wins
        ("2025-02-11 09:30:00+02:00", UTC, datetime(2025, 2, 11, 7, 30, tzinfo=UTC)),
        ("2025-02-11T09:30:00Z", BERLIN, datetime(2025, 2, 11, 9, 30, tzinfo=UTC)),
        ("2025-02-11T09:30:00.250+00:00", UTC, datetime(2025, 2, 11, 9, 30, 0, 250000, tzinfo=UTC)),
    ],
)
def test_oms_timestamps_are_read_in_all_three_shapes(text, zone, expected):
    assert parse_oms_timestamp(text, zone) == expected


@pytest.mark.parametrize("text", ["", "11/02/2025 09:30", "2025-02-30 09:30:00", None, 12, "9999-12-31T23:59:59-14:00"])
def test_unreadable_timestamps_are_refused(text):
    with pytest.raises(InvalidTimestamp):
        parse_oms_timestamp(text, UTC)


def test_stock_messages_are_ordered_per_aggregate_and_other_methods_per_method():
    assert lane_for(STOCK_UPDATED, snapshot(aggregate_id="EU-WEB")) == f"{STOCK_UPDATED}/EU-WEB"
    assert lane_for(STOCK_UPDATED, {"Snapshot": {}}) == STOCK_UPDATED
    assert lane_for("magento.sales.order_management.updated", {}) == "magento.sales.order_management.updated"


@given(
    st.one_of(
        st.integers(min_value=-10, max_value=10**16),
        st.text(alphabet="0123456789.-+eE ", max_size=22),
        st.from_regex(r"[0-9]{1,16}(\.[0-9]{1,5})?", fullmatch=True),
        st.floats(allow_nan=True, allow_infinity=True),
    )
)
def test_the_fast_path_and_the_checked_path_agree_on_every_quantity(value):
    """Usual rows skip the per-field checks: whatever a row holds, both paths accept the same quantities, as the
    same number, and refuse the same ones."""
    try:
        fast: str | None = parse(snapshot({"sku": "A", "quantity": value})).quantities[0]
    except InvalidSnapshot:
        fast = None
    try:
        checked: str | None = _checked_row({"sku": "A", "quantity": value, "unlimited": "false"}, "row")[1]
    except InvalidSnapshot:
        checked = None
    assert (fast is None) == (checked is None)
    if fast is not None and checked is not None:
        assert Decimal(fast) == Decimal(checked)
