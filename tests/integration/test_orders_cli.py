"""`oms-connector orders sync [N]` (the seed's oms:orders:sync [N]) as operators run it."""

from __future__ import annotations

import asyncio

import asyncpg

from app.db import DatabaseUrl
from app.runtime import Runtime
from tests.integration.test_cli import run
from tests.support.orders import commerce_order, order_body


async def test_orders_sync_n_queues_the_oldest_dead_exports_again(
    runtime: Runtime, raw: asyncpg.Connection, database_url: DatabaseUrl
) -> None:
    for number in ("301", "302", "303"):
        await runtime.orders.accept(order_body(commerce_order(increment_id=number)))
    await raw.execute("UPDATE message SET status = 'dead' WHERE direction = 'out'")

    result = await asyncio.to_thread(
        run, ["orders", "sync", "2"], DATABASE_URL=database_url.libpq, RUN_MIGRATIONS="false"
    )
    assert result.returncode == 0, result.stderr
    assert "queued 2 orders for export: 301, 302" in result.stdout
    queued = await raw.fetch("SELECT external_id FROM message WHERE status = 'queued' ORDER BY id")
    assert [row["external_id"] for row in queued] == ["mdc-order-301-2", "mdc-order-302-2"]

    result = await asyncio.to_thread(run, ["orders", "sync"], DATABASE_URL=database_url.libpq, RUN_MIGRATIONS="false")
    assert "queued 1 orders for export: 303" in result.stdout

    result = await asyncio.to_thread(run, ["orders", "sync", "0"], DATABASE_URL=database_url.libpq)
    assert result.returncode == 2 and "greater than or equal to 1" in result.stderr
