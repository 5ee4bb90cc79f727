"""Orders' statements: store a posted order, queue its export, read its export status, list orders by it, queue
again what was never exported, and what the OMS's acknowledgement and the order gate (app/services/order_gate.py)
read and change."""

from __future__ import annotations

from sqlalchemy import TextClause, text

from app.data.statuses import GIVEN_UP, PENDING, UNCLAIMED

# An order's export status is read from its export message, so the order and the journal can never disagree:
# held (no export message: status not exportable) · queued (waiting, being sent or retrying) · sent · acknowledged
# (the OMS's `created` arrived; wins over everything) · failed (refused, or discarded by an operator) · dead.
ORDER_EXPORT_STATUS = f"""
    CASE WHEN o.acknowledged_at IS NOT NULL THEN 'acknowledged'
         WHEN o.export_message_id IS NULL THEN 'held'
         WHEN m.status IN {PENDING} THEN 'queued'
         WHEN m.status = 'succeeded' THEN 'sent'
         WHEN m.status = 'dead' THEN 'dead'
         ELSE 'failed' END"""

# An order's columns in the order list and view, with its export message's state and its export status.
_ORDER_COLUMNS = f"""
    o.id, o.increment_id, o.entity_id, o.store_id, o.commerce_status, o.oms_status, o.received_at, o.updated_at,
    o.export_message_id, o.export_message_ids, o.acknowledged_at, o.acknowledged_message_id,
    m.status::text AS message_status, m.attempts AS export_attempts, m.last_error AS export_error,
    m.finished_at AS sent_at, {ORDER_EXPORT_STATUS} AS export_status"""

# One order with its export status, the stored order and the create params.
ORDER_VIEW = text(
    f"""
    SELECT {_ORDER_COLUMNS}, o.document, o.mcom
      FROM sales_order o LEFT JOIN message m ON m.id = o.export_message_id
     WHERE o.increment_id = :increment_id
    """
)

# A page of orders by primary key, optionally received since a time and of one export status; oldest first after
# :after (GET /orders), or newest first before :before (the console's grid). Each export status is written as
# conditions PostgreSQL can answer from an index, not as the CASE above, which it can only test row by row (a rare
# status among a million orders read most of the table):
#   held, acknowledged        columns of the order (held ones through the partial ix_sales_order_held);
#   sent, or any status with  the primary-key walk, testing each order's export message: a page is found at once
#   RARE_EXPORTS or more      when the status is common;
#   messages
#   queued, failed, dead      when fewer messages have those statuses (COUNT_EXPORT_MESSAGES, bounded): the create
#   with fewer                messages in those statuses first (the status index), then their orders
#                             (ix_sales_order_export_message_id; other topics' messages find none), then the page.
#                             MATERIALIZED, so that a generic plan cannot turn it back into the walk, which reads
#                             every order when the status is rare.
_ORDER_STATUS_FILTERS = {
    None: "TRUE",
    "held": "o.export_message_id IS NULL AND o.acknowledged_at IS NULL",
    "acknowledged": "o.acknowledged_at IS NOT NULL",
    "sent": (
        "o.acknowledged_at IS NULL AND o.export_message_id IN "
        "(SELECT id FROM message WHERE status = ANY(CAST(:message_statuses AS message_status[])))"
    ),
    "rare": "o.acknowledged_at IS NULL AND o.export_message_id IN (SELECT id FROM rare_exports)",
}
RARE_EXPORTS = 5000  # fewer messages than this with a filter's statuses: they are read first (the "rare" plan)
# How many messages have a filter's statuses, counted up to :bound (RARE_EXPORTS): whether they are rare.
COUNT_EXPORT_MESSAGES = text(
    """
    SELECT count(*) FROM (SELECT 1 FROM message WHERE status = ANY(CAST(:message_statuses AS message_status[]))
                           LIMIT :bound) AS found
    """
)
# The "rare" plan's first step (a fragment of its page statement): the messages with the filter's statuses.
_RARE_EXPORTS = """
        WITH rare_exports AS MATERIALIZED (
            SELECT id FROM message WHERE status = ANY(CAST(:message_statuses AS message_status[]))
        )"""


def order_page(status_filter: str | None, *, newest_first: bool) -> TextClause:
    """The statement of ``OrderService.page`` for one kind of export-status filter (see _ORDER_STATUS_FILTERS)."""
    return _ORDER_PAGES[(status_filter, newest_first)]


