"""The connector's catalog: products the store posts, upserted by SKU and exported to the OMS only when what the
OMS receives changed (change detection by fingerprint of the mapped params); deleted products; the configured
custom attributes; shipping methods exported as products.

Each export is a ``magento.catalog.product_management.updated`` call in the outbox, written in the transaction
that records the product, lane ``product/<sku>`` (one product's versions arrive in order), id
``<app>-product-<sku>-<n>``.

A shipping method's row (SKU = method code) and a store product's are told apart (``shipping_method``): neither
ever overwrites the other. A product posted with a method's code, or a method given a product's SKU, is refused
(SkuConflict, 409) with nothing stored; the upsert itself refuses to cross kinds, so a race changes nothing either.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.clock import Clock
from app.data.catalog import (
    CATALOG_PRODUCT,
    CATALOG_SETTING,
    CATALOG_SKU_HOLDERS,
    LOCK_CATALOG_SETTINGS,
    LOCK_PRODUCT_EXPORT,
    MARK_PRODUCT_DELETED,
    PARENTS_OF_PRODUCTS,
    RELEASE_PRODUCT_ID,
    SEED_CATALOG_SETTING,
    SET_CATALOG_SETTING,
    SET_PRODUCT_CHILDREN,
    SET_PRODUCT_EXPORTED,
    SKUS_OF_PRODUCT_IDS,
    UPSERT_CATALOG_PRODUCT,
)
from app.data.outbox import OMS_CHANNEL, Outbox
from app.db import Database
from app.errors import NotFound, ProductRejected, SkuConflict
from app.mappers.product_to_mcom import (
    PRODUCT_UPDATED,
    CatalogEntry,
    fingerprint,
    product_params,
    product_references,
    shipping_method_entry,
)
from app.protocol.commerce_product import CommerceProduct, parse_products
from app.schemas import ProductOutcome, ProductsAnswer, ShippingMethodsAnswer
from app.settings import Settings, ShippingMethod, normalize_attribute_codes

log = logging.getLogger(__name__)

ATTRIBUTES_KEY = "product_attributes"
LOCALE_KEY = "product_locale"  # OMS_PRODUCT_LOCALE as the catalog trigger reads it (migration 0008)
SHIPPING_METHODS_KEY = "shipping_methods"


def product_lane(sku: str) -> str:
    return f"product/{sku}"


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def method_holds_sku(sku: str, name: str | None) -> str:
    """Why a product cannot have ``sku``: a shipping method has it as its code."""
    method = f"a shipping method in the catalog ({_quoted(name)})" if name else "a shipping method in the catalog"
    return f"{_quoted(sku)} is {method}; a product cannot have its SKU"


def product_holds_sku(row: Any) -> str:
    """Why a shipping method cannot have the SKU of ``row`` (a catalog row of a store product)."""
    product = f"a {'deleted ' if row.deleted else ''}{row.type} product in the catalog ({_quoted(row.name)})"
    return f"{_quoted(row.sku)} is {product}; a shipping method cannot have its SKU"


class CatalogService:
    def __init__(self, db: Database, clock: Clock, settings: Settings, outbox: Outbox) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.outbox = outbox

    # --- settings --------------------------------------------------------------------------------------------
    async def seed(self) -> None:
        """OMS_PRODUCT_ATTRIBUTES / OMS_SHIPPING_METHODS where the database has no value yet (an operator's PUT
        is never undone by a restart); OMS_PRODUCT_LOCALE, which only the environment sets; the shipping methods in
        force are kept as catalog rows and exported if they never were."""
        now = self.clock.now()
        async with self.db.connect() as connection:
            await connection.execute(
                SET_CATALOG_SETTING,
                {"key": LOCALE_KEY, "value": json.dumps(self.settings.oms_product_locale), "now": now},
            )
            await connection.execute(
                SEED_CATALOG_SETTING,
                {"key": ATTRIBUTES_KEY, "value": json.dumps(self.settings.oms_product_attributes), "now": now},
            )
        await self.sync_shipping_methods()

    async def sync_shipping_methods(self) -> None:
        """Seed OMS_SHIPPING_METHODS if the database has none, and keep each method in force as a catalog row,
        exported if it never was (a restart finds the fingerprints unchanged). A method whose code is a product's
        SKU is skipped with a warning naming both: the product stays as it is. Run at start-up and by every full
        export, which sends the methods' rows."""
        now = self.clock.now()
        async with self.db.connect() as connection:
            methods = [m.model_dump() for m in self.settings.oms_shipping_methods]
            await connection.execute(
                SEED_CATALOG_SETTING, {"key": SHIPPING_METHODS_KEY, "value": json.dumps(methods), "now": now}
            )
            await connection.execute(LOCK_CATALOG_SETTINGS)
            in_force = await self._shipping_methods(connection)
            taken = await self._products_holding(connection, [m.code for m in in_force])
            for code, reason in taken.items():
                log.warning(
                    "shipping method %r is not exported: %s", code, reason, extra={"action": "shipping_method_skipped"}
                )
            methods_kept = [m for m in in_force if m.code not in taken]
            await self._export_shipping_methods(connection, methods_kept, [], now)

    async def _setting(self, connection: AsyncConnection, key: str, default: Any) -> Any:
        value = (await connection.execute(CATALOG_SETTING, {"key": key})).scalar_one_or_none()
        return default if value is None else value

    async def attributes(self) -> list[str]:
        async with self.db.connect() as connection:
            return list(await self._setting(connection, ATTRIBUTES_KEY, self.settings.oms_product_attributes))

    async def set_attributes(self, codes: list[str]) -> list[str]:
        """Replace the configured attributes. Nothing is exported now: a product goes out with the new set at its
        next change, and a full export sends every product with it."""
        try:
            cleaned = normalize_attribute_codes(codes)
        except ValueError as exc:
            raise ProductRejected([{"field": "attributes", "message": str(exc)}]) from None
        async with self.db.connect() as connection:
            await connection.execute(
                SET_CATALOG_SETTING,
                {"key": ATTRIBUTES_KEY, "value": json.dumps(cleaned), "now": self.clock.now()},
            )
        return cleaned

    async def shipping_methods(self) -> list[ShippingMethod]:
        async with self.db.connect() as connection:
            return await self._shipping_methods(connection)

    async def _shipping_methods(self, connection: AsyncConnection) -> list[ShippingMethod]:
        stored = await self._setting(connection, SHIPPING_METHODS_KEY, None)
        if stored is None:
            return list(self.settings.oms_shipping_methods)
        return [ShippingMethod.model_validate(method) for method in stored]

    async def set_shipping_methods(self, methods: list[ShippingMethod]) -> ShippingMethodsAnswer:
        """Replace the enabled shipping methods: new or renamed ones are exported, removed ones exported disabled.
        A code that is a product's SKU refuses the whole change (SkuConflict): nothing is stored or exported."""
        codes = [method.code for method in methods]
        if len(set(codes)) != len(codes):
            raise ProductRejected([{"field": "methods", "message": "a shipping method code is listed twice"}])
        now = self.clock.now()
        async with self.db.connect() as connection:
            await connection.execute(LOCK_CATALOG_SETTINGS)
            taken = await self._products_holding(connection, codes)
            if taken:
                raise SkuConflict(
                    [{"field": f"methods[{i}].code", "message": taken[code]} for i, code in enumerate(codes)
                     if code in taken]
                )  # fmt: skip
            before = await self._shipping_methods(connection)
            await connection.execute(
                SET_CATALOG_SETTING,
                {"key": SHIPPING_METHODS_KEY, "value": json.dumps([m.model_dump() for m in methods]), "now": now},
            )
            removed = [m for m in before if m.code not in codes]
            outcomes = await self._export_shipping_methods(connection, methods, removed, now)
        return ShippingMethodsAnswer(methods=methods, outcomes=outcomes)

    async def _export_shipping_methods(
        self,
        connection: AsyncConnection,
        methods: Sequence[ShippingMethod],
        removed: Sequence[ShippingMethod],
        now: datetime,
    ) -> list[ProductOutcome]:
        """Keep the methods as catalog rows and export the changed ones; a removed method whose SKU a product holds
        now is left to the product. A method in force that meets a product's row (a post raced this change) refuses
        it all (SkuConflict: the transaction rolls back)."""
        entries = [shipping_method_entry(m.code, m.name) for m in methods]
        entries += [shipping_method_entry(m.code, m.name, enabled=False) for m in removed]
        outcomes = []
        for entry in sorted(entries, key=lambda e: e.sku):
            row = _row(entry, now, shipping_method=True)
            stored = (await connection.execute(UPSERT_CATALOG_PRODUCT, row)).first()
            if stored is None and not entry.enabled:
                continue
            if stored is None:
                taken = await self._products_holding(connection, [entry.sku])
                reason = taken.get(entry.sku) or f"{_quoted(entry.sku)} is a product's SKU in the catalog"
                raise SkuConflict([{"field": "code", "message": reason}])
            outcomes.append(await self._export_if_changed(connection, entry, [], now))
        return outcomes

    @staticmethod
    async def _products_holding(connection: AsyncConnection, skus: Sequence[str]) -> dict[str, str]:
        """The SKUs among ``skus`` that store products hold (a shipping method cannot have them), each with why."""
        if not skus:
            return {}
        rows = (await connection.execute(CATALOG_SKU_HOLDERS, {"skus": list(skus)})).all()
        return {row.sku: product_holds_sku(row) for row in rows if not row.shipping_method}

    @staticmethod
    async def _methods_holding(connection: AsyncConnection, skus: Sequence[str]) -> dict[str, str]:
        """The SKUs among ``skus`` that shipping methods hold (a product cannot have them), each with why."""
        if not skus:
            return {}
        rows = (await connection.execute(CATALOG_SKU_HOLDERS, {"skus": list(skus)})).all()
        return {row.sku: method_holds_sku(row.sku, row.name) for row in rows if row.shipping_method}

    # --- products from the store -----------------------------------------------------------------------------
    async def accept(self, document: Any) -> ProductsAnswer:
        """Store a post and export what changed, each product once: a configurable posted with its children has
        them from the same post; a parent stored earlier whose children arrive now is exported again, once. A SKU
        that is a shipping method's code refuses the whole post (SkuConflict), as a bad field does."""
        products = parse_products(document)
        now = self.clock.now()
        async with self.db.connect() as connection:
            taken = await self._methods_holding(connection, [product.sku for product in products])
            if taken:
                many = isinstance(document, list)
                raise SkuConflict(
                    [{"field": f"[{i}].sku" if many else "sku", "message": taken[p.sku]}
                     for i, p in enumerate(products) if p.sku in taken]
                )  # fmt: skip
            attributes = list(await self._setting(connection, ATTRIBUTES_KEY, self.settings.oms_product_attributes))
            entries, refused = await self._store_all(connection, products, now)
            if refused:  # a shipping method took a SKU since the check (a concurrent PUT): nothing is kept
                raise SkuConflict([{"field": "sku", "message": method_holds_sku(sku, None)} for sku in refused])
            outcomes = [
                await self._export_if_changed(connection, entries[sku], attributes, now) for sku in sorted(entries)
            ]
            outcomes += await self._reexport_parents(connection, products, attributes, now)
        order = {product.sku: index for index, product in enumerate(products)}
        outcomes.sort(key=lambda outcome: order.get(outcome.sku, len(order)))
        return ProductsAnswer(products=outcomes)

    async def store_for_export(
        self, connection: AsyncConnection, products: Sequence[CommerceProduct], attributes: list[str], now: datetime
    ) -> tuple[list[CatalogEntry], dict[str, str]]:
        """Products a full export read from Adobe Commerce: kept in the catalog (not exported one by one: the export
        sends them), configurable children resolved from the whole page (children often come after their parent);
        a parent stored earlier whose children arrive now is exported again as a product event, once. A product
        whose SKU is a shipping method's code is not stored: it comes back with why, for the export's errors."""
        taken = await self._methods_holding(connection, [product.sku for product in products])
        storable = [product for product in products if product.sku not in taken]
        entries, refused = await self._store_all(connection, storable, now)
        taken.update({sku: method_holds_sku(sku, None) for sku in refused})
        await self._reexport_parents(connection, storable, attributes, now)
        return [entries[p.sku] for p in storable if p.sku in entries], taken

    async def _store_all(
        self, connection: AsyncConnection, products: Sequence[CommerceProduct], now: datetime
    ) -> tuple[dict[str, CatalogEntry], list[str]]:
        """Upsert ``products`` in SKU order (rows locked in one order: no deadlock); a configurable's children are
        its links' SKUs among these products and the ones the catalog knows. Returns the entries stored, and the
        SKUs a shipping method's row holds (not stored)."""
        posted = {product.id: product.sku for product in products if product.id is not None}
        entries: dict[str, CatalogEntry] = {}
        refused: list[str] = []
        for product in sorted(products, key=lambda p: p.sku):
            entry = await self._upsert(connection, product, posted, now)
            if entry is None:
                refused.append(product.sku)
            else:
                entries[product.sku] = entry
        return entries, refused

    async def _upsert(
        self, connection: AsyncConnection, product: CommerceProduct, posted: Mapping[int, str], now: datetime
    ) -> CatalogEntry | None:
        """Store one product; None (nothing written) when its SKU is a shipping method's row."""
        child_ids = product.extension_attributes.configurable_product_links
        if product.type_id == "configurable":
            children = await self._children_of(connection, child_ids, posted)
        elif product.type_id == "bundle":
            children = product.bundle_children
        else:
            children = []
        entry = CatalogEntry(
            sku=product.sku,
            type=product.type_id,
            name=product.name,
            enabled=product.enabled,
            children_skus=children,
            custom_attributes=product.attributes,
        )
        row = _row(entry, now, product_id=product.id, child_ids=child_ids)
        if product.id is not None:
            await connection.execute(RELEASE_PRODUCT_ID, {"product_id": product.id, "sku": product.sku})
        stored = (
            await connection.execute(
                UPSERT_CATALOG_PRODUCT, {**row, "website_ids": product.extension_attributes.website_ids}
            )
        ).first()
        if stored is None:
            return None
        return CatalogEntry(**{**entry.__dict__, "localized_names": dict(stored.localized_names)})

    @staticmethod
    async def _children_of(
        connection: AsyncConnection, child_ids: Sequence[int], posted: Mapping[int, str] | None = None
    ) -> list[str]:
        """The SKUs of a configurable's children the connector knows (``posted``: the ids of products being stored
        with it, which win), in link order; the others are added when they are posted (their parents are then
        exported again)."""
        if not child_ids:
            return []
        by_id = dict(posted or {})
        missing = [child for child in child_ids if child not in by_id]
        if missing:
            rows = (await connection.execute(SKUS_OF_PRODUCT_IDS, {"ids": missing})).all()
            by_id.update({row.product_id: row.sku for row in rows})
        return [by_id[child] for child in child_ids if child in by_id]

    async def _reexport_parents(
        self,
        connection: AsyncConnection,
        products: Sequence[CommerceProduct],
        attributes: list[str],
        now: datetime,
    ) -> list[ProductOutcome]:
        """The configurables linking any of ``products`` (just stored) whose children changed: each stored with its
        children and exported once, however many of its children came (a parent among ``products`` has them
        already, and is left alone)."""
        child_ids = sorted({product.id for product in products if product.id is not None})
        if not child_ids:
            return []
        outcomes = []
        for parent in (await connection.execute(PARENTS_OF_PRODUCTS, {"child_ids": child_ids})).all():
            children = await self._children_of(connection, parent.child_ids)
            if children == list(parent.children_skus):
                continue
            await connection.execute(SET_PRODUCT_CHILDREN, {"sku": parent.sku, "children": children})
            entry = CatalogEntry(**{**catalog_entry(parent).__dict__, "children_skus": children})
            outcomes.append(await self._export_if_changed(connection, entry, attributes, now))
        return outcomes

    async def _export_if_changed(
        self, connection: AsyncConnection, entry: CatalogEntry, attributes: list[str], now: datetime
    ) -> ProductOutcome:
        """Queue the export when the params the OMS would receive differ from the last ones exported."""
        params = product_params(entry, attributes, self.settings.oms_product_locale)
        digest = fingerprint(params)
        state = (await connection.execute(LOCK_PRODUCT_EXPORT, {"sku": entry.sku})).first()
        previous, exports = (state.exported_fingerprint, state.exports) if state else (None, 0)
        if previous == digest:
            return ProductOutcome(sku=entry.sku, exported=False, reason="unchanged")
        message_id = await self.outbox.enqueue(
            connection,
            method=PRODUCT_UPDATED,
            params=params,
            now=now,
            lane=product_lane(entry.sku),
            channel=OMS_CHANNEL,
            external_id=f"{self.settings.oms_application_id}-product-{entry.sku}-{exports + 1}",
            refs=product_references(params),
        )
        await connection.execute(
            SET_PRODUCT_EXPORTED,
            {"sku": entry.sku, "fingerprint": digest, "message_id": message_id, "now": now},
        )
        return ProductOutcome(
            sku=entry.sku, exported=True, reason="new" if previous is None else "changed", message_id=message_id
        )

    async def delete(self, sku: str) -> ProductOutcome:
        """The store deleted the product: keep it, marked deleted, and export it disabled (orders holding it still
        export)."""
        now = self.clock.now()
        async with self.db.connect() as connection:
            row = (await connection.execute(MARK_PRODUCT_DELETED, {"sku": sku, "now": now})).first()
            if row is None:
                taken = await self._methods_holding(connection, [sku])
                if taken:  # not the store's to delete: PUT /catalog/shipping-methods removes it
                    raise SkuConflict([{"field": "sku", "message": taken[sku]}])
                raise NotFound(f"no product {sku} was posted to the connector")
            attributes = list(await self._setting(connection, ATTRIBUTES_KEY, self.settings.oms_product_attributes))
            return await self._export_if_changed(connection, catalog_entry(row), attributes, now)

    async def get(self, sku: str) -> dict[str, Any]:
        async with self.db.connect() as connection:
            row = (await connection.execute(CATALOG_PRODUCT, {"sku": sku})).mappings().first()
        if row is None:
            raise NotFound(f"no product {sku} is in the connector's catalog")
        return dict(row)


def _row(
    entry: CatalogEntry,
    now: datetime,
    *,
    product_id: int | None = None,
    child_ids: Sequence[int] = (),
    shipping_method: bool = False,
) -> dict[str, Any]:
    """UPSERT_CATALOG_PRODUCT's parameters: a store product's row, or a shipping method's (no Adobe Commerce id)."""
    return {
        "sku": entry.sku,
        "product_id": product_id,
        "type": entry.type,
        "name": entry.name,
        "enabled": entry.enabled,
        "children_skus": list(entry.children_skus),
        "child_ids": list(child_ids),
        "custom_attributes": json.dumps(dict(entry.custom_attributes)),
        "website_ids": [],
        "shipping_method": shipping_method,
        "now": now,
    }


def catalog_entry(row: Any) -> CatalogEntry:
    """A catalog_product row as the mapper's entry."""
    return CatalogEntry(
        sku=row.sku,
        type=row.type,
        name=row.name,
        enabled=row.enabled,
        children_skus=list(row.children_skus),
        custom_attributes=dict(row.custom_attributes),
        deleted=row.deleted,
        localized_names=dict(row.localized_names),
    )
