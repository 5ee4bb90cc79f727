"""Gift wrapping (Adobe Commerce's ``Magento_GiftWrapping``) as order lines of their own. Pure: no I/O.

Why lines of their own, like the ``SHIPPING`` line, and not a share of the wrapped unit's amounts: the OMS charges,
refunds and reports a line (mcom-protocol.md §3.3, §3.13: a refund names lines), so a wrapping that is a line can be
refunded without the product (or the product without the wrapping), a unit line keeps the product's own price and
tax, and the order's wrapping and printed card, which belong to no unit, are placed the same way. Every wrapping line
has product type ``GIFT_WRAPPING``:

* ``GIFT_WRAPPING_<item_id>_<n>`` (SKU ``GIFT_WRAPPING``): the wrapping of unit ``n`` of a wrapped item;
  ``parent_line_id`` is that unit's line id (``<item_id>-<n>``). The order's ``gw_items_price`` and
  ``gw_items_tax_amount`` (what ``grand_total`` holds) are shared over the wrapped units in proportion to each
  item's per-unit ``gw_price`` + ``gw_tax_amount`` (equal when none is given), cent-exact: the per-unit amounts
  Adobe Commerce stores have 4 decimals, the order's totals are what was charged. Without the order's totals, the
  items' per-unit amounts * qty are the totals. An item total that no item claims is one ``GIFT_WRAPPING_ITEMS``
  line;
* ``GIFT_WRAPPING`` (SKU ``GIFT_WRAPPING``): the wrapping of the whole order (``gw_price``, ``gw_tax_amount``);
* ``PRINTED_CARD`` (SKU ``PRINTED_CARD``): the printed card (``gw_card_price``, ``gw_card_tax_amount``).

A price is the ``gw_*_price`` field, else ``gw_*_price_incl_tax`` - the tax. A wrapping is a line when it is
charged or chosen (``gw_id`` set, ``gw_add_card`` true) — a free wrapping still tells the warehouse to wrap. The
design chosen (``gw_id``) is the line's custom attribute ``gift_wrapping_id``. Only top-level items are wrapped, as
Adobe Commerce wraps them (a configurable's or bundle's wrapping is on the parent item). Wrapping is never
discounted by Adobe Commerce: the lines carry no promotion but their share of a gift card.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from app.mappers.mapping_error import MappingError
from app.mappers.money import RowAmounts, allocate_rows, to_quantum
from app.protocol.commerce_order import CommerceItem, CommerceOrder

GIFT_WRAPPING = "GIFT_WRAPPING"  # the product type of every wrapping line; SKU and id of the order's wrapping
PRINTED_CARD = "PRINTED_CARD"  # SKU and id of the printed card's line
ITEMS_WRAPPING_LINE_ID = "GIFT_WRAPPING_ITEMS"  # item wrapping the order charges but no item claims
DESIGN_ATTRIBUTE = "gift_wrapping_id"
_ZERO = Decimal(0)


def item_wrapping_line_id(item_id: str, unit: int) -> str:
    """The line id of the wrapping of unit ``unit`` (1-based) of item ``item_id``: no ``-<n>`` ending, so it is never
    read back as a Magento item's unit (``item_of_line_id``; the order-line table's item id)."""
    return f"{GIFT_WRAPPING}_{item_id}_{unit}"


@dataclass(frozen=True)
class WrappingLine:
    """One wrapping charge before it is numbered and written out."""

    line_id: str
    sku: str
    name: str
    money: RowAmounts
    wraps: tuple[str, int] | None = None  # (item id, unit) of the wrapped unit
    design: str | None = None  # Adobe Commerce's gw_id


def wrapping_lines(order: CommerceOrder, quantum: Decimal) -> list[WrappingLine]:
    """The order's wrapping lines: the wrapped units' (in item order), then the order's, then the printed card's.
    Raises MappingError naming a negative amount."""
    lines = _item_wrappings(order, quantum)
    whole = _charge(order, "gw", quantum)
    if whole.gross or order.wrapping("gw_id") is not None:
        lines.append(WrappingLine(GIFT_WRAPPING, GIFT_WRAPPING, "Gift wrapping", whole, design=order.wrapping("gw_id")))
    card = _charge(order, "gw_card", quantum)
    if card.gross or order.wrapping("gw_add_card"):
        lines.append(WrappingLine(PRINTED_CARD, PRINTED_CARD, "Printed card", card))
    return lines


def wrapped_unit_count(order: CommerceOrder) -> int:
    """How many wrapping lines the order's wrapped items map to (one per unit), counted without building any."""
    return sum(item.units for item in order.items if _is_wrapped(item))


