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
            assert await connection.fetchval("SELECT version_num FROM alembic_version") == "0007"
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
