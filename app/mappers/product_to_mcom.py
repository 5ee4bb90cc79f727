"""Products as ``magento.catalog.product_management.updated`` params (protocol §3.9). Pure: no I/O.

The seed's SKU types: simple (stock), virtual (no managed stock), bundle (no stock of its own; its selections are
its children), configurable (its simple children), grouped (for sourcing). A deleted product is exported disabled,
so the OMS keeps it for the orders that hold it. ``fingerprint`` is what change detection compares: a product is
exported again only when the params the OMS receives change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.protocol.references import MAX_REFERENCES

PRODUCT_UPDATED = "magento.catalog.product_management.updated"
SHIPPING_METHOD_TYPE = "virtual"  # a shipping method is sold as a line, never stocked


@dataclass(frozen=True)
class CatalogEntry:
    """What the connector keeps of a product: the fields the OMS receives, all attributes (the configured list can
    change), whether the store deleted it, and its names in other locales (locale → name: CSV store-view rows)."""

    sku: str
    type: str
    name: str
    enabled: bool
    children_skus: Sequence[str]
    custom_attributes: Mapping[str, str]
    deleted: bool = False
    localized_names: Mapping[str, str] = field(default_factory=dict)


def product_params(entry: CatalogEntry, attributes: Sequence[str], locale: str) -> dict[str, Any]:
    """The ``params`` of the call; only the configured ``attributes`` the product has, in the configured order.
    ``name[]``: the name in ``locale``, then the localized names in code point order of their locale (the one of
    ``locale`` itself left out: the default name is that locale's)."""
    return {
        "product": {
            "type": entry.type,
            "sku": entry.sku,
            "name": [
                {"value": entry.name, "locale": locale},
                *(
                    {"value": name, "locale": other}
                    for other, name in sorted(entry.localized_names.items())
                    if other != locale
                ),
            ],
            "enabled": entry.enabled and not entry.deleted,
            "custom_attributes": [
                {"attribute_code": code, "value": entry.custom_attributes[code]}
                for code in attributes
                if code in entry.custom_attributes
            ],
            "children_skus": list(entry.children_skus) if entry.type in ("configurable", "bundle", "grouped") else [],
        }
    }


def product_references(params: Mapping[str, Any]) -> list[str]:
    """What the journal finds a product's export by (its ``refs``): the SKUs ``params`` name — the product's, then
    its children's — up to MAX_REFERENCES (a message that names more is indexed in full once stored), without walking
    the params as extract_references does."""
    product = params["product"]
    return list(dict.fromkeys([product["sku"], *product["children_skus"]]))[:MAX_REFERENCES]


def shipping_method_entry(code: str, name: str, *, enabled: bool = True) -> CatalogEntry:
    """A shipping method as a catalog product: its SKU is the method code the order's SHIPPING line carries."""
    return CatalogEntry(sku=code, type=SHIPPING_METHOD_TYPE, name=name, enabled=enabled, children_skus=(),
                        custom_attributes={})  # fmt: skip


def encode(params: Mapping[str, Any]) -> str:
    """The params as the compact JSON text that is sent. ``product_params`` builds its keys in one fixed order, so
    the same product always gives the same text."""
    return json.dumps(params, separators=(",", ":"), ensure_ascii=False)


def fingerprint(params: Mapping[str, Any] | str) -> str:
    """The digest change detection compares: of the encoded params (pass the text when it is at hand)."""
    text = params if isinstance(params, str) else encode(params)
    return hashlib.sha256(text.encode()).hexdigest()
