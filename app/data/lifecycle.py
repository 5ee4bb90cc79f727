"""The order lifecycle's statements: what the OMS says after the export (status changes, shipments, returns,
refunds, store credit) recorded against the order and its lines, the store's cancel and return requests, the
deliveries of those effects to Adobe Commerce, and the order view's history (GET /orders/{id})."""

from __future__ import annotations

from sqlalchemy import text

from app.data.statuses import GIVEN_UP

# The order a lifecycle event or request is about, locked: the OMS's messages of one order arrive in one lane, but
# a cancel or return request from the store may come at the same moment.
LOCK_ORDER_LIFECYCLE = text(
    """
    SELECT id, increment_id, entity_id, store_id, mcom -> 'order' ->> 'store' AS oms_store, export_message_id,
           oms_status, oms_status_reason, cancel_requested_at, canceled_at, store_credit, store_credit_note
      FROM sales_order WHERE increment_id = :increment_id
       FOR UPDATE
    """
)

# An order's lines in line-number order: their OMS status and the shipment, return and refund that took each.
ORDER_LINES = text(
    """
    SELECT line_id, line_number, item_id, sku, product_type, gross, status, status_reason, shipment_id, return_id,
           refund_id, refunded_before_shipment
      FROM order_line WHERE order_id = :order_id ORDER BY line_number
    """
)

# Which of the lines :line_ids that have no product (item_id NULL) belong to one unit — a wrapped unit's gift
# wrapping: its parent_line_id in the create params is that unit — each with the product lines that make the unit:
# the unit's own line, or a bundle unit's children (the bundle unit is no line; its children name it as parent). A
# line of the whole order (SHIPPING, the order's wrapping, the printed card) has no parent and is not returned.
UNITS_OF_CHARGES = text(
    """
    WITH params AS (
        SELECT line ->> 'id' AS line_id, line ->> 'parent_line_id' AS parent_line_id
          FROM sales_order o, jsonb_array_elements(o.mcom -> 'order' -> 'lines') AS line
         WHERE o.id = :order_id
    )
    SELECT charge.line_id, array_agg(unit.line_id ORDER BY unit.line_number) AS unit_line_ids
      FROM order_line charge
      JOIN params own ON own.line_id = charge.line_id AND own.parent_line_id IS NOT NULL
      JOIN params part ON part.line_id = own.parent_line_id OR part.parent_line_id = own.parent_line_id
      JOIN order_line unit ON unit.order_id = charge.order_id AND unit.line_id = part.line_id
                          AND unit.item_id IS NOT NULL
     WHERE charge.order_id = :order_id AND charge.item_id IS NULL
       AND charge.line_id = ANY(CAST(:line_ids AS text[]))
     GROUP BY charge.line_id
    """
)

# The order as the store posted it (JSON text): the gift-card part a store credit is computed from.
ORDER_DOCUMENT_TEXT = text("SELECT document::text FROM sales_order WHERE id = :order_id")

# The order's OMS status now (canceled_at set once, the first time the status cancels it).
SET_OMS_STATUS = text(
    """
    UPDATE sales_order
       SET oms_status = :status, oms_status_reason = :reason, oms_status_at = :status_at,
           canceled_at = CASE WHEN :canceled THEN COALESCE(canceled_at, :now) ELSE canceled_at END, updated_at = :now
     WHERE id = :order_id
    """
)

# One status change in the order's history trail, with the line statuses it carried.
INSERT_STATUS_CHANGE = text(
    """
    INSERT INTO order_status_change (order_id, oms_status, reason, commerce_status, status_at, line_statuses,
                                     message_id, recorded_at)
    VALUES (:order_id, :status, :reason, :commerce_status, :status_at, CAST(:line_statuses AS jsonb), :message_id,
            :now)
    RETURNING id
    """
)

# A status change's comment queued for Adobe Commerce: its message.
SET_STATUS_CHANGE_DELIVERY = text("UPDATE order_status_change SET commerce_message_id = :message_id WHERE id = :id")

# Line statuses from an update; a line the update leaves without a status keeps its own (protocol §6, row 12).
SET_LINE_STATUSES = text(
    """
    UPDATE order_line l
       SET status = t.status, status_reason = NULLIF(t.reason, '')
      FROM unnest(CAST(:line_ids AS text[]), CAST(:statuses AS text[]), CAST(:reasons AS text[]))
           AS t(line_id, status, reason)
     WHERE l.order_id = :order_id AND l.line_id = t.line_id
    """
)

# A shipment the OMS reported, once per shipment key (a repeat returns no row).
INSERT_SHIPMENT = text(
    """
    INSERT INTO order_shipment (order_id, shipment_key, source_id, method, shipped_at, items, packages, message_id,
                                recorded_at)
    VALUES (:order_id, :shipment_key, :source_id, :method, :shipped_at, CAST(:items AS jsonb),
            CAST(:packages AS jsonb), :message_id, :now)
    ON CONFLICT (order_id, shipment_key) DO NOTHING
    RETURNING id
    """
)

