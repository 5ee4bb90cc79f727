"""What a message is about: order numbers and SKUs it names, so operators can find it in the journal."""

from __future__ import annotations

from typing import Any

MAX_REFERENCES = 200  # a FULL stock page may name thousands of SKUs; the first ones are enough to find it
MAX_DEPTH = 8
REFERENCE_KEYS = frozenset({"order_id", "increment_id", "order_number", "sku", "rma", "shipment_id", "shimpent_id"})


def extract_references(params: dict[str, Any]) -> list[str]:
    """Order ids, SKUs and similar keys found anywhere in ``params`` (plus ``order.id``), unique, in order."""
    found: dict[str, None] = {}

    def add(value: Any) -> None:
        if isinstance(value, str | int) and not isinstance(value, bool):
            text = str(value).strip()
            if text and len(found) < MAX_REFERENCES:
                found.setdefault(text[:200], None)

    def walk(node: Any, depth: int, parent_key: str | None) -> None:
        if depth > MAX_DEPTH or len(found) >= MAX_REFERENCES:
            return
        if isinstance(node, dict):
            for key, value in node.items():
                if key in REFERENCE_KEYS or (parent_key == "order" and key == "id"):
                    add(value)
                walk(value, depth + 1, key)
        elif isinstance(node, list):
            for item in node:
                walk(item, depth + 1, parent_key)

    walk(params, 0, None)
    return list(found)
