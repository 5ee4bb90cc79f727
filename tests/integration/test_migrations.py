"""Schema truth: the migrations build exactly what the models describe, and downgrade cleanly."""

from __future__ import annotations

import asyncio
import json

import asyncpg
from alembic import command

from app.db import DatabaseUrl, alembic_config, migrate
from tests.conftest import create_database, drop_database


async def test_upgrade_on_an_empty_database_matches_the_models_and_downgrades(pg_server: DatabaseUrl):
    url = await create_database(pg_server, template=None)
    try:
        await asyncio.to_thread(migrate, url)
        # autogenerate finds no difference between models and migrated schema (raises otherwise)
        await asyncio.to_thread(command.check, alembic_config(url))
        connection = await asyncpg.connect(url.libpq)
        try:
            assert await connection.fetchval("SELECT version_num FROM alembic_version") == "0016"
            assert await connection.fetchval("SELECT enabled FROM integration_state WHERE id = 1") is True
            triggers = await connection.fetchval("SELECT count(*) FROM pg_trigger WHERE tgname = 'message_inserted'")
            assert triggers == 1
            options = await connection.fetchval("SELECT reloptions FROM pg_class WHERE relname = 'message'")
            assert "autovacuum_vacuum_cost_delay=20" in options  # 0012: a prune's clean-up spares the webhooks
        finally:
            await connection.close()
        await asyncio.to_thread(command.downgrade, alembic_config(url), "base")
        connection = await asyncpg.connect(url.libpq)
        try:
            tables = await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            assert {t["tablename"] for t in tables} <= {"alembic_version"}
        finally:
            await connection.close()
    finally:
        await drop_database(pg_server, url)


async def test_0008_moves_the_exported_fingerprints_and_back(pg_server: DatabaseUrl):
    url = await create_database(pg_server, template=None)
    try:
        await asyncio.to_thread(command.upgrade, alembic_config(url), "0007")
        connection = await asyncpg.connect(url.libpq)
        try:
            await connection.execute(
                """
                INSERT INTO catalog_product (sku, type, name, enabled, exported_fingerprint, created_at, updated_at)
                VALUES ('A', 'simple', 'A', true, 'f-a', now(), now()), ('B', 'simple', 'B', true, NULL, now(), now())
                """
            )
            await asyncio.to_thread(command.upgrade, alembic_config(url), "0008")
            moved = await connection.fetch("SELECT sku, fingerprint FROM catalog_product_exported")
            assert [tuple(row) for row in moved] == [("A", "f-a")]
            await asyncio.to_thread(command.downgrade, alembic_config(url), "0007")
            back = await connection.fetch("SELECT sku, exported_fingerprint FROM catalog_product ORDER BY sku")
            assert [tuple(row) for row in back] == [("A", "f-a"), ("B", None)]
        finally:
            await connection.close()
    finally:
        await drop_database(pg_server, url)


