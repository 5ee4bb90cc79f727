"""Property tests of the order money: ``app.mappers.money`` (largest-remainder allocation, per-unit rows, fixed-price
bundle shares) and the money rules of ``app.mappers.order_to_mcom`` on random realistic Adobe Commerce orders.

Exact shares are computed with ``Fraction``, so the bounds below are checked against the true proportional share,
not against another Decimal rounding.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.mappers.money import CENT, RowAmounts, allocate, allocate_rows, quantum_for, split_evenly, split_row
from app.mappers.order_to_mcom import (
    GIFT_CARD_PROMOTION,
    SHIPPING_LINE_ID,
    OrderMappingOptions,
    item_of_line_id,
    order_to_mcom,
    unit_line_count,
    unit_line_id,
)
from tests.support.orders import Selection, bundle, cents, commerce_order, configurable, dec, item, item_gross, parse

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
QUANTA = (Decimal("0.01"), Decimal("1"), Decimal("0.001"))  # EUR, JPY, KWD

quanta = st.sampled_from(QUANTA)
weight = st.one_of(
    st.just(Decimal(0)),
    st.integers(0, 10**6).map(Decimal),
    st.decimals(min_value=0, max_value=10**6, places=4, allow_nan=False, allow_infinity=False),
)
weight_lists = st.one_of(
    st.lists(weight, min_size=1, max_size=12),
    st.integers(1, 12).map(lambda n: [Decimal(0)] * n),  # all zero: an equal split
)


def whole_quanta(quantum: Decimal, max_quanta: int = 10**7) -> st.SearchStrategy[Decimal]:
    return st.integers(0, max_quanta).map(lambda n: Decimal(n) * quantum)


def exact_shares(total: Decimal, weights: Sequence[Decimal]) -> list[Fraction]:
    weight_sum = sum((Fraction(w) for w in weights), Fraction(0))
    if weight_sum == 0:
        return [Fraction(total) / len(weights)] * len(weights)
    return [Fraction(total) * Fraction(w) / weight_sum for w in weights]


def spread(values: Sequence[Decimal]) -> Decimal:
    return max(values) - min(values)


def is_whole(amount: Decimal, quantum: Decimal) -> bool:
    return amount % quantum == 0


# --- allocate --------------------------------------------------------------------------------------------------
def test_quanta_of_currencies():
    assert quantum_for("EUR") == Decimal("0.01")
    assert quantum_for("jpy") == Decimal("1")
    assert quantum_for("KWD") == Decimal("0.001")


@FAST
@given(data=st.data(), quantum=quanta, weights=weight_lists)
def test_allocate_sums_exactly_and_keeps_each_part_within_one_quantum_of_its_share(data, quantum, weights):
    total = data.draw(whole_quanta(quantum), label="total")
    parts = allocate(total, weights, quantum)

    assert len(parts) == len(weights)
    assert sum(parts, Decimal(0)) == total
    assert all(part >= 0 and is_whole(part, quantum) for part in parts)
    for part, share in zip(parts, exact_shares(total, weights), strict=True):
        assert abs(Fraction(part) - share) < Fraction(quantum), (part, share)


@FAST
@given(quantum=quanta, total_quanta=st.integers(0, 10**7))
def test_allocate_to_a_single_part_gives_it_everything(quantum, total_quanta):
    total = Decimal(total_quanta) * quantum
    assert allocate(total, [Decimal("3.5")], quantum) == [total]
    assert allocate(total, [Decimal(0)], quantum) == [total]


@FAST
@given(quantum=quanta, total_quanta=st.integers(0, 10**5), count=st.integers(1, 30))
def test_equal_weights_put_the_left_over_quanta_on_the_first_parts(quantum, total_quanta, count):
    total = Decimal(total_quanta) * quantum
    parts = allocate(total, [Decimal(2)] * count, quantum)
    assert parts == sorted(parts, reverse=True)
    assert spread(parts) <= quantum
    assert split_evenly(total, count, quantum, extras_last=True) == parts[::-1]


def test_allocate_examples():
    assert allocate(Decimal("10.00"), [Decimal(1)] * 3) == [Decimal("3.34"), Decimal("3.33"), Decimal("3.33")]
    # remainders .5 / .5 / 0: the tie goes to the earlier part
    assert allocate(Decimal("0.03"), [Decimal(1), Decimal(1), Decimal(4)]) == [
        Decimal("0.01"),
        Decimal("0.00"),
        Decimal("0.02"),
    ]
    assert allocate(Decimal("0.00"), []) == []
    assert allocate(Decimal(100), [Decimal(1), Decimal(2)], Decimal(1)) == [Decimal(33), Decimal(67)]


@pytest.mark.parametrize(
    ("total", "weights", "quantum"),
    [
        (Decimal("-0.01"), [Decimal(1)], CENT),  # negative total
        (Decimal("1.00"), [Decimal(1), Decimal(-1)], CENT),  # negative weight
        (Decimal("1.005"), [Decimal(1)], CENT),  # not a whole number of cents
        (Decimal("1.5"), [Decimal(1)], Decimal(1)),  # not a whole yen
        (Decimal("0.01"), [], CENT),  # an amount over no parts
    ],
)
def test_allocate_refuses(total, weights, quantum):
    with pytest.raises(ValueError):
        allocate(total, weights, quantum)


# --- split_row -------------------------------------------------------------------------------------------------
@st.composite
def rows(draw: st.DrawFn, quantum: Decimal, max_quanta: int = 10**6) -> RowAmounts:
    gross = draw(st.integers(0, max_quanta), label="gross")
    tax = draw(st.integers(0, gross), label="tax")
    discount = draw(st.integers(0, max_quanta), label="discount")
    return RowAmounts(gross=gross * quantum, tax=tax * quantum, discount=discount * quantum)


def fields(amounts: RowAmounts) -> dict[str, Decimal]:
    return {
        "gross": amounts.gross,
        "tax": amounts.tax,
        "discount": amounts.discount,
        "net": amounts.net,
        "original": amounts.original,
    }


@FAST
@given(data=st.data(), quantum=quanta, units=st.integers(1, 50))
def test_split_row_adds_up_per_field_and_units_differ_by_at_most_one_quantum(data, quantum, units):
    row = data.draw(rows(quantum), label="row")
    parts = split_row(row, units, quantum)

    assert len(parts) == units
    for name, row_value in fields(row).items():
        values = [fields(part)[name] for part in parts]
        assert sum(values, Decimal(0)) == row_value, name
        assert spread(values) <= quantum, (name, values)
        assert all(value >= 0 and is_whole(value, quantum) for value in values), (name, values)


def test_split_row_example():
    # 30.31 gross, 4.84 tax, 5.35 discount over 3: gross and tax extras first, discount extras last
    parts = split_row(RowAmounts(gross=Decimal("30.31"), tax=Decimal("4.84"), discount=Decimal("5.35")), 3)
    assert [p.gross for p in parts] == [Decimal("10.11"), Decimal("10.10"), Decimal("10.10")]
    assert [p.tax for p in parts] == [Decimal("1.62"), Decimal("1.61"), Decimal("1.61")]
    assert [p.net for p in parts] == [Decimal("8.49")] * 3
    assert [p.discount for p in parts] == [Decimal("1.78"), Decimal("1.78"), Decimal("1.79")]
    assert [p.original for p in parts] == [Decimal("11.89"), Decimal("11.88"), Decimal("11.89")]


def test_row_amounts_refuse_inconsistent_amounts():
    with pytest.raises(ValueError):
        RowAmounts(gross=Decimal("1.00"), tax=Decimal("1.01"), discount=Decimal(0))
    with pytest.raises(ValueError):
        RowAmounts(gross=Decimal("1.00"), tax=Decimal(0), discount=Decimal("-0.01"))


# --- allocate_rows (fixed-price bundles) -----------------------------------------------------------------------
@FAST
@given(data=st.data(), quantum=quanta, weights=st.one_of(st.lists(weight, min_size=1, max_size=6), weight_lists))
def test_allocate_rows_shares_the_gross_by_weight_and_keeps_tax_within_each_share(data, quantum, weights):
    row = data.draw(rows(quantum), label="row")
    parts = allocate_rows(row, weights, quantum)

    assert len(parts) == len(weights)
    for name in ("gross", "tax", "discount", "net", "original"):
        assert sum((fields(part)[name] for part in parts), Decimal(0)) == fields(row)[name], name
    for part, share in zip(parts, exact_shares(row.gross, weights), strict=True):
        assert abs(Fraction(part.gross) - share) < Fraction(quantum), (part.gross, share)
        assert 0 <= part.tax <= part.gross
        assert part.discount >= 0
        assert all(is_whole(value, quantum) for value in fields(part).values())


# --- the mapper on random realistic orders ---------------------------------------------------------------------
RATES = (0, 7, 19, 21)
PERCENTS = (0, 0, 5, 10, 12.5, 15, 20, 33, 50, 100)
prices = st.integers(1, 50_000).map(lambda n: Decimal(n) / 100)  # 0.01 … 500.00


@st.composite
def random_orders(draw: st.DrawFn) -> dict[str, Any]:
    """An order of 1-6 items (simple, virtual, configurable + child, fixed or dynamic bundle + 2-3 children), qty
    1-7, a percentage discount rule, tax after discount, shipping with tax and maybe a discount, and maybe a gift card
    and store credit paying part of it. Totals are computed as Adobe Commerce computes them (``settle``)."""
    discount_percent = draw(st.sampled_from(PERCENTS), label="discount %")
    incl_tax = draw(st.booleans(), label="prices include tax")
    ids = iter(range(1001, 2000))
    items: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(1, 6), label="items")):
        kind = draw(st.sampled_from(["simple", "virtual", "configurable", "bundle_fixed", "bundle_dynamic"]))
        qty = draw(st.integers(1, 7), label="qty")
        rate = draw(st.sampled_from(RATES), label="tax rate")
        percent = draw(st.sampled_from((0, discount_percent)), label="rule applies")  # some items excluded
        money = {"tax_percent": rate, "discount_percent": percent, "prices_include_tax": incl_tax}
        item_id = next(ids)
        if kind in ("simple", "virtual"):
            items.append(item(item_id, f"SKU-{item_id}", qty=qty, price=draw(prices), product_type=kind, **money))
        elif kind == "configurable":
            items.extend(configurable(item_id, next(ids), f"TEE-{item_id}", qty=qty, price=draw(prices), **money))
        else:
            selections = [
                Selection(next(ids), f"PART-{n}", draw(prices), draw(st.integers(1, 2), label="option qty"))
                for n in range(draw(st.integers(2, 3), label="selections"))
            ]
            dynamic = kind == "bundle_dynamic"
            bundle_qty = draw(st.integers(1, 3), label="bundle qty")
            price = None if dynamic else draw(st.one_of(st.none(), prices), label="fixed bundle price")
            items.extend(
                bundle(item_id, f"KIT-{item_id}", selections, qty=bundle_qty, dynamic=dynamic, price=price, **money)
            )

    physical = any(entry["product_type"] != "virtual" for entry in items)
    shipping: dict[str, Any] = {"shipping_amount": 0, "shipping_method": None, "ship_to": None}
    if physical:
        amount = draw(st.integers(0, 2_000), label="shipping cents") * CENT
        shipping = {
            "shipping_amount": amount,
            "shipping_tax_percent": draw(st.sampled_from(RATES), label="shipping tax rate"),
            "shipping_discount": draw(st.integers(0, int(amount * 100)), label="shipping discount cents") * CENT
            if draw(st.booleans(), label="shipping discount")
            else 0,
        }
    order = commerce_order(items=items, **shipping)

    payable = int(order["grand_total"] * 100)
    gift_cards: list[tuple[str, Decimal]] = []
    store_credit = Decimal(0)
    if draw(st.booleans(), label="gift card"):
        redeemed = draw(st.one_of(st.integers(0, payable), st.just(payable)), label="gift card cents")  # all, often
        gift_cards = [("GC-1", redeemed * CENT)]
        if gift_cards[0][1] and draw(st.booleans(), label="second gift card"):
            half = cents(gift_cards[0][1] / 2)
            gift_cards = [("GC-1", half), ("GC-2", gift_cards[0][1] - half)]
    left = payable - int(sum((amount for _, amount in gift_cards), Decimal(0)) * 100)
    if draw(st.booleans(), label="store credit"):
        store_credit = draw(st.one_of(st.integers(0, left), st.just(left)), label="store credit cents") * CENT
    if gift_cards or store_credit:
        order = commerce_order(items=items, gift_cards=gift_cards, store_credit=store_credit, **shipping)
    left = int(order["grand_total"] * 100)
    if left and draw(st.booleans(), label="reward points"):
        points = draw(st.integers(1, left), label="reward points cents") * CENT
        order["extension_attributes"]["reward_currency_amount"] = points
        order["grand_total"] -= points
        order["payment"]["amount_ordered"] = order["grand_total"]
    return order


def _amount(doc: dict[str, Any], key: str) -> Decimal:
    value = doc.get(key)
    return Decimal(0) if value is None else abs(dec(value))


def _lines_by_item(lines: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    by_item: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in lines:
        if line["id"] == SHIPPING_LINE_ID:
            continue
        found = item_of_line_id(line["id"])
        assert found is not None, line["id"]
        item_id, unit = found
        assert line["id"] == unit_line_id(item_id, unit)
        by_item[item_id].append(line)
    return by_item


def _line_amounts(line: dict[str, Any]) -> dict[str, Decimal]:
    promotions = line["promotions_info"]["promotions"]
    return {
        "gross": line["amount"]["gross_amount"],
        "net": line["amount"]["net_amount"],
        "tax": line["amount"]["tax_amount"],
        "original": line["promotions_info"]["original_price"],
        "discount": sum((p["discount"] for p in promotions if p["code"] != GIFT_CARD_PROMOTION), Decimal(0)),
        "gift_card": sum((p["discount"] for p in promotions if p["code"] == GIFT_CARD_PROMOTION), Decimal(0)),
    }


def _sum(lines: list[dict[str, Any]], name: str) -> Decimal:
    return sum((_line_amounts(line)[name] for line in lines), Decimal(0))


@FAST
@given(doc=random_orders())
def test_mapped_orders_keep_every_money_rule(doc):
    document, order = parse(doc)
    mapped = order_to_mcom(order, OrderMappingOptions(), document)["order"]
    lines = mapped["lines"]
    extension = doc["extension_attributes"]
    # OMS_MAX_ORDER_LINES is checked on a count made before mapping: it is the count mapping makes
    assert unit_line_count(order) == sum(1 for line in lines if line["product_type"] != "SHIPPING")
    gift_cards = _amount(extension, "gift_cards_amount")
    store_credit = _amount(extension, "customer_balance_amount")
    tenders = gift_cards + store_credit + _amount(extension, "reward_currency_amount")

    # Σ gross of all lines = grand_total + gift cards + store credit + reward points = Σ payment transactions
    transactions = [t for payment in mapped["payments"] for t in payment["transactions"]]
    assert _sum(lines, "gross") == doc["grand_total"] + tenders
    assert sum((t["amount"] for t in transactions), Decimal(0)) == doc["grand_total"] + tenders
    assert all(t["amount"] >= 0 for t in transactions)
    # the gift cards are shared over the lines as GIFT_CARD promotions that are not taken off gross
    assert _sum(lines, "gift_card") == gift_cards
    assert [n for n, line in enumerate(lines, start=1) if line["line_number"] != n] == []

    for line in lines:
        amounts = _line_amounts(line)
        assert all(value >= 0 for value in amounts.values()), (line["id"], amounts)
        assert all(p["discount"] > 0 for p in line["promotions_info"]["promotions"]), line["id"]
        assert amounts["net"] + amounts["tax"] == amounts["gross"], line["id"]
        assert amounts["original"] - amounts["discount"] == amounts["gross"], line["id"]
        assert amounts["gift_card"] <= amounts["gross"], line["id"]
        assert sum((tax["amount"] for tax in line["amount"]["taxes"]), Decimal(0)) == amounts["tax"], line["id"]

    shipping = [line for line in lines if line["id"] == SHIPPING_LINE_ID]
    if doc["extension_attributes"]["shipping_assignments"][0]["shipping"].get("method"):
        assert len(shipping) == 1 and shipping[0] is lines[-1]
        assert shipping[0]["amount"]["gross_amount"] == cents(
            _amount(doc, "shipping_amount")
            + _amount(doc, "shipping_tax_amount")
            - _amount(doc, "shipping_discount_amount")
        )
    else:
        assert shipping == []

    by_item = _lines_by_item(lines)
    items = {str(entry["item_id"]): entry for entry in doc["items"]}
    children: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in doc["items"]:
        if entry.get("parent_item_id") is not None:
            children[str(entry["parent_item_id"])].append(entry)
    # the lines' item ids are the exported items: configurable parents (not their children), bundle children
    # (not the bundle), everything else itself; each with one line per unit ordered, numbered 1…qty
    exported = {
        item_id
        for item_id, entry in items.items()
        if entry["product_type"] != "bundle"
        and not (
            entry.get("parent_item_id") is not None and items[str(entry["parent_item_id"])]["product_type"] != "bundle"
        )
    }
    assert set(by_item) == exported
    for item_id, item_lines in by_item.items():
        assert sorted(item_of_line_id(line["id"])[1] for line in item_lines) == list(
            range(1, int(items[item_id]["qty_ordered"]) + 1)
        )
        # the units of one item differ by at most one cent in every amount
        for name in ("gross", "net", "tax", "original", "discount", "gift_card"):
            assert spread([_line_amounts(line)[name] for line in item_lines]) <= CENT, (item_id, name)

    # per money row, the units add up to the row: gross = row_total + tax + compensation - discount, tax = tax_amount
    for item_id, entry in items.items():
        if entry.get("parent_item_id") is not None:
            continue
        kind = entry["product_type"]
        fixed_bundle = kind == "bundle" and not any(dec(child["row_total"]) for child in children[item_id])
        if kind == "bundle" and not fixed_bundle:
            rows = [(child, by_item[str(child["item_id"])]) for child in children[item_id]]
        elif fixed_bundle:
            rows = [(entry, [line for child in children[item_id] for line in by_item[str(child["item_id"])]])]
        else:
            rows = [(entry, by_item[item_id])]
        for row, row_lines in rows:
            assert _sum(row_lines, "gross") == item_gross(row), row["item_id"]
            assert _sum(row_lines, "tax") == cents(_amount(row, "tax_amount")), row["item_id"]
            assert _sum(row_lines, "net") == item_gross(row) - cents(_amount(row, "tax_amount")), row["item_id"]
        if fixed_bundle:
            _check_fixed_bundle_shares(entry, children[item_id], by_item)


def _check_fixed_bundle_shares(
    parent: dict[str, Any], children: list[dict[str, Any]], by_item: dict[str, list[dict[str, Any]]]
) -> None:
    """A fixed-price bundle's row is shared among its children in proportion to original_price * qty.

    Bound: a child's units add up exactly to the child's ROW share (split_row is exact), and that share comes from
    one largest-remainder allocation in cents, so it is strictly within one cent of the exact proportional share,
    however many units the child has: not 0.01 per unit but 0.01 for the whole child."""
    weights = [dec(child["original_price"]) * dec(child["qty_ordered"]) for child in children]
    for child, share in zip(children, exact_shares(item_gross(parent), weights), strict=True):
        child_gross = _sum(by_item[str(child["item_id"])], "gross")
        assert abs(Fraction(child_gross) - share) < Fraction(CENT), (child["sku"], child_gross, float(share))
        for line in by_item[str(child["item_id"])]:
            assert line["parent_line_id"] is not None
            assert item_of_line_id(line["parent_line_id"])[0] == str(parent["item_id"])
