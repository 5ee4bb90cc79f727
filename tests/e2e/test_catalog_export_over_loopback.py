"""Full catalog export of 20,000 products over real sockets to a stub OMS: both send modes with exact batch
accounting, and a `serve` process killed (SIGKILL) in the middle of a batch: a worker process resumes after the last
recorded product and every product reaches the OMS once — a product whose acknowledgement the dead process had
not recorded yet is sent again with its stable JSON-RPC id, which is how the OMS recognises it."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from app.db import DatabaseUrl
from tests.support.processes import Processes, free_port, wait_until
from tests.support.signing import operator_headers
from tests.support.stub_oms import StubOms

UPDATED = "magento.catalog.product_management.updated"
PRODUCTS = 20_000


async def fill_catalog(database_url: DatabaseUrl) -> None:
    connection = await asyncpg.connect(database_url.libpq)
    try:
        await connection.execute(
            """
            INSERT INTO catalog_product (sku, type, name, enabled, custom_attributes, created_at, updated_at)
            SELECT 'SKU-' || lpad(n::text, 6, '0'), 'simple', 'Product ' || n, n % 10 <> 0,
                   jsonb_build_object('color', (n % 7)::text), now(), now()
              FROM generate_series(1, $1) AS n
            """,
            PRODUCTS,
        )
    finally:
        await connection.close()


def ids_per_sku(oms: StubOms) -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for call in oms.calls_of(UPDATED):
        found[call.params["product"]["sku"]].add(str(call.id))
    return found


async def export_view(http: httpx.AsyncClient) -> dict[str, Any]:
    return (await http.get("/catalog/exports/current", headers=operator_headers())).json()


async def test_a_20000_product_export_in_rpc_batch_mode_is_four_batch_requests(
    tmp_path: Path, database_url: DatabaseUrl
) -> None:
    await fill_catalog(database_url)
    with StubOms() as oms, Processes(tmp_path, database_url) as procs:
        port = free_port()
        service = procs.serve(
            "serve", port=port, OMS_URL=oms.rpc_url, OMS_CATALOG_SEND_MODE="rpc-batch", HANDLER_PLUGINS="[]"
        )
        await service.wait_ready()
        async with httpx.AsyncClient(base_url=service.base_url, timeout=60) as http:
            started = await http.post("/catalog/exports", json={}, headers=operator_headers())
            assert started.status_code == 202, started.text

            async def done() -> bool:
                return (await export_view(http))["status"] == "done"

            await wait_until(done, 120, "the export never finished", service)
            view = await export_view(http)
        service.stop_cleanly()
    assert (view["batches_sent"], view["batches_acknowledged"]) == (4, 4)
    assert view["products_read"] == view["products_sent"] == PRODUCTS and view["error_count"] == 0
    sent = ids_per_sku(oms)
    assert len(sent) == PRODUCTS and all(len(ids) == 1 for ids in sent.values())
    assert len(oms.calls_of(UPDATED)) == PRODUCTS  # not one product twice
    first = next(
        call.params["product"] for call in oms.calls_of(UPDATED) if call.params["product"]["sku"] == "SKU-000010"
    )
    assert first["enabled"] is False and first["custom_attributes"] == []  # no attribute configured


async def test_a_killed_export_resumes_in_another_process_and_every_product_arrives_once(
    tmp_path: Path, database_url: DatabaseUrl
) -> None:
    await fill_catalog(database_url)
    env = {"OMS_CATALOG_EXPORT_LEASE_S": "2", "HANDLER_PLUGINS": "[]", "OMS_PRODUCT_ATTRIBUTES": '["color"]'}
    with StubOms() as oms, Processes(tmp_path, database_url) as procs:
        port = free_port()
        first = procs.serve("serve-1", port=port, OMS_URL=oms.rpc_url, **env)
        await first.wait_ready()
        async with httpx.AsyncClient(base_url=first.base_url, timeout=60) as http:
            assert (await http.post("/catalog/exports", headers=operator_headers())).status_code == 202

            async def into_the_second_batch() -> bool:
                return (await export_view(http))["products_sent"] >= 7_000

            await wait_until(into_the_second_batch, 120, "the export never reached its second batch", first)
        first.kill()  # SIGKILL: mid-batch, calls in flight, acknowledgements not yet recorded
        died_after = len(oms.calls_of(UPDATED))

        second = procs.worker("worker-2", OMS_URL=oms.rpc_url, **env)
        connection = await asyncpg.connect(database_url.libpq)
        try:

            async def finished() -> bool:
                status = await connection.fetchval("SELECT status FROM catalog_export ORDER BY id DESC LIMIT 1")
                return status == "done"

            await wait_until(finished, 180, "the export was never resumed to the end", second)
            view = await connection.fetchrow("SELECT * FROM catalog_export ORDER BY id DESC LIMIT 1")
        finally:
            await connection.close()
        second.stop_cleanly()

    assert (view["batches_sent"], view["batches_acknowledged"], view["products_read"]) == (4, 4, PRODUCTS)
    sent = ids_per_sku(oms)
    assert len(sent) == PRODUCTS  # every product
    assert all(len(ids) == 1 for ids in sent.values())  # each under one JSON-RPC id: the OMS sees it once
    calls = len(oms.calls_of(UPDATED))
    resent = calls - PRODUCTS
    assert 7_000 <= died_after < PRODUCTS
    assert resent <= 32 + 500  # at most the calls in flight and one unrecorded flush of acknowledgements
    first_batch = [f"SKU-{n:06d}" for n in range(1, 5001)]
    per_sku = defaultdict(int)
    for call in oms.calls_of(UPDATED):
        per_sku[call.params["product"]["sku"]] += 1
    assert all(per_sku[sku] == 1 for sku in first_batch)  # an acknowledged batch is never sent again
    one = next(
        call.params["product"] for call in oms.calls_of(UPDATED) if call.params["product"]["sku"] == "SKU-000003"
    )
    assert one["custom_attributes"] == [{"attribute_code": "color", "value": "3"}]
