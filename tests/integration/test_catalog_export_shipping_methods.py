"""Every full export sends the shipping methods (issue #15, defect 7): an OMS rebuilt from a full export must know the
SHIPPING SKUs every order carries. From the catalog table they are rows like any product; from Adobe Commerce they
follow the store's products in batches of their own — counted, with the export's JSON-RPC ids, resumable — in both
send modes. A store product whose SKU is a method's code is listed as an error, never sent in the method's stead."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest
import respx

from app.runtime import Runtime
from app.services.catalog_export import SHIPPING_METHODS_CURSOR
from tests.integration.test_catalog_export import OMS_URL, UPDATED, Oms, wait_for_status
from tests.support.signing import operator_headers
from tests.support.stub_commerce import StubCommerce

METHODS = [{"code": "flatrate_flatrate", "name": "Flat rate"}, {"code": "tablerate_bestway", "name": "Best way"}]
FLAT_RATE = {
    "product": {
        "type": "virtual",
        "sku": "flatrate_flatrate",
        "name": [{"value": "Flat rate", "locale": "en_US"}],
        "enabled": True,
        "custom_attributes": [],
        "children_skus": [],
    }
}


@pytest.fixture
def stub(oms: respx.Router) -> Oms:
    recorder = Oms()
    oms.post(OMS_URL).mock(side_effect=recorder.respond)
    return recorder


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"oms_url": OMS_URL, "oms_catalog_batch_size": 3, "oms_shipping_methods": METHODS}


async def add_products(raw: asyncpg.Connection, skus: list[str]) -> None:
    await raw.execute(
        "INSERT INTO catalog_product (sku, type, name, enabled, created_at, updated_at)"
        " SELECT s, 'simple', s, true, now(), now() FROM unnest($1::text[]) AS s",
        skus,
    )


async def test_a_full_export_from_the_catalog_sends_the_shipping_methods_with_the_products(
    client: httpx.AsyncClient, stub: Oms, raw: asyncpg.Connection
) -> None:
    await add_products(raw, ["A-1", "A-2", "Z-1"])
    await client.post("/catalog/exports", headers=operator_headers())
    view = await wait_for_status(client, "done")
    every = ["A-1", "A-2", "Z-1", "flatrate_flatrate", "tablerate_bestway"]
    assert stub.received == Counter(dict.fromkeys(every, 1))
    assert stub.params["flatrate_flatrate"] == FLAT_RATE
    assert stub.ids["flatrate_flatrate"] == [f"mdc-catalog-{view['id']}-flatrate_flatrate"]
    assert (view["products_read"], view["products_sent"], view["batches_acknowledged"]) == (5, 5, 2)


async def test_a_full_export_sends_the_methods_in_force_even_when_their_rows_are_missing(
    client: httpx.AsyncClient, stub: Oms, raw: asyncpg.Connection
) -> None:
    # a database whose methods were never kept as rows (the start-up seed did not run: a one-shot CLI command)
    await raw.execute("DELETE FROM catalog_product")
    await add_products(raw, ["A-1"])
    await client.post("/catalog/exports", headers=operator_headers())
    view = await wait_for_status(client, "done")
    assert set(stub.received) == {"A-1", "flatrate_flatrate", "tablerate_bestway"}
    assert view["products_sent"] == 3


@pytest.fixture
def store() -> Iterator[StubCommerce]:
    with StubCommerce() as stub:
        stub.products = [
            {"id": 1, "sku": "TEE", "name": "Tee", "type_id": "configurable", "status": 1,
             "extension_attributes": {"configurable_product_links": [4, 5]}},
            {"id": 2, "sku": "flatrate_flatrate", "name": "A product named like a method", "type_id": "simple"},
            {"id": 3, "sku": "P-3", "name": "P 3", "type_id": "simple", "status": 1},
            {"id": 4, "sku": "TEE-S", "name": "Tee S", "type_id": "simple", "status": 1},
            {"id": 5, "sku": "TEE-M", "name": "Tee M", "type_id": "simple", "status": 1},
        ]  # fmt: skip
        yield stub


class TestFromAdobeCommerce:
    @pytest.fixture(params=["single", "rpc-batch"])
    def settings_overrides(self, request: pytest.FixtureRequest, store: StubCommerce) -> dict[str, Any]:
        return {
            "oms_url": OMS_URL,
            "oms_catalog_batch_size": 3,
            "oms_catalog_send_mode": request.param,
            "oms_shipping_methods": METHODS,
            "adobe_commerce_url": store.base_url,
            "adobe_commerce_token": store.token,
        }

    async def test_the_shipping_methods_follow_the_stores_products_and_a_product_with_a_methods_code_is_an_error(
        self, client: httpx.AsyncClient, stub: Oms, raw: asyncpg.Connection, runtime: Runtime
    ) -> None:
        started = await client.post("/catalog/exports", headers=operator_headers())
        assert started.json()["source"] == "commerce"
        view = await wait_for_status(client, "done")

        every = ["TEE", "P-3", "TEE-S", "TEE-M", "flatrate_flatrate", "tablerate_bestway"]
        assert stub.received == Counter(dict.fromkeys(every, 1))
        assert stub.params["flatrate_flatrate"] == FLAT_RATE  # the method, not the store's product
        assert stub.ids["tablerate_bestway"] == [f"mdc-catalog-{view['id']}-tablerate_bestway"]
        assert (view["products_read"], view["batches_acknowledged"]) == (6, 3)  # 2 + 2 store products, 2 methods
        assert [e["sku"] for e in view["errors"]] == ["flatrate_flatrate"]
        assert "shipping method" in view["errors"][0]["error"]
        if runtime.settings.oms_catalog_send_mode == "rpc-batch":
            assert stub.batch_sizes == [2, 2, 2]
        kept = await raw.fetchrow("SELECT type, name, shipping_method FROM catalog_product WHERE sku = $1",
                                  "flatrate_flatrate")  # fmt: skip
        assert tuple(kept) == ("virtual", "Flat rate", True)
        # TEE's children came in the next batch: TEE goes again as one product event, with both
        events = await raw.fetch("SELECT payload FROM message WHERE topic = $1 AND lane = 'product/TEE'", UPDATED)
        assert [json.loads(e["payload"])["product"]["children_skus"] for e in events] == [["TEE-S", "TEE-M"]]


class TestResumedInTheShippingMethods:
    @pytest.fixture
    def settings_overrides(self, store: StubCommerce) -> dict[str, Any]:
        return {
            "oms_url": OMS_URL,
            "oms_catalog_batch_size": 1,
            "oms_shipping_methods": METHODS,
            "adobe_commerce_url": store.base_url,
            "adobe_commerce_token": store.token,
        }

    async def test_an_export_resumed_among_the_shipping_methods_sends_only_the_ones_after_its_cursor(
        self, client: httpx.AsyncClient, stub: Oms, raw: asyncpg.Connection, runtime: Runtime, store: StubCommerce
    ) -> None:
        view, _ = await runtime.catalog_exports.request(schedule_only=True)
        # as a process that died left it: the store's pages and the first method acknowledged
        await raw.execute("UPDATE catalog_export SET cursor = $1 WHERE id = $2",
                          SHIPPING_METHODS_CURSOR + "flatrate_flatrate", view.id)  # fmt: skip
        export_id = await runtime.catalog_exports.claim()
        assert export_id == view.id
        await runtime.catalog_exports.run(export_id)
        done = await wait_for_status(client, "done")
        assert stub.received == Counter({"tablerate_bestway": 1})
        assert not [r for r in store.requests if "/products" in r.path]  # the store is not read again
        assert (done["products_read"], done["batches_acknowledged"]) == (1, 1)
