"""Stock the OMS sends, delivered to Adobe Commerce as MSI source items: only what passed the timestamp filter, in
batches, aggregate mapped to a source code, one lane per source, nothing for aggregates without a source code."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from app.data.bus import LARGE_PAYLOAD_BYTES
from app.runtime import Runtime
from app.services.commerce_effects import COMMERCE_CHANNEL
from app.workers.registry import HandlerRegistry, build_registry
from tests.conftest import make_settings
from tests.integration.test_stock import drain, page, send, snapshot
from tests.support.stub_commerce import StubCommerce

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def store() -> Iterator[StubCommerce]:
    with StubCommerce() as stub:
        yield stub


@pytest.fixture
def registry() -> HandlerRegistry:
    return build_registry(make_settings())


@pytest.fixture
def settings_overrides(store: StubCommerce) -> dict[str, Any]:
    return {
        "oms_aggregate_websites": {"EU-WEB": ["base"], "US-WEB": ["us"]},
        "adobe_commerce_url": store.base_url,
        "adobe_commerce_token": store.token,
        "adobe_commerce_source_codes": {"EU-WEB": "eu_source"},
        "adobe_commerce_source_items_batch": 3,
    }


async def deliver(runtime: Runtime) -> None:
    while await runtime.bus.send_next_outbound(COMMERCE_CHANNEL):
        pass


async def test_applied_stock_reaches_the_store_as_source_items_in_batches(
    client: httpx.AsyncClient, runtime: Runtime, store: StubCommerce, raw: asyncpg.Connection
) -> None:
    await send(client, snapshot({**page(range(7), 5), "SKU-Z": {"sku": "SKU-Z", "quantity": "0"}}, at=T0))
    await drain(runtime)
    await deliver(runtime)
    assert [len(batch) for batch in store.source_item_batches] == [3, 3, 2]
    assert store.source_items[("SKU-Z", "eu_source")] == {
        "sku": "SKU-Z", "source_code": "eu_source", "quantity": 0, "status": 0,
    }  # fmt: skip
    first = store.source_items[("SKU-0", "eu_source")]
    assert first["quantity"] == 5 and first["status"] == 1
    lanes = await raw.fetch("SELECT DISTINCT lane FROM message WHERE channel = 'commerce'")
    assert [row["lane"] for row in lanes] == ["commerce/stock/eu_source"]


async def test_a_stale_snapshot_sends_nothing_for_the_skus_it_did_not_change(
    client: httpx.AsyncClient, runtime: Runtime, store: StubCommerce
) -> None:
    await send(client, snapshot({"A": 5, "B": 5}, at=T0 + timedelta(minutes=5)))
    await send(client, snapshot({"A": 1, "C": 1}, at=T0))  # older: only C is new
    await drain(runtime)
    await deliver(runtime)
    sent = [(item["sku"], item["quantity"]) for batch in store.source_item_batches for item in batch]
    assert sent == [("A", 5), ("B", 5), ("C", 1)]


async def test_unlimited_stock_and_unmapped_aggregates_are_not_sent(
    client: httpx.AsyncClient, runtime: Runtime, store: StubCommerce, raw: asyncpg.Connection
) -> None:
    await send(client, snapshot({"U": {"sku": "U", "quantity": "0", "unlimited": True}, "L": 2}, at=T0))
    await send(client, snapshot({"X": 9}, at=T0, aggregate="US-WEB"))
    await drain(runtime)
    await deliver(runtime)
    assert list(store.source_items) == [("L", "eu_source")]
    assert await raw.fetchval("SELECT count(*) FROM message WHERE channel = 'commerce'") == 1


async def test_a_large_page_applied_in_sql_is_queued_too(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection
) -> None:
    rows = page(range(4000), 3)
    external_id = await send(client, snapshot(rows, at=T0, mode="FULL"))
    size = await raw.fetchval("SELECT pg_column_size(payload) FROM message WHERE external_id = $1", external_id)
    assert size > LARGE_PAYLOAD_BYTES  # the precondition: applied straight from the stored message
    await drain(runtime)
    queued = await raw.fetchval(
        "SELECT sum(jsonb_array_length(payload->'body'->'sourceItems')) FROM message WHERE channel = 'commerce'"
    )
    assert queued == 4000
    assert await raw.fetchval("SELECT count(*) FROM message WHERE channel = 'commerce'") == 1334  # batches of 3
