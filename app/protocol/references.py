"""What a message is about: order numbers and SKUs it names, so operators can find it in the journal.

A message's ``refs`` column holds every reference it names, or — when it names MAX_REFERENCES or more (a FULL stock
page names thousands of SKUs) — the first MAX_REFERENCES of them, read from the params at ingest; whoever writes a
message keeps to that rule. Such a message is indexed in full after it is stored, off the ingest path: migration
0015's trigger queues it, app/workers/references.py fills ``message_refs`` with every reference of its payload,
read by the database function ``message_references`` (migration 0015), which applies the rules of
``extract_references`` below (tests/integration/test_journal_sku_search.py holds the two equal). A change to these
rules, or to MAX_REFERENCES, needs a migration that changes the function and the trigger alike.
"""

from __future__ import annotations

import sys
from typing import Any

MAX_REFERENCES = 200  # kept in ``refs`` at most (the rest are indexed after storing): migration 0015's trigger too
MAX_DEPTH = 8
MAX_REFERENCE_LENGTH = 200  # characters kept of a reference (a longer value is known by its first ones)
REFERENCE_KEYS = frozenset({"order_id", "increment_id", "order_number", "sku", "rma", "shipment_id", "shimpent_id"})
LIST_REFERENCE_KEYS = frozenset({"children_skus"})  # a list of references (a product's children)


def extract_references(params: dict[str, Any], limit: int | None = MAX_REFERENCES) -> list[str]:
    """Order ids, SKUs and similar keys found anywhere in ``params`` down to MAX_DEPTH, unique, in order, at most
    ``limit`` (None: all). A reference is the value of a REFERENCE_KEYS key, an item of a LIST_REFERENCE_KEYS
    list, or the ``id`` of an object that is the value of an ``order`` key; a text (stripped, its first
    MAX_REFERENCE_LENGTH characters; never empty) or an integer (not a boolean, not a fraction)."""
    found: dict[str, None] = {}
    cap = sys.maxsize if limit is None else limit

    def add(value: Any) -> None:
        if isinstance(value, str | int) and not isinstance(value, bool):
            text = str(value).strip()
            if text and len(found) < cap:
                found.setdefault(text[:MAX_REFERENCE_LENGTH], None)

    def walk(node: Any, depth: int) -> None:
        if depth > MAX_DEPTH or len(found) >= cap:
            return
        if isinstance(node, dict):
            for key, value in node.items():
                if key in REFERENCE_KEYS:
                    add(value)
                elif key == "order" and isinstance(value, dict):
                    add(value.get("id"))
                elif key in LIST_REFERENCE_KEYS and isinstance(value, list):
                    for item in value:
                        add(item)
                walk(value, depth + 1)
        elif isinstance(node, list):
            for item in node:
                walk(item, depth + 1)

    walk(params, 0)
    return list(found)