def _is_wrapped(item: CommerceItem) -> bool:
    return item.parent_item_id is None and bool(
        item.wrapping("gw_price") or item.wrapping("gw_tax_amount") or item.wrapping("gw_id") is not None
    )


def _item_wrappings(order: CommerceOrder, quantum: Decimal) -> list[WrappingLine]:
    wrapped: list[tuple[CommerceItem, Decimal]] = []  # (item, its per-unit wrapping with tax: the share's weight)
    items_price = items_tax = _ZERO
    for index, item in enumerate(order.items):
        price, tax = item.wrapping("gw_price"), item.wrapping("gw_tax_amount")
        for name, value in (("gw_price", price), ("gw_tax_amount", tax)):
            if value is not None and value < 0:
                raise MappingError(f"items[{index}].extension_attributes.{name}", "must not be negative")
        if not _is_wrapped(item):
            continue
        wrapped.append((item, (price or _ZERO) + (tax or _ZERO)))
        items_price += (price or _ZERO) * item.units
        items_tax += (tax or _ZERO) * item.units
    given = any(order.wrapping(f"gw_items_{name}") is not None for name in ("price", "tax_amount", "price_incl_tax"))
    if given:
        total = _charge(order, "gw_items", quantum)
    else:
        tax = to_quantum(items_tax, quantum)
        total = RowAmounts(gross=to_quantum(items_price, quantum) + tax, tax=tax, discount=_ZERO)
    if not wrapped:
        if not total.gross:
            return []
        return [WrappingLine(ITEMS_WRAPPING_LINE_ID, GIFT_WRAPPING, "Gift wrapping (items)", total)]
    units = [(item, unit, weight) for item, weight in wrapped for unit in range(1, item.units + 1)]
    shares = allocate_rows(total, [weight for _, _, weight in units], quantum)
    return [
        WrappingLine(
            item_wrapping_line_id(item.item_id, unit),
            GIFT_WRAPPING,
            "Gift wrapping",
            share,
            wraps=(item.item_id, unit),
            design=item.wrapping("gw_id"),
        )
        for (item, unit, _), share in zip(units, shares, strict=True)
    ]


def _charge(order: CommerceOrder, prefix: str, quantum: Decimal) -> RowAmounts:
    """``<prefix>_price`` (else ``<prefix>_price_incl_tax`` - tax) and ``<prefix>_tax_amount`` as row amounts."""
    price = order.wrapping(f"{prefix}_price")
    tax_amount = order.wrapping(f"{prefix}_tax_amount")
    incl_tax = order.wrapping(f"{prefix}_price_incl_tax")
    tax = to_quantum(tax_amount or _ZERO, quantum)
    if price is not None:
        net = to_quantum(price, quantum)
    elif incl_tax is not None:
        net = to_quantum(incl_tax, quantum) - tax
    else:
        net = _ZERO
    for name, value in ((f"{prefix}_price", net), (f"{prefix}_tax_amount", tax)):
        if value < 0:
            raise MappingError(f"extension_attributes.{name}", "must not be negative")
    return RowAmounts(gross=net + tax, tax=tax, discount=_ZERO)
