"""The seed's oms:stock:reset: development only; clears stock and queues quantity 100 for every known SKU (with stock,
or a product of the catalog) in every known aggregate through the inbox, so the normal handler applies it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from app.errors import OperatorActionRefused
from app.protocol.stock import PLAIN_ROWS_MARK
from app.services import stock as stock_service
from app.settings import ShippingMethod
from app.workers.registry import HandlerRegistry, build_registry
from tests.conftest import make_settings
from tests.integration.test_cli import run
from tests.integration.test_stock import drain, send, snapshot
from tests.support.signing import COMMERCE_TOKEN

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def registry() -> HandlerRegistry:
    return build_registry(make_settings())


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"app_env": "development", "oms_aggregate_websites": {"EU-WEB": ["base"], "US-WEB": ["us"]}}


async def all_stock(raw: asyncpg.Connection) -> dict[tuple[str, str], int]:
    rows = await raw.fetch("SELECT sku, aggregate_id, quantity FROM stock")
    return {(r["sku"], r["aggregate_id"]): int(r["quantity"]) for r in rows}


async def test_reset_clears_stock_and_queues_100_for_every_known_sku_in_every_known_aggregate(client, runtime, raw):
    await send(client, snapshot({"A": 3, "B": 0}, at=T0))
    await send(client, snapshot({"C": 8}, at=T0, aggregate="OUTLET"))  # known from its stock, feeds no website
    await drain(runtime)

    result = await runtime.stock.reset()

    assert (result.skus, result.aggregates, result.messages) == (3, ["EU-WEB", "OUTLET", "US-WEB"], 3)
    assert await all_stock(raw) == {}  # cleared in the same transaction that queued the messages
    queued = await raw.fetch("SELECT lane, headers, payload FROM message WHERE status = 'queued' ORDER BY id")
    assert len(queued) == 3
    # its rows are all plain (quantity 100 for SKUs already known): marked so, like the webhook's
    expected_headers = {"origin": "oms-connector stock reset", PLAIN_ROWS_MARK: True}
    assert all(json.loads(m["headers"]) == expected_headers for m in queued)
    assert {json.loads(m["payload"])["snapshot"]["mode"] for m in queued} == {"FULL"}

    await drain(runtime)  # the normal stock handler applies them
    assert await all_stock(raw) == {(sku, agg): 100 for sku in "ABC" for agg in ("EU-WEB", "OUTLET", "US-WEB")}


async def test_reset_splits_large_catalogs_into_pages_of_5000(client, runtime, raw):
    await send(client, snapshot({f"SKU-{n:05}": 1 for n in range(5001)}, at=T0))
    await drain(runtime)
    result = await runtime.stock.reset()
    assert result.messages == 2 * 2  # EU-WEB and US-WEB, 5000 + 1 SKUs each
    sizes = await raw.fetch(
        "SELECT jsonb_array_length(payload->'snapshot'->'stock') AS n FROM message WHERE status = 'queued'"
    )
    assert sorted(r["n"] for r in sizes) == [1, 1, 5000, 5000]


async def test_reset_is_refused_outside_development_and_changes_nothing(client, runtime, raw):
    await send(client, snapshot({"A": 3}, at=T0))
    await drain(runtime)
    runtime.stock.settings = runtime.settings.model_copy(update={"app_env": "production"})
    with pytest.raises(OperatorActionRefused, match="APP_ENV=development"):
        await runtime.stock.reset()
    assert await all_stock(raw) == {("A", "EU-WEB"): 3}
    assert await raw.fetchval("SELECT count(*) FROM message WHERE status = 'queued'") == 0


def test_the_reset_command_refuses_in_production_with_a_clear_message(database_url):
    result = run(["stock", "reset"], DATABASE_URL=database_url.libpq, APP_ENV="production", RUN_MIGRATIONS="false")
    assert result.returncode == 1
    assert "allowed only when APP_ENV=development" in result.stderr


async def test_the_reset_command_queues_the_reset_in_development(database_url, raw):
    await raw.execute(
        "INSERT INTO stock (sku, aggregate_id, quantity, unlimited, source_ts, message_id, updated_at)"
        " VALUES ('A', 'EU-WEB', 4, false, now(), 1, now())"
    )
    result = run(["stock", "reset"], DATABASE_URL=database_url.libpq, APP_ENV="development", RUN_MIGRATIONS="false")
    assert result.returncode == 0, result.stderr
    assert "cleared 1 SKUs; queued 1 stock messages" in result.stdout
    assert await raw.fetchval("SELECT count(*) FROM stock") == 0
    assert await raw.fetchval("SELECT count(*) FROM message WHERE status = 'queued' AND lane LIKE '%/EU-WEB'") == 1


COMMERCE = {"Authorization": f"Bearer {COMMERCE_TOKEN}"}


async def queued_skus(raw: asyncpg.Connection) -> dict[str, list[str]]:
    """Per aggregate, the SKUs of the queued reset pages in queue order."""
    found: dict[str, list[str]] = {}
    for row in await raw.fetch("SELECT payload FROM message WHERE status = 'queued' ORDER BY id"):
        snapshot_ = json.loads(row["payload"])["snapshot"]
        found.setdefault(snapshot_["aggregate_id"], []).extend(item["sku"] for item in snapshot_["stock"])
    return found


async def test_reset_queues_the_catalogs_products_too_but_not_deleted_ones_or_shipping_methods(client, runtime, raw):
    await send(client, snapshot({"A": 3}, at=T0))
    await drain(runtime)
    for sku in ("CAT-ONLY", "GONE"):
        posted = await client.post("/catalog/products", json={"sku": sku, "name": sku}, headers=COMMERCE)
        assert posted.status_code == 200, posted.text
    assert (await client.delete("/catalog/products/GONE", headers=COMMERCE)).status_code == 200
    await runtime.catalog.set_shipping_methods([ShippingMethod(code="flatrate_flatrate", name="Flat rate")])
    await raw.execute("DELETE FROM message")  # only the reset's messages from here

    result = await runtime.stock.reset()

    assert (result.skus, result.aggregates, result.messages) == (2, ["EU-WEB", "US-WEB"], 2)
    assert await queued_skus(raw) == {"EU-WEB": ["A", "CAT-ONLY"], "US-WEB": ["A", "CAT-ONLY"]}
    await drain(runtime)
    salable = await client.get("/stock/CAT-ONLY", headers=COMMERCE)
    assert salable.status_code == 200, salable.text
    assert {w["website"]: w["is_salable"] for w in salable.json()["websites"]} == {"base": True, "us": True}


async def test_reset_pages_hold_each_known_sku_once_in_sku_order(client, runtime, raw, monkeypatch):
    monkeypatch.setattr(stock_service, "RESET_PAGE_SKUS", 3)
    await send(client, snapshot({"S1": 1, "S3": 1, "S5": 1, "S6": 1}, at=T0))
    await send(client, snapshot({"S3": 1, "S6": 1}, at=T0, aggregate="US-WEB"))  # a SKU with stock in two aggregates
    await drain(runtime)
    await raw.execute(
        "INSERT INTO catalog_product (sku, type, name, enabled, created_at, updated_at)"
        " SELECT s, 'simple', s, true, now(), now() FROM unnest($1::text[]) AS s",
        ["S2", "S4", "S5", "S7"],
    )
    await raw.execute("DELETE FROM message")

    result = await runtime.stock.reset()

    every = [f"S{n}" for n in range(1, 8)]
    assert (result.skus, result.messages) == (7, 2 * 3)  # pages of 3, 3 and 1 SKUs per aggregate
    assert await queued_skus(raw) == {"EU-WEB": every, "US-WEB": every}
    sizes = await raw.fetch(
        "SELECT jsonb_array_length(payload->'snapshot'->'stock') AS n FROM message WHERE status = 'queued' ORDER BY id"
    )
    assert sorted(r["n"] for r in sizes) == [1, 1, 3, 3, 3, 3]


async def test_reset_covers_the_configured_aggregates_the_database_does_not_hold_yet(client, runtime, raw):
    await raw.execute("DELETE FROM stock_aggregate")  # e.g. a fresh database no `serve` or `migrate` seeded
    await raw.execute(
        "INSERT INTO catalog_product (sku, type, name, enabled, created_at, updated_at)"
        " VALUES ('MUG', 'simple', 'Mug', true, now(), now())"
    )
    result = await runtime.stock.reset()
    assert (result.skus, result.aggregates, result.messages) == (1, ["EU-WEB", "US-WEB"], 2)