# Every page statement, by kind of filter and direction, built once.
_ORDER_PAGES = {
    (kind, newest): text(
        f"""{_RARE_EXPORTS if kind == "rare" else ""}
        SELECT {_ORDER_COLUMNS}
          FROM sales_order o LEFT JOIN message m ON m.id = o.export_message_id
         WHERE {"o.id < :before" if newest else "o.id > :after"}
           AND (CAST(:since AS timestamptz) IS NULL OR o.received_at >= CAST(:since AS timestamptz))
           AND {condition}
         ORDER BY o.id {"DESC" if newest else ""}
         LIMIT :limit
        """
    )
    for kind, condition in _ORDER_STATUS_FILTERS.items()
    for newest in (False, True)
}

# A posted order: stored if new (the caller then holds its row lock); the stored document is the order itself,
# also when it came wrapped as an Adobe I/O event (:path '{data,value}'), taken from the raw JSON text unchanged.
INSERT_ORDER = text(
    """
    INSERT INTO sales_order (increment_id, entity_id, store_id, commerce_status, commerce_updated_at, document,
                             received_at, updated_at)
    VALUES (:increment_id, :entity_id, :store_id, :status, :commerce_updated_at,
            CAST(:body AS jsonb) #> CAST(:path AS text[]), :now, :now)
    ON CONFLICT (increment_id) DO NOTHING
    RETURNING id
    """
)

# A posted order that was stored before: lock it, so two posts of one order decide one after the other.
LOCK_ORDER = text(
    """
    SELECT id, commerce_status, commerce_updated_at, export_message_id, cardinality(export_message_ids) AS exports
      FROM sales_order WHERE increment_id = :increment_id
       FOR UPDATE
    """
)

# A newer post of a stored order: keep what the store says now.
UPDATE_ORDER = text(
    """
    UPDATE sales_order
       SET entity_id = :entity_id, store_id = :store_id, commerce_status = :status,
           commerce_updated_at = :commerce_updated_at, document = CAST(:body AS jsonb) #> CAST(:path AS text[]),
           updated_at = :now
     WHERE id = :id
    """
)

# An order line as the OMS will know it, from one element ``line`` of the create params' lines (what shipments,
# returns and refunds name): its id, number, Adobe Commerce item (none for SHIPPING), SKU, product type and gross.
_ORDER_LINE_COLUMNS = """line ->> 'id', CAST(line ->> 'line_number' AS int),
           CASE WHEN line ->> 'product_type' <> 'SHIPPING' THEN substring(line ->> 'id' from '^(.*)-[0-9]+$') END,
           line ->> 'sku', line ->> 'product_type', CAST(line -> 'amount' ->> 'gross_amount' AS numeric)"""

# An export queued: the create params as queued (copied from the message: no second trip of the JSON), the message
# that carries them, and the order's lines as the OMS will know them (what shipments, returns and refunds name).
SET_ORDER_EXPORT = text(
    f"""
    WITH params AS (SELECT payload FROM message WHERE id = :message_id),
    exported AS (
        UPDATE sales_order
           SET mcom = (SELECT payload FROM params), export_message_id = :message_id,
               export_message_ids = array_append(export_message_ids, CAST(:message_id AS bigint)), updated_at = :now
         WHERE id = :id
    )
    INSERT INTO order_line (order_id, line_id, line_number, item_id, sku, product_type, gross)
    SELECT :id, {_ORDER_LINE_COLUMNS}
      FROM params, jsonb_array_elements(params.payload -> 'order' -> 'lines') AS line
    ON CONFLICT (order_id, line_id) DO UPDATE
       SET line_number = excluded.line_number, item_id = excluded.item_id, sku = excluded.sku,
           product_type = excluded.product_type, gross = excluded.gross
    """
)

