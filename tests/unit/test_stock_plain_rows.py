"""The plain-rows mark (app/protocol/stock.py ``header_marks``): the inbox stores it with a stock message, and the
handler then applies a large page in PostgreSQL without checking its rows again — so a message is marked only when
Python would take every one of its rows exactly as it is, neither fixed nor refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.protocol.stock import PLAIN_ROWS_MARK, InvalidSnapshot, StockSnapshot, header_marks, parse_snapshot

RECEIVED = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
ABSENT = object()


def snapshot(rows: Any) -> dict[str, Any]:
    return {"snapshot": {"aggregate_id": "EU-WEB", "mode": "FULL", "created_on": "2026-01-01 00:00:00", "stock": rows}}


def marked(params: dict[str, Any]) -> bool:
    return header_marks(params)[PLAIN_ROWS_MARK]


@pytest.mark.parametrize(
    "row",
    [
        {"sku": "A", "quantity": "7"},
        {"sku": "A", "quantity": "07"},
        {"sku": "A", "quantity": "0.2500"},
        {"sku": "A", "quantity": "999999999999999.9999"},
        {"sku": "A", "quantity": 7},
        {"sku": "A", "quantity": 10**15 - 1},
        {"sku": "A", "quantity": "7", "unlimited": True},
        {"sku": "A", "quantity": "7", "unlimited": False},
        {"sku": "A", "quantity": "7", "note": "ignored"},
        {"sku": "Ä-1", "quantity": "7"},  # not ASCII: the checks in SQL leave it to Python, which takes it as is
        {"sku": "A B\tC", "quantity": "7"},
        {"sku": "x" * 200, "quantity": "7"},
    ],
)
def test_a_row_python_takes_as_it_is_is_plain(row):
    assert marked(snapshot([{"sku": "B", "quantity": "1"}, row])) is True


@pytest.mark.parametrize(
    "row",
    [
        {"sku": " A", "quantity": "7"},  # stripped by Python
        {"sku": "A ", "quantity": "7"},
        {"sku": "A\u00a0", "quantity": "7"},
        {"sku": "\u2003A", "quantity": "7"},
        {"sku": "", "quantity": "7"},
        {"sku": "y" * 201, "quantity": "7"},
        {"sku": 42, "quantity": "7"},  # a number made text
        {"sku": ["A"], "quantity": "7"},
        {"quantity": "7"},
        {"sku": "A", "quantity": "-1"},
        {"sku": "A", "quantity": -1},
        {"sku": "A", "quantity": "1.00001"},
        {"sku": "A", "quantity": "1000000000000000"},
        {"sku": "A", "quantity": 10**15},
        {"sku": "A", "quantity": " 8"},
        {"sku": "A", "quantity": "1e2"},
        {"sku": "A", "quantity": "٣"},
        {"sku": "A", "quantity": 12.5},  # a float: read by the checked path
        {"sku": "A", "quantity": True},
        {"sku": "A", "quantity": None},
        {"sku": "A", "unlimited": True},  # no quantity
        {"sku": "A", "quantity": "7", "unlimited": "yes"},
        {"sku": "A", "quantity": "7", "unlimited": 1},
        {"sku": "A", "quantity": "7", "unlimited": None},
        "not a row",
        ["A", "7"],
        None,
    ],
)
def test_one_row_python_would_fix_or_refuse_leaves_the_whole_message_unmarked(row):
    assert marked(snapshot([{"sku": "B", "quantity": "1"}, row])) is False


def test_a_repeated_sku_leaves_the_message_unmarked():
    # Python keeps the SKU's last row; the statement for marked pages does not de-duplicate.
    assert marked(snapshot([{"sku": "A", "quantity": "1"}, {"sku": "B", "quantity": "1"}])) is True
    assert marked(snapshot([{"sku": "A", "quantity": "1"}, {"sku": "A", "quantity": "2"}])) is False


@pytest.mark.parametrize("params", [{}, {"snapshot": None}, {"snapshot": "x"}, snapshot(None), snapshot({"a": 1})])
def test_a_message_without_a_stock_list_is_unmarked(params):
    assert marked(params) is False


def test_an_empty_stock_list_is_plain():
    assert marked(snapshot([])) is True


skus = st.sampled_from(["A", "B", "Ä-1", "a b", " A", "A ", "B\u00a0", "", "x" * 200, "y" * 201, 42, None])
quantities = st.one_of(
    st.sampled_from(["7", "07", "0.25", "-1", " 8", "1.00001", "1e2", "", 3, -3, 12.5, 10**15, True, None, ABSENT]),
    st.from_regex(r"-?[0-9]{1,16}(\.[0-9]{1,5})?", fullmatch=True),
)
flags = st.sampled_from([ABSENT, True, False, "true", "no", None, 1, 0])


@st.composite
def rows(draw: st.DrawFn) -> Any:
    if draw(st.integers(min_value=0, max_value=20)) == 0:
        return draw(st.sampled_from(["not a row", 5, None, []]))
    row = {"sku": draw(skus), "quantity": draw(quantities), "unlimited": draw(flags)}
    return {key: value for key, value in row.items() if value is not ABSENT}


@given(st.lists(rows(), max_size=5))
def test_a_marked_message_is_read_by_python_exactly_as_it_was_sent(stock):
    """Whatever the rows, a marked message is one Python reads without fixing or refusing anything: each SKU's
    last row, as sent — what the handler writes straight from the stored payload when the mark is there."""
    params = snapshot(stock)
    if not marked(params):
        return
    parsed = parse_snapshot(params, zone=UTC, received_at=RECEIVED)
    assert isinstance(parsed, StockSnapshot)
    last = {row["sku"]: row for row in stock}
    assert parsed.skus == sorted(last)
    assert parsed.quantities == [str(last[sku]["quantity"]) for sku in parsed.skus]
    assert parsed.unlimited == [last[sku].get("unlimited", False) for sku in parsed.skus]


@given(st.lists(rows(), min_size=1, max_size=5))
def test_a_message_python_refuses_is_never_marked(stock):
    params = snapshot(stock)
    try:
        parse_snapshot(params, zone=UTC, received_at=RECEIVED)
    except InvalidSnapshot:
        assert marked(params) is False
