"""Schema truth: the migrations build exactly what the models describe, and downgrade cleanly."""

from __future__ import annotations

import asyncio

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
            assert await connection.fetchval("SELECT version_num FROM alembic_version") == "0008"
            assert await connection.fetchval("SELECT enabled FROM integration_state WHERE id = 1") is True
            triggers = await connection.fetchval("SELECT count(*) FROM pg_trigger WHERE tgname = 'message_inserted'")
            assert triggers == 1
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
