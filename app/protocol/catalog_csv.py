"""Rows of a Magento product-import CSV (System > Data Transfer > Import, entity "Products") as catalog entries.
Pure: no I/O.

Columns read: ``sku``, ``store_view_code``, ``name``, ``product_type``, ``product_online`` (1/0), every configured
attribute either as its own column or inside ``additional_attributes`` (``code=value,code=value``),
``configurable_variations`` (``sku=A,color=Red|sku=B,color=Blue``) and ``bundle_values``
(``name=…,type=…,sku=MAT-01,…|…``).

Magento's import semantics: a row updates the product as it stands (the catalog's, or as earlier rows of the file
left it) and an empty cell means "no change" (``__EMPTY__VALUE__`` empties an attribute). The default row (empty
``store_view_code``) sets the global values; a store-view row overrides that view only, so it never changes a
global value: the OMS keeps one type, status and attribute value per product. A store-view row's ``name`` becomes
that view's locale entry of ``name[]`` when the view has a locale (OMS_STORE_VIEW_LOCALES); every value of a
store-view row that is not applied is reported as skipped. Each row becomes an entry, or names what is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from app.mappers.product_to_mcom import CatalogEntry
from app.protocol.commerce_product import MAX_SKU, TYPES

REQUIRED_COLUMNS = ("sku",)
STORE_VIEW_COLUMN = "store_view_code"
SEPARATOR = "|"  # between variations / bundle selections
EMPTY_VALUE = "__EMPTY__VALUE__"  # Magento's "empty attribute value constant": the attribute is emptied


@dataclass(frozen=True)
class RowError:
    row: int  # 1-based data row number (the header is row 0)
    field: str
    message: str


@dataclass(frozen=True)
class RowSkipped:
    """A value of a good row that is not applied, and why (reported, never dropped silently)."""

    row: int
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


def row_sku(row: Mapping[str, str]) -> str:
    return (row.get("sku") or "").strip()


def row_store_view(row: Mapping[str, str]) -> str:
    """The row's store view code; empty for the default (global) row."""
    return (row.get(STORE_VIEW_COLUMN) or "").strip()


def unreadable_row(number: int, row: Mapping[str, str]) -> RowError | None:
    """Why a row cannot be read at all (no usable SKU, a cell that is not UTF-8 or holds NUL, which PostgreSQL
    text cannot store), checked before anything of it reaches the database; None when it can."""
    for column, value in row.items():
        if not value:
            continue
        if any("\udc80" <= ch <= "\udcff" for ch in value):  # the file is read with errors="surrogateescape"
            return RowError(number, "encoding", f"column {column!r} is not UTF-8")
        if "\x00" in value:
            return RowError(number, "encoding", f"column {column!r} contains a NUL byte")
    sku = row_sku(row)
    if not sku:
        return RowError(number, "sku", "missing")
    if len(sku) > MAX_SKU or not sku.isprintable():
        return RowError(number, "sku", f"longer than {MAX_SKU} characters or unprintable")
    return None


def _attribute_cells(row: Mapping[str, str], attributes: Sequence[str]) -> dict[str, str]:
    """The configured attributes the row gives a value (own column first, else ``additional_attributes``)."""
    extra = _pairs(row.get("additional_attributes") or "")
    values: dict[str, str] = {}
    for code in attributes:
        value = row.get(code)
        if value is None or value == "":
            value = extra.get(code)
        if value is not None and value != "":
            values[code] = value
    return values


