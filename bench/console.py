"""Console benchmark of the OMS Connector (issue #17, item 4): every /admin page on a big journal, against the same
query through the JSON API in the same run, on 127.0.0.1 only.

  1. fill       M messages (default 5,000,000) over the last D days (30) in arrival order, as a deployment's journal
                holds them: order creates to the OMS and their acknowledgements, stock updates, order updates and
                shipments in, comments / invoices / shipments out to Adobe Commerce; mostly succeeded, some failed,
                dead, discarded and rejected, and among the newest a backlog (queued), retrying lane heads and
                waiting calls; refs name the order and SKUs (one SKU is in 1 % of them). O orders (1,000,000), each
                with its export message, most acknowledged, with lines, status trail, shipments, some returns and
                refunds; P products (100,000) in the catalog and in stock in three aggregates, a finished catalog
                export, a registration. One INSERT … SELECT generate_series per chunk (the indexes of `message`
                and `sales_order` dropped meanwhile and built again after, as the migrations define them), then
                VACUUM ANALYZE and CHECKPOINT; then the processing-time report's rollup (the real one,
                app/workers/stats.py) over the last 8 days, as the workers would have left it.
  2. serve      `oms-connector serve --no-workers` (nothing changes the data while it is read); the console signed in
                with the operator token (POST /admin/login, the session cookie kept), the API with the same token as
                a bearer.
  3. time       per page: W untimed requests, then N timed GETs of the page and N of its JSON API twin, one at a time,
                alternating (page, twin, page, twin …) so that a busy host slows both alike: p50 / p95 / max of the
                whole answer (body read), the ratio page / API at p95, and whether the page's p95 is under the
                target (300 ms). A slow page stops early: after S seconds (--budget, 90) once 20 pairs are in,
                the warm-up after S / 3. Where a twin reads less or otherwise than its page (the order grid is newest
                first, GET /orders oldest first; the order detail page also lists the order's messages), a note
                under the table says so; the settings page has no twin (GET /health/live stands for the floor).

With --explain-over MS (default 150) the database logs the plan of every statement slower than MS (auto_explain,
plans without ANALYZE, so nothing is slowed down); the slowest ones are printed at the end with their query.

A page that answers 404 is not built yet: reported as such, its twin still timed. Figures are printed, never
asserted; the exit status is 1 when a request failed (any other answer than 200, a missing page aside). Everything
lives in a throw-away embedded PostgreSQL, deleted at the end (also on error or SIGTERM).

    .venv/bin/python bench/console.py [--messages M] [--orders O] [--products P] [--requests N] [--warmup W]
                                      [--budget S] [--explain-over MS]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import asyncpg  # noqa: E402

from bench.ingest import (  # noqa: E402  (after the sys.path insert; it also quiets authlib's notice)
    COMMERCE_TOKEN,
    HOST,
    OPERATOR_TOKEN,
    SECRET,
    Service,
    clean_env,
    create_database,
    free_port,
    start_postgres,
)
from bench.stock import print_log_findings, run_bench  # noqa: E402

TARGET_MS = 300.0  # the target: every page under 300 ms at p95
FILL_CHUNK = 250_000  # messages (or orders) per INSERT … SELECT
DAYS = 30  # the journal spans the default retention
ROLLUP_DAYS = 8  # the report's rollup is brought up to date over this many days (the 24 h and 7 d reports)
HOT_SKU = "SKU-0000001"  # in 1 % of the messages' refs
QUEUED_TAIL = 300  # the newest messages are still queued (no workers run)
RECENT = 20_000  # among the newest messages: retrying lane heads and waiting calls
REQUEST_TIMEOUT_S = 120.0
MIN_TIMED = 20  # timed pairs a page gets whatever --budget says
GRID_ORDER = "the console's grid is newest first, GET /orders oldest first (the API has no other order)"

# One chunk of messages n = $1 … $2 of $3, created over the last $5 days in id order (id = n). Every fifth message
# (n % 5 = 1) is the create of order k = (n + 4) / 5 (if k <= $4 and the order is not held, k % 101 = 50), the next
# one its acknowledgement; n % 5 = 3 an order update or shipment of order k - 20, n % 5 = 4 an Adobe Commerce call
# about order k - 40, n % 5 = 0 (and every slot whose order does not exist) a stock update of one SKU.
FILL_MESSAGES = """
    INSERT INTO message (id, direction, channel, topic, external_id, lane, payload, refs, status, attempts,
                         last_error, next_attempt_at, first_attempt_at, created_at, started_at, finished_at,
                         duration_ms)
    SELECT n, x.direction::message_direction, x.channel, x.topic, x.direction || '-' || n,
           CASE WHEN s.status = 'rejected' THEN 'rejected' ELSE x.lane END,
           x.payload::jsonb, x.refs, s.status::message_status,
           CASE s.status WHEN 'queued' THEN 0 WHEN 'waiting' THEN 0 WHEN 'rejected' THEN 0 WHEN 'retrying' THEN 3
                         WHEN 'dead' THEN 12 WHEN 'discarded' THEN 2 ELSE 1 END,
           CASE s.status WHEN 'failed' THEN 'order ' || v.inc || ' refused: line 2 has no SKU'
                         WHEN 'retrying' THEN 'OMS unreachable: connect timeout'
                         WHEN 'dead' THEN 'retry window closed: HTTP 503 from the peer'
                         WHEN 'discarded' THEN 'discarded by an operator: bench' END,
           CASE WHEN s.status = 'retrying' THEN now() + interval '4 minutes' ELSE c.at END,
           CASE WHEN s.status NOT IN ('queued', 'waiting', 'rejected') THEN c.at END,
           c.at,
           CASE WHEN s.finished THEN c.at END,
           CASE WHEN s.finished THEN c.at + make_interval(secs => x.ms / 1000.0) END,
           CASE WHEN s.finished AND s.status <> 'rejected' THEN x.ms END
      FROM generate_series($1::bigint, $2::bigint) AS n,
           LATERAL (SELECT n % 5 AS slot, (n + 4) / 5 AS k, $3::bigint - n AS age) AS b,
           LATERAL (SELECT now() - $5::double precision * interval '1 day' * b.age / $3::bigint AS at) AS c,
           LATERAL (SELECT CASE b.slot WHEN 1 THEN b.k WHEN 2 THEN b.k WHEN 3 THEN b.k - 20 WHEN 4 THEN b.k - 40
                                       ELSE 0 END AS wanted) AS o,
           LATERAL (SELECT CASE WHEN o.wanted BETWEEN 1 AND $4 AND o.wanted % 101 <> 50 THEN o.wanted ELSE 0 END
                             AS ord) AS q,
           LATERAL (SELECT '1' || lpad(q.ord::text, 9, '0') AS inc,
                           'SKU-' || lpad((CASE WHEN n % 100 = 0 THEN 1 ELSE 1 + (n * 7919) % $6 END)::text, 7, '0')
                             AS sku,
                           'SKU-' || lpad((1 + (q.ord * 31) % $6)::text, 7, '0') AS sku_a,
                           'SKU-' || lpad((1 + (q.ord * 131) % $6)::text, 7, '0') AS sku_b,
                           'AGG-' || (n % 3 + 1) AS agg) AS v,
           LATERAL (SELECT CASE WHEN q.ord = 0 THEN 'stock'
                                WHEN b.slot = 1 THEN 'create'
                                WHEN b.slot = 2 THEN 'ack'
                                WHEN b.slot = 3 AND b.k % 2 = 0 THEN 'update'
                                WHEN b.slot = 3 THEN 'shipment'
                                WHEN b.age < $7 AND n % 83 = 4 THEN 'authorize'
                                WHEN b.k % 3 = 0 THEN 'comment'
                                WHEN b.k % 3 = 1 THEN 'invoice'
                                ELSE 'ship' END AS kind) AS t,
           LATERAL (SELECT
               CASE WHEN t.kind IN ('create', 'authorize', 'comment', 'invoice', 'ship') THEN 'out' ELSE 'in' END
                 AS direction,
               CASE WHEN t.kind IN ('comment', 'invoice', 'ship') THEN 'commerce' ELSE 'oms' END AS channel,
               CASE t.kind WHEN 'stock' THEN 'magento.inventory.aggregate_stock_management.updated'
                           WHEN 'create' THEN 'magento.sales.order_management.create'
                           WHEN 'ack' THEN 'magento.sales.order_management.created'
                           WHEN 'update' THEN 'magento.sales.order_management.updated'
                           WHEN 'shipment' THEN 'magento.logistics.fulfillment_management.customer_shipment_done'
                           WHEN 'authorize' THEN 'magento.postsales.return_management.authorize'
                           ELSE 'commerce.order.' || t.kind END AS topic,
               CASE WHEN t.kind = 'stock' THEN 'magento.inventory.aggregate_stock_management.updated/' || v.agg
                    WHEN t.kind IN ('comment', 'invoice', 'ship') THEN 'commerce/order/' || v.inc
                    ELSE 'order/' || v.inc END AS lane,
               CASE WHEN t.kind = 'stock'
                    THEN replace(replace(replace($9, '@SKU@', v.sku), '@AGG@', v.agg), '@N@', n::text)
                    ELSE replace(replace(replace(replace($8, '@INC@', v.inc), '@SKUA@', v.sku_a), '@SKUB@', v.sku_b),
                                 '@N@', n::text) END AS payload,
               CASE WHEN t.kind = 'stock' THEN ARRAY[v.sku]
                    WHEN t.kind IN ('create', 'shipment') THEN ARRAY[v.inc, v.sku_a, v.sku_b]
                    ELSE ARRAY[v.inc] END AS refs,
               CASE WHEN n % 1000 = 0 THEN 4000 + n % 3000
                    WHEN t.kind IN ('create', 'authorize', 'comment', 'invoice', 'ship') THEN 40 + (n * 7919) % 900
                    ELSE 2 + (n * 7919) % 120 END AS ms) AS x,
           LATERAL (SELECT CASE WHEN x.direction = 'in' AND n % 997 = 0 THEN 'rejected'
                                WHEN b.age < $10 THEN 'queued'
                                WHEN t.kind = 'authorize' THEN 'waiting'
                                WHEN b.age < $7 AND n % 97 = 0 THEN 'retrying'
                                WHEN n % 53 = 0 THEN 'failed'
                                WHEN x.direction = 'out' AND n % 211 = 0 THEN 'dead'
                                WHEN n % 499 = 0 THEN 'discarded'
                                ELSE 'succeeded' END AS status) AS s0,
           LATERAL (SELECT s0.status,
                           s0.status NOT IN ('queued', 'waiting', 'retrying', 'processing') AS finished) AS s