async def test_0010_marks_the_shipping_methods_rows_keeps_the_encodings_and_downgrades(pg_server: DatabaseUrl):
    url = await create_database(pg_server, template=None)
    try:
        await asyncio.to_thread(command.upgrade, alembic_config(url), "0009")
        connection = await asyncpg.connect(url.libpq)
        try:
            await connection.execute(
                """
                INSERT INTO catalog_setting (key, value, updated_at) VALUES
                    ('product_attributes', '["color"]', now()), ('product_locale', '"en_US"', now()),
                    ('shipping_methods', '[{"code": "flatrate_flatrate", "name": "Flat rate"},
                                           {"code": "TEE-ORG", "name": "x"}]', now())
                """
            )
            await connection.execute(
                """
                INSERT INTO catalog_product (sku, product_id, type, name, enabled, children_skus, child_ids,
                                             custom_attributes, created_at, updated_at) VALUES
                    ('flatrate_flatrate', NULL, 'virtual', 'Flat rate', true, '{}', '{}', '{}', now(), now()),
                    -- a product that took a method's SKU before the fix: it stays a product
                    ('TEE-ORG', 4001, 'configurable', 'Organic Tee', true, '{TEE-S}', '{4002}', '{"color": "49"}',
                     now(), now()),
                    ('WARRANTY', NULL, 'virtual', 'Warranty', true, '{}', '{}', '{}', now(), now())
                """
            )
            before = {r["sku"]: tuple(r)[1:] for r in await connection.fetch(ENCODED)}

            await asyncio.to_thread(command.upgrade, alembic_config(url), "0010")
            marked = await connection.fetch("SELECT sku FROM catalog_product WHERE shipping_method ORDER BY sku")
            assert [r["sku"] for r in marked] == ["flatrate_flatrate"]
            assert {r["sku"]: tuple(r)[1:] for r in await connection.fetch(ENCODED)} == before  # still valid
            # and what the new encoder gives for them, localized names being empty
            for sku, (params, _, _) in before.items():
                assert params == await connection.fetchval(REENCODED, sku)
            await connection.execute(
                """UPDATE catalog_product SET localized_names = '{"de_DE": "Bio-T-Shirt"}' WHERE sku = 'TEE-ORG'"""
            )
            names = await connection.fetchval("SELECT params::jsonb -> 'product' -> 'name' FROM catalog_product "
                                              "WHERE sku = 'TEE-ORG'")  # fmt: skip
            assert json.loads(names) == [
                {"value": "Organic Tee", "locale": "en_US"}, {"value": "Bio-T-Shirt", "locale": "de_DE"}
            ]  # fmt: skip

            await asyncio.to_thread(command.downgrade, alembic_config(url), "0009")
            columns = await connection.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'catalog_product'"
            )
            assert {"shipping_method", "localized_names"}.isdisjoint(r["column_name"] for r in columns)
            kept = await connection.fetchrow("SELECT params, encoded_for FROM catalog_product WHERE sku = 'TEE-ORG'")
            assert tuple(kept) == (None, None)  # encoded with a name 0009 cannot send: left to be encoded as read
            await connection.execute("UPDATE catalog_product SET name = 'Tee' WHERE sku = 'TEE-ORG'")
            params = await connection.fetchval("SELECT params FROM catalog_product WHERE sku = 'TEE-ORG'")
            assert json.loads(params)["product"]["name"] == [{"value": "Tee", "locale": "en_US"}]  # 0008's trigger
        finally:
            await connection.close()
    finally:
        await drop_database(pg_server, url)


ENCODED = "SELECT sku, params, fingerprint, encoded_for FROM catalog_product ORDER BY sku"
REENCODED = """
    SELECT catalog_product_params(type, sku, name, enabled, deleted, children_skus, custom_attributes,
                                  localized_names, ARRAY['color'], 'en_US')
      FROM catalog_product WHERE sku = $1
"""


async def test_0009_holds_calls_queued_behind_a_create_the_oms_has_not_received(pg_server: DatabaseUrl):
    url = await create_database(pg_server, template=None)
    try:
        await asyncio.to_thread(command.upgrade, alembic_config(url), "0008")
        connection = await asyncpg.connect(url.libpq)
        try:
            message = """
                INSERT INTO message (direction, channel, topic, external_id, lane, payload, status, next_attempt_at,
                                     created_at)
                VALUES ('out', 'oms', $1, $2, $3, '{}', $4, now(), now()) RETURNING id"""
            create, cancel, sent = "magento.sales.order_management.create", "magento.sales.order_management.cancel", []
            for number, create_status in (("1", "retrying"), ("2", "succeeded")):
                lane = f"order/{number}"
                create_id = await connection.fetchval(message, create, f"c{number}", lane, create_status)
                sent.append(await connection.fetchval(message, cancel, f"x{number}", lane, "queued"))
                await connection.execute(
                    """INSERT INTO sales_order (increment_id, commerce_status, document, received_at, updated_at,
                                                export_message_id)
                       VALUES ($1, 'pending', '{}', now(), now(), $2)""",
                    number,
                    create_id,
                )
            await asyncio.to_thread(command.upgrade, alembic_config(url), "0009")
            held = await connection.fetch("SELECT id, status::text, last_error FROM message WHERE id = ANY($1)", sent)
            by_id = {row["id"]: row for row in held}
            assert by_id[sent[0]]["status"] == "waiting"  # its create is still retrying: it must not overtake it
            assert "waits for order 1's create" in by_id[sent[0]]["last_error"]
            assert by_id[sent[1]]["status"] == "queued"  # the OMS has order 2
        finally:
            await connection.close()
    finally:
        await drop_database(pg_server, url)