# A shipment's invoice and shipment queued for Adobe Commerce: their messages.
SET_SHIPMENT_DELIVERY = text(
    """
    UPDATE order_shipment SET invoice_message_id = :invoice_message_id, commerce_message_id = :message_id
     WHERE id = :id
    """
)

# Lines taken by a shipment, return or refund (each given column set, the others kept), or refunded before shipment.
MARK_LINES = text(
    """
    UPDATE order_line
       SET shipment_id = COALESCE(CAST(:shipment_id AS bigint), shipment_id),
           return_id = COALESCE(CAST(:return_id AS bigint), return_id),
           refund_id = COALESCE(CAST(:refund_id AS bigint), refund_id),
           refunded_before_shipment = refunded_before_shipment OR :before_shipment
     WHERE order_id = :order_id AND line_id = ANY(CAST(:line_ids AS text[]))
    """
)

# An order's returns with this RMA and, when :match_pending, those the store asked for without one yet (RMA first).
FIND_RETURN = text(
    """
    SELECT id, rma, status, lines, history FROM order_return
     WHERE order_id = :order_id AND (rma = :rma OR (rma IS NULL AND :match_pending))
     ORDER BY rma IS NULL, id
    """
)

# A return the OMS reported, or one the store asked for (app/services/order_actions.py: no RMA yet).
INSERT_RETURN = text(
    """
    INSERT INTO order_return (order_id, rma, status, status_at, source_id, tracking, lines, history,
                              request_message_id, message_id, created_at, updated_at)
    VALUES (:order_id, :rma, :status, :status_at, :source_id, CAST(:tracking AS jsonb), CAST(:lines AS jsonb),
            CAST(:history AS jsonb), :request_message_id, :message_id, :now, :now)
    RETURNING id
    """
)

# A return reported again: its RMA, status and lines as they are now; tracking and history added to.
UPDATE_RETURN = text(
    """
    UPDATE order_return
       SET rma = :rma, status = :status, status_at = :status_at, source_id = COALESCE(:source_id, source_id),
           tracking = tracking || CAST(:tracking AS jsonb), lines = CAST(:lines AS jsonb),
           history = history || CAST(:history AS jsonb), message_id = :message_id, updated_at = :now
     WHERE id = :id
    """
)

# A refund (credit note) the OMS reported, once per credit note number (a repeat returns no row).
INSERT_REFUND = text(
    """
    INSERT INTO order_refund (order_id, credit_note_number, credit_note_date, rma, refund_type, refund_reason, kind,
                              credit_memo, lines, before_shipment, total, message_id, recorded_at)
    VALUES (:order_id, :number, :note_date, :rma, :refund_type, :refund_reason, :kind, CAST(:credit_memo AS jsonb),
            CAST(:lines AS jsonb), CAST(:before_shipment AS text[]), :total, :message_id, :now)
    ON CONFLICT (order_id, credit_note_number) DO NOTHING
    RETURNING id
    """
)

# A refund's credit memo queued for Adobe Commerce: its message.
SET_REFUND_DELIVERY = text("UPDATE order_refund SET commerce_message_id = :message_id WHERE id = :id")

# The store credit of an entirely refunded order (:amount NULL when none is issued; :note says why).
SET_STORE_CREDIT = text(
    "UPDATE sales_order SET store_credit = :amount, store_credit_note = :note, updated_at = :now WHERE id = :order_id"
)

# The store asked to cancel the order: when, why, and the cancel call queued for the OMS.
REQUEST_CANCEL = text(
    """
    UPDATE sales_order
       SET cancel_requested_at = :now, cancel_reason = :reason, cancel_message_id = :message_id, updated_at = :now
     WHERE id = :order_id
    """
)

# The cancel call already queued for an order, and its status (a second request answers with the first).
CANCEL_MESSAGE_OF_ORDER = text(
    """
    SELECT o.cancel_message_id, m.status::text AS status
      FROM sales_order o LEFT JOIN message m ON m.id = o.cancel_message_id
     WHERE o.id = :order_id
    """
)

# Returns the store asked for that the OMS never took (the authorize call failed, died or was discarded, and no
# RMA came back): their lines may be asked for again.
ABANDONED_RETURNS = text(
    f"""
    SELECT r.id FROM order_return r JOIN message m ON m.id = r.request_message_id
     WHERE r.order_id = :order_id AND r.rma IS NULL AND m.status IN {GIVEN_UP}
    """
)

# A return the store asked for: its authorize call, and its lines taken so that no second request picks them.
SET_RETURN_REQUEST = text(
    """
    WITH marked AS (
        UPDATE order_line SET return_id = :id
         WHERE order_id = :order_id AND line_id = ANY(CAST(:line_ids AS text[]))
    )
    UPDATE order_return SET request_message_id = :message_id WHERE id = :id
    """
)

