"""CSV store-view rows and empty cells (issue #15, defect 5): in Magento's import format a store-view row overrides
its view only and an empty cell means "no change". The default row sets what the OMS receives; a store-view row's
name is sent in its view's locale only with OMS_STORE_VIEW_LOCALES; whatever is not applied is reported as skipped,
by row, in the answer and in the journal."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import httpx
import pytest

from app.mappers.product_to_mcom import fingerprint
from tests.support.signing import COMMERCE_TOKEN, operator_headers

UPDATED = "magento.catalog.product_management.updated"
HEADERS = {"Authorization": f"Bearer {COMMERCE_TOKEN}", "Content-Type": "text/csv"}
COMMERCE = {"Authorization": f"Bearer {COMMERCE_TOKEN}"}

# The file: a default row, then rows for the views de and fr (fr is offline, its color cell empty).
STORE_VIEWS = (
    "sku,store_view_code,name,product_type,product_online,color\n"
    "TEE,,Organic Tee,simple,1,red\n"
    "TEE,de,Bio-T-Shirt,,,\n"
    "TEE,fr,T-shirt bio,,0,\n"
)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"oms_url": "http://oms.test/api/", "oms_product_attributes": ["color"]}


async def import_csv(client: httpx.AsyncClient, text: str) -> dict[str, Any]:
    response = await client.post("/catalog/import", content=text.encode(), headers=HEADERS)
    assert response.status_code == 200, response.text
    return response.json()


async def exported(raw: asyncpg.Connection, sku: str) -> list[dict[str, Any]]:
    rows = await raw.fetch("SELECT payload FROM message WHERE topic = $1 AND lane = $2 ORDER BY id", UPDATED,
                           f"product/{sku}")  # fmt: skip
    return [json.loads(row["payload"])["product"] for row in rows]


async def journal_result(client: httpx.AsyncClient, message_id: int) -> dict[str, Any]:
    body = (await client.get(f"/journal/{message_id}", headers=operator_headers())).json()
    return body["result"] if isinstance(body["result"], dict) else json.loads(body["result"])


async def test_store_view_rows_never_change_the_default_values_and_are_reported_as_skipped(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    answer = await import_csv(client, STORE_VIEWS)

    assert (answer["stored"], answer["exported"], answer["error_count"]) == (1, 1, 0)
    [sent] = await exported(raw, "TEE")
    assert sent == {
        "type": "simple",
        "sku": "TEE",
        "name": [{"value": "Organic Tee", "locale": "en_US"}],
        "enabled": True,
        "custom_attributes": [{"attribute_code": "color", "value": "red"}],
        "children_skus": [],
    }
    assert [(s["row"], s["field"]) for s in answer["skipped"]] == [(2, "name"), (3, "name"), (3, "product_online")]
    assert "OMS_STORE_VIEW_LOCALES" in answer["skipped"][0]["message"] and "'de'" in answer["skipped"][0]["message"]
    assert answer["skipped_count"] == 3
    result = await journal_result(client, answer["journal_message_id"])
    assert result["skipped_count"] == 3 and result["skipped"] == answer["skipped"]


class TestWithStoreViewLocales:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {
            "oms_url": "http://oms.test/api/",
            "oms_product_attributes": ["color"],
            "oms_store_view_locales": {"de": "de_DE", "fr": "fr_FR", "us": "en_US"},
        }

    async def test_a_store_view_name_is_sent_in_its_locale_and_nothing_else_of_the_view(
        self, client: httpx.AsyncClient, raw: asyncpg.Connection
    ) -> None:
        answer = await import_csv(client, STORE_VIEWS)

        [sent] = await exported(raw, "TEE")  # once, complete
        assert sent["name"] == [
            {"value": "Organic Tee", "locale": "en_US"},
            {"value": "Bio-T-Shirt", "locale": "de_DE"},
            {"value": "T-shirt bio", "locale": "fr_FR"},
        ]
        assert sent["enabled"] is True and sent["custom_attributes"] == [{"attribute_code": "color", "value": "red"}]
        assert [(s["row"], s["field"]) for s in answer["skipped"]] == [(3, "product_online")]
        # what the catalog keeps encoded (the trigger) is what was exported, byte for byte
        row = await raw.fetchrow(
            "SELECT p.params, p.fingerprint, e.fingerprint AS exported, p.localized_names"
            " FROM catalog_product p JOIN catalog_product_exported e USING (sku) WHERE sku = 'TEE'"
        )
        assert json.loads(row["params"])["product"] == sent
        assert row["fingerprint"] == row["exported"] == fingerprint(row["params"])
        assert json.loads(row["localized_names"]) == {"de_DE": "Bio-T-Shirt", "fr_FR": "T-shirt bio"}

        # the store posting the product as it is exports nothing: its localized names are kept
        same = {"sku": "TEE", "name": "Organic Tee", "type_id": "simple", "status": 1,
                "custom_attributes": [{"attribute_code": "color", "value": "red"}]}  # fmt: skip
        posted = await client.post("/catalog/products", json=same, headers=COMMERCE)
        assert posted.json()["products"][0]["reason"] == "unchanged"

    async def test_a_store_view_of_the_default_locale_or_without_a_locale_is_skipped(
        self, client: httpx.AsyncClient, raw: asyncpg.Connection
    ) -> None:
        text = (
            "sku,store_view_code,name\n"
            "MUG,,Mug\n"  # a new product without product_type: a bad row
            "TEE,us,Tee (US)\n"  # TEE is in the catalog (below)
            "TEE,it,Maglietta\n"
            "GHOST,de,Geist\n"  # no product GHOST anywhere
        )
        await import_csv(client, "sku,name,product_type\nTEE,Tee,simple\n")
        answer = await import_csv(client, text)
        assert [(e["row"], e["field"]) for e in answer["errors"]] == [(1, "product_type")]
        skipped = {(s["row"], s["field"]): s["message"] for s in answer["skipped"]}
        assert set(skipped) == {(2, "name"), (3, "name"), (4, "store_view_code")}
        assert "OMS_PRODUCT_LOCALE" in skipped[(2, "name")]
        assert "OMS_STORE_VIEW_LOCALES" in skipped[(3, "name")]
        assert "no product 'GHOST'" in skipped[(4, "store_view_code")]
        assert answer["stored"] == 0 and [p["name"] for p in await exported(raw, "TEE")] == [
            [{"value": "Tee", "locale": "en_US"}]
        ]
        assert await raw.fetchval("SELECT count(*) FROM catalog_product WHERE sku = 'GHOST'") == 0


async def test_empty_cells_of_a_default_row_change_nothing_of_an_existing_product(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    header = "sku,name,product_type,product_online,color,configurable_variations\n"
    await import_csv(client, header + "TEE,Tee,configurable,0,red,sku=TEE-S|sku=TEE-M\n")
    unchanged = await import_csv(client, header + "TEE,,,,,\n")
    assert (unchanged["stored"], unchanged["exported"], unchanged["unchanged"]) == (1, 0, 1)
    renamed = await import_csv(client, header + "TEE,Organic Tee,,,,\n")
    assert renamed["exported"] == 1
    last = (await exported(raw, "TEE"))[-1]
    assert last["name"] == [{"value": "Organic Tee", "locale": "en_US"}]
    assert (last["type"], last["enabled"], last["children_skus"]) == ("configurable", False, ["TEE-S", "TEE-M"])
    assert last["custom_attributes"] == [{"attribute_code": "color", "value": "red"}]
    emptied = await import_csv(client, header + "TEE,,,,__EMPTY__VALUE__,\n")
    assert emptied["exported"] == 1 and (await exported(raw, "TEE"))[-1]["custom_attributes"] == []


async def test_a_csv_row_keeps_the_attributes_the_store_posted(client: httpx.AsyncClient, raw: asyncpg.Connection):
    posted = {"sku": "MUG", "name": "Mug", "type_id": "simple",
              "custom_attributes": [{"attribute_code": "color", "value": "blue"},
                                    {"attribute_code": "material", "value": "stone"}]}  # fmt: skip
    await client.post("/catalog/products", json=posted, headers=COMMERCE)
    await import_csv(client, "sku,name\nMUG,Stone mug\n")
    attributes = await raw.fetchval("SELECT custom_attributes FROM catalog_product WHERE sku = 'MUG'")
    assert json.loads(attributes) == {"color": "blue", "material": "stone"}


class TestOneRowPerBatch:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"oms_url": "http://oms.test/api/", "oms_catalog_batch_size": 1}

    async def test_a_configurable_and_its_children_in_separate_batches_export_the_parent_once_complete(
        self, client: httpx.AsyncClient, raw: asyncpg.Connection
    ) -> None:
        text = (
            "sku,name,product_type,configurable_variations\n"
            'TEE,Tee,configurable,"sku=TEE-S,size=S|sku=TEE-M,size=M"\n'
            "TEE-S,Tee S,simple,\n"
            "TEE-M,Tee M,simple,\n"
        )
        answer = await import_csv(client, text)
        assert answer["batches"] == 3 and answer["exported"] == 3
        assert [p["children_skus"] for p in await exported(raw, "TEE")] == [["TEE-S", "TEE-M"]]
