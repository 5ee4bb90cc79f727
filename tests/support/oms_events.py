"""The OMS's lifecycle calls, built from the create params the connector sent, in the shapes the known peers use
(reference/mcom-protocol.md §3.5, 3.6, 3.12, 3.13): Go echoes the create for updates and spells ``shimpent_id``;
PHP sends numbers as strings and an empty ``shipment_id``."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

UPDATED = "magento.sales.order_management.updated"
CREATED = "magento.sales.order_management.created"
SHIPMENT_DONE = "magento.logistics.fulfillment_management.customer_shipment_done"
RETURN_UPDATED = "magento.postsales.return_management.updated"
REFUND_UPDATED = "magento.postsales.refund_management.updated"
RETURN_AUTHORIZE = "magento.postsales.return_management.authorize"

# The Go peer's sequence after a create (protocol §4), the shipment coming after COMPLETE.
GO_STATUSES = [
    ("RECEIVED", "IMPORTED"),
    ("ONHOLD", "PENDINGREMORSETIME"),
    ("LOGISTICS", "READYTOSHIP"),
    ("LOGISTICSCOMPLETE", "FULLYSHIPPED"),
    ("COMPLETE", "FULLYSHIPPED"),
]


def product_lines(order: dict[str, Any], ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
    wanted = None if ids is None else set(ids)
    return [
        line
        for line in order["lines"]
        if line["product_type"] != "SHIPPING" and (wanted is None or line["id"] in wanted)
    ]


def status_update(order: dict[str, Any], status: str, reason: str = "") -> dict[str, Any]:
    """Go style: the create params with the status overwritten."""
    return {"order": {**copy.deepcopy(order), "status": status, "status_reason": reason}}


def shipment_done(
    order: dict[str, Any],
    line_ids: Iterable[str] | None = None,
    *,
    shipment_id: str = "",
    shimpent_id: str = "",
    source_id: str = "WAREHOUSE_1",
    carrier: str = "DHL ",
    tracking_number: str = "00340434161094042557",
    php: bool = False,
) -> dict[str, Any]:
    lines = product_lines(order, line_ids)

    def number(line: dict[str, Any]) -> Any:
        return str(line["line_number"]) if php else int(line["line_number"])

    return {
        "shipment": {
            "shipment_id": shipment_id,
            **({"shimpent_id": shimpent_id} if shimpent_id else {}),
            "order_id": order["id"],
            "store_id": order.get("store", ""),
            "source_id": source_id,
            "method": "STANDARD",
            "shipment_date": "2025-02-11 14:05:09+01:00",
            "items": [
                {
                    "order_line_id": line["id"],
                    "order_line_number": number(line),
                    "sku": line["sku"],
                    "name": line.get("product_name", ""),
                    "item_type": "" if php else line["product_type"],
                }
                for line in lines
            ],
            "packages": [
                {
                    "id": shimpent_id or "",
                    "items": [number(line) for line in lines],
                    "carrier": carrier,
                    "tracking_number": tracking_number,
                    "tracking_link": f"https://tracking.example/{tracking_number}",
                    "tracking_comment": "handed to the carrier",
                }
            ],
        }
    }


def return_update(
    order: dict[str, Any], rma: str, status: str, lines: Iterable[dict[str, Any]], reason: str = "DAMAGED"
) -> dict[str, Any]:
    return {
        "return": {
            "rma": rma,
            "order_id": order["id"],
            "sales_channel_id": order.get("store", ""),
            "source_id": "WH-BERLIN-01",
            "status": {"code": status, "name": status, "date": "2025-02-14T10:12:44+01:00"},
            "return_tracking_number": "RT7781204455DE",
            "return_tracking_carrier": "DHL",
            "lines": [
                {
                    "id": line["id"],
                    "line_number": str(line["line_number"]),
                    "sku": line["sku"],
                    "reason": reason,
                    "status": status,
                }
                for line in lines
            ],
        }
    }


def refund_update(
    order: dict[str, Any],
    credit_note_number: str,
    lines: Iterable[dict[str, Any]],
    *,
    refund_type: str = "Return",
    rma: str = "",
    gross: str | None = None,
) -> dict[str, Any]:
    """PHP style: amounts as strings; each line refunds its own gross amount unless ``gross`` is given."""
    return {
        "refund": {
            "rma": rma,
            "order_id": order["id"],
            "credit_note_number": credit_note_number,
            "credit_note_date": "2025-02-14T10:12:45+01:00",
            "refund_type": refund_type,
            "refund_reason": "RELEASESUCCESS",
            "status": {"code": "RELEASED", "name": "RELEASED"},
            "lines": [
                {
                    "order_item_id": line["id"],
                    "order_line": str(line["line_number"]),
                    "payments": [
                        {
                            "details": {
                                "cost_gross": gross if gross is not None else str(line["amount"]["gross_amount"]),
                                "vat_rate": "19",
                            }
                        }
                    ],
                }
                for line in lines
            ],
        }
    }