"""

# One chunk of orders k = $1 … $2: exported by message 5k - 4 (held ones, k % 101 = 50, are not), acknowledged by
# 5k - 3 when both succeeded (but 1 in 50, sent and never acknowledged); the create params as queued are the
# export message's payload.
FILL_ORDERS = """
    INSERT INTO sales_order (id, increment_id, entity_id, store_id, commerce_status, commerce_updated_at, document,
                             mcom, export_message_id, export_message_ids, acknowledged_at, acknowledged_message_id,
                             received_at, updated_at, oms_status, oms_status_at)
    SELECT k, '1' || lpad(k::text, 9, '0'), k::text, '1',
           CASE WHEN m.id IS NULL THEN 'pending_payment' WHEN ack.yes AND k % 10 < 5 THEN 'complete'
                ELSE 'processing' END,
           r.at, replace(replace($3, '@INC@', '1' || lpad(k::text, 9, '0')), '@K@', k::text)::jsonb,
           m.payload, m.id, CASE WHEN m.id IS NULL THEN '{}'::bigint[] ELSE ARRAY[m.id] END,
           CASE WHEN ack.yes THEN a.finished_at END, CASE WHEN ack.yes THEN a.id END,
           r.at, r.at,
           CASE WHEN ack.yes THEN CASE WHEN k % 10 < 5 THEN 'SHIPPED' WHEN k % 10 < 7 THEN 'IN_PROGRESS'
                                       WHEN k % 10 = 7 THEN 'CANCELED' ELSE 'RELEASED' END END,
           CASE WHEN ack.yes THEN a.finished_at + interval '1 hour' END
      FROM generate_series($1::bigint, $2::bigint) AS k
           LEFT JOIN message m ON m.id = 5 * k - 4 AND k % 101 <> 50 AND m.id BETWEEN 5 * $1 - 4 AND 5 * $2
           LEFT JOIN message a ON a.id = 5 * k - 3 AND k % 101 <> 50 AND a.id BETWEEN 5 * $1 - 4 AND 5 * $2,
           LATERAL (SELECT coalesce(m.created_at, now() - $5::double precision * interval '1 day'
                                                    * greatest(0, $4::bigint - 5 * k) / $4::bigint)
                             - interval '50 milliseconds' AS at) AS r,
           LATERAL (SELECT m.status = 'succeeded' AND a.status = 'succeeded' AND k % 50 <> 7 AS yes) AS ack0,
           LATERAL (SELECT coalesce(ack0.yes, false) AS yes) AS ack
