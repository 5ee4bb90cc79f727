"""What the OMS told us, as Adobe Commerce REST request bodies (reference/magento-rest.md §3). Pure: no I/O.

Each body carries the effect's idempotency key in its comment (``[oms-connector <key>]``): a sender whose first
attempt may have succeeded without its answer arriving looks for the key in the order's shipments, credit memos or
comments before posting again (app/clients/commerce.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
    """Unit lines (one per unit) back to Magento items and quantities, in first-seen order; SHIPPING (None) is
    dropped."""
    counts: dict[str, int] = {}
    for item_id in item_ids:
        if item_id is not None:
            counts[item_id] = counts.get(item_id, 0) + 1
    return [ItemQuantity(item_id, qty) for item_id, qty in counts.items()]


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
    shipping still refundable. Nothing is returned to stock here: the OMS owns stock and sends it (#3)."""
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
