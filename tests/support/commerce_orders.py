"""Adobe Commerce orders with fixed product taxes (``Magento_Weee``) and gift wrapping (``Magento_GiftWrapping``),
as ``GET /V1/orders/{id}`` returns them (magento-rest.md §2), built on ``tests/support/orders.py``.

* ``with_fixed_taxes(item, [Fee(...)], ...)`` gives an item the FPT fields Magento_Weee stores: ``weee_tax_applied``
  as JSON *text* (each fee's ``title``, ``amount``, ``row_amount``, ``amount_incl_tax``, ``row_amount_incl_tax``
  and their ``base_`` twins), ``weee_tax_applied_amount`` / ``weee_tax_applied_row_amount`` (and
  ``base_weee_tax_applied_row_amnt``, Magento's truncated name), dispositions 0. ``tax_in_item``: the fees' tax is
  added to the item's ``tax_amount`` (else the order carries it beside the items); ``shown_in_price``: the fees with
  their tax are added to ``price_incl_tax`` and ``row_total_incl_tax`` (an "including FPT" display);
* ``with_gift_wrapping(order, ...)`` sets the order's ``extension_attributes.gw_*`` (order wrapping, printed card,
  the items' total) with their ``_incl_tax`` and ``base_`` twins, and each wrapped item's
  ``extension_attributes.gw_id/gw_price/gw_tax_amount`` (per unit, 4 decimals as Magento stores them);
* ``copy_fixed_taxes(parent, child)``: a configurable's or bundle's parent item with Magento's copy of its child's
  fees (the list and the per-unit amount, no row amount);
* ``settle_extras(order)`` adds what those put in ``grand_total`` (the fees, their tax when no item holds it, the
  wrapping) to the order's totals, after ``commerce_order`` computed them from the items and shipping, and drops
  the builders' own marks: the order is then exactly what Adobe Commerce sends.

Amounts are ``Decimal``; any number or numeric string is accepted as input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from tests.support.orders import ZERO, cents, dec, order_body

FOUR = Decimal("0.0001")


@dataclass(frozen=True)
class Fee:
    """One fixed product tax of an item: ``amount`` per unit excluding tax, ``tax`` per unit (0: FPT not taxed)."""

    title: str
    amount: Any
    tax: Any = 0


def fee_list_text(entries: Sequence[Mapping[str, Any]]) -> str:
    """``weee_tax_applied`` as Magento stores it: JSON text, amounts as exact JSON numbers."""
    return order_body(list(entries)).decode()


def with_fixed_taxes(
    entry: dict[str, Any], fees: Sequence[Fee], *, tax_in_item: bool = True, shown_in_price: bool = False
) -> dict[str, Any]:
    """``entry`` (an ``items[]`` dict) with ``fees`` applied the way Magento_Weee stores them (module docstring).
    The item keeps ``_fee_tax_outside`` (the fees' tax not in its ``tax_amount``) for ``settle_extras``; it is not
    an Adobe Commerce field and the mapper ignores it."""
    qty = dec(entry["qty_ordered"])
    listed = []
    unit_total = row_total = unit_tax = row_tax = ZERO
    for fee in fees:
        amount, tax = cents(fee.amount), cents(fee.tax)
        listed.append(
            {
                "title": fee.title,
                "base_amount": amount,
                "amount": amount,
                "row_amount": amount * qty,
                "base_row_amount": amount * qty,
                "base_amount_incl_tax": amount + tax,
                "amount_incl_tax": amount + tax,
                "row_amount_incl_tax": (amount + tax) * qty,
                "base_row_amount_incl_tax": (amount + tax) * qty,
            }
        )
        unit_total += amount
        row_total += amount * qty
        unit_tax += tax
        row_tax += tax * qty
    entry.update(
        {
            "weee_tax_applied": fee_list_text(listed),
            "weee_tax_applied_amount": unit_total,
            "base_weee_tax_applied_amount": unit_total,
            "weee_tax_applied_row_amount": row_total,
            "base_weee_tax_applied_row_amnt": row_total,
            "weee_tax_disposition": ZERO,
            "base_weee_tax_disposition": ZERO,
            "weee_tax_row_disposition": ZERO,
            "base_weee_tax_row_disposition": ZERO,
        }
    )
    if tax_in_item:
        for key in ("tax_amount", "base_tax_amount"):
            entry[key] = dec(entry.get(key) or 0) + row_tax
        entry["_fee_tax_outside"] = ZERO
    else:
        entry["_fee_tax_outside"] = row_tax
    if shown_in_price:
        for key in ("price_incl_tax", "base_price_incl_tax"):
            if entry.get(key) is not None:
                entry[key] = dec(entry[key]) + unit_total + unit_tax
        for key in ("row_total_incl_tax", "base_row_total_incl_tax"):
            if entry.get(key) is not None:
                entry[key] = dec(entry[key]) + row_total + row_tax
    return entry


def _four(value: Any) -> Decimal:
    return dec(value).quantize(FOUR, rounding=ROUND_HALF_UP)


def _wrapping_fields(prefix: str, price: Any, tax: Any) -> dict[str, Decimal]:
    """``<prefix>_price``, ``_tax_amount`` and ``_price_incl_tax`` with their base twins (``<prefix>_base_price`` …:
    Magento_GiftWrapping's names; base currency = order currency here)."""
    price, tax = cents(price), cents(tax)
    fields: dict[str, Decimal] = {}
    for name, value in (("price", price), ("tax_amount", tax), ("price_incl_tax", price + tax)):
        fields[f"{prefix}_{name}"] = fields[f"{prefix}_base_{name}"] = value
    return fields


def with_gift_wrapping(
    order: dict[str, Any],
    *,
    order_wrapping: tuple[int, Any, Any] | None = None,
    card: tuple[Any, Any] | None = None,
    items: Mapping[Any, tuple[int, Any, Any]] | None = None,
) -> dict[str, Any]:
    """``order`` with gift wrapping: ``order_wrapping`` = (gw_id, price, tax) for the whole order; ``card`` = (price,
    tax) of a printed card; ``items`` = {item_id: (gw_id, price per unit, tax per unit)}: the per-unit tax is kept
    to 4 decimals (as Magento stores it) and the order's ``gw_items_tax_amount`` is the rounded total."""
    extension = order.setdefault("extension_attributes", {})
    if order_wrapping is not None:
        design, price, tax = order_wrapping
        extension.update({"gw_id": design, **_wrapping_fields("gw", price, tax)})
    if card is not None:
        extension.update({"gw_add_card": True, **_wrapping_fields("gw_card", *card)})
    if items:
        price_total = tax_total = ZERO
        for entry in order["items"]:
            if entry["item_id"] not in items:
                continue
            design, price, tax = items[entry["item_id"]]
            qty = dec(entry["qty_ordered"])
            entry.setdefault("extension_attributes", {}).update(
                {
                    "gw_id": design,
                    "gw_base_price": cents(price),
                    "gw_price": cents(price),
                    "gw_base_tax_amount": _four(tax),
                    "gw_tax_amount": _four(tax),
                }
            )
            price_total += cents(price) * qty
            tax_total += _four(tax) * qty
        extension.update(_wrapping_fields("gw_items", price_total, cents(tax_total)))
    return order


def copy_fixed_taxes(parent: dict[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    """A configurable's (or bundle's) parent item as Magento_Weee leaves it: a copy of its child's fee list and
    per-unit amount, no row amount (``Weee::recalculateParent``)."""
    parent["weee_tax_applied"] = child["weee_tax_applied"]
    parent["weee_tax_applied_amount"] = parent["base_weee_tax_applied_amount"] = child["weee_tax_applied_amount"]
    parent["weee_tax_applied_row_amount"] = parent["base_weee_tax_applied_row_amnt"] = ZERO
    return parent


def extras(order: Mapping[str, Any]) -> tuple[Decimal, Decimal]:
    """(what the fees and the wrapping add to ``grand_total``, the tax in it that no item's ``tax_amount`` holds)."""
    added = taxed = ZERO
    for entry in order["items"]:
        if "_fee_tax_outside" in entry:  # an item given fees by with_fixed_taxes (not a parent's copy of them)
            added += dec(entry["weee_tax_applied_row_amount"]) + entry["_fee_tax_outside"]
            taxed += entry["_fee_tax_outside"]
    extension = order.get("extension_attributes") or {}
    for prefix in ("gw", "gw_items", "gw_card"):
        price, tax = extension.get(f"{prefix}_price"), extension.get(f"{prefix}_tax_amount")
        added += dec(price or 0) + dec(tax or 0)
        taxed += dec(tax or 0)
    return added, taxed


def settle_extras(order: dict[str, Any]) -> dict[str, Any]:
    """Add the fees and the wrapping (``extras``) to the order's ``grand_total``, ``tax_amount`` and what the payment
    is to take, as Adobe Commerce adds them (a free order that now costs something pays by check), and drop the
    builders' marks: the order is then exactly what Adobe Commerce sends. Call it once, last."""
    added, taxed = extras(order)
    order["grand_total"] = dec(order["grand_total"]) + added
    order["base_grand_total"] = order["grand_total"]
    order["tax_amount"] = dec(order.get("tax_amount") or 0) + taxed
    order["base_tax_amount"] = order["tax_amount"]
    payment = order.get("payment")
    if isinstance(payment, dict):
        payment["amount_ordered"] = order["grand_total"]
        if payment.get("method") == "free" and order["grand_total"] > 0:
            payment["method"] = "checkmo"
            payment["additional_information"] = ["Check / Money order"]
    for entry in order["items"]:
        entry.pop("_fee_tax_outside", None)
    return order
