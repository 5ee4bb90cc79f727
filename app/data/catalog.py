"""The catalog's statements: its settings (attributes, locale, shipping methods), the products as the store posts
them, and what the OMS was sent last for each (change detection)."""

from __future__ import annotations

from sqlalchemy import text

# A catalog setting's first value (from the environment): one already stored is kept.
SEED_CATALOG_SETTING = text(
    """
    INSERT INTO catalog_setting (key, value, updated_at) VALUES (:key, CAST(:value AS jsonb), :now)
    ON CONFLICT (key) DO NOTHING
    """
)

# A catalog setting's value now.
SET_CATALOG_SETTING = text(
    """
    INSERT INTO catalog_setting (key, value, updated_at) VALUES (:key, CAST(:value AS jsonb), :now)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
    """
)

# A catalog setting's stored value (no row: never set).
CATALOG_SETTING = text("SELECT value FROM catalog_setting WHERE key = :key")

# Two concurrent PUTs of the shipping methods: one after the other, each seeing what the other left.
LOCK_CATALOG_SETTINGS = text("LOCK TABLE catalog_setting IN SHARE ROW EXCLUSIVE MODE")

# A SKU renamed in the store keeps its Adobe Commerce id: the id leaves the row of the old SKU first.
RELEASE_PRODUCT_ID = text(
    "UPDATE catalog_product SET product_id = NULL WHERE product_id = CAST(:product_id AS bigint) AND sku <> :sku"
)

# A product as the store posted it (again), or a shipping method (:shipping_method): what it is now; a re-posted
# deleted product is back. A row of the other kind is never overwritten: no row comes back then (a SKU conflict).
# Localized names (CSV store-view rows) are kept and returned: the params the OMS receives include them.
UPSERT_CATALOG_PRODUCT = text(
    """
    INSERT INTO catalog_product (sku, product_id, type, name, enabled, deleted, children_skus, child_ids,
                                 custom_attributes, website_ids, shipping_method, created_at, updated_at)
    VALUES (:sku, :product_id, :type, :name, :enabled, false, CAST(:children_skus AS text[]),
            CAST(:child_ids AS bigint[]), CAST(:custom_attributes AS jsonb), CAST(:website_ids AS integer[]),
            :shipping_method, :now, :now)
    ON CONFLICT (sku) DO UPDATE
       SET product_id = COALESCE(excluded.product_id, catalog_product.product_id), type = excluded.type,
           name = excluded.name, enabled = excluded.enabled, deleted = false, children_skus = excluded.children_skus,
           child_ids = excluded.child_ids, custom_attributes = excluded.custom_attributes,
           website_ids = excluded.website_ids, updated_at = excluded.updated_at
     WHERE catalog_product.shipping_method = excluded.shipping_method
    RETURNING localized_names
    """
)

# What holds each of these SKUs in the catalog (a store product or a shipping method), for a SKU conflict's answer.
CATALOG_SKU_HOLDERS = text(
    """
    SELECT sku, type, name, deleted, shipping_method FROM catalog_product
     WHERE sku = ANY(CAST(:skus AS text[])) ORDER BY sku
    """
)

# The SKUs of these Adobe Commerce product ids (a configurable's children).
SKUS_OF_PRODUCT_IDS = text("SELECT product_id, sku FROM catalog_product WHERE product_id = ANY(CAST(:ids AS bigint[]))")

# The configurables linking any of these child ids (each once), locked in SKU order.
PARENTS_OF_PRODUCTS = text(
    """
    SELECT sku, type, name, enabled, deleted, children_skus, child_ids, custom_attributes, localized_names
      FROM catalog_product
     WHERE child_ids && CAST(:child_ids AS bigint[])
     ORDER BY sku
       FOR UPDATE
    """
)

# A configurable's child SKUs now.
SET_PRODUCT_CHILDREN = text("UPDATE catalog_product SET children_skus = CAST(:children AS text[]) WHERE sku = :sku")

# A product's export state, locked: the fingerprint last exported and how many exports were queued.
LOCK_PRODUCT_EXPORT = text(
    """
    SELECT e.fingerprint AS exported_fingerprint, p.exports
      FROM catalog_product p LEFT JOIN catalog_product_exported e ON e.sku = p.sku
     WHERE p.sku = :sku
       FOR UPDATE OF p
    """
)

# What the OMS was sent last for each of :skus: its params' fingerprint (:fingerprints), which change detection
# compares against. A fragment: the CTE of the statements that record an export.
RECORD_EXPORTED = """
    INSERT INTO catalog_product_exported AS e (sku, fingerprint)
    SELECT * FROM unnest(CAST(:skus AS text[]), CAST(:fingerprints AS text[]))
    ON CONFLICT (sku) DO UPDATE SET fingerprint = excluded.fingerprint
"""

# A product's export queued: its fingerprint becomes what was exported, its export counted.
SET_PRODUCT_EXPORTED = text(
    """
    WITH recorded AS (
        INSERT INTO catalog_product_exported (sku, fingerprint) VALUES (:sku, :fingerprint)
        ON CONFLICT (sku) DO UPDATE SET fingerprint = excluded.fingerprint
    )
    UPDATE catalog_product SET exports = exports + 1, export_message_id = :message_id, exported_at = :now
     WHERE sku = :sku
    """
)

# A product the store deleted, kept as deleted; a shipping method's row is not the store's to delete (PUT
# /catalog/shipping-methods removes it).
MARK_PRODUCT_DELETED = text(
    """
    UPDATE catalog_product SET deleted = true, updated_at = :now WHERE sku = :sku AND NOT shipping_method
    RETURNING sku, type, name, enabled, deleted, children_skus, child_ids, custom_attributes, localized_names
    """
)

# One product as GET /catalog/products/{sku} shows it, with its last export's status ('pruned': journal gone).
CATALOG_PRODUCT = text(
    """
    SELECT p.sku, p.product_id, p.type, p.name, p.enabled, p.deleted, p.shipping_method, p.children_skus,
           p.child_ids, p.custom_attributes, p.localized_names, p.website_ids, p.exports, p.export_message_id,
           p.exported_at,
           COALESCE((SELECT status::text FROM message WHERE id = p.export_message_id),
                    CASE WHEN p.export_message_id IS NOT NULL THEN 'pruned' END) AS export_status,
           p.created_at, p.updated_at
      FROM catalog_product p WHERE p.sku = :sku
    """
)
