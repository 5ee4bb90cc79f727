"""`oms-connector orders pull [--since]` as operators run it: a backfill from a time, what it prints, and how it
ends when Adobe Commerce is not configured or not answering."""

from __future__ import annotations

import asyncio

import asyncpg

from app.db import DatabaseUrl
from app.services.order_pull import PULL_TOPIC
from tests.integration.test_cli import run
from tests.support.pulled_orders import at, number, store_order
from tests.support.stub_commerce import StubCommerce


def _env(database_url: DatabaseUrl, commerce: StubCommerce) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url.libpq,
        "RUN_MIGRATIONS": "false",
        "ADOBE_COMMERCE_URL": commerce.base_url,
        "ADOBE_COMMERCE_TOKEN": commerce.token,
    }


async def test_orders_pull_since_backfills_every_order_updated_since_then(
    raw: asyncpg.Connection, database_url: DatabaseUrl
) -> None:
    with StubCommerce() as commerce:
        for entity_id in range(1, 6):
            status = "holded" if entity_id == 3 else "pending"
            commerce.put_order(store_order(entity_id, updated_at=at(entity_id * 3600), status=status))
        result = await asyncio.to_thread(
            run, ["orders", "pull", "--since", "2026-03-01T09:30:00Z"], **_env(database_url, commerce)
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "orders pull: 4 orders read in 1 pages since 2026-03-01 09:30:00 UTC: 4 new, 0 changed, 0 unchanged, "
        "0 refused; 3 exported, 1 held; cursor 2026-03-01 13:00:00 #5 (updated_at UTC #entity_id)"
    )
    numbers = await raw.fetch("SELECT increment_id FROM sales_order ORDER BY increment_id")
    assert [row["increment_id"] for row in numbers] == [number(n) for n in range(2, 6)]
    assert await raw.fetchval("SELECT status::text FROM message WHERE topic = $1", PULL_TOPIC) == "succeeded"


async def test_orders_pull_ends_with_exit_code_1_when_adobe_commerce_does_not_answer(
    raw: asyncpg.Connection, database_url: DatabaseUrl
) -> None:
    with StubCommerce() as commerce:
        commerce.down = True
        result = await asyncio.to_thread(run, ["orders", "pull"], **_env(database_url, commerce))
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "oms-connector: orders pull failed: Adobe Commerce answered GET /orders with HTTP 503" in result.stderr
    entry = await raw.fetchrow("SELECT status::text, last_error FROM message WHERE topic = $1", PULL_TOPIC)
    assert entry["status"] == "retrying" and "HTTP 503" in entry["last_error"]  # the workers try again


async def test_orders_pull_without_adobe_commerce_says_what_to_set(database_url: DatabaseUrl) -> None:
    result = await asyncio.to_thread(run, ["orders", "pull"], DATABASE_URL=database_url.libpq, RUN_MIGRATIONS="false")
    assert result.returncode == 1
    assert "orders pull failed: Adobe Commerce is not configured (ADOBE_COMMERCE_URL and ADOBE_COMMERCE_TOKEN)" in (
        result.stderr
    )


async def test_orders_pull_refuses_a_since_that_is_not_a_time(database_url: DatabaseUrl) -> None:
    result = await asyncio.to_thread(
        run, ["orders", "pull", "--since", "last tuesday"], DATABASE_URL=database_url.libpq
    )
    assert result.returncode == 2 and "is not an ISO 8601 time" in result.stderr