"""

# What the order detail reads besides the order, for the orders $1 … $2: three lines each (two items, shipping),
# the status trail, a shipment for those shipped (id = the order's), a return and a refund for 1 in 50 of those.
FILL_ORDER_LINES = """
    INSERT INTO order_line (order_id, line_id, line_number, item_id, sku, product_type, gross, status, shipment_id)
    SELECT o.id, CASE WHEN l = 3 THEN 'SHIPPING' ELSE (o.id * 10 + l)::text || '-1' END, l,
           CASE WHEN l < 3 THEN (o.id * 10 + l)::text END,
           CASE l WHEN 1 THEN 'SKU-' || lpad((1 + (o.id * 31) % $3)::text, 7, '0')
                  WHEN 2 THEN 'SKU-' || lpad((1 + (o.id * 131) % $3)::text, 7, '0') ELSE 'flatrate' END,
           CASE WHEN l = 3 THEN 'SHIPPING' ELSE 'SIMPLE' END, CASE WHEN l = 3 THEN 4.90 ELSE 19.90 END,
           o.oms_status, CASE WHEN o.oms_status = 'SHIPPED' THEN o.id END
      FROM sales_order o, generate_series(1, 3) AS l
     WHERE o.id BETWEEN $1 AND $2 AND o.export_message_id IS NOT NULL
"""
FILL_STATUS_CHANGES = """
    INSERT INTO order_status_change (order_id, oms_status, reason, commerce_status, status_at, line_statuses,
                                     message_id, commerce_message_id, recorded_at)
    SELECT o.id, s.status, NULL, CASE s.status WHEN 'SHIPPED' THEN 'complete' ELSE 'processing' END,
           o.acknowledged_at + s.after, jsonb_build_array(jsonb_build_object('line', 1, 'status', s.status)),
           o.id * 5 - 2, o.id * 5 - 1, o.acknowledged_at + s.after
      FROM sales_order o,
           LATERAL (VALUES ('RELEASED', interval '1 minute'), (o.oms_status, interval '1 hour')) AS s(status, after)
     WHERE o.id BETWEEN $1 AND $2 AND o.acknowledged_at IS NOT NULL
"""
FILL_SHIPMENTS = """
    INSERT INTO order_shipment (id, order_id, shipment_key, source_id, method, shipped_at, items, packages, message_id,
                                invoice_message_id, commerce_message_id, recorded_at)
    SELECT o.id, o.id, 'SHP-' || o.id, 'WH-1', 'flatrate', o.oms_status_at,
           jsonb_build_array(jsonb_build_object('item_id', (o.id * 10 + 1)::text, 'qty', 1),
                             jsonb_build_object('item_id', (o.id * 10 + 2)::text, 'qty', 1)),
           jsonb_build_array(jsonb_build_object('carrier', 'DHL', 'tracking', '00340434' || lpad(o.id::text, 10, '0'))),
           o.id * 5 - 2, o.id * 5 - 1, o.id * 5 - 1, o.oms_status_at
      FROM sales_order o WHERE o.id BETWEEN $1 AND $2 AND o.oms_status = 'SHIPPED'
