"""A SKU is a store product's or a shipping method's, never both (issue #15, defect 3): whichever comes second is
refused (409 SkuConflict naming both) and nothing is destroyed or exported — through PUT /catalog/shipping-methods,
POST /catalog/products, a CSV import, the start-up seed and DELETE /catalog/products."""

from __future__ import annotations

import json
import logging
from typing import Any

import asyncpg
import httpx
import pytest

from app.runtime import Runtime
from tests.integration.test_catalog_products import COMMERCE, OMS_URL, UPDATED, exports, post, product
from tests.support.signing import COMMERCE_TOKEN, operator_headers

CSV_HEADERS = {"Authorization": f"Bearer {COMMERCE_TOKEN}", "Content-Type": "text/csv"}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "oms_url": OMS_URL,
        "oms_product_attributes": ["color"],
        "oms_shipping_methods": [{"code": "flatrate_flatrate", "name": "Flat rate"}],
    }


async def catalog_row(raw: asyncpg.Connection, sku: str) -> dict[str, Any]:
    row = await raw.fetchrow(
        "SELECT type, name, enabled, deleted, children_skus, child_ids, custom_attributes, shipping_method, exports"
        " FROM catalog_product WHERE sku = $1",
        sku,
    )
    assert row is not None
    return {**dict(row), "custom_attributes": json.loads(row["custom_attributes"])}


async def message_count(raw: asyncpg.Connection) -> int:
    return int(await raw.fetchval("SELECT count(*) FROM message WHERE topic = $1", UPDATED))


async def post_configurable(client: httpx.AsyncClient) -> None:
    child = product("TEE-ORG-BLU-M", id=4002, name="Tee blue M")
    parent = product(
        "TEE-ORG", id=4001, name="Organic Tee", type_id="configurable",
        custom_attributes=[{"attribute_code": "color", "value": "49"}],
        extension_attributes={"configurable_product_links": [4002]},
    )  # fmt: skip
    assert (await post(client, [parent, child])).status_code == 200


