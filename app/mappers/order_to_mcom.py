"""Adobe Commerce order → `magento.sales.order_management.create` params (mcom-protocol.md §3.3). Pure: no I/O.

Money rules (each one property-tested in tests/unit/test_order_money.py; FPT and gift wrapping in
tests/unit/test_order_fpt.py and tests/unit/test_order_gift_wrapping.py):
* one line per unit; a unit line's id is ``<item_id>-<n>`` (``unit_line_id``), so shipments, returns and refunds
  naming line ids map back to the Magento item and a quantity;
* per item: gross = row_total + tax + discount tax compensation - discount; tax = tax_amount; net = gross - tax;
  original = row_total_incl_tax (else price_incl_tax * qty, else gross + discount); promotion = original - gross.
  The units of an item add up exactly to those row amounts and differ by at most one cent (``money.split_row``);
* fixed product taxes (FPT, WEEE; read by ``fixed_taxes``) ride on the units of the item they belong to: each fee's
  row (and the tax on it, see "where the FPT's tax is") is split evenly over the units (each within one cent of
  the others) and added to their gross and tax, and each fee is its own ``taxes[]`` entry (type = the fee's title,
  rate 0) beside ``VAT`` (the item's tax, the tax on the fees included), so net stays the product's. A
  configurable's fees are its child's (Magento computes FPT on the simple; the parent holds a copy), a bundle's are
  its children's (the parent's are a copy). Where the FPT's tax is: Adobe Commerce puts it in the item's
  ``tax_amount`` (the rule), or leaves it out of every item (read as such when, and only when, the lines then add
  up to the order's total and otherwise do not). Whether ``row_total_incl_tax`` (the original price) shows the
  fees (the "including FPT" display settings) is read from the amounts: it does when it exceeds the product's gross
  plus the expected promotion (the discount, with its tax when the catalog prices exclude tax) by more than half
  the fees with their tax (that expectation is exact to a cent, so fees under 2 cents may be read either way: only
  the split between original price and promotion moves); the fees are then taken out of it. Either way the line's
  original price is the product's plus the fees with their tax;
* gift wrapping is lines of their own (``gift_wrapping``: one per wrapped unit, one for the order's wrapping, one
  for the printed card; product type ``GIFT_WRAPPING``), after the unit lines;
* the shipping charge is the ``SHIPPING`` line (its SKU is the shipping method code), the last line;
* configurable: the parent line carries the money, the child line the chosen simple SKU;
* bundle: the children are the unit lines (``parent_line_id`` = the bundle unit). Dynamic price (the children
  carry amounts): the children's amounts; fixed price: the parent's amounts shared in proportion to the
  children's ``original_price`` (equal when there is none);
* gift cards are tender: the redeemed amount is shared over every line (wrapping and shipping included) in
  proportion to its gross (a promotion entry ``GIFT_CARD`` that is *not* taken off ``gross_amount``) and paid by a
  ``GIFT_CARD`` transaction; store credit is a ``STORE_CREDIT`` transaction, reward points a ``REWARD_POINTS`` one;
* Σ gross of all lines = grand_total + gift cards + store credit + reward points = Σ payment transactions, or the
  order is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from app.mappers.fixed_taxes import NO_FIXED_TAXES, FixedTaxes, fixed_taxes
from app.mappers.gift_wrapping import DESIGN_ATTRIBUTE, GIFT_WRAPPING, WrappingLine, wrapped_unit_count, wrapping_lines
from app.mappers.mapping_error import MappingError
from app.mappers.money import RowAmounts, allocate, allocate_rows, quantum_for, split_row, to_quantum
from app.protocol.commerce_order import CommerceAddress, CommerceItem, CommerceOrder
from app.protocol.sourcing_rules import SHIP_TOGETHER

SHIPPING_LINE_ID = "SHIPPING"
GIFT_CARD_PROMOTION = "GIFT_CARD"
PHYSICAL, VIRTUAL, SHIPPING = "PHYSICAL", "VIRTUAL", "SHIPPING"
_VIRTUAL_TYPES = frozenset({"virtual", "downloadable"})

# A line-attribute plugin (entry-point group ``oms_connector.line_attributes``): called once per unit line with the
# order and the item as Adobe Commerce sent them and the line built so far; returns extra {attribute_code, value}.
LineAttributePlugin = Callable[[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]], Iterable[Mapping[str, Any]]]

_OFFLINE_METHODS = frozenset({"checkmo", "banktransfer", "cashondelivery", "purchaseorder"})


@dataclass(frozen=True)
class OrderMappingOptions:
    """What the mapping needs besides the order (from settings and the operators' tables; no I/O here)."""

    sales_channel: str = "default"
    store_channels: Mapping[str, str] = field(default_factory=dict)  # Magento store id → OMS sales channel
    bundle_sourcing_rules: Mapping[str, str] = field(default_factory=dict)  # bundle SKU → rule
    default_bundle_sourcing_rule: str = SHIP_TOGETHER
    line_attribute_plugins: Sequence[tuple[str, LineAttributePlugin]] = ()  # (name, function)
    max_lines: int = 1000  # OMS_MAX_ORDER_LINES: unit lines an order may map to (checked before any is built)


def unit_line_id(item_id: str, unit: int) -> str:
    """The MCOM line id of unit ``unit`` (1-based) of Magento order item ``item_id``."""
    return f"{item_id}-{unit}"


def item_of_line_id(line_id: str) -> tuple[str, int] | None:
    """(Magento item id, unit) of a unit line id; None for the SHIPPING line, a wrapping line, or an id this connector
    did not make."""
    item_id, sep, unit = line_id.rpartition("-")
    if not sep or not item_id or not unit.isdigit():
        return None
    return item_id, int(unit)


@dataclass
class _Unit:
    """One unit line before it is numbered and written out."""

    item: CommerceItem  # the item whose id the line carries (the configurable parent, a bundle child, …)
    unit: int
    sku: str
    name: str
    product_type: str
    money: RowAmounts
    tax_rate: Decimal
    discount_percent: Decimal
    backordered: bool
    parent_line_id: str | None = None
    attributes: list[dict[str, Any]] = field(default_factory=list)
    fees: FixedTaxes = NO_FIXED_TAXES  # this unit's share of the item's fixed product taxes (in ``money`` already)


def order_to_mcom(
    order: CommerceOrder, options: OrderMappingOptions, document: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The create call's params (``{"order": {…}}``), amounts as ``Decimal``. ``document`` is the order as
    received (handed to line-attribute plugins). Raises MappingError naming the field at fault."""
    lines = unit_line_count(order)
    if lines > options.max_lines:
        raise MappingError(
            "items",
            f"the order has {lines} units, one OMS line each; at most {options.max_lines} are accepted "
            "(OMS_MAX_ORDER_LINES)",
        )
    wrapped = wrapped_unit_count(order)
    if wrapped > options.max_lines:
        raise MappingError(
            "items",
            f"the order wraps {wrapped} units, one OMS line each; at most {options.max_lines} are accepted "
            "(OMS_MAX_ORDER_LINES)",
        )
    quantum = quantum_for(order.order_currency_code)
    units = _unit_lines(order, options, quantum, fee_tax_in_tax=True)
    wrappings = wrapping_lines(order, quantum)
    shipping = _shipping_amounts(order, quantum)
    has_physical = any(unit.product_type == PHYSICAL for unit in units)

    billing = order.billing_address
    if billing is None:
        raise MappingError("billing_address", "is required (the payment refers to it)")
    shipping_address = _shipping_address(order)
    if has_physical and shipping_address is None:
        raise MappingError(
            "extension_attributes.shipping_assignments",
            "a shipping address is required: the order has physical items",
        )
    billing_ref = billing.entity_id or "billing"
    shipping_ref = (shipping_address.entity_id or "shipping") if shipping_address is not None else None
    if shipping_ref == billing_ref and shipping_address is not billing:
        shipping_ref = f"{shipping_ref}-shipping"
    addresses = [_address(billing, billing_ref, order)]
    if shipping_address is not None and shipping_ref is not None:
        addresses.append(_address(shipping_address, shipping_ref, order))

    payment = order.payment
    if payment is None:
        raise MappingError("payment", "is required")
    payment_ref = payment.entity_id or "payment"

    charges = [wrapping.money.gross for wrapping in wrappings] + ([shipping.gross] if shipping is not None else [])
    lines_total = sum((unit.money.gross for unit in units), Decimal(0)) + sum(charges, Decimal(0))
    gift_cards = to_quantum(order.gift_card_total, quantum)
    store_credit = to_quantum(order.store_credit_total, quantum)
    reward_points = to_quantum(order.reward_points_total, quantum)
    grand_total = to_quantum(order.grand_total or Decimal(0), quantum)
    expected = grand_total + gift_cards + store_credit + reward_points
    fee_tax = sum((unit.fees.tax for unit in units), Decimal(0))
    if lines_total != expected and fee_tax and lines_total + fee_tax == expected:
        # The tax on the fixed product taxes is in no item's tax_amount (the store's totals say so): on top of it.
        units = _unit_lines(order, options, quantum, fee_tax_in_tax=False)
        lines_total += fee_tax
    if lines_total != expected:
        rewards = f" + reward points {reward_points}" if reward_points else ""
        fees = f" ({lines_total + fee_tax} with the fixed product taxes' tax on top)" if fee_tax else ""
        raise MappingError(
            "grand_total",
            f"the order's lines add up to {lines_total}{fees} but grand_total {grand_total} + gift cards"
            f" {gift_cards} + store credit {store_credit}{rewards} = {expected} (difference"
            f" {lines_total - expected}); the order holds amounts this connector cannot place on lines",
        )
    if grand_total < 0:
        raise MappingError("grand_total", "must not be negative")
    grosses = [unit.money.gross for unit in units] + charges
    gift_card_shares = allocate(gift_cards, grosses, quantum) if gift_cards else [Decimal(0)] * len(grosses)

    currency = order.order_currency_code.upper()
    common = {"shipping_address_reference": shipping_ref, "payment_reference": payment_ref}
    document_items = _document_items(document)
    lines: list[dict[str, Any]] = []
    for number, (unit, gift_card_share) in enumerate(zip(units, gift_card_shares, strict=False), start=1):
        line = _line(unit, number, currency, order, gift_card_share)
        line.update(common)
        if unit.product_type == VIRTUAL:
            line["shipping_address_reference"] = None
        line["custom_attributes"] += _plugin_attributes(
            options, document or {}, document_items.get(unit.item.item_id, {}), line
        )
        lines.append(line)
    for wrapping, gift_card_share in zip(wrappings, gift_card_shares[len(units) :], strict=False):
        lines.append(_wrapping_line(wrapping, len(lines) + 1, currency, gift_card_share, common, order))
    if shipping is not None:
        method = _shipping_method(order) or SHIPPING_LINE_ID
        lines.append(_shipping_line(shipping, len(lines) + 1, method, currency, gift_card_shares[-1], common, order))

    return {
        "order": {
            "id": order.increment_id,
            "store": options.store_channels.get(order.store_id or "", options.sales_channel),
            "status": None,
            "status_reason": None,
            "ip": order.remote_ip,
            "language": None,
            "vat_country": billing.country_id,
            "origin": "FRONTEND",
            "origin_date": _origin_date(order),
            "customer_service_agent": None,
            "customer": _customer(order),
            "addresses": addresses,
            "payments": [
                {
                    "reference": payment_ref,
                    "currency": currency,
                    "transactions": _transactions(
                        order,
                        grand_total,
                        [
                            ("STORE_CREDIT", store_credit, "customerbalance"),
                            ("REWARD_POINTS", reward_points, "reward"),
                            ("GIFT_CARD", gift_cards, "giftcardaccount"),
                        ],
                        billing_ref,
                    ),
                }
            ],
            "lines": lines,
            "custom_attributes": _order_attributes(order, quantum),
        }
    }


# --- unit lines ----------------------------------------------------------------------------------------------
def unit_line_count(order: CommerceOrder) -> int:
    """How many unit lines ``order`` maps to, counted without building any: a configurable's units are its
    parent's, a bundle's are its children's (``_unit_lines`` builds them the same way)."""
    kinds = {item.item_id: item.product_type.lower() for item in order.items}
    count = 0
    for item in order.items:
        parent_kind = kinds.get(item.parent_item_id) if item.parent_item_id is not None else None
        if parent_kind != "configurable" and item.product_type.lower() != "bundle":
            count += item.units
    return count


def _unit_lines(
    order: CommerceOrder, options: OrderMappingOptions, quantum: Decimal, *, fee_tax_in_tax: bool
) -> list[_Unit]:
    """The unit lines. ``fee_tax_in_tax``: the tax on the fixed product taxes is in the items' ``tax_amount``
    (else it is added on top of it)."""
    by_id: dict[str, tuple[int, CommerceItem]] = {}
    for index, item in enumerate(order.items):
        if item.item_id in by_id:
            raise MappingError(f"items[{index}].item_id", f"item {item.item_id} appears twice")
        by_id[item.item_id] = (index, item)
    children: dict[str, list[tuple[int, CommerceItem]]] = {}
    for index, item in enumerate(order.items):
        if item.parent_item_id is not None:
            if item.parent_item_id not in by_id:
                raise MappingError(f"items[{index}].parent_item_id", f"no item {item.parent_item_id} in the order")
            children.setdefault(item.parent_item_id, []).append((index, item))

    units: list[_Unit] = []
    for index, item in enumerate(order.items):
        kind = item.product_type.lower()
        parent = by_id.get(item.parent_item_id) if item.parent_item_id is not None else None
        if parent is not None and parent[1].product_type.lower() in ("configurable", "bundle"):
            continue  # exported through its parent
        own_children = children.get(item.item_id, [])
        if kind == "bundle":
            units.extend(_bundle_units(index, item, own_children, options, quantum, fee_tax_in_tax=fee_tax_in_tax))
        elif kind == "configurable":
            child_index, child = own_children[0] if own_children else (index, None)
            child_fees = fixed_taxes(child, f"items[{child_index}]", quantum) if child is not None else None
            fees = child_fees or fixed_taxes(item, f"items[{index}]", quantum)
            units.extend(_item_units(index, item, quantum, fees, fee_tax_in_tax, shown=child))
        else:
            fees = fixed_taxes(item, f"items[{index}]", quantum)
            units.extend(_item_units(index, item, quantum, fees, fee_tax_in_tax))
    if not units:
        raise MappingError("items", "the order has no item to export")
    return units


def _row_amounts(
    index: int, item: CommerceItem, quantum: Decimal, fees: FixedTaxes, fee_tax_in_tax: bool
) -> RowAmounts:
    """The item row's own amounts, its fixed product taxes (``fees``) left out of gross and tax (the units get
    them) but not of the promotion's reckoning: the promotion is the original price of the product alone less
    what the product alone costs."""
    qty = Decimal(item.units)
    row_total = item.row_total if item.row_total is not None else (item.price or Decimal(0)) * qty
    tax = to_quantum(item.tax_amount or Decimal(0), quantum)
    compensation = item.discount_tax_compensation_amount or Decimal(0)
    discount = abs(item.discount_amount or Decimal(0))
    gross = to_quantum(row_total + (item.tax_amount or Decimal(0)) + compensation - discount, quantum)
    if row_total < 0 or tax < 0:
        field_name = "row_total" if row_total < 0 else "tax_amount"
        raise MappingError(f"items[{index}].{field_name}", "must not be negative")
    if gross < 0:
        raise MappingError(
            f"items[{index}].discount_amount", f"the discount ({discount}) exceeds the row ({row_total})"
        )
    if tax > gross:
        raise MappingError(
            f"items[{index}].tax_amount", f"the tax ({tax}) exceeds the amount paid for the row ({gross})"
        )
    product = gross - fees.tax if fee_tax_in_tax else gross  # what the product itself costs, its tax included
    if item.row_total_incl_tax is not None:
        original = to_quantum(item.row_total_incl_tax, quantum)
    elif item.price_incl_tax is not None:
        original = to_quantum(item.price_incl_tax * qty, quantum)
    else:
        original = product + to_quantum(discount, quantum)
    if fees.gross and original - product - _expected_promotion(item, discount, compensation) > fees.gross / 2:
        original -= fees.gross  # the price shown "including FPT": the product's is without
    return RowAmounts(gross=gross, tax=tax, discount=max(original - product, Decimal(0)))


def _expected_promotion(item: CommerceItem, discount: Decimal, compensation: Decimal) -> Decimal:
    """What row_total_incl_tax exceeds the row's gross by when it holds no fixed product tax: the discount, plus
    its tax when the catalog prices exclude tax (no discount tax compensation then)."""
    if compensation:
        return discount
    return discount * (1 + (item.tax_percent or Decimal(0)) / 100)


def _carries_money(item: CommerceItem) -> bool:
    return any(value for value in (item.row_total, item.price, item.row_total_incl_tax, item.tax_amount))


def _item_units(
    index: int,
    item: CommerceItem,
    quantum: Decimal,
    fees: FixedTaxes,
    fee_tax_in_tax: bool,
    *,
    shown: CommerceItem | None = None,
    money: RowAmounts | None = None,
    parent_line: Callable[[int], str | None] = lambda _unit: None,
    attributes: Sequence[dict[str, Any]] = (),
    flags_from: CommerceItem | None = None,
) -> list[_Unit]:
    """``item``'s units, each with its share of ``fees`` (the row's fixed product taxes; their tax too unless
    ``fee_tax_in_tax``). ``shown``: the item whose SKU and name the lines show (a configurable's child); ``money``:
    the row amounts when they do not come from ``item`` itself (a fixed-price bundle's child)."""
    count = item.units
    row = money if money is not None else _row_amounts(index, item, quantum, fees, fee_tax_in_tax)
    shown = shown or item
    backordered = max(int(i.qty_backordered or 0) for i in (item, shown))
    product_type = _product_type(shown, item)
    rate = (flags_from.tax_percent if flags_from is not None and money is not None else item.tax_percent) or Decimal(0)
    percent = (flags_from if flags_from is not None and money is not None else item).discount_percent or Decimal(0)
    return [
        _Unit(
            item=item,
            unit=unit,
            sku=shown.sku,
            name=shown.name or item.name or shown.sku,
            product_type=product_type,
            money=_with_fees(amounts, unit_fees, fee_tax_in_tax),
            tax_rate=rate,
            discount_percent=percent,
            backordered=unit > count - backordered,
            parent_line_id=parent_line(unit),
            attributes=[dict(attribute) for attribute in attributes],
            fees=unit_fees,
        )
        for unit, (amounts, unit_fees) in enumerate(
            zip(split_row(row, count, quantum), fees.per_unit(count, quantum), strict=True), start=1
        )
    ]


def _with_fees(amounts: RowAmounts, fees: FixedTaxes, fee_tax_in_tax: bool) -> RowAmounts:
    """A unit's amounts with its fixed product taxes: in gross and in tax (the fees are taxes), net unchanged."""
    extra = fees.amount if fee_tax_in_tax else fees.gross
    return RowAmounts(gross=amounts.gross + extra, tax=amounts.tax + extra, discount=amounts.discount)


def _bundle_units(
    index: int,
    bundle: CommerceItem,
    children: list[tuple[int, CommerceItem]],
    options: OrderMappingOptions,
    quantum: Decimal,
    *,
    fee_tax_in_tax: bool,
) -> list[_Unit]:
    if not children:
        raise MappingError(f"items[{index}]", f"bundle {bundle.sku} has no child items in the order")
    rule = options.bundle_sourcing_rules.get(bundle.sku, options.default_bundle_sourcing_rule)
    attributes = [
        {"attribute_code": "bundle_sku", "value": bundle.sku},
        {"attribute_code": "sourcing_rule", "value": rule},
    ]
    bundles = bundle.units

    def parent_line_for(child: CommerceItem) -> Callable[[int], str | None]:
        per_bundle = child.units // bundles if child.units % bundles == 0 else child.units
        return lambda unit: unit_line_id(bundle.item_id, min(bundles, (unit - 1) // per_bundle + 1))

    fees = [fixed_taxes(child, f"items[{child_index}]", quantum) for child_index, child in children]
    dynamic = any(_carries_money(child) for _, child in children)
    if dynamic:
        shares: list[RowAmounts | None] = [None] * len(children)
    else:
        priced = all(child.original_price is not None for _, child in children)
        if priced and sum((child.original_price or Decimal(0) for _, child in children), Decimal(0)) > 0:
            weights = [(child.original_price or Decimal(0)) * child.units for _, child in children]
        else:  # a child without a price: equal shares (a price of 0 is kept: a free item of the bundle)
            weights = [Decimal(child.units) for _, child in children]
        all_fees = NO_FIXED_TAXES  # the bundle's row: its children's fees (the parent's own are a copy)
        for child_fees in fees:
            all_fees = all_fees.plus(child_fees)
        shares = list(allocate_rows(_row_amounts(index, bundle, quantum, all_fees, fee_tax_in_tax), weights, quantum))
    units: list[_Unit] = []
    for (child_index, child), share, child_fees in zip(children, shares, fees, strict=True):
        units.extend(
            _item_units(
                child_index,
                child,
                quantum,
                child_fees,
                fee_tax_in_tax,
                money=share,
                parent_line=parent_line_for(child),
                attributes=attributes,
                flags_from=bundle,
            )
        )
    return units


def _product_type(*candidates: CommerceItem) -> str:
    for candidate in candidates:
        kind = candidate.product_type.lower()
        if kind in _VIRTUAL_TYPES:
            return VIRTUAL
        if kind == "giftcard":  # a gift card is virtual unless the store says this one is a physical card
            return PHYSICAL if candidate.is_virtual is False else VIRTUAL
        if candidate.is_virtual:
            return VIRTUAL
    return PHYSICAL


# --- lines ---------------------------------------------------------------------------------------------------
def _price(amounts: RowAmounts, rate: Decimal, currency: str, fees: FixedTaxes = NO_FIXED_TAXES) -> dict[str, Any]:
    """The line's price; ``taxes``: ``VAT`` (the tax charged, on the product and on its fees) then one entry per
    fixed product tax in it (``fees``: type = the fee's title, rate 0), so they add up to ``tax_amount``."""
    fixed = [(title, amount) for title, amount in fees.fees if amount]
    vat = amounts.tax - sum((amount for _, amount in fixed), Decimal(0))
    taxes = [{"type": "VAT", "amount": vat, "rate": rate}] if vat or rate else []
    taxes += [{"type": title, "amount": amount, "rate": Decimal(0)} for title, amount in fixed]
    return {
        "net_amount": amounts.net,
        "gross_amount": amounts.gross,
        "tax_amount": amounts.tax,
        "tax_rate": rate,
        "taxes": taxes,
        "currency": currency,
    }


def _percentage(part: Decimal, whole: Decimal) -> Decimal:
    return (part * 100 / whole).quantize(Decimal("0.01")) if whole > 0 else Decimal(0)


def _promotions(
    amounts: RowAmounts, percent: Decimal, gift_card_share: Decimal, order: CommerceOrder, name: str
) -> dict[str, Any]:
    promotions: list[dict[str, Any]] = []
    if amounts.discount > 0:
        promotions.append(
            {
                "code": order.coupon_code or None,
                "name": order.discount_description or name,
                "discount": amounts.discount,
                "percentage": percent or _percentage(amounts.discount, amounts.original),
            }
        )
    if gift_card_share > 0:
        promotions.append(
            {
                "code": GIFT_CARD_PROMOTION,
                "name": "Gift card",
                "discount": gift_card_share,
                "percentage": _percentage(gift_card_share, amounts.gross),
            }
        )
    return {"original_price": amounts.original, "promotions": promotions}


def _line(unit: _Unit, number: int, currency: str, order: CommerceOrder, gift_card_share: Decimal) -> dict[str, Any]:
    attributes = list(unit.attributes)
    if unit.backordered:
        attributes.append({"attribute_code": "backordered", "value": True})
    return {
        "id": unit_line_id(unit.item.item_id, unit.unit),
        "line_number": number,
        "product_type": unit.product_type,
        "sku": unit.sku,
        "product_name": unit.name,
        "parent_line_id": unit.parent_line_id,
        "image_url": None,
        "product_url": None,
        "source_id": None,
        "amount": _price(unit.money, unit.tax_rate, currency, unit.fees),
        "status": None,
        "promotions_info": _promotions(unit.money, unit.discount_percent, gift_card_share, order, "Discount"),
        "pre_order_street_date": None,
        "source_location": None,
        "pickup_location": None,
        "custom_attributes": attributes,
    }


def _shipping_amounts(order: CommerceOrder, quantum: Decimal) -> RowAmounts | None:
    method = _shipping_method(order)
    amount = order.shipping_amount or Decimal(0)
    tax = order.shipping_tax_amount or Decimal(0)
    discount = abs(order.shipping_discount_amount or Decimal(0))
    compensation = order.shipping_discount_tax_compensation_amount or Decimal(0)
    if method is None and not (amount or tax):
        return None  # nothing shipped and nothing charged (a virtual order)
    gross = to_quantum(amount + tax + compensation - discount, quantum)
    tax = to_quantum(tax, quantum)
    if gross < 0:
        raise MappingError("shipping_discount_amount", "exceeds the shipping charge")
    if tax > gross:
        raise MappingError("shipping_tax_amount", f"the tax ({tax}) exceeds the shipping charge paid ({gross})")
    original = to_quantum(order.shipping_incl_tax, quantum) if order.shipping_incl_tax is not None else gross
    original = max(original, gross + to_quantum(discount, quantum)) if discount else original
    return RowAmounts(gross=gross, tax=tax, discount=max(original - gross, Decimal(0)))


def _shipping_line(
    amounts: RowAmounts,
    number: int,
    method: str,
    currency: str,
    gift_card_share: Decimal,
    common: Mapping[str, Any],
    order: CommerceOrder,
) -> dict[str, Any]:
    return {
        "id": SHIPPING_LINE_ID,
        "line_number": number,
        "product_type": SHIPPING,
        "sku": method,
        "product_name": order.shipping_description or "Shipping",
        "parent_line_id": None,
        "image_url": None,
        "product_url": None,
        "source_id": None,
        **common,
        "amount": _price(amounts, _charge_tax_rate(amounts, order), currency),
        "status": None,
        "promotions_info": _promotions(amounts, Decimal(0), gift_card_share, order, "Shipping discount"),
        "pre_order_street_date": None,
        "source_location": None,
        "pickup_location": None,
        "custom_attributes": [],
    }


def _wrapping_line(
    wrapping: WrappingLine,
    number: int,
    currency: str,
    gift_card_share: Decimal,
    common: Mapping[str, Any],
    order: CommerceOrder,
) -> dict[str, Any]:
    design = [{"attribute_code": DESIGN_ATTRIBUTE, "value": wrapping.design}] if wrapping.design is not None else []
    return {
        "id": wrapping.line_id,
        "line_number": number,
        "product_type": GIFT_WRAPPING,
        "sku": wrapping.sku,
        "product_name": wrapping.name,
        "parent_line_id": unit_line_id(*wrapping.wraps) if wrapping.wraps is not None else None,
        "image_url": None,
        "product_url": None,
        "source_id": None,
        **common,
        "amount": _price(wrapping.money, _charge_tax_rate(wrapping.money, order), currency),
        "status": None,
        "promotions_info": _promotions(wrapping.money, Decimal(0), gift_card_share, order, "Discount"),
        "pre_order_street_date": None,
        "source_location": None,
        "pickup_location": None,
        "custom_attributes": design,
    }


def _charge_tax_rate(amounts: RowAmounts, order: CommerceOrder) -> Decimal:
    """The order carries no tax rate for shipping or gift wrapping: an item's rate when it explains the tax to the
    cent (the usual case: taxed like the goods), else the effective rate (tax / net, 2 decimals)."""
    if not amounts.tax:
        return Decimal(0)
    for rate in sorted({item.tax_percent for item in order.items if item.tax_percent}, reverse=True):
        if abs(amounts.net * rate / 100 - amounts.tax) <= Decimal("0.01"):
            return rate
    return _percentage(amounts.tax, amounts.net)


def _shipping_method(order: CommerceOrder) -> str | None:
    for assignment in order.extension_attributes.shipping_assignments:
        if assignment.shipping is not None and assignment.shipping.method:
            return assignment.shipping.method
    return None


def _shipping_address(order: CommerceOrder) -> CommerceAddress | None:
    for assignment in order.extension_attributes.shipping_assignments:
        if assignment.shipping is not None and assignment.shipping.address is not None:
            return assignment.shipping.address
    return None


# --- order parts ---------------------------------------------------------------------------------------------
def _address(address: CommerceAddress, reference: str, order: CommerceOrder) -> dict[str, Any]:
    street = [line for line in address.street if line]
    return {
        "reference": reference,
        "address_type": "customer",
        "first_name": address.firstname or order.customer_firstname,
        "last_name": address.lastname or order.customer_lastname,
        "address1": street[0] if street else None,
        "address2": " ".join(street[1:]),
        "city": address.city,
        "state": address.region_code or address.region,
        "zip": address.postcode,
        "country_code": address.country_id,
        "phone": address.telephone,
        "email": address.email or order.customer_email,
    }


def _customer(order: CommerceOrder) -> dict[str, Any]:
    if order.customer_id and not order.customer_is_guest:
        return {"id": order.customer_id, "type": "REGISTERED", "segment": "B2C"}
    return {"id": "anonymous", "type": "GUEST", "segment": "B2C"}


def _payment_method(code: str) -> str:
    code = code.lower()
    if code == "free":
        return "ZEROPAY"
    if "paypal" in code:
        return "PAYPAL"
    if code in _OFFLINE_METHODS:
        return "OFFLINE"
    return code.upper()


def _transaction(
    method: str,
    submethod: str | None,
    amount: Decimal,
    processor: str,
    billing_ref: str,
    transaction_id: str | None = None,
) -> dict[str, Any]:
    return {
        "payment_method": method,
        "payment_submethod": submethod,
        "amount": amount,
        "billing_address_reference": billing_ref,
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


def _transactions(
    order: CommerceOrder, grand_total: Decimal, tenders: list[tuple[str, Decimal, str]], billing_ref: str
) -> list[dict[str, Any]]:
    """The payment method's transaction (grand_total), then one per tender the store took off grand_total (store
    credit, reward points, gift cards: method, amount, processor code)."""
    payment = order.payment
    assert payment is not None
    transactions = []
    if grand_total > 0 or not any(amount for _, amount, _ in tenders):
        transactions.append(
            _transaction(
                _payment_method(payment.method),
                payment.cc_type,
                grand_total,
                payment.method,
                billing_ref,
                payment.last_trans_id,
            )
        )
    for method, amount, processor in tenders:
        if amount:
            transactions.append(_transaction(method, None, amount, processor, billing_ref))
    return transactions


def _order_attributes(order: CommerceOrder, quantum: Decimal) -> list[dict[str, Any]]:
    accounts = [
        {"code": card.code, "amount": to_quantum(card.amount or Decimal(0), quantum)}
        for card in order.extension_attributes.gift_cards
    ]
    return [{"attribute_code": "gift_card_accounts", "value": accounts}] if accounts else []


def _origin_date(order: CommerceOrder) -> str:
    if not order.created_at:
        raise MappingError("created_at", "is required (it becomes the OMS order's origin_date)")
    text = order.created_at.strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise MappingError("created_at", f"is not a date and time: {order.created_at!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # Adobe Commerce stores and returns UTC
    return moment.isoformat()


def _document_items(document: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    items: dict[str, Mapping[str, Any]] = {}
    for item in (document or {}).get("items") or []:
        if isinstance(item, Mapping) and item.get("item_id") is not None:
            items[str(item["item_id"])] = item
    return items


def _plugin_attributes(
    options: OrderMappingOptions, order: Mapping[str, Any], item: Mapping[str, Any], line: Mapping[str, Any]
) -> list[dict[str, Any]]:
    extra: list[dict[str, Any]] = []
    for name, plugin in options.line_attribute_plugins:
        try:
            produced = list(plugin(order, item, line))
        except Exception as exc:
            raise LineAttributePluginFailed(name, f"raised {exc.__class__.__name__}: {exc}") from exc
        for pair in produced:
            if not isinstance(pair, Mapping) or not isinstance(pair.get("attribute_code"), str) or "value" not in pair:
                raise LineAttributePluginFailed(name, f"returned {pair!r}; expected {{attribute_code, value}}")
            extra.append({"attribute_code": pair["attribute_code"], "value": pair["value"]})
    return extra


class LineAttributePluginFailed(Exception):
    """A line-attribute plugin raised or returned something that is not {attribute_code, value} pairs."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"line-attribute plugin {name!r} {problem}")
        self.name = name
