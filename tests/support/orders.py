"""Realistic Adobe Commerce orders as ``GET /V1/orders/{id}`` returns them (magento-rest.md §2), for tests.

``commerce_order(...)`` builds a valid order dict (one simple item, flat-rate shipping, check/money order by
default) whose totals add up the way Adobe Commerce adds them up; a test then changes what it is about. The item
helpers compute the row amounts Magento-style:

* prices excluding tax (the default): ``row_total = price * qty``; ``discount_amount`` = the discount percentage of
  the row, rounded to cents; ``tax_amount`` = the rate applied *after* the discount, rounded to cents;
  ``row_total_incl_tax`` = row total + the tax *before* the discount (Magento's ``rowTotal + rowTaxBeforeDiscount``);
* prices including tax (``prices_include_tax=True``, ``price`` is then the shelf price incl. tax): the discount is
  taken off the price incl. tax and ``discount_tax_compensation_amount`` holds the tax the discount removed, so
  ``row_total + tax_amount + discount_tax_compensation_amount - discount_amount`` = what the customer pays.

Amounts are ``Decimal`` (any number or numeric string is accepted as input); ``order_body`` writes them as JSON
numbers, exactly. Any field can be overridden; ``ABSENT`` as a value removes the field.
"""

from __future__ import annotations

import copy
import json
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from app.protocol.commerce_order import CommerceOrder, parse_order_body

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()  # as an override value: drop the field
_DEFAULT: Any = object()


def dec(value: Any) -> Decimal:
    """``value`` (int, float, str or Decimal) as a Decimal, floats through their shortest repr (0.1 → 0.1)."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


def cents(value: Any) -> Decimal:
    """``value`` rounded half-up to the cent, as Adobe Commerce rounds amounts."""
    return dec(value).quantize(CENT, rounding=ROUND_HALF_UP)


def _apply(target: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    for key, value in overrides.items():
        if value is ABSENT:
            target.pop(key, None)
        else:
            target[key] = value
    return target


# --- addresses -------------------------------------------------------------------------------------------------
def address(address_type: str = "billing", **overrides: Any) -> dict[str, Any]:
    """A German customer's address (``entity_id`` 501 for billing, 502 for shipping)."""
    billing = address_type == "billing"
    base: dict[str, Any] = {
        "entity_id": 501 if billing else 502,
        "parent_id": 101,
        "address_type": address_type,
        "firstname": "Lena",
        "lastname": "Vogel",
        "company": None,
        "street": ["Hauptstraße 5", "2. OG"] if billing else ["Torstraße 1"],
        "city": "Berlin",
        "region": "Berlin",
        "region_code": "BE",
        "region_id": 82,
        "postcode": "10115" if billing else "10119",
        "country_id": "DE",
        "telephone": "+49 30 1234567",
        "vat_id": None,
    }
    if billing:
        base["email"] = "lena.vogel@example.com"
    return _apply(base, overrides)


def billing_address(**overrides: Any) -> dict[str, Any]:
    return address("billing", **overrides)


def shipping_address(**overrides: Any) -> dict[str, Any]:
    return address("shipping", **overrides)


def shipping_assignment(method: str | None = "flatrate_flatrate", ship_to: dict[str, Any] | None = _DEFAULT) -> dict:
    """One ``extension_attributes.shipping_assignments[]`` entry; ``ship_to=None`` and ``method=None`` for what a
    virtual order carries (a shipping block with totals only)."""
    shipping: dict[str, Any] = {"total": {"shipping_amount": 0}}
    if ship_to is _DEFAULT:
        ship_to = shipping_address()
    if ship_to is not None:
        shipping["address"] = ship_to
    if method is not None:
        shipping["method"] = method
    return {"shipping": shipping, "items": []}