async def test_a_shipping_method_with_a_products_sku_is_refused_naming_both_and_the_product_is_untouched(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    await post_configurable(client)
    before, sent = await catalog_row(raw, "TEE-ORG"), await message_count(raw)

    methods = {"methods": [{"code": "tablerate_bestway", "name": "Best way"}, {"code": "TEE-ORG", "name": "x"}]}
    answer = await client.put("/catalog/shipping-methods", json=methods, headers=operator_headers())

    assert answer.status_code == 409, answer.text
    body = answer.json()
    assert body["error"] == "SkuConflict"
    assert body["errors"] == [
        {
            "field": "methods[1].code",
            "message": '"TEE-ORG" is a configurable product in the catalog ("Organic Tee"); '
            "a shipping method cannot have its SKU",
        }
    ]
    assert await catalog_row(raw, "TEE-ORG") == before  # still configurable, named, with its child and attributes
    assert before["type"] == "configurable" and before["children_skus"] == ["TEE-ORG-BLU-M"]
    assert await message_count(raw) == sent  # nothing exported, not even the other (good) method
    assert await raw.fetchval("SELECT count(*) FROM catalog_product WHERE sku = 'tablerate_bestway'") == 0
    listed = await client.get("/catalog/shipping-methods", headers=operator_headers())
    assert listed.json() == [{"code": "flatrate_flatrate", "name": "Flat rate"}]  # the setting is unchanged


async def test_a_product_with_a_shipping_methods_code_refuses_the_whole_post_and_the_method_is_untouched(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    before, sent = await catalog_row(raw, "flatrate_flatrate"), await message_count(raw)
    assert before["shipping_method"] is True

    answer = await post(client, [product("MUG-1"), product("flatrate_flatrate", id=77, type_id="simple")])

    assert answer.status_code == 409, answer.text
    assert answer.json()["error"] == "SkuConflict"
    assert answer.json()["errors"] == [
        {
            "field": "[1].sku",
            "message": '"flatrate_flatrate" is a shipping method in the catalog ("Flat rate"); '
            "a product cannot have its SKU",
        }
    ]
    assert await catalog_row(raw, "flatrate_flatrate") == before
    assert await raw.fetchval("SELECT count(*) FROM catalog_product WHERE sku = 'MUG-1'") == 0  # nothing stored
    assert await message_count(raw) == sent
    single = await post(client, product("flatrate_flatrate"))
    assert single.status_code == 409 and single.json()["errors"][0]["field"] == "sku"


async def test_csv_rows_with_a_shipping_methods_code_are_bad_rows_and_the_method_is_untouched(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    before, sent = await catalog_row(raw, "flatrate_flatrate"), await message_count(raw)
    csv = "sku,store_view_code,name,product_type\nMUG-1,,Mug,simple\nflatrate_flatrate,,Hijack,simple\n"
    answer = (await client.post("/catalog/import", content=csv.encode(), headers=CSV_HEADERS)).json()
    assert answer["stored"] == 1 and answer["exported"] == 1
    assert answer["errors"] == [
        {
            "row": 2,
            "field": "sku",
            "message": '"flatrate_flatrate" is a shipping method in the catalog ("Flat rate"); '
            "a product cannot have its SKU",
        }
    ]
    assert await catalog_row(raw, "flatrate_flatrate") == before
    assert await message_count(raw) == sent + 1  # MUG-1 only


async def test_the_store_cannot_delete_a_shipping_method(client: httpx.AsyncClient, raw: asyncpg.Connection) -> None:
    before = await catalog_row(raw, "flatrate_flatrate")
    answer = await client.delete("/catalog/products/flatrate_flatrate", headers=COMMERCE)
    assert answer.status_code == 409 and answer.json()["error"] == "SkuConflict"
    assert await catalog_row(raw, "flatrate_flatrate") == before


async def test_a_removed_shipping_method_can_be_added_again(client: httpx.AsyncClient, raw: asyncpg.Connection) -> None:
    headers = operator_headers()
    removed = await client.put("/catalog/shipping-methods", json={"methods": []}, headers=headers)
    assert removed.status_code == 200 and (await exports(raw, "flatrate_flatrate"))[-1]["enabled"] is False
    again = {"methods": [{"code": "flatrate_flatrate", "name": "Flat rate"}]}
    answer = await client.put("/catalog/shipping-methods", json=again, headers=headers)
    assert answer.status_code == 200, answer.text
    assert (await exports(raw, "flatrate_flatrate"))[-1]["enabled"] is True


async def test_a_removed_shipping_methods_code_stays_its_own_and_no_product_is_touched_by_method_changes(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    headers = operator_headers()
    assert (await client.put("/catalog/shipping-methods", json={"methods": []}, headers=headers)).status_code == 200
    # a removed method's row is still a shipping method's: the store cannot take its code...
    assert (await post(client, product("flatrate_flatrate"))).status_code == 409
    # ...and a product whose SKU a method in force never had is never touched by the methods' changes
    await post(client, product("MUG-1"))
    before = await catalog_row(raw, "MUG-1")
    again = {"methods": [{"code": "flatrate_flatrate", "name": "Flat rate"}]}
    assert (await client.put("/catalog/shipping-methods", json=again, headers=headers)).status_code == 200
    assert await catalog_row(raw, "MUG-1") == before


class TestSeed:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        methods = [{"code": "TEE-ORG", "name": "x"}, {"code": "flatrate_flatrate", "name": "Flat rate"}]
        return {"oms_url": OMS_URL, "oms_shipping_methods": methods}

    async def test_a_seeded_shipping_method_whose_code_is_a_product_is_skipped_with_a_warning_naming_both(
        self, client: httpx.AsyncClient, raw: asyncpg.Connection, runtime: Runtime, caplog: pytest.LogCaptureFixture
    ) -> None:
        # the start-up seed already made TEE-ORG a method's row: make it a product's, as a database from before
        # the fix may hold it (the product had overwritten the method)
        await raw.execute("DELETE FROM catalog_product WHERE sku = 'TEE-ORG'")
        await post_configurable(client)
        before, sent = await catalog_row(raw, "TEE-ORG"), await message_count(raw)

        with caplog.at_level(logging.WARNING, logger="app.services.catalog"):
            await runtime.catalog.seed()  # a restart

        assert await catalog_row(raw, "TEE-ORG") == before
        assert await message_count(raw) == sent
        [warning] = [r for r in caplog.records if getattr(r, "action", "") == "shipping_method_skipped"]
        assert "'TEE-ORG'" in warning.getMessage() and "configurable product" in warning.getMessage()
        assert (await catalog_row(raw, "flatrate_flatrate"))["shipping_method"] is True  # the others go on
