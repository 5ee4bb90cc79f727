"""The credit memo of a refund whose lines include charges without a product — the SHIPPING line, gift wrapping,
the printed card (``app.mappers.lifecycle_to_commerce.credit_memo``): unit lines are items, SHIPPING is
``shipping_amount``, wrapping and card (no item, no argument of their own) are ``adjustment_positive``; an
appeasement gives every amount as the adjustment; a credit memo always names an item."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.mappers.lifecycle_to_commerce import RefundedLine, credit_memo

MUG_1 = RefundedLine("1001-1", "1001", D("11.90"))
MUG_2 = RefundedLine("1001-2", "1001", D("11.90"))
TEE = RefundedLine("1002-1", "1002", D("23.80"))
MUG_1_WRAPPING = RefundedLine("GIFT_WRAPPING_1001_1", None, D("2.38"))
ORDER_WRAPPING = RefundedLine("GIFT_WRAPPING", None, D("4.76"))
CARD = RefundedLine("PRINTED_CARD", None, D("1.79"))
SHIPPING = RefundedLine("SHIPPING", None, D("5.95"), shipping=True)


def test_a_return_refunds_units_as_items_shipping_as_shipping_and_wrapping_and_card_as_the_adjustment():
    memo = credit_memo(
        [MUG_1, MUG_1_WRAPPING, MUG_2, TEE, ORDER_WRAPPING, CARD, SHIPPING], appeasement=False, anchor_item="1001"
    )
    assert memo == {
        "items": [
            {"item_id": "1001", "qty": 2, "line_ids": ["1001-1", "1001-2"]},
            {"item_id": "1002", "qty": 1, "line_ids": ["1002-1"]},
        ],
        "shipping_amount": D("5.95"),
        "adjustment_positive": D("8.93"),  # 2.38 + 4.76 + 1.79
        "total": D("62.48"),  # 11.90 + 11.90 + 23.80 + 5.95 + 8.93
    }


def test_charges_alone_name_the_anchor_item_at_quantity_zero_so_no_item_is_refunded():
    memo = credit_memo([ORDER_WRAPPING, CARD], appeasement=False, anchor_item="1002")
    assert memo["items"] == [{"item_id": "1002", "qty": 0, "line_ids": []}]
    assert memo["adjustment_positive"] == D("6.55") and memo["shipping_amount"] == 0 and memo["total"] == D("6.55")


def test_the_shipping_refunded_alone_is_the_shipping_amount_with_the_anchor_at_quantity_zero():
    memo = credit_memo([SHIPPING], appeasement=False, anchor_item="1001")
    assert memo["items"] == [{"item_id": "1001", "qty": 0, "line_ids": []}]
    assert (memo["shipping_amount"], memo["adjustment_positive"], memo["total"]) == (D("5.95"), D(0), D("5.95"))


def test_an_appeasement_gives_every_amount_as_the_adjustment_and_takes_no_item_or_shipping_back():
    memo = credit_memo(
        [RefundedLine("1001-1", "1001", D("3.00")), RefundedLine("SHIPPING", None, D("1.25"), shipping=True), CARD],
        appeasement=True,
        anchor_item="1002",
    )
    assert memo == {
        "items": [{"item_id": "1001", "qty": 0, "line_ids": ["1001-1"]}],
        "shipping_amount": D(0),
        "adjustment_positive": D("6.04"),  # 3.00 + 1.25 + 1.79
        "total": D("6.04"),
    }


def test_an_appeasement_on_charges_alone_names_the_anchor():
    memo = credit_memo([MUG_1_WRAPPING], appeasement=True, anchor_item="1001")
    assert memo["items"] == [{"item_id": "1001", "qty": 0, "line_ids": []}]
    assert memo["adjustment_positive"] == D("2.38")


def test_a_credit_memo_of_charges_without_an_invoiced_item_to_name_is_refused():
    with pytest.raises(ValueError, match="charges alone"):
        credit_memo([CARD], appeasement=False, anchor_item=None)


def test_a_credit_memo_of_no_line_is_refused():
    with pytest.raises(ValueError, match="refunded line"):
        credit_memo([], appeasement=False, anchor_item="1001")


def test_a_units_anchor_is_not_used_when_the_refund_names_an_item():
    memo = credit_memo([TEE, CARD], appeasement=False, anchor_item="1001")
    assert [entry["item_id"] for entry in memo["items"]] == ["1002"]


cents = st.integers(min_value=0, max_value=10_000_000).map(lambda n: D(n) / 100)
lines = st.lists(st.tuples(st.sampled_from(["unit", "shipping", "wrapping"]), cents), min_size=1, max_size=30).map(
    lambda drawn: [
        RefundedLine(f"{kind}-{n}", f"{1000 + n % 3}" if kind == "unit" else None, amount, shipping=kind == "shipping")
        for n, (kind, amount) in enumerate(drawn)
    ]
)


@settings(max_examples=200, deadline=None)
@given(lines=lines, appeasement=st.booleans())
def test_the_credit_memo_accounts_for_every_refunded_cent_exactly(lines, appeasement):
    memo = credit_memo(lines, appeasement=appeasement, anchor_item="1000")
    total = sum((line.amount for line in lines), D(0))
    units = sum((line.amount for line in lines if line.item_id is not None), D(0))
    assert memo["total"] == total
    assert memo["total"].as_tuple().exponent >= -2  # still cents: nothing was divided or rounded
    if appeasement:
        assert memo["adjustment_positive"] == total and memo["shipping_amount"] == 0
        assert all(entry["qty"] == 0 for entry in memo["items"])
    else:
        assert units + memo["shipping_amount"] + memo["adjustment_positive"] == total
        assert sum(entry["qty"] for entry in memo["items"]) == sum(1 for line in lines if line.item_id is not None)
    assert memo["items"]  # a credit memo always names an item