# --- items -----------------------------------------------------------------------------------------------------
def item(
    item_id: int | str,
    sku: str,
    *,
    qty: Any = 1,
    price: Any = "10.00",
    product_type: str = "simple",
    name: str | None = None,
    tax_percent: Any = 0,
    discount_percent: Any = 0,
    prices_include_tax: bool = False,
    parent_item_id: int | str | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """An ``items[]`` entry with Magento-computed row amounts (see the module docstring); ``overrides`` win."""
    quantity = dec(qty)
    rate = dec(tax_percent) / 100
    percent = dec(discount_percent)
    if prices_include_tax:
        price_incl = cents(price)
        row_incl = price_incl * quantity
        tax_before = cents(row_incl * rate / (1 + rate))
        row_total = row_incl - tax_before
        discount = cents(row_incl * percent / 100)
        tax = cents((row_incl - discount) * rate / (1 + rate))
        compensation = tax_before - tax  # ≥ 0: the tax the discount took off
        unit_price = cents(row_total / quantity)
    else:
        unit_price = cents(price)
        price_incl = unit_price + cents(unit_price * rate)
        row_total = unit_price * quantity
        row_incl = row_total + cents(row_total * rate)
        discount = cents(row_total * percent / 100)
        tax = cents((row_total - discount) * rate)
        compensation = ZERO
    virtual = product_type in ("virtual", "downloadable", "giftcard")
    entry: dict[str, Any] = {
        "item_id": item_id,
        "order_id": 101,
        "quote_item_id": int(item_id) + 9000 if str(item_id).isdigit() else None,
        "product_id": zlib.crc32(sku.encode()) % 100000,
        "store_id": 1,
        "product_type": product_type,
        "sku": sku,
        "name": name or sku.replace("-", " ").title(),
        "is_virtual": 1 if virtual else 0,
        "weight": None if virtual else Decimal("0.5"),
        "free_shipping": 0,
        "no_discount": 0,
        "qty_ordered": quantity,
        "qty_invoiced": 0,
        "qty_shipped": 0,
        "qty_canceled": 0,
        "qty_refunded": 0,
        "qty_backordered": None,
        "price": unit_price,
        "base_price": unit_price,
        "original_price": unit_price,
        "base_original_price": unit_price,
        "price_incl_tax": price_incl,
        "row_total": row_total,
        "base_row_total": row_total,
        "row_total_incl_tax": row_incl,
        "discount_amount": discount,
        "base_discount_amount": discount,
        "discount_percent": percent,
        "tax_amount": tax,
        "base_tax_amount": tax,
        "tax_percent": dec(tax_percent),
        "discount_tax_compensation_amount": compensation,
        "amount_refunded": 0,
    }
    if parent_item_id is not None:
        entry["parent_item_id"] = parent_item_id
    return _apply(entry, overrides)


def _zero_money(entry: dict[str, Any]) -> dict[str, Any]:
    """A child line that carries no money (a configurable's child, a fixed-price bundle's children)."""
    for key in (
        "price",
        "base_price",
        "price_incl_tax",
        "row_total",
        "base_row_total",
        "row_total_incl_tax",
        "discount_amount",
        "base_discount_amount",
        "tax_amount",
        "base_tax_amount",
        "discount_tax_compensation_amount",
    ):
        entry[key] = ZERO
    return entry


def _with_parent_copy(child: dict[str, Any], parent: dict[str, Any]) -> dict[str, Any]:
    child["parent_item"] = copy.deepcopy(parent)  # 2.2.5+/2.3: a child line carries a copy of its parent
    return child


def configurable(
    item_id: int | str,
    child_id: int | str,
    sku: str,
    *,
    qty: Any = 1,
    price: Any = "25.00",
    name: str = "Organic Tee",
    child_name: str | None = None,
    tax_percent: Any = 0,
    discount_percent: Any = 0,
    prices_include_tax: bool = False,
    **overrides: Any,
) -> list[dict[str, Any]]:
    """A configurable product: the parent line (its ``sku`` is already the chosen simple's) carries the money, the
    child line (the simple) shows 0 (magento-rest.md §2)."""
    parent = item(
        item_id,
        sku,
        qty=qty,
        price=price,
        product_type="configurable",
        name=name,
        tax_percent=tax_percent,
        discount_percent=discount_percent,
        prices_include_tax=prices_include_tax,
        **overrides,
    )
    parent["product_option"] = {
        "extension_attributes": {"configurable_item_options": [{"option_id": "93", "option_value": 58}]}
    }
    child = _zero_money(item(child_id, sku, qty=qty, name=child_name or f"{name} {sku}", parent_item_id=item_id))
    child["tax_percent"] = dec(tax_percent)
    return [parent, _with_parent_copy(child, parent)]


@dataclass(frozen=True)
class Selection:
    """One selected product of a bundle: ``price`` is its catalog price (its ``original_price`` on the order);
    ``option_qty`` units of it go into each bundle."""

    item_id: int | str
    sku: str
    price: Any
    option_qty: int = 1
    name: str | None = None


def bundle(
    item_id: int | str,
    sku: str,
    selections: Sequence[Selection],
    *,
    qty: Any = 1,
    dynamic: bool = False,
    price: Any = None,
    name: str = "Yoga Kit",
    tax_percent: Any = 0,
    discount_percent: Any = 0,
    prices_include_tax: bool = False,
) -> list[dict[str, Any]]:
    """A bundle: the parent line then one child line per selection (``qty_ordered`` = bundle qty * option qty).

    Fixed price (``dynamic=False``): the parent carries ``price`` (default: the selections' sum) and the children
    show 0 with their own ``original_price``. Dynamic price: the children carry their amounts and the parent shows
    their sums as well (#11957)."""
    quantity = dec(qty)
    options = {
        "bundle_options": [
            {"option_id": n, "option_qty": s.option_qty, "option_selections": [n + 10]}
            for n, s in enumerate(selections, start=1)
        ]
    }
    shared = {
        "tax_percent": tax_percent,
        "discount_percent": discount_percent,
        "prices_include_tax": prices_include_tax,
    }
    if dynamic:
        children = [
            item(
                s.item_id,
                s.sku,
                qty=quantity * s.option_qty,
                price=s.price,
                name=s.name,
                parent_item_id=item_id,
                **shared,
            )
            for s in selections
        ]
        parent = item(item_id, sku, qty=quantity, price=0, product_type="bundle", name=name, **shared)
        for key in (
            "row_total",
            "base_row_total",
            "row_total_incl_tax",
            "discount_amount",
            "base_discount_amount",
            "tax_amount",
            "base_tax_amount",
            "discount_tax_compensation_amount",
        ):
            parent[key] = sum((child[key] for child in children), ZERO)
        parent["price"] = parent["base_price"] = parent["original_price"] = cents(parent["row_total"] / quantity)
        parent["price_incl_tax"] = cents(parent["row_total_incl_tax"] / quantity)
    else:
        bundle_price = price if price is not None else sum((dec(s.price) * s.option_qty for s in selections), ZERO)
        parent = item(item_id, sku, qty=quantity, price=bundle_price, product_type="bundle", name=name, **shared)
        children = []
        for s in selections:
            child = _zero_money(
                item(s.item_id, s.sku, qty=quantity * s.option_qty, name=s.name, parent_item_id=item_id)
            )
            child["original_price"] = child["base_original_price"] = cents(s.price)
            child["tax_percent"] = dec(tax_percent)
            children.append(child)
    parent["product_option"] = {"extension_attributes": options}
    return [parent, *(_with_parent_copy(child, parent) for child in children)]


# --- the order -------------------------------------------------------------------------------------------------
def item_gross(entry: dict[str, Any]) -> Decimal:
    """What the customer pays for an item row: row total + tax + discount tax compensation - discount."""

    def amount(key: str) -> Decimal:
        value = entry.get(key)
        return ZERO if value is None else dec(value)

    return cents(
        amount("row_total")
        + amount("tax_amount")
        + amount("discount_tax_compensation_amount")
        - abs(amount("discount_amount"))
    )


def settle(order: dict[str, Any]) -> dict[str, Any]:
    """Recompute the order's totals (subtotal, tax, discount, grand_total, payment.amount_ordered) from its items
    (top-level rows only: a dynamic bundle's parent already shows its children's sums), shipping, gift cards and
    store credit, the way Adobe Commerce adds them up. Returns ``order`` (changed in place)."""

    def amount(source: dict[str, Any], key: str) -> Decimal:
        value = source.get(key)
        return ZERO if value is None else dec(value)

    top = [entry for entry in order["items"] if entry.get("parent_item_id") is None]
    extension = order.setdefault("extension_attributes", {})
    shipping_gross = cents(
        amount(order, "shipping_amount")
        + amount(order, "shipping_tax_amount")
        + amount(order, "shipping_discount_tax_compensation_amount")
        - abs(amount(order, "shipping_discount_amount"))
    )
    tenders = abs(amount(extension, "gift_cards_amount")) + abs(amount(extension, "customer_balance_amount"))
    order["subtotal"] = sum((amount(e, "row_total") for e in top), ZERO)
    order["subtotal_incl_tax"] = sum((amount(e, "row_total_incl_tax") for e in top), ZERO)
    order["tax_amount"] = sum((amount(e, "tax_amount") for e in top), ZERO) + amount(order, "shipping_tax_amount")
    order["discount_amount"] = -(
        sum((abs(amount(e, "discount_amount")) for e in top), ZERO) + abs(amount(order, "shipping_discount_amount"))
    )
    order["total_qty_ordered"] = sum((dec(e["qty_ordered"]) for e in order["items"]), Decimal(0))
    order["grand_total"] = sum((item_gross(e) for e in top), ZERO) + shipping_gross - tenders
    order["base_grand_total"] = order["grand_total"]
    if isinstance(order.get("payment"), dict):
        order["payment"]["amount_ordered"] = order["grand_total"]
    return order


def commerce_order(
    *,
    items: Iterable[dict[str, Any]] | None = None,
    shipping_amount: Any = "5.00",
    shipping_tax_percent: Any = 0,
    shipping_discount: Any = 0,
    shipping_method: str | None = "flatrate_flatrate",
    ship_to: dict[str, Any] | None = _DEFAULT,
    gift_cards: Sequence[tuple[str, Any]] = (),
    store_credit: Any = 0,
    payment: dict[str, Any] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """A valid order; ``grand_total`` and the other totals are computed (``settle``) unless overridden.

    ``shipping_tax_percent`` applies after ``shipping_discount``; ``ship_to=None`` and ``shipping_method=None`` with
    ``shipping_amount=0`` make a virtual order's shipping block; ``gift_cards``: ``(code, amount)`` pairs redeemed;
    ``store_credit``: customer balance used; ``payment``: overrides of the payment block (the method defaults to
    ``checkmo``, or ``free`` when nothing is left to pay; ``ABSENT`` drops the block). ``overrides`` set (or, with
    ``ABSENT``, drop) any top-level field: the totals are computed from the overridden fields, and an overridden
    total (``grand_total=…``) wins over the computed one."""
    entries = list(items) if items is not None else [item(1001, "MUG-STONE-350", price="12.50", name="Stone Mug")]
    rate = dec(shipping_tax_percent) / 100
    ship = cents(shipping_amount)
    ship_discount = cents(shipping_discount)
    ship_tax = cents((ship - ship_discount) * rate)
    order: dict[str, Any] = {
        "entity_id": 101,
        "increment_id": "000000101",
        "state": "new",
        "status": "pending",
        "store_id": 1,
        "store_name": "Main Website\nMain Website Store\nDefault Store View",
        "created_at": "2025-02-10 17:42:05",
        "updated_at": "2025-02-10 17:42:07",
        "remote_ip": "203.0.113.57",
        "customer_id": 77,
        "customer_is_guest": 0,
        "customer_group_id": 1,
        "customer_email": "lena.vogel@example.com",
        "customer_firstname": "Lena",
        "customer_lastname": "Vogel",
        "base_currency_code": "EUR",
        "order_currency_code": "EUR",
        "store_currency_code": "EUR",
        "global_currency_code": "EUR",
        "base_to_order_rate": 1,
        "shipping_amount": ship,
        "base_shipping_amount": ship,
        "shipping_tax_amount": ship_tax,
        "shipping_incl_tax": ship + cents(ship * rate),
        "shipping_discount_amount": ship_discount,
        "shipping_discount_tax_compensation_amount": ZERO,
        "shipping_description": "Flat Rate - Fixed" if shipping_method else None,
        "grand_total": ZERO,
        "discount_description": None,
        "coupon_code": None,
        "billing_address": billing_address(),
        "payment": {
            "entity_id": 401,
            "parent_id": 101,
            "method": "checkmo",
            "additional_information": ["Check / Money order"],
        },
        "items": entries,
        "status_histories": [],
        "extension_attributes": {
            "shipping_assignments": [shipping_assignment(shipping_method, ship_to)],
            "payment_additional_info": [{"key": "method_title", "value": "Check / Money order"}],
            "applied_taxes": [],
            "item_applied_taxes": [],
            "converting_from_quote": True,
        },
    }
    extension = order["extension_attributes"]
    if gift_cards:
        extension["gift_cards"] = [
            {"id": n, "code": code, "amount": cents(value), "base_amount": cents(value)}
            for n, (code, value) in enumerate(gift_cards, start=1)
        ]
        extension["gift_cards_amount"] = extension["base_gift_cards_amount"] = sum(
            (cents(value) for _, value in gift_cards), ZERO
        )
    if dec(store_credit):
        extension["customer_balance_amount"] = extension["base_customer_balance_amount"] = cents(store_credit)
    _apply(order, overrides)
    try:
        settle(order)  # from the items, shipping and tenders as overridden
    except (ArithmeticError, TypeError, ValueError, KeyError, AttributeError):
        pass  # a field broken on purpose: the totals stay as given
    _apply(order, overrides)  # overridden totals win over computed ones
    if payment is ABSENT:
        order.pop("payment")
        return order
    if not (payment and "method" in payment):
        free = order.get("grand_total") == 0
        order["payment"]["method"] = "free" if free else "checkmo"
        if free:
            order["payment"]["additional_information"] = ["No Payment Information Required"]
    order["payment"]["amount_ordered"] = order.get("grand_total")
    _apply(order["payment"], payment or {})
    return order


# --- to the wire and back --------------------------------------------------------------------------------------
_NUMBER = re.compile(r'"@@number:([^"@]+)@@"')


def _mark_numbers(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"@@number:{value}@@"
    if isinstance(value, dict):
        return {key: _mark_numbers(inner) for key, inner in value.items()}
    if isinstance(value, list | tuple):
        return [_mark_numbers(inner) for inner in value]
    return value


def order_body(document: Any) -> bytes:
    """``document`` as the JSON body Adobe Commerce would send: Decimals become JSON numbers, digit for digit."""
    text = json.dumps(_mark_numbers(document), ensure_ascii=False)
    return _NUMBER.sub(lambda match: match.group(1), text).encode()


def parse(document: Any) -> tuple[dict[str, Any], CommerceOrder]:
    """``document`` through the wire and ``parse_order_body``: (the order document, the validated model)."""
    parsed = parse_order_body(order_body(document))
    return parsed.document, parsed.order