"""
FILL_RETURNS = """
    WITH returned AS (SELECT id, oms_status_at FROM sales_order
                       WHERE id BETWEEN $1 AND $2 AND oms_status = 'SHIPPED' AND id % 50 = 3),
    returns AS (
        INSERT INTO order_return (order_id, rma, status, status_at, source_id, lines, request_message_id, message_id,
                                  created_at, updated_at)
        SELECT id, 'RMA-' || id, 'RECEIVED', oms_status_at + interval '3 days', 'WH-1',
               jsonb_build_array(jsonb_build_object('line_id', (id * 10 + 1)::text || '-1', 'qty', 1)),
               id * 5 - 1, id * 5 - 2, oms_status_at + interval '2 days', oms_status_at + interval '3 days'
          FROM returned)
    INSERT INTO order_refund (order_id, credit_note_number, credit_note_date, rma, refund_type, refund_reason, kind,
                              credit_memo, lines, total, message_id, commerce_message_id, recorded_at)
    SELECT id, 'CN-' || id, oms_status_at + interval '4 days', 'RMA-' || id, 'RETURN', 'damaged', 'return',
           jsonb_build_object('items', jsonb_build_array(jsonb_build_object('order_item_id', id * 10 + 1, 'qty', 1))),
           jsonb_build_array(jsonb_build_object('line_id', (id * 10 + 1)::text || '-1', 'gross', 19.90)), 19.90,
           id * 5 - 2, id * 5 - 1, oms_status_at + interval '4 days'
      FROM returned
