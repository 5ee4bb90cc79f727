"""The connector's catalog: products the store posts, upserted by SKU and exported to the OMS only when what the
OMS receives changed (change detection by fingerprint of the mapped params); deleted products; the configured
custom attributes; shipping methods exported as products.

Each export is a ``magento.catalog.product_management.updated`` call in the outbox, written in the transaction
that records the product, lane ``product/<sku>`` (one product's versions arrive in order), id
``<app>-product-<sku>-<n>``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.clock import Clock
from app.db import Database
from app.errors import NotFound, ProductRejected
from app.mappers.product_to_mcom import (
    PRODUCT_UPDATED,
    CatalogEntry,
    fingerprint,
    product_params,
    shipping_method_entry,
)
from app.protocol.commerce_product import CommerceProduct, parse_products
from app.schemas import ProductOutcome, ProductsAnswer, ShippingMethodsAnswer
from app.settings import Settings, ShippingMethod, normalize_attribute_codes
from app.workers import queries
from app.workers.outbox import OMS_CHANNEL, Outbox

ATTRIBUTES_KEY = "product_attributes"
LOCALE_KEY = "product_locale"  # OMS_PRODUCT_LOCALE as the catalog trigger reads it (migration 0008)
SHIPPING_METHODS_KEY = "shipping_methods"


def product_lane(sku: str) -> str:
    return f"product/{sku}"


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
        force are exported if they never were."""
        now = self.clock.now()
        async with self.db.connect() as connection:
            await connection.execute(
                queries.SET_CATALOG_SETTING,
                {"key": LOCALE_KEY, "value": json.dumps(self.settings.oms_product_locale), "now": now},
            )
            for key, value in (
                (ATTRIBUTES_KEY, self.settings.oms_product_attributes),
                (SHIPPING_METHODS_KEY, [m.model_dump() for m in self.settings.oms_shipping_methods]),
            ):
                await connection.execute(
                    queries.SEED_CATALOG_SETTING, {"key": key, "value": json.dumps(value), "now": now}
                )
            # The methods in force reach the OMS once (a restart finds their fingerprints unchanged).
            await connection.execute(queries.LOCK_CATALOG_SETTINGS)
            await self._export_shipping_methods(connection, await self._shipping_methods(connection), [], now)

    async def _setting(self, connection: AsyncConnection, key: str, default: Any) -> Any:
        value = (await connection.execute(queries.CATALOG_SETTING, {"key": key})).scalar_one_or_none()
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
                queries.SET_CATALOG_SETTING,
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
        """Replace the enabled shipping methods: new or renamed ones are exported, removed ones exported disabled."""
        codes = [method.code for method in methods]
        if len(set(codes)) != len(codes):
            raise ProductRejected([{"field": "methods", "message": "a shipping method code is listed twice"}])
        now = self.clock.now()
        async with self.db.connect() as connection:
            await connection.execute(queries.LOCK_CATALOG_SETTINGS)
            before = await self._shipping_methods(connection)
            await connection.execute(
                queries.SET_CATALOG_SETTING,
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
        entries = [shipping_method_entry(m.code, m.name) for m in methods]
        entries += [shipping_method_entry(m.code, m.name, enabled=False) for m in removed]
        outcomes = []
        for entry in sorted(entries, key=lambda e: e.sku):
            await connection.execute(queries.UPSERT_CATALOG_PRODUCT, _row(entry, now))
            outcomes.append(await self._export_if_changed(connection, entry, [], now))
        return outcomes

    # --- products from the store -----------------------------------------------------------------------------
    async def accept(self, document: Any) -> ProductsAnswer:
        products = parse_products(document)
        now = self.clock.now()
        outcomes: list[ProductOutcome] = []
        async with self.db.connect() as connection:
            attributes = list(await self._setting(connection, ATTRIBUTES_KEY, self.settings.oms_product_attributes))
            for product in sorted(products, key=lambda p: p.sku):  # rows locked in one order: no deadlock
                outcomes.append(await self._store(connection, product, attributes, now))
                if product.id is not None:
                    outcomes += await self._reexport_parents(connection, product.id, attributes, now)
        order = {product.sku: index for index, product in enumerate(products)}
        outcomes.sort(key=lambda outcome: order.get(outcome.sku, len(order)))
        return ProductsAnswer(products=outcomes)

    async def _store(
        self, connection: AsyncConnection, product: CommerceProduct, attributes: list[str], now: datetime
    ) -> ProductOutcome:
        entry = await self._upsert(connection, product, now)
        return await self._export_if_changed(connection, entry, attributes, now)

    async def store_for_export(
        self, connection: AsyncConnection, products: Sequence[CommerceProduct], attributes: list[str], now: datetime
    ) -> list[CatalogEntry]:
        """Products a full export read from Adobe Commerce: kept in the catalog (not exported one by one: the export
        sends them), configurable children resolved once the whole page is stored (children often come after their
        parent); a parent stored earlier whose child arrives now is exported again as a product event."""
        entries = {p.sku: await self._upsert(connection, p, now) for p in sorted(products, key=lambda p: p.sku)}
        for product in products:
            if product.type_id == "configurable":
                children = await self._children_of(connection, product.extension_attributes.configurable_product_links)
                if children != list(entries[product.sku].children_skus):
                    await connection.execute(queries.SET_PRODUCT_CHILDREN, {"sku": product.sku, "children": children})
                    entries[product.sku] = CatalogEntry(**{**entries[product.sku].__dict__, "children_skus": children})
        for product in products:  # a parent in this page already has its children: it is not sent twice
            if product.id is not None:
                await self._reexport_parents(connection, product.id, attributes, now)
        return [entries[p.sku] for p in products]

    async def _upsert(self, connection: AsyncConnection, product: CommerceProduct, now: datetime) -> CatalogEntry:
        child_ids = product.extension_attributes.configurable_product_links
        if product.type_id == "configurable":
            children = await self._children_of(connection, child_ids)
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
            await connection.execute(queries.RELEASE_PRODUCT_ID, {"product_id": product.id, "sku": product.sku})
        await connection.execute(
            queries.UPSERT_CATALOG_PRODUCT, {**row, "website_ids": product.extension_attributes.website_ids}
        )
        return entry

    @staticmethod
    async def _children_of(connection: AsyncConnection, child_ids: Sequence[int]) -> list[str]:
        """The SKUs of a configurable's children the connector knows, in link order; the others are added when
        they are posted (their parents are then exported again)."""
        if not child_ids:
            return []
        rows = (await connection.execute(queries.SKUS_OF_PRODUCT_IDS, {"ids": list(child_ids)})).all()
        by_id = {row.product_id: row.sku for row in rows}
        return [by_id[child] for child in child_ids if child in by_id]

    async def _reexport_parents(
        self, connection: AsyncConnection, child_id: int, attributes: list[str], now: datetime
    ) -> list[ProductOutcome]:
        outcomes = []
        for parent in (await connection.execute(queries.PARENTS_OF_PRODUCT, {"child_id": child_id})).all():
            children = await self._children_of(connection, parent.child_ids)
            if children == list(parent.children_skus):
                continue
            await connection.execute(queries.SET_PRODUCT_CHILDREN, {"sku": parent.sku, "children": children})
            entry = catalog_entry(parent)
            entry = CatalogEntry(**{**entry.__dict__, "children_skus": children})
            outcomes.append(await self._export_if_changed(connection, entry, attributes, now))
        return outcomes

    async def _export_if_changed(
        self, connection: AsyncConnection, entry: CatalogEntry, attributes: list[str], now: datetime
    ) -> ProductOutcome:
        """Queue the export when the params the OMS would receive differ from the last ones exported."""
        params = product_params(entry, attributes, self.settings.oms_product_locale)
        digest = fingerprint(params)
        state = (await connection.execute(queries.LOCK_PRODUCT_EXPORT, {"sku": entry.sku})).first()
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
            refs=[entry.sku, *entry.children_skus][:50],
        )
        await connection.execute(
            queries.SET_PRODUCT_EXPORTED,
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
            row = (await connection.execute(queries.MARK_PRODUCT_DELETED, {"sku": sku, "now": now})).first()
            if row is None:
                raise NotFound(f"no product {sku} was posted to the connector")
            attributes = list(await self._setting(connection, ATTRIBUTES_KEY, self.settings.oms_product_attributes))
            return await self._export_if_changed(connection, catalog_entry(row), attributes, now)

    async def get(self, sku: str) -> dict[str, Any]:
        async with self.db.connect() as connection:
            row = (await connection.execute(queries.CATALOG_PRODUCT, {"sku": sku})).mappings().first()
        if row is None:
            raise NotFound(f"no product {sku} is in the connector's catalog")
        return dict(row)


def _row(
    entry: CatalogEntry, now: datetime, *, product_id: int | None = None, child_ids: Sequence[int] = ()
) -> dict[str, Any]:
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
    )