# The cancel queued for Adobe Commerce once the OMS canceled the order: its message.
SET_CANCEL_DELIVERY = text("UPDATE sales_order SET cancel_commerce_message_id = :message_id WHERE id = :order_id")

# The store credit's comment queued for Adobe Commerce: its message.
SET_STORE_CREDIT_DELIVERY = text("UPDATE sales_order SET store_credit_message_id = :message_id WHERE id = :order_id")

# GET /orders/{id}: what happened since the export, each effect with the state of its delivery to Adobe Commerce
# ('pruned': its message finished longer ago than OMS_JOURNAL_RETENTION_DAYS and was deleted).
_DELIVERY = (
    "COALESCE((SELECT status::text FROM message WHERE id = {column}), CASE WHEN {column} IS NOT NULL THEN 'pruned' END)"
)
# The order view's lifecycle part: OMS status, cancel, store credit, history, shipments, returns, refunds, lines.
ORDER_LIFECYCLE = text(
    f"""
    SELECT o.oms_status, o.oms_status_reason, o.oms_status_at, o.cancel_requested_at, o.cancel_reason,
           o.cancel_message_id, {_DELIVERY.format(column="o.cancel_message_id")} AS cancel_message_status,
           o.canceled_at, o.cancel_commerce_message_id,
           {_DELIVERY.format(column="o.cancel_commerce_message_id")} AS cancel_delivery,
           o.store_credit, o.store_credit_note, o.store_credit_message_id,
           {_DELIVERY.format(column="o.store_credit_message_id")} AS store_credit_delivery,
           (SELECT coalesce(jsonb_agg(jsonb_build_object(
                'oms_status', c.oms_status, 'reason', c.reason, 'commerce_status', c.commerce_status,
                'status_at', c.status_at, 'recorded_at', c.recorded_at, 'message_id', c.message_id,
                'line_statuses', c.line_statuses, 'commerce_message_id', c.commerce_message_id,
                'delivery', {_DELIVERY.format(column="c.commerce_message_id")}) ORDER BY c.id), '[]')
              FROM order_status_change c WHERE c.order_id = o.id) AS history,
           (SELECT coalesce(jsonb_agg(jsonb_build_object(
                'shipment_key', s.shipment_key, 'source_id', s.source_id, 'method', s.method,
                'shipped_at', s.shipped_at, 'items', s.items, 'packages', s.packages, 'message_id', s.message_id,
                'recorded_at', s.recorded_at, 'invoice_message_id', s.invoice_message_id,
                'invoice_delivery', {_DELIVERY.format(column="s.invoice_message_id")},
                'commerce_message_id', s.commerce_message_id,
                'delivery', {_DELIVERY.format(column="s.commerce_message_id")}) ORDER BY s.id), '[]')
              FROM order_shipment s WHERE s.order_id = o.id) AS shipments,
           (SELECT coalesce(jsonb_agg(jsonb_build_object(
                'rma', r.rma, 'status', r.status, 'status_at', r.status_at, 'source_id', r.source_id,
                'tracking', r.tracking, 'lines', r.lines, 'history', r.history,
                'request_message_id', r.request_message_id,
                'request_delivery', {_DELIVERY.format(column="r.request_message_id")},
                'created_at', r.created_at, 'updated_at', r.updated_at) ORDER BY r.id), '[]')
              FROM order_return r WHERE r.order_id = o.id) AS returns,
           (SELECT coalesce(jsonb_agg(jsonb_build_object(
                'credit_note_number', f.credit_note_number, 'credit_note_date', f.credit_note_date, 'rma', f.rma,
                'refund_type', f.refund_type, 'refund_reason', f.refund_reason, 'kind', f.kind,
                'credit_memo', f.credit_memo, 'lines', f.lines, 'refunded_before_shipment', f.before_shipment,
                'total', f.total, 'message_id', f.message_id, 'recorded_at', f.recorded_at,
                'commerce_message_id', f.commerce_message_id,
                'delivery', {_DELIVERY.format(column="f.commerce_message_id")}) ORDER BY f.id), '[]')
              FROM order_refund f WHERE f.order_id = o.id) AS refunds,
           (SELECT coalesce(jsonb_agg(jsonb_build_object(
                'line_id', l.line_id, 'line_number', l.line_number, 'item_id', l.item_id, 'sku', l.sku,
                'product_type', l.product_type, 'status', l.status, 'shipped', l.shipment_id IS NOT NULL,
                'returned', l.return_id IS NOT NULL, 'refunded', l.refund_id IS NOT NULL,
                'refunded_before_shipment', l.refunded_before_shipment) ORDER BY l.line_number), '[]')
              FROM order_line l WHERE l.order_id = o.id) AS lines
      FROM sales_order o WHERE o.increment_id = :increment_id
    """
)
