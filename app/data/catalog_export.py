"""The catalog export's statements: one export at a time (created, claimed under a lease, canceled, finished), its
batches read and encoded in PostgreSQL, and its progress recorded batch by batch."""

from __future__ import annotations

from sqlalchemy import text

from app.data.catalog import RECORD_EXPORTED

# The columns of an export's view (a fragment of the statements that return one).
_EXPORT_COLUMNS = """id, status, source, send_mode, batch_size, cursor, products_read, products_sent, batches_sent,
    batches_acknowledged, error_count, errors, last_error, created_at, started_at, finished_at"""

# The process running an export changes it only while it holds the lease and the export is running; a canceled
# export or one taken over answers no row, and the process stops.
_HELD = "id = :id AND lease_owner = :owner AND status = 'running'"

# The export in the partial unique index uq_catalog_export_active (at most one): its predicate, written as the index's.
_ACTIVE = "status IN ('pending', 'running')"

# Two requests for an export at once: one after the other, the second finding the first's export active.
LOCK_CATALOG_EXPORTS = text("LOCK TABLE catalog_export IN SHARE ROW EXCLUSIVE MODE")

# The export pending or running, if any.
ACTIVE_CATALOG_EXPORT = text(f"SELECT {_EXPORT_COLUMNS} FROM catalog_export WHERE {_ACTIVE} ORDER BY id LIMIT 1")

# The newest export, whatever its status (GET /catalog/exports/current).
LATEST_CATALOG_EXPORT = text(f"SELECT {_EXPORT_COLUMNS} FROM catalog_export ORDER BY id DESC LIMIT 1")

# How many rows a full export from the connector's catalog sends (every row, deleted products and shipping methods
# included): counted up to :cap (an index-only scan of at most :cap keys), past that the planner's estimate
# (pg_class.reltuples, kept by ANALYZE and autovacuum; -1 before the first). Never a count of a whole large table.
CATALOG_SIZE = text(
    """
    SELECT (SELECT count(*) FROM (SELECT 1 FROM catalog_product LIMIT :cap) AS c) AS counted,
           (SELECT CAST(reltuples AS bigint) FROM pg_class
             WHERE oid = CAST('catalog_product' AS regclass)) AS estimated
    """
)

# A new export: pending (a worker claims it), or running under the requesting process's lease.
CREATE_CATALOG_EXPORT = text(
    f"""
    INSERT INTO catalog_export (status, source, send_mode, batch_size, lease_owner, lease_until, created_at,
                                started_at, updated_at)
    VALUES (:status, :source, :send_mode, :batch_size, :owner, :lease_until, :now,
            CASE WHEN CAST(:status AS varchar) = 'running' THEN CAST(:now AS timestamptz) END, :now)
    RETURNING {_EXPORT_COLUMNS}
    """
)

# The active export canceled (DELETE /catalog/exports/current): its process finds it no longer held and stops.
CANCEL_CATALOG_EXPORT = text(
    f"""
    UPDATE catalog_export
       SET status = 'canceled', finished_at = :now, lease_owner = NULL, lease_until = NULL, updated_at = :now
     WHERE {_ACTIVE}
    RETURNING {_EXPORT_COLUMNS}
    """
)

# A worker takes the oldest pending export, or a running one whose lease expired (its process died).
CLAIM_CATALOG_EXPORT = text(
    """
    UPDATE catalog_export
       SET status = 'running', lease_owner = :owner, lease_until = :lease_until,
           started_at = COALESCE(started_at, :now), updated_at = :now
     WHERE id = (SELECT id FROM catalog_export
                  WHERE status = 'pending' OR (status = 'running' AND lease_until < :now)
                  ORDER BY id LIMIT 1
                    FOR UPDATE SKIP LOCKED)
    RETURNING id
    """
)

# The process running an export records its end (done, failed).
FINISH_CATALOG_EXPORT = text(
    f"""
    UPDATE catalog_export
       SET status = :status, last_error = COALESCE(:error, last_error), finished_at = :now, lease_owner = NULL,
           lease_until = NULL, updated_at = :now
     WHERE {_HELD}
    """
)

# Where an export stands: its cursor, its settings, and the SKUs of its open batch already acknowledged.
CATALOG_EXPORT_STATE = text(
    "SELECT cursor, batch_size, send_mode, source, batch_acked FROM catalog_export WHERE id = :id"
)

