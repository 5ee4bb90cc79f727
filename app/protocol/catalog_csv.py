"""Rows of a Magento product-import CSV (System > Data Transfer > Import, entity "Products") as catalog entries.
Pure: no I/O.

Columns read: ``sku``, ``name``, ``product_type``, ``product_online`` (1/0), every configured attribute either as
its own column or inside ``additional_attributes`` (``code=value,code=value``), ``configurable_variations``
(``sku=A,color=Red|sku=B,color=Blue``) and ``bundle_values`` (``name=…,type=…,sku=MAT-01,…|…``). Each row either
becomes an entry or names what is wrong with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from app.mappers.product_to_mcom import CatalogEntry
from app.protocol.commerce_product import MAX_SKU, TYPES

REQUIRED_COLUMNS = ("sku",)
SEPARATOR = "|"  # between variations / bundle selections


@dataclass(frozen=True)
class RowError:
    row: int  # 1-based data row number (the header is row 0)
    field: str
    message: str


def _pairs(text: str) -> dict[str, str]:
    """``a=1,b=2`` → {"a": "1", "b": "2"}; a value may not hold a comma (Magento's own format)."""
    pairs: dict[str, str] = {}
    for part in text.split(","):
        code, sep, value = part.partition("=")
        if sep and code.strip():
            pairs[code.strip()] = value.strip()
    return pairs


def _children(text: str) -> list[str]:
    skus: list[str] = []
    for part in text.split(SEPARATOR):
        sku = _pairs(part).get("sku", "")
        if sku and sku not in skus:
            skus.append(sku)
    return skus


def row_entry(
    number: int, row: Mapping[str, str], attributes: Sequence[str], existing_type: str | None = None
) -> CatalogEntry | RowError:
    """One data row; ``existing_type`` is the stored type of the SKU (a row may leave ``product_type`` empty to
    update a product the catalog has)."""
    sku = (row.get("sku") or "").strip()
    if not sku:
        return RowError(number, "sku", "missing")
    if len(sku) > MAX_SKU or not sku.isprintable():
        return RowError(number, "sku", f"longer than {MAX_SKU} characters or unprintable")
    if any("\udc80" <= ch <= "\udcff" for value in row.values() if value for ch in value):
        return RowError(number, "encoding", "not UTF-8")
    kind = (row.get("product_type") or "").strip() or existing_type or ""
    if kind not in TYPES:
        return RowError(number, "product_type", f"unknown product type {kind!r} (one of {', '.join(TYPES)})")
    online = (row.get("product_online") or "1").strip()
    if online not in ("0", "1"):
        return RowError(number, "product_online", f"must be 1 or 0, not {online!r}")
    extra = _pairs(row.get("additional_attributes") or "")
    values: dict[str, str] = {}
    for code in attributes:
        value = row.get(code)
        if value is None or value == "":
            value = extra.get(code)
        if value is not None and value != "":
            values[code] = value
    if kind == "configurable":
        children = _children(row.get("configurable_variations") or "")
    elif kind == "bundle":
        children = _children(row.get("bundle_values") or "")
    else:
        children = []
    return CatalogEntry(
        sku=sku,
        type=kind,
        name=(row.get("name") or "").strip(),
        enabled=online == "1",
        children_skus=children,
        custom_attributes=values,
    )
