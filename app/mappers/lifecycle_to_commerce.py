"""What the OMS told us, as Adobe Commerce REST request bodies (reference/magento-rest.md §3). Pure: no I/O.

Each body carries the effect's idempotency key in its comment (``[oms-connector <key>]``): a sender whose first
attempt may have succeeded without its answer arriving looks for the key in the order's shipments, credit memos or
comments before posting again (app/clients/commerce.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

# Statuses that belong to a state Adobe Commerce reaches through an action (hold, ship + invoice, refund, cancel),
# not through a comment: the comments route would set them on an order in the wrong state. A status change mapped to
# one of them is delivered as a comment without a status; the matching action (a shipment, the cancel) moves it.
STATE_STATUSES = frozenset({"holded", "complete", "closed", "canceled"})
KNOWN_CARRIERS = frozenset({"dhl", "ups", "usps", "fedex"})


@dataclass(frozen=True)
class ItemQuantity:
    item_id: str
    qty: int


def marker(key: str) -> str:
    return f"[oms-connector {key}]"


def item_quantities(item_ids: Iterable[str | None]) -> list[ItemQuantity]:
    """Unit lines (one per unit) back to Magento items and quantities, in first-seen order; a line without an item
    (None: SHIPPING, a gift wrapping, the printed card) is dropped."""
    counts: dict[str, int] = {}
    for item_id in item_ids:
        if item_id is not None:
            counts[item_id] = counts.get(item_id, 0) + 1
    return [ItemQuantity(item_id, qty) for item_id, qty in counts.items()]


@dataclass(frozen=True)
class RefundedLine:
    """A refunded line that Adobe Commerce invoiced (the caller decides which): a unit line of item ``item_id``, or a
    line without a product (``item_id`` None: the SHIPPING line when ``shipping``, else a gift wrapping or the printed
    card), with the amount the OMS refunded for it."""

    line_id: str
    item_id: str | None
    amount: Decimal
    shipping: bool = False


def credit_memo(lines: Sequence[RefundedLine], *, appeasement: bool, anchor_item: str | None) -> dict[str, Any]:
    """The credit memo of ``lines`` as the connector records it (``items`` with the line ids each took,
    ``shipping_amount``, ``adjustment_positive``, ``total``: the amounts refunded), ``refund_body``'s arguments.

    * A return: the unit lines are items and quantities (Adobe Commerce refunds their price itself), the SHIPPING
      line's amount is ``shipping_amount``, and a gift wrapping's or printed card's amount, which belongs to no item
      and has no argument of its own, is in ``adjustment_positive``.
    * An appeasement: every unit's item at quantity 0 (the lines stay returnable) and every amount, the charges'
      too, in ``adjustment_positive``; ``shipping_amount`` 0 (the shipping is not taken back, money is given).

    Charges alone still name an item, ``anchor_item`` (one Adobe Commerce invoiced) at quantity 0: a credit memo
    naming no item refunds every item left. Amounts are summed as given (Decimal, exact). Raises ValueError for no
    line, or charges alone without an anchor."""
    if not lines:
        raise ValueError("a credit memo needs a refunded line")
    units = [line for line in lines if line.item_id is not None]
    items = [
        {
            "item_id": quantity.item_id,
            "qty": 0 if appeasement else quantity.qty,
            "line_ids": [line.line_id for line in units if line.item_id == quantity.item_id],
        }
        for quantity in item_quantities(line.item_id for line in units)
    ]
    if not items:
        if anchor_item is None:
            raise ValueError("a credit memo of charges alone needs an invoiced item to name at quantity 0")
        items = [{"item_id": anchor_item, "qty": 0, "line_ids": []}]
    zero = Decimal(0)
    products = sum((line.amount for line in units), zero)
    shipping = sum((line.amount for line in lines if line.item_id is None and line.shipping), zero)
    other = sum((line.amount for line in lines if line.item_id is None and not line.shipping), zero)
    total = products + shipping + other
    return {
        "items": items,
        "shipping_amount": zero if appeasement else shipping,
        "adjustment_positive": total if appeasement else other,
        "total": total,
    }


def _item_id(value: str) -> int | str:
    return int(value) if value.isascii() and value.isdigit() else value


def items_body(items: Iterable[ItemQuantity]) -> list[dict[str, Any]]:
    return [{"order_item_id": _item_id(item.item_id), "qty": item.qty} for item in items]


def comment_body(
    *, oms_status: str, reason: str | None, commerce_status: str | None, key: str, note: str | None = None
) -> dict[str, Any]:
    text = f"OMS status: {oms_status}" + (f" ({reason})" if reason else "")
    if note:
        text += f". {note}"
    history: dict[str, Any] = {
        "comment": f"{text} {marker(key)}",
        "is_customer_notified": 0,
        "is_visible_on_front": 0,
    }
    if commerce_status and commerce_status not in STATE_STATUSES:
        history["status"] = commerce_status
    return {"statusHistory": history}


def note_body(text: str, key: str) -> dict[str, Any]:
    """A plain order comment (e.g. store credit issued), keeping the order's status."""
    return {"statusHistory": {"comment": f"{text} {marker(key)}", "is_customer_notified": 0, "is_visible_on_front": 0}}


def carrier_code(carrier: str) -> str:
    code = carrier.strip().lower()
    return code if code in KNOWN_CARRIERS else "custom"


def ship_body(
    *,
    items: Iterable[ItemQuantity],
    packages: Iterable[Mapping[str, Any]],
    source_id: str | None,
    key: str,
    notify: bool,
) -> dict[str, Any]:
    tracks = [
        {
            "track_number": package["tracking_number"],
            "title": package.get("carrier") or "Carrier",
            "carrier_code": carrier_code(package.get("carrier") or ""),
        }
        for package in packages
        if package.get("tracking_number")
    ]
    origin = f" from {source_id}" if source_id else ""
    return {
        "items": items_body(items),
        "notify": notify,
        "appendComment": False,  # the marker is for us, not for the customer's e-mail
        "comment": {"comment": f"Shipped{origin} (OMS) {marker(key)}", "is_visible_on_front": 0},
        "tracks": tracks,
    }


def invoice_body(*, items: Iterable[ItemQuantity], key: str) -> dict[str, Any]:
    """An offline invoice (``capture: false``): the OMS has the money side; the invoice makes refunds possible."""
    return {
        "capture": False,
        "items": items_body(items),
        "notify": False,
        "appendComment": False,
        "comment": {"comment": f"Invoiced on shipment (OMS) {marker(key)}", "is_visible_on_front": 0},
    }


def refund_body(
    *,
    items: Iterable[ItemQuantity],
    shipping_amount: Decimal,
    adjustment_positive: Decimal,
    reason: str,
    key: str,
    notify: bool,
) -> dict[str, Any]:
    """An offline credit memo. ``shipping_amount`` is always given: left out, Adobe Commerce refunds all the
    shipping still refundable. ``items`` should name an item (quantity 0 will do): without any, Adobe Commerce
    refunds every item left (``credit_memo`` sees to it). Nothing is returned to stock here: the OMS owns stock and
    sends it (#3)."""
    return {
        "items": items_body(items),
        "notify": notify,
        "appendComment": False,
        "comment": {"comment": f"{reason} (OMS) {marker(key)}", "is_visible_on_front": 0},
        "arguments": {
            "shipping_amount": shipping_amount,
            "adjustment_positive": adjustment_positive,
            "adjustment_negative": Decimal(0),
        },
    }