# A batch of the catalog (keyset pagination over the primary key: each batch costs the same at the start and at the
# end of a million SKUs) as three parallel arrays in SKU order, one row per batch (five thousand Python rows would
# cost more than the rest of the batch):
#   skus          every product of the batch;
#   calls         its JSON-RPC request (id = :id_prefix || sku). The params are the ones the catalog row keeps
#                 encoded (migration 0008's trigger) when they were encoded for these settings, else encoded here by
#                 the same function: byte for byte what the Python mapper sends (app/mappers/product_to_mcom.py;
#                 tests/integration/test_catalog_sql_params.py holds them equal);
#   fingerprints  the params' fingerprint where it differs from the one last exported, NULL where the OMS already has
#                 these params (nothing to record once the batch is acknowledged: a re-export writes no row).
# No products past the cursor: one row of NULLs. SHIPPING_METHOD_BATCH_ENCODED: the same of the shipping methods'
# rows only (a full export from Adobe Commerce sends them after the store's products).
_BATCH_ENCODED = """
    SELECT array_agg(b.sku ORDER BY b.sku) AS skus,
           array_agg('{"jsonrpc":"2.0","id":' || to_json(CAST(:id_prefix AS text) || b.sku)::text
                     || ',"method":' || to_json(CAST(:method AS text))::text || ',"params":' || b.params || '}'
                     ORDER BY b.sku) AS calls,
           array_agg(NULLIF(b.fingerprint, b.exported) ORDER BY b.sku) AS fingerprints
      FROM (
        SELECT r.sku, r.params,
               CASE WHEN r.kept THEN r.fingerprint
                    ELSE encode(sha256(convert_to(r.params, 'UTF8')), 'hex') END AS fingerprint,
               -- probed per SKU: a join would merge-scan the exported SKUs from the first one of the catalog
               (SELECT e.fingerprint FROM catalog_product_exported e WHERE e.sku = r.sku) AS exported
          FROM (
            SELECT p.sku, p.fingerprint, p.encoded_for = s.encoding AS kept,
                   CASE WHEN p.encoded_for = s.encoding THEN p.params
                        ELSE catalog_product_params(p.type, p.sku, p.name, p.enabled, p.deleted, p.children_skus,
                                                    p.custom_attributes, p.localized_names,
                                                    CAST(:attributes AS text[]), :locale)
                   END AS params
              FROM catalog_product p,
                   (SELECT catalog_product_encoding(CAST(:attributes AS text[]), :locale) AS encoding
                     OFFSET 0) s  -- computed once (OFFSET 0 keeps the planner from inlining it into every row)
             WHERE p.sku > CAST(:after AS text)  -- '' before the first SKU (no SKU is empty): one plan for all
                   {only}
             ORDER BY p.sku
             LIMIT :limit
          ) AS r
      ) AS b
"""
# A batch of the catalog, then of its shipping methods only (_BATCH_ENCODED).
CATALOG_BATCH_ENCODED = text(_BATCH_ENCODED.replace("{only}", ""))
SHIPPING_METHOD_BATCH_ENCODED = text(_BATCH_ENCODED.replace("{only}", "AND p.shipping_method"))

# A batch is being sent: counted once (a resumed batch is not counted again), the lease renewed.
CATALOG_BATCH_STARTED = text(
    f"""
    UPDATE catalog_export
       SET batches_sent = batches_sent + CASE WHEN batch_open THEN 0 ELSE 1 END, batch_open = true,
           lease_until = :lease_until, updated_at = :now
     WHERE {_HELD}
    RETURNING id
    """
)

# SKUs the OMS acknowledged within the open batch, with their errors (a few kept); the lease renewed.
CATALOG_EXPORT_PROGRESS = text(
    f"""
    UPDATE catalog_export
       SET batch_acked = batch_acked || CAST(:skus AS text[]),
           products_sent = products_sent + cardinality(CAST(:skus AS text[])),
           error_count = error_count + :error_count,
           errors = CASE WHEN jsonb_array_length(errors) < :max_errors THEN errors || CAST(:errors AS jsonb)
                         ELSE errors END,
           lease_until = :lease_until, updated_at = :now
     WHERE {_HELD}
    RETURNING id
    """
)

# The OMS is unreachable: the last error recorded while the process waits and tries again; the lease renewed.
CATALOG_EXPORT_ERROR = text(
    f"""
    UPDATE catalog_export SET last_error = :error, lease_until = :lease_until, updated_at = :now WHERE {_HELD}
    RETURNING id
    """
)

# A batch done, in one transaction: the cursor moves past it, the products sent since the last progress record and
# their errors are counted (an rpc-batch answer is recorded here alone), the fingerprints that changed become what
# was exported (product events compare against them), and the next batch, if any, is opened (counted as sent once).
CATALOG_BATCH_ACKNOWLEDGED = text(
    f"""
    WITH exported AS ({RECORD_EXPORTED})
    UPDATE catalog_export
       SET cursor = :cursor, batch_acked = '{{}}', batch_open = :opens_next,
           batches_sent = batches_sent + CASE WHEN :opens_next THEN 1 ELSE 0 END,
           batches_acknowledged = batches_acknowledged + 1,
           products_read = products_read + :read, products_sent = products_sent + :sent,
           error_count = error_count + :error_count,
           errors = CASE WHEN jsonb_array_length(errors) < :max_errors THEN errors || CAST(:errors AS jsonb)
                         ELSE errors END,
           last_error = NULL, lease_until = :lease_until, updated_at = :now
     WHERE {_HELD}
    RETURNING id
    """
)