def row_entry(
    number: int, row: Mapping[str, str], attributes: Sequence[str], existing: CatalogEntry | None = None
) -> CatalogEntry | RowError:
    """A default row, applied over ``existing`` (the product as the catalog or earlier rows have it; None: a new
    product): a non-empty cell sets its value, an empty one changes nothing."""
    unreadable = unreadable_row(number, row)
    if unreadable is not None:
        return unreadable
    kind = (row.get("product_type") or "").strip() or (existing.type if existing else "")
    if kind not in TYPES:
        return RowError(number, "product_type", f"unknown product type {kind!r} (one of {', '.join(TYPES)})")
    online = (row.get("product_online") or "").strip()
    if online not in ("", "0", "1"):
        return RowError(number, "product_online", f"must be 1 or 0, not {online!r}")
    name = (row.get("name") or "").strip()
    if name == EMPTY_VALUE:
        return RowError(number, "name", "a product's name cannot be emptied")
    values = dict(existing.custom_attributes) if existing else {}
    for code, value in _attribute_cells(row, attributes).items():
        if value.strip() == EMPTY_VALUE:
            values.pop(code, None)
        else:
            values[code] = value
    column = {"configurable": "configurable_variations", "bundle": "bundle_values"}.get(kind)
    children = _children(row.get(column) or "") if column else []
    if column and not children and existing is not None and existing.type == kind:
        children = list(existing.children_skus)  # no variations given: the ones it has
    return CatalogEntry(
        sku=row_sku(row),
        type=kind,
        name=name or (existing.name if existing else ""),
        enabled=online == "1" if online else (existing.enabled if existing else True),
        children_skus=children,
        custom_attributes=values,
        localized_names=dict(existing.localized_names) if existing else {},
    )


def store_view_row(
    number: int,
    row: Mapping[str, str],
    attributes: Sequence[str],
    existing: CatalogEntry | None,
    locales: Mapping[str, str],
    default_locale: str,
) -> tuple[CatalogEntry | None, list[RowSkipped]] | RowError:
    """A store-view row: ``existing`` with the view's name as its locale's entry (None: nothing to apply), and the
    values not applied — a name without a locale for the view, every per-view value that differs from the global
    one (status, type, attributes, children: the OMS keeps one per product), a row for a product not known."""
    unreadable = unreadable_row(number, row)
    if unreadable is not None:
        return unreadable
    view, sku = row_store_view(row), row_sku(row)
    if existing is None:
        reason = f"store view {view!r}: no product {sku!r} in the catalog or in an earlier default row; not applied"
        return None, [RowSkipped(number, STORE_VIEW_COLUMN, reason)]
    skipped = [
        RowSkipped(number, field, f"store view {view!r}: the OMS keeps one value per product (the default row's); "
                                  "not applied")
        for field in _overrides(row, attributes, existing)
    ]  # fmt: skip
    name = (row.get("name") or "").strip()
    locale = locales.get(view)
    if not name or (name == existing.name and locale in (None, default_locale)):
        return None, skipped
    if locale is None:
        reason = f"store view {view!r} has no locale in OMS_STORE_VIEW_LOCALES; its name is not applied"
        return None, [RowSkipped(number, "name", reason), *skipped]
    if locale == default_locale:
        reason = (f"store view {view!r} has the locale of OMS_PRODUCT_LOCALE ({locale}), whose name is the default "
                  "row's; not applied")  # fmt: skip
        return None, [RowSkipped(number, "name", reason), *skipped]
    names = dict(existing.localized_names)
    if name == EMPTY_VALUE:
        names.pop(locale, None)
    else:
        names[locale] = name
    return replace(existing, localized_names=names), skipped


def _overrides(row: Mapping[str, str], attributes: Sequence[str], existing: CatalogEntry) -> list[str]:
    """The columns of a store-view row that set a global value to something else than the product has."""
    fields: list[str] = []
    kind = (row.get("product_type") or "").strip()
    if kind and kind != existing.type:
        fields.append("product_type")
    online = (row.get("product_online") or "").strip()
    if online and online != ("1" if existing.enabled else "0"):
        fields.append("product_online")
    for code, value in _attribute_cells(row, attributes).items():
        if value.strip() != EMPTY_VALUE and value != existing.custom_attributes.get(code):
            fields.append(code)
        elif value.strip() == EMPTY_VALUE and code in existing.custom_attributes:
            fields.append(code)
    for column in ("configurable_variations", "bundle_values"):
        children = _children(row.get(column) or "")
        if children and children != list(existing.children_skus):
            fields.append(column)
    return fields