"""
FILL_REST = [
    """
    INSERT INTO stock (sku, aggregate_id, quantity, unlimited, source_ts, message_id, updated_at)
    SELECT 'SKU-' || lpad(s::text, 7, '0'), 'AGG-' || a, (s * a) % 500, s % 97 = 0, now() - interval '1 hour',
           s * 5, now() - interval '1 hour'
      FROM generate_series(1, $1::int) AS s, generate_series(1, 3) AS a
    """,
    """
    INSERT INTO stock_aggregate (aggregate_id, websites, updated_at)
    VALUES ('AGG-1', '{base}', now()), ('AGG-2', '{de}', now()), ('AGG-3', '{fr,at}', now())
    ON CONFLICT (aggregate_id) DO NOTHING
    """,
    """
    INSERT INTO catalog_product (sku, product_id, type, name, enabled, custom_attributes, website_ids, created_at,
                                 updated_at)
    SELECT 'SKU-' || lpad(s::text, 7, '0'), s, 'simple', 'Product ' || s, s % 10 <> 0,
           jsonb_build_object('color', (s % 17)::text, 'brand', 'Brand ' || (s % 101)), '{1}', now(), now()
      FROM generate_series(1, $1::int) AS s
    """,
    """
    INSERT INTO catalog_export (status, source, send_mode, batch_size, products_read, products_sent, batches_sent,
                                batches_acknowledged, created_at, started_at, finished_at, updated_at)
    VALUES ('done', 'catalog', 'rpc-batch', 5000, $1::int, $1::int, ($1::int + 4999) / 5000, ($1::int + 4999) / 5000,
            now() - interval '1 day', now() - interval '1 day', now() - interval '23 hours',
            now() - interval '23 hours')
    """,
    """
    UPDATE integration_state
       SET registered_url = 'https://connector.example.com/oms/rpc', registered_version = '1.0.0',
           registered_application_id = 'bench', registered_at = now() - interval '40 days',
           register_attempted_at = now() - interval '40 days'
     WHERE id = 1
    """,
]


def order_payload_template() -> str:
    """~500 bytes of create params (as the mapper writes them), with @INC@, @SKUA@, @SKUB@ and @N@ to replace."""
    lines = [
        {"id": f"@N@{i}-1", "line_number": i, "sku": sku, "product_type": "SIMPLE", "quantity": 1,
         "amount": {"gross_amount": "19.90", "net_amount": "16.72", "tax_amount": "3.18", "currency": "EUR"}}
        for i, sku in ((1, "@SKUA@"), (2, "@SKUB@"))
    ]  # fmt: skip
    order = {
        "order": {
            "order_id": "@INC@", "sales_channel": "base", "order_date": "2026-11-22T05:32:00+00:00",
            "customer": {"email": "customer@N@@example.com", "first_name": "Lena", "last_name": "Vogel"},
            "lines": lines, "payment": {"method": "checkmo"}, "currency": "EUR", "grand_total": "44.70",
        }
    }  # fmt: skip
    return json.dumps(order, separators=(",", ":"))


def stock_payload_template() -> str:
    """A one-SKU DELTA stock update, with @SKU@, @AGG@ and @N@ to replace."""
    update = {
        "aggregate_id": "@AGG@", "mode": "DELTA", "created_on": "2026-11-22 05:32:00",
        "items": [{"sku": "@SKU@", "quantity": "@N@.0000", "unlimited": False}],
    }  # fmt: skip
    return json.dumps(update, separators=(",", ":"))


def order_document_template() -> str:
    """~1 KB of an Adobe Commerce order as posted to POST /orders, with @INC@ and @K@ to replace."""
    address = {"firstname": "Lena", "lastname": "Vogel", "street": ["Hauptstraße 5"], "city": "Berlin",
               "postcode": "10115", "country_id": "DE", "telephone": "+49 30 1234567"}  # fmt: skip
    items = [
        {"item_id": f"@K@{i}", "product_type": "simple", "sku": f"SKU-{i:07d}", "name": f"Product {i}",
         "qty_ordered": 1, "price": 16.72, "row_total": 16.72, "tax_amount": 3.18, "row_total_incl_tax": 19.9}
        for i in (1, 2)
    ]  # fmt: skip
    document = {
        "entity_id": "@K@", "increment_id": "@INC@", "status": "processing", "state": "processing", "store_id": 1,
        "created_at": "2026-11-22 05:32:00", "customer_email": "customer@K@@example.com",
        "order_currency_code": "EUR", "grand_total": 44.7, "subtotal": 33.44, "tax_amount": 6.36,
        "shipping_amount": 4.9, "billing_address": address, "payment": {"method": "checkmo"}, "items": items,
        "extension_attributes": {"shipping_assignments": [{"shipping": {"method": "flatrate_flatrate",
                                                                         "address": address}}]},
    }  # fmt: skip
    return json.dumps(document, separators=(",", ":"))


async def chunked(connection: asyncpg.Connection, label: str, sql: str, total: int, *args: Any) -> None:
    """``sql`` for $1 … $2 over 1 … total in chunks of FILL_CHUNK, with ``args`` as $3 …"""
    started = time.perf_counter()
    for first in range(1, total + 1, FILL_CHUNK):
        last = min(total, first + FILL_CHUNK - 1)
        await connection.execute(sql, first, last, *args)
        if total > FILL_CHUNK:
            done = time.perf_counter() - started
            print(f"    {label:<9} {last:>10,} ({last / done:,.0f}/s)", flush=True)


async def drop_indexes(connection: asyncpg.Connection, tables: tuple[str, ...]) -> list[str]:
    """Drop the indexes of ``tables`` that back no constraint; their definitions (as the migrations made them), to
    build them again once the rows are in: a bulk load builds an index several times faster than row by row."""
    rows = await connection.fetch(
        """
        SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition
          FROM pg_index i
         WHERE i.indrelid = ANY(SELECT CAST(t AS regclass) FROM unnest($1::text[]) AS t)
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
        """,
        list(tables),
    )
    for row in rows:
        await connection.execute(f"DROP INDEX {row['name']}")
    return [row["definition"] for row in rows]


async def fill(dsn: str, messages: int, orders: int, products: int) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        await connection.execute("SET maintenance_work_mem = '1GB'")
        definitions = await drop_indexes(connection, ("message", "sales_order"))
        await chunked(
            connection, "messages", FILL_MESSAGES, messages, messages, orders, float(DAYS), products, RECENT,
            order_payload_template(), stock_payload_template(), QUEUED_TAIL,
        )  # fmt: skip
        await chunked(connection, "orders", FILL_ORDERS, orders, order_document_template(), messages, float(DAYS))
        indexing = time.perf_counter()
        for definition in definitions:
            await connection.execute(definition)
        print(
            f"    {len(definitions)} indexes of message and sales_order built in {time.perf_counter() - indexing:.1f} s"
        )
        for sql in (FILL_ORDER_LINES,):
            await chunked(connection, "lines", sql, orders, products)
        for label, sql in (("trail", FILL_STATUS_CHANGES), ("shipments", FILL_SHIPMENTS), ("returns", FILL_RETURNS)):
            await chunked(connection, label, sql, orders)
        for sql in FILL_REST:
            await connection.execute(sql, *([products] if "$1" in sql else []))
        for table in ("message", "sales_order", "order_shipment"):
            await connection.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 0) + 1 FROM {table}))"
            )
        filled = time.perf_counter() - started
        await connection.execute("VACUUM ANALYZE")
        await connection.execute("CHECKPOINT")
        sizes = await connection.fetchrow(
            "SELECT pg_size_pretty(pg_total_relation_size('message')) AS message,"
            " pg_size_pretty(pg_total_relation_size('sales_order')) AS orders"
        )
        print(
            f"  filled {messages:,} messages ({sizes['message']}) and {orders:,} orders ({sizes['orders']}) in "
            f"{filled:.1f} s, vacuumed and analyzed in {time.perf_counter() - started - filled:.1f} s"
        )
    finally:
        await connection.close()


async def roll_up(dsn: str) -> None:
    """The report's stats as the workers keep them: the real rollup, from ROLLUP_DAYS ago up to this minute."""
    from pydantic import SecretStr

    from app.clock import SystemClock
    from app.db import Database, DatabaseUrl
    from app.settings import Settings
    from app.workers.stats import StatsRollup

    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            """
            UPDATE message_stat_state
               SET rolled_up_until = date_trunc('hour', now() - $1::int * interval '1 day'),
                   counted_until = date_trunc('hour', now() - $1::int * interval '1 day'),
                   hours_until = date_trunc('hour', now() - $1::int * interval '1 day'), updated_at = now()
             WHERE id = 1
            """,
            ROLLUP_DAYS,
        )
    finally:
        await connection.close()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=SecretStr(dsn),
        run_migrations=False,
        oms_url=None,
        oms_secret=SecretStr(SECRET),
        operator_token=SecretStr(OPERATOR_TOKEN),
        commerce_token=SecretStr(COMMERCE_TOKEN),
        log_level="WARNING",
    )
    db = Database(DatabaseUrl.parse(dsn))
    started = time.perf_counter()
    try:
        steps = await StatsRollup(db, SystemClock(), settings).roll_up()
    finally:
        await db.engine.dispose()
    print(
        f"  report rollup over the last {ROLLUP_DAYS} days: {len(steps)} steps in {time.perf_counter() - started:.1f} s"
    )


async def log_slow_plans(admin_dsn: str, database: str, over_ms: float) -> None:
    """auto_explain for every session of the bench database: the plan of each statement slower than ``over_ms``
    goes to the server's log (no ANALYZE: the statements are not slowed down)."""
    connection = await asyncpg.connect(admin_dsn)
    try:
        await connection.execute(f"ALTER DATABASE {database} SET session_preload_libraries = 'auto_explain'")
        await connection.execute(f"ALTER DATABASE {database} SET auto_explain.log_min_duration = '{over_ms:g}ms'")
    finally:
        await connection.close()


