"""The plain asyncpg pools (ingest writer, bus): a released connection comes back clean, without a reset query."""

from __future__ import annotations

from app.db import Database, DatabaseUrl


async def test_a_connection_released_inside_a_transaction_is_rolled_back_before_it_is_used_again(
    database_url: DatabaseUrl,
):
    db = Database(database_url)
    try:
        pool = await db.bus_pool()
        async with pool.acquire() as connection:
            await connection.execute("BEGIN")  # as a task cancelled half-way through a transaction leaves it
            await connection.execute("CREATE TABLE left_open (n int)")
            assert connection.is_in_transaction()
        async with pool.acquire() as connection:  # max 8, min 1: the same connection again
            assert not connection.is_in_transaction()
            assert await connection.fetchval("SELECT to_regclass('left_open')") is None
        async with db.bus_connection() as connection:
            assert await connection.fetchval("SELECT 1") == 1
    finally:
        await db.dispose()


async def test_releasing_a_connection_sends_no_reset_query(database_url: DatabaseUrl):
    db = Database(database_url)
    sent: list[str] = []
    try:
        pool = await db.bus_pool()
        async with pool.acquire() as connection:
            connection.add_query_logger(lambda record: sent.append(record.query))
            await connection.fetchval("SELECT 1")
        async with pool.acquire() as connection:
            await connection.fetchval("SELECT 2")
        assert sent == ["SELECT 1", "SELECT 2"]  # asyncpg's default would send "SELECT pg_advisory_unlock_all(); ..."
    finally:
        await db.dispose()