# The first post of an exportable order (async mode; plain asyncpg: one self-committing statement, where the general
# path takes a transaction of four): the order, its export message (due now) and its lines, all or nothing. Writes
# nothing — :message_id comes back NULL — when the order is stored already (the general path then locks it and
# decides); two first posts of one order at once: the second fails on the order number's unique index and takes the
# general path too. SET_ORDER_EXPORT's columns, from the message's params (parsed once). The params were mapped with
# the sourcing rules :bundle_rules (NULL: none stored) of the bundles :bundle_skus, maybe as a process remembered
# them: when the stored ones differ, nothing is written and ``rules_changed`` says so (the caller maps again).
EXPORT_NEW_ORDER = text(
    f"""
    WITH rules AS (
        SELECT EXISTS (SELECT 1 FROM unnest(CAST(:bundle_skus AS text[]), CAST(:bundle_rules AS text[])) AS b(sku, rule)
                         LEFT JOIN bundle_sourcing_rule r ON r.sku = b.sku
                        WHERE r.rule IS DISTINCT FROM b.rule) AS changed
    ),
    queued AS (
        INSERT INTO message (direction, channel, topic, external_id, lane, payload, headers, refs, status,
                             next_attempt_at, created_at)
        SELECT CAST('out' AS message_direction), :channel, :topic, :external_id, :lane, CAST(:params AS jsonb),
               '{{}}'::jsonb, CAST(:refs AS text[]), CAST('queued' AS message_status), :now, :now
         WHERE NOT EXISTS (SELECT 1 FROM sales_order WHERE increment_id = :increment_id)
           AND NOT (SELECT changed FROM rules)
        RETURNING id, payload
    ),
    stored AS (
        INSERT INTO sales_order (increment_id, entity_id, store_id, commerce_status, commerce_updated_at, document,
                                 mcom, export_message_id, export_message_ids, received_at, updated_at)
        SELECT :increment_id, :entity_id, :store_id, :status, :commerce_updated_at,
               CAST(:body AS jsonb) #> CAST(:path AS text[]), queued.payload, queued.id, ARRAY[queued.id], :now, :now
          FROM queued
        RETURNING id
    ),
    lines AS (
        INSERT INTO order_line (order_id, line_id, line_number, item_id, sku, product_type, gross)
        SELECT stored.id, {_ORDER_LINE_COLUMNS}
          FROM stored, queued, jsonb_array_elements(queued.payload -> 'order' -> 'lines') AS line
    )
    SELECT (SELECT id FROM queued) AS message_id, (SELECT changed FROM rules) AS rules_changed
    """
)

# The sourcing rules of the bundles of one order (plain asyncpg: one self-committing statement).
BUNDLE_RULES = text("SELECT sku, rule FROM bundle_sourcing_rule WHERE sku = ANY(CAST(:skus AS text[]))")

# `orders sync`: orders whose status is exportable but that have no export, or whose export failed, was discarded
# or died — oldest first, the next :limit after id :after (one batch). Locked, so two syncs never queue one order
# twice.
ORDERS_TO_SYNC = text(
    f"""
    SELECT o.id, o.increment_id, o.document::text AS document_text, cardinality(o.export_message_ids) AS exports
      FROM sales_order o LEFT JOIN message m ON m.id = o.export_message_id
     WHERE o.id > :after AND o.acknowledged_at IS NULL
       AND ((o.export_message_id IS NULL AND o.commerce_status = ANY(CAST(:statuses AS text[])))
            OR m.status IN {GIVEN_UP})
     ORDER BY o.id
     LIMIT :limit
       FOR UPDATE OF o SKIP LOCKED
    """
)

# The OMS's `magento.sales.order_management.created`: the order is acknowledged (the first acknowledgement counts).
ACKNOWLEDGE_ORDER = text(
    """
    UPDATE sales_order
       SET acknowledged_at = COALESCE(acknowledged_at, :now),
           acknowledged_message_id = COALESCE(acknowledged_message_id, :message_id), updated_at = :now
     WHERE increment_id = :increment_id
    RETURNING acknowledged_message_id
    """
)

# Whether the OMS has an order (app/services/order_gate.py): acknowledged, or its current export succeeded. The
# order row is locked, and the export message read FOR SHARE: a success being recorded meanwhile is waited for and
# then read (so a call is never held after the release that would have let it go).
ORDER_GATE = text(
    """
    SELECT o.acknowledged_at IS NOT NULL AS acknowledged, o.export_message_id,
           (SELECT m.status::text FROM message m WHERE m.id = o.export_message_id FOR SHARE) AS export_status
      FROM sales_order o WHERE o.increment_id = :increment_id
       FOR UPDATE OF o
    """
)

# The OMS acknowledged an order: the creates `orders sync` queued again and that are not sent yet (queued, retrying)
# are not needed any more. The order's first create stays: sent again, its id lets the OMS see a repeat.
DISCARD_PENDING_CREATES = text(
    f"""
    WITH discarded AS (
        UPDATE message SET status = 'discarded', finished_at = :now, last_error = :reason
         WHERE direction = 'out' AND lane = :lane AND topic = :topic AND status IN {UNCLAIMED}
           AND id <> (SELECT o.export_message_ids[1] FROM sales_order o WHERE o.increment_id = :increment_id)
        RETURNING 1
    )
    SELECT count(*) FROM discarded
    """
)
