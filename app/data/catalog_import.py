"""The catalog import's statements: a batch of CSV rows merged into the catalog, and the exports it queues."""

from __future__ import annotations

from sqlalchemy import text

from app.data.catalog import RECORD_EXPORTED

# The rows of a batch's SKUs as they are (a row updates a product: its empty cells change nothing), locked.
LOCK_CATALOG_ROWS = text(
    """
    SELECT p.sku, p.type, p.name, p.enabled, p.deleted, p.children_skus, p.custom_attributes, p.localized_names,
           p.shipping_method, e.fingerprint AS exported_fingerprint, p.exports
      FROM catalog_product p LEFT JOIN catalog_product_exported e ON e.sku = p.sku
     WHERE p.sku = ANY(CAST(:skus AS text[]))
     ORDER BY p.sku
       FOR UPDATE OF p
    """
)

# A batch of CSV rows in one statement (each product as the rows left it, merged over the stored one in Python: a
# default row brings a deleted product back, a store-view row does not); rows arrive sorted by SKU (locks in one
# order). The Adobe Commerce id, child ids and websites of a product the store posted are kept: a CSV does not carry
# them. A shipping method's row is never overwritten: only the SKUs stored come back.
UPSERT_CATALOG_ROWS = text(
    """
    INSERT INTO catalog_product (sku, type, name, enabled, deleted, children_skus, custom_attributes,
                                 localized_names, created_at, updated_at)
    SELECT t.sku, t.type, t.name, t.enabled, t.deleted,
           ARRAY(SELECT jsonb_array_elements_text(CAST(t.children AS jsonb))), CAST(t.attributes AS jsonb),
           CAST(t.localized AS jsonb), :now, :now
      FROM unnest(CAST(:skus AS text[]), CAST(:types AS text[]), CAST(:names AS text[]),
                  CAST(:enabled AS boolean[]), CAST(:deleted AS boolean[]), CAST(:children AS text[]),
                  CAST(:attributes AS text[]), CAST(:localized_names AS text[]))
           AS t(sku, type, name, enabled, deleted, children, attributes, localized)
     ORDER BY t.sku
    ON CONFLICT (sku) DO UPDATE
       SET type = excluded.type, name = excluded.name, enabled = excluded.enabled, deleted = excluded.deleted,
           children_skus = excluded.children_skus, custom_attributes = excluded.custom_attributes,
           localized_names = excluded.localized_names, updated_at = excluded.updated_at
     WHERE NOT catalog_product.shipping_method
    RETURNING sku
    """
)

# The exports a batch queued (one message per changed product): fingerprints recorded, exports counted.
SET_PRODUCTS_EXPORTED = text(
    f"""
    WITH exported AS ({RECORD_EXPORTED})
    UPDATE catalog_product p
       SET exports = p.exports + 1, export_message_id = t.message_id, exported_at = :now
      FROM unnest(CAST(:skus AS text[]), CAST(:message_ids AS bigint[])) AS t(sku, message_id)
     WHERE p.sku = t.sku AND p.sku = ANY(CAST(:skus AS text[]))  -- probes the primary key per SKU, not a merge join
    """
)