# --------------------------------------------------------------------------------------------------------------
# The pages and their twins
# --------------------------------------------------------------------------------------------------------------
@dataclass
class Target:
    name: str
    page: str  # a console URL (path and query)
    api: str  # its JSON API twin
    page_times: list[float] = field(default_factory=list)  # seconds
    api_times: list[float] = field(default_factory=list)
    page_status: dict[int, int] = field(default_factory=lambda: defaultdict(int))  # status → answers (timed)
    api_status: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    note: str = ""  # how the twin differs from the page, printed under the table
    missing: bool = False  # the page answered 404 at warm-up: not built yet
    first_problem: str | None = None

    def failed(self) -> int:
        page = 0 if self.missing else sum(count for status, count in self.page_status.items() if status != 200)
        return page + sum(count for status, count in self.api_status.items() if status != 200)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000.0 if ordered else float("nan")


@dataclass(frozen=True)
class Fixture:
    """What the URLs name, picked from the filled database (and, for the second pages, from the API's first)."""

    message_id: int
    increment_id: str
    topic: str
    sku: str
    journal_cursor: str  # page 2 of the journal (newest first, the page's and the API's)
    grid_cursor: str  # page 2 of the console's order grid (newest first)
    orders_cursor: str  # page 2 of GET /orders (oldest first)


async def pick_fixture(dsn: str, session: aiohttp.ClientSession, base: str, headers: dict[str, str]) -> Fixture:
    connection = await asyncpg.connect(dsn)
    try:
        message_id = await connection.fetchval("SELECT max(id) FROM message WHERE status = 'failed'")
        # a recent order with every part of the detail: lines, trail, shipment, return and refund
        increment_id = await connection.fetchval(
            "SELECT o.increment_id FROM sales_order o JOIN order_return r ON r.order_id = o.id ORDER BY r.order_id DESC"
            " LIMIT 1"
        ) or await connection.fetchval("SELECT increment_id FROM sales_order ORDER BY id DESC LIMIT 1")
        grid_cursor = await connection.fetchval("SELECT id FROM sales_order ORDER BY id DESC OFFSET 49 LIMIT 1")
    finally:
        await connection.close()

    async def next_cursor(path: str) -> str:
        async with session.get(base + path, headers=headers) as response:
            body = await response.json()
            if response.status != 200 or not body.get("next_cursor"):
                raise RuntimeError(f"GET {path}: {response.status}, no next_cursor: {str(body)[:300]}")
            return str(body["next_cursor"])

    return Fixture(
        message_id=int(message_id),
        increment_id=str(increment_id),
        topic="commerce.order.ship",
        sku="SKU-0000042",
        journal_cursor=await next_cursor("/journal?limit=50"),
        grid_cursor=str(grid_cursor),
        orders_cursor=await next_cursor("/orders?limit=50"),
    )


def targets(f: Fixture) -> list[Target]:
    """The console's pages with their filters, each against the JSON API call that reads the same."""
    return [
        Target("integration", "/admin", "/integration", note="the page adds the 24 h throughput (the report by hour)"),
        Target("journal", "/admin/journal?limit=50", "/journal?limit=50"),
        Target("journal status=failed", "/admin/journal?status=failed&limit=50", "/journal?status=failed&limit=50"),
        Target(
            f"journal topic={f.topic}", f"/admin/journal?topic={f.topic}&limit=50", f"/journal?topic={f.topic}&limit=50"
        ),
        Target(
            "journal reference=<order>",
            f"/admin/journal?reference={f.increment_id}&limit=50",
            f"/journal?reference={f.increment_id}&limit=50",
        ),
        Target(
            f"journal reference={HOT_SKU} (1 %)",
            f"/admin/journal?reference={HOT_SKU}&limit=50",
            f"/journal?reference={HOT_SKU}&limit=50",
        ),
        Target(
            "journal page 2 (cursor)",
            f"/admin/journal?cursor={f.journal_cursor}&limit=50",
            f"/journal?cursor={f.journal_cursor}&limit=50",
        ),
        Target("journal/{id}", f"/admin/journal/{f.message_id}", f"/journal/{f.message_id}"),
        Target("orders", "/admin/orders?limit=50", "/orders?limit=50", note=GRID_ORDER),
        Target(
            "orders export_status=failed",
            "/admin/orders?export_status=failed&limit=50",
            "/orders?export_status=failed&limit=50",
            note=GRID_ORDER,
        ),
        Target(
            "orders export_status=queued",
            "/admin/orders?export_status=queued&limit=50",
            "/orders?export_status=queued&limit=50",
            note="queued orders are the newest: oldest first, the twin reads the whole table to reach them",
        ),
        Target(
            "orders page 2 (cursor)",
            f"/admin/orders?cursor={f.grid_cursor}&limit=50",
            f"/orders?cursor={f.orders_cursor}&limit=50",
            note=GRID_ORDER,
        ),
        Target(
            "orders/{increment_id}",
            f"/admin/orders/{f.increment_id}",
            f"/orders/{f.increment_id}",
            note="the page also lists the order's newest messages (the journal by reference)",
        ),
        Target(
            "catalog",
            "/admin/catalog",
            "/catalog/exports/current",
            note="the page also counts the catalog (up to 100,000) and reads its settings",
        ),
        Target("stock ?sku=", f"/admin/stock?sku={f.sku}", f"/stock/{f.sku}"),
        Target("report 24h", "/admin/report?range=24h", "/reports/processing?since=24h"),
        Target("report 7d (by day)", "/admin/report?range=7d", "/reports/processing?since=7d&bucket=day"),
        Target(
            "settings",
            "/admin/settings",
            "/health/live",
            note="no JSON twin (the settings are not in the API): /health/live, the server's floor",
        ),
    ]


async def sign_in(session: aiohttp.ClientSession, base: str) -> None:
    """POST /admin/login with the operator token: the session cookie lands in the session's jar."""
    form = {"token": OPERATOR_TOKEN, "next": "/admin"}
    async with session.post(base + "/admin/login", data=form, allow_redirects=False) as response:
        await response.read()
        if response.status != 303 or "oms_console" not in response.cookies:
            raise RuntimeError(f"sign-in failed: POST /admin/login answered {response.status}, no session cookie")


async def get(session: aiohttp.ClientSession, url: str, headers: dict[str, str] | None) -> tuple[int, float, str]:
    """One GET, the whole answer read: status, seconds, and the start of the body when it is not a 200."""
    started = time.perf_counter()
    try:
        async with session.get(url, headers=headers, allow_redirects=False) as response:
            body = await response.read()
            status = response.status
    except Exception as exc:
        return 0, time.perf_counter() - started, f"{exc.__class__.__name__}: {exc}"
    seconds = time.perf_counter() - started
    detail = "" if status == 200 else body[:200].decode(errors="replace")
    return status, seconds, detail


async def measure(
    target: Target,
    session: aiohttp.ClientSession,
    base: str,
    bearer: dict[str, str],
    requests: int,
    warmup: int,
    budget_s: float,
) -> None:
    """Warm-up, then the page and its twin alternately (which goes first alternates too). A slow pair stops early:
    the warm-up after a third of ``budget_s``, the timed requests after ``budget_s`` once MIN_TIMED pairs are in."""
    started = time.monotonic()
    for _ in range(max(1, warmup)):
        if time.monotonic() - started > budget_s / 3:
            break
        page_status, _, page_detail = await get(session, base + target.page, None)
        api_status, _, api_detail = await get(session, base + target.api, bearer)
        if page_status == 404:
            target.missing = True
        if api_status != 200:
            target.first_problem = target.first_problem or f"API {api_status}: {api_detail}"
        if page_status not in (200, 404):
            target.first_problem = target.first_problem or f"page {page_status}: {page_detail}"
    started = time.monotonic()
    for i in range(requests):
        if i >= MIN_TIMED and time.monotonic() - started > budget_s:
            break
        order = [("api", target.api), ("page", target.page)] if i % 2 else [("page", target.page), ("api", target.api)]
        for kind, path in order:
            if kind == "page" and target.missing:
                continue
            status, seconds, detail = await get(session, base + path, bearer if kind == "api" else None)
            (target.page_times if kind == "page" else target.api_times).append(seconds)
            (target.page_status if kind == "page" else target.api_status)[status] += 1
            if status != 200:
                target.first_problem = target.first_problem or f"{kind} {status}: {detail}"


def print_target(target: Target) -> None:
    api = f"{pct(target.api_times, 0.5):7.1f} {pct(target.api_times, 0.95):7.1f} {pct(target.api_times, 1.0):7.1f}"
    if target.missing:
        print(f"  {target.name:<38} {len(target.api_times):>4} {'not built yet (404)':>23}   {api}")
        return
    page_p95, api_p95 = pct(target.page_times, 0.95), pct(target.api_times, 0.95)
    page = f"{pct(target.page_times, 0.5):7.1f} {page_p95:7.1f} {pct(target.page_times, 1.0):7.1f}"
    verdict = "yes" if page_p95 < TARGET_MS else "NO"
    failed = sum(count for status, count in target.page_status.items() if status != 200)
    note = f"  ({failed} failed)" if failed else ""
    print(
        f"  {target.name:<38} {len(target.api_times):>4} {page}   {api}   {page_p95 / api_p95:6.2f}x   {verdict}{note}"
    )


# --------------------------------------------------------------------------------------------------------------
# Slow statements (auto_explain's plans in the server log)
# --------------------------------------------------------------------------------------------------------------
_PLAN_START = re.compile(r"LOG:\s+duration: ([\d.]+) ms\s+plan:")


def slow_plans(log_path: Path, since_offset: int) -> list[tuple[str, int, float, list[str]]]:
    """(query, times logged, slowest ms, its plan) per distinct statement, slowest first."""
    try:
        with log_path.open("rb") as log:
            log.seek(since_offset)
            lines = log.read().decode(errors="replace").splitlines()
    except OSError:
        return []
    found: dict[str, tuple[int, float, list[str]]] = {}
    index = 0
    while index < len(lines):
        match = _PLAN_START.search(lines[index])
        index += 1
        if not match:
            continue
        block: list[str] = []
        while index < len(lines) and (lines[index].startswith(("\t", " ")) or not lines[index].strip()):
            block.append(lines[index].rstrip())
            index += 1
        text = [line.strip() for line in block]
        plan_from = next((i for i, line in enumerate(text) if "(cost=" in line), len(text))
        query_lines = []
        for line in text[:plan_from]:
            if line.startswith("Query Parameters:"):
                break
            query_lines.append(line.removeprefix("Query Text:"))
        query = " ".join(" ".join(query_lines).split())
        ms = float(match.group(1))
        count, slowest, plan = found.get(query, (0, 0.0, []))
        if ms > slowest:
            plan = [line for line in block[plan_from:] if line.strip()]
            slowest = ms
        found[query] = (count + 1, slowest, plan)
    return sorted(((q, c, ms, p) for q, (c, ms, p) in found.items()), key=lambda item: -item[2])


def print_slow_plans(log_path: Path, offset: int, over_ms: float, shown: int = 6) -> None:
    plans = slow_plans(log_path, offset)
    print(f"\nstatements slower than {over_ms:g} ms (auto_explain, estimated plans): {len(plans)} distinct")
    for query, count, ms, plan in plans[:shown]:
        print(f"\n  {count}x, slowest {ms:.1f} ms: {query[:600]}")
        for line in plan[:30]:
            print(f"    {line.removeprefix(chr(9))[:200]}")
        if len(plan) > 30:
            print(f"    … {len(plan) - 30} more plan lines")


# --------------------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------------------
async def run(args: argparse.Namespace, workdir: Path, services: list[Any]) -> int:
    print(
        f"OMS Connector console bench: {args.messages:,} messages, {args.orders:,} orders, {args.requests} timed "
        f"requests per page and per twin after {args.warmup} untimed, {os.cpu_count()} CPUs; workdir {workdir}"
    )
    started = time.perf_counter()
    server, admin_uri = await asyncio.to_thread(start_postgres, workdir)
    services.append(server)
    dsn = await create_database(admin_uri, "bench_console", migrated=True)
    print(f"  embedded PostgreSQL ready, database migrated ({time.perf_counter() - started:.1f} s)")
    await fill(dsn, args.messages, args.orders, args.products)
    await roll_up(dsn)
    if args.explain_over > 0:
        await log_slow_plans(admin_uri, "bench_console", args.explain_over)
    log_path = Path(server.log)
    log_offset = log_path.stat().st_size if log_path.exists() else 0

    port = free_port()
    env = clean_env(
        DATABASE_URL=dsn,
        OMS_SECRET=SECRET,
        OMS_TIMEZONE="UTC",
        OMS_REGISTER_AT_STARTUP="false",
        OPERATOR_TOKEN=OPERATOR_TOKEN,
        COMMERCE_TOKEN=COMMERCE_TOKEN,
        RUN_MIGRATIONS="false",
        LOG_LEVEL=args.log_level,
    )
    argv = [str(ROOT / ".venv/bin/oms-connector"), "serve", "--host", HOST, "--port", str(port), "--no-workers"]
    connector = Service("connector", argv, env, port, "/health/ready", workdir)
    services.append(connector)
    bearer = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    jar = aiohttp.CookieJar(unsafe=True)  # cookies of 127.0.0.1 (an IP address) too
    async with aiohttp.ClientSession(timeout=timeout, cookie_jar=jar) as session:
        await connector.start(session)
        base = connector.base_url
        await sign_in(session, base)
        fixture = await pick_fixture(dsn, session, base, bearer)
        print(
            f"  signed in; journal/{{id}} = {fixture.message_id} (failed), orders/{{id}} = {fixture.increment_id}, "
            f"stock SKU {fixture.sku}\n"
        )
        timed = targets(fixture)
        for target in timed:
            await measure(target, session, base, bearer, args.requests, args.warmup, args.budget)
            print(f"  timed {target.name}: {len(target.api_times)} pairs", flush=True)
    print_log_findings(connector)

    print("\nGET, sequential, n pairs (page, twin) each, ms (whole answer read)")
    print(
        f"  {'page':<38} {'n':>4} {'page p50     p95     max':>23}   {'API p50     p95     max':>23}   {'p95':>7}   "
        "<300 ms"
    )
    for target in timed:
        print_target(target)
    notes: dict[str, list[str]] = defaultdict(list)
    for target in timed:
        if target.note:
            notes[target.note].append(target.name)
    for note, names in notes.items():
        print(f"  {', '.join(names)}: {note}")
    if args.explain_over > 0:
        print_slow_plans(log_path, log_offset, args.explain_over)

    built = [target for target in timed if not target.missing]
    slow = [target.name for target in built if pct(target.page_times, 0.95) >= TARGET_MS]
    print("\nsummary")
    print(f"  pages built {len(built)} of {len(timed)}; p95 under {TARGET_MS:g} ms: {len(built) - len(slow)}")
    if built:
        worst = max(built, key=lambda target: pct(target.page_times, 0.95) / pct(target.api_times, 0.95))
        ratio = pct(worst.page_times, 0.95) / pct(worst.api_times, 0.95)
        print(f"  largest page / API ratio at p95: {ratio:.2f}x ({worst.name})")
    for name in slow:
        print(f"  OVER {TARGET_MS:g} ms at p95: {name}")
    for target in timed:
        if target.missing:
            print(f"  not built yet (404): {target.page}")
    failures = [target for target in timed if target.failed()]
    for target in failures:
        print(f"  PROBLEM: {target.name}: {target.failed()} request(s) failed; first: {target.first_problem}")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=5_000_000, help="journal rows (M)")
    parser.add_argument("--orders", type=int, default=1_000_000, help="orders (O); at most M / 5 are exported")
    parser.add_argument("--products", type=int, default=100_000, help="catalog products and stocked SKUs (P)")
    parser.add_argument("--requests", "-n", type=int, default=200, help="timed requests per page and per twin (N)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed requests per page and per twin first (W)")
    parser.add_argument(
        "--budget",
        type=float,
        default=90.0,
        help=f"seconds of timed requests per page and twin, at least {MIN_TIMED} pairs (a slow page stops early)",
    )
    parser.add_argument(
        "--explain-over", type=float, default=150.0, help="log and print the plans of statements slower (ms); 0: off"
    )
    parser.add_argument("--log-level", default="WARNING", help="LOG_LEVEL of the connector subprocess")
    args = parser.parse_args()
    if min(args.messages, args.orders * 10, args.products) < 1000 or args.requests < 1 or args.warmup < 0:
        parser.error("--messages and --products at least 1000, --orders at least 100, --requests at least 1")
    if args.budget <= 0 or args.explain_over < 0:
        parser.error("--budget must be positive, --explain-over not negative")

    return run_bench(run, args, "omsc-")


if __name__ == "__main__":
    sys.exit(main())
