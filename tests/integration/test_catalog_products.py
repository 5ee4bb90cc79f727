"""Products from the store on a real PostgreSQL: upsert by SKU, exported to the OMS (respx) only when something it
receives changed; each SKU type field by field; configurable children resolved from their ids, also when a child
comes later; deleted products; the configured attributes; shipping methods as products."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import httpx
import pytest
import respx

from app.runtime import Runtime
from tests.support.signing import COMMERCE_TOKEN, operator_headers

OMS_URL = "http://oms.test/api/"
UPDATED = "magento.catalog.product_management.updated"
COMMERCE = {"Authorization": f"Bearer {COMMERCE_TOKEN}"}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "oms_url": OMS_URL,
        "oms_product_attributes": ["color", "brand"],
    }


@pytest.fixture(autouse=True)
def oms_accepts(oms: respx.Router) -> respx.Route:
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": json.loads(request.content)["id"], "result": []})

    return oms.post(OMS_URL).mock(side_effect=respond)


def attributes(**values: str) -> list[dict[str, str]]:
    return [{"attribute_code": code, "value": value} for code, value in values.items()]


def product(sku: str = "MUG-STONE-350", **fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": 2001,
        "sku": sku,
        "name": "Stone Mug",
        "type_id": "simple",
        "status": 1,
        "price": 12.5,
        "custom_attributes": [
            {"attribute_code": "color", "value": "49"},
            {"attribute_code": "description", "value": "<p>A mug.</p>"},
        ],
        "extension_attributes": {"website_ids": [1]},
    }
    document.update(fields)
    return document


async def post(client: httpx.AsyncClient, body: Any) -> httpx.Response:
    return await client.post("/catalog/products", json=body, headers=COMMERCE)


async def exports(raw: asyncpg.Connection, sku: str | None = None) -> list[dict[str, Any]]:
    rows = await raw.fetch("SELECT payload FROM message WHERE topic = $1 ORDER BY id", UPDATED)
    found = [json.loads(row["payload"])["product"] for row in rows]
    return [p for p in found if sku is None or p["sku"] == sku]


async def test_a_new_product_is_exported_and_the_same_product_again_is_not(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    first = await post(client, product())
    assert first.status_code == 200, first.text
    [outcome] = first.json()["products"]
    assert outcome["exported"] is True and outcome["reason"] == "new" and outcome["message_id"]
    again = await post(client, product())
    assert again.json()["products"][0] == {"sku": "MUG-STONE-350", "exported": False, "reason": "unchanged",
                                           "message_id": None}  # fmt: skip
    [exported] = await exports(raw)
    assert exported == {
        "type": "simple",
        "sku": "MUG-STONE-350",
        "name": [{"value": "Stone Mug", "locale": "en_US"}],
        "enabled": True,
        "custom_attributes": [{"attribute_code": "color", "value": "49"}],
        "children_skus": [],
    }
    message = await raw.fetchrow("SELECT lane, external_id FROM message WHERE topic = $1", UPDATED)
    assert message["lane"] == "product/MUG-STONE-350" and message["external_id"] == "mdc-product-MUG-STONE-350-1"


@pytest.mark.parametrize(
    ("change", "exported"),
    [
        ({"name": "Stone Mug, large"}, True),
        ({"status": 2}, True),
        ({"custom_attributes": [{"attribute_code": "color", "value": "50"}]}, True),
        ({"custom_attributes": attributes(color="49", brand="7")}, True),
        ({"price": 99.0}, False),
        ({"custom_attributes": attributes(color="49", description="new")}, False),
        ({"extension_attributes": {"website_ids": [1, 2]}}, False),
    ],
)  # fmt: skip
async def test_only_a_change_the_oms_receives_exports_the_product_again(
    client: httpx.AsyncClient, raw: asyncpg.Connection, change: dict[str, Any], exported: bool
) -> None:
    await post(client, product())
    answer = await post(client, product(**change))
    assert answer.json()["products"][0]["exported"] is exported
    assert answer.json()["products"][0]["reason"] == ("changed" if exported else "unchanged")
    assert len(await exports(raw)) == (2 if exported else 1)


async def test_a_change_back_and_forth_is_exported_each_time(client: httpx.AsyncClient, raw: asyncpg.Connection):
    for name in ("A", "B", "A"):
        assert (await post(client, product(name=name))).json()["products"][0]["exported"] is True
    assert [p["name"][0]["value"] for p in await exports(raw)] == ["A", "B", "A"]
    ids = await raw.fetch("SELECT external_id FROM message WHERE topic = $1 ORDER BY id", UPDATED)
    assert [row["external_id"] for row in ids] == [f"mdc-product-MUG-STONE-350-{n}" for n in (1, 2, 3)]


async def test_virtual_and_bundle_products_are_mapped_field_by_field(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    bundle = product(
        "KIT-YOGA",
        id=3001,
        name="Yoga kit",
        type_id="bundle",
        custom_attributes=[{"attribute_code": "brand", "value": "Zen"}, {"attribute_code": "price_type", "value": "1"}],
        extension_attributes={
            "bundle_product_options": [
                {"option_id": 1, "title": "Mat", "product_links": [{"sku": "MAT-01"}, {"sku": "MAT-02"}]},
                {"option_id": 2, "title": "Strap", "product_links": [{"sku": "STRAP-02"}, {"sku": "MAT-01"}]},
            ]
        },
    )
    virtual = product("WARRANTY-2Y", id=3002, name="Warranty", type_id="virtual", status=2, custom_attributes=[])
    response = await post(client, [bundle, virtual])
    assert [o["sku"] for o in response.json()["products"]] == ["KIT-YOGA", "WARRANTY-2Y"]
    assert (await exports(raw, "KIT-YOGA"))[0] == {
        "type": "bundle",
        "sku": "KIT-YOGA",
        "name": [{"value": "Yoga kit", "locale": "en_US"}],
        "enabled": True,
        "custom_attributes": [{"attribute_code": "brand", "value": "Zen"}],
        "children_skus": ["MAT-01", "MAT-02", "STRAP-02"],
    }
    assert (await exports(raw, "WARRANTY-2Y"))[0] == {
        "type": "virtual",
        "sku": "WARRANTY-2Y",
        "name": [{"value": "Warranty", "locale": "en_US"}],
        "enabled": False,
        "custom_attributes": [],
        "children_skus": [],
    }


async def test_a_configurable_gets_its_children_skus_also_when_a_child_is_posted_later(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    await post(client, product("TEE-ORG-BLU-M", id=4002, name="Tee blue M"))
    parent = product(
        "TEE-ORG", id=4001, name="Organic Tee", type_id="configurable",
        extension_attributes={"configurable_product_links": [4002, 4003]},
    )  # fmt: skip
    await post(client, parent)
    assert (await exports(raw, "TEE-ORG"))[-1]["children_skus"] == ["TEE-ORG-BLU-M"]
    answer = await post(client, product("TEE-ORG-BLU-L", id=4003, name="Tee blue L"))
    assert {(o["sku"], o["reason"]) for o in answer.json()["products"]} == {("TEE-ORG-BLU-L", "new"),
                                                                            ("TEE-ORG", "changed")}  # fmt: skip
    assert (await exports(raw, "TEE-ORG"))[-1]["children_skus"] == ["TEE-ORG-BLU-M", "TEE-ORG-BLU-L"]
    assert (await exports(raw, "TEE-ORG"))[-1]["type"] == "configurable"


async def test_a_deleted_product_is_exported_disabled_and_a_repost_brings_it_back(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    await post(client, product())
    deleted = await client.delete("/catalog/products/MUG-STONE-350", headers=COMMERCE)
    assert deleted.status_code == 200 and deleted.json()["exported"] is True
    assert (await exports(raw))[-1]["enabled"] is False
    view = await client.get("/catalog/products/MUG-STONE-350", headers=operator_headers())
    assert view.json()["deleted"] is True and view.json()["exports"] == 2
    await post(client, product())
    assert (await exports(raw))[-1]["enabled"] is True
    missing = await client.delete("/catalog/products/NOPE", headers=COMMERCE)
    assert missing.status_code == 404


async def test_bad_products_are_refused_naming_the_field_and_nothing_is_stored(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    response = await post(client, [product("OK-1"), product("", id=1), product("X", type_id="spaceship")])
    assert response.status_code == 422
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == {"[1].sku", "[2].type_id"}
    assert await raw.fetchval("SELECT count(*) FROM catalog_product") == 0
    assert (await post(client, [product("A"), product("A")])).status_code == 422
    assert (await client.post("/catalog/products", content=b"{", headers=COMMERCE)).status_code == 422
    assert (await client.post("/catalog/products", json=product())).status_code == 401


async def test_the_configured_attributes_are_read_and_replaced_by_operators(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    assert (await client.get("/catalog/attributes", headers=operator_headers())).json() == {
        "attributes": ["color", "brand"]
    }
    assert (await client.get("/catalog/attributes", headers=COMMERCE)).status_code in (401, 403)
    put = await client.put("/catalog/attributes", json={"attributes": ["material"]}, headers=operator_headers())
    assert put.status_code == 200 and put.json() == {"attributes": ["material"]}
    bad = await client.put("/catalog/attributes", json={"attributes": ["Bad Code"]}, headers=operator_headers())
    assert bad.status_code == 422
    await post(client, product(custom_attributes=[{"attribute_code": "material", "value": "stone"},
                                                  {"attribute_code": "color", "value": "49"}]))  # fmt: skip
    assert (await exports(raw))[-1]["custom_attributes"] == [{"attribute_code": "material", "value": "stone"}]


class TestShippingMethods:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"oms_url": OMS_URL, "oms_shipping_methods": [{"code": "flatrate_flatrate", "name": "Flat rate"}]}

    async def test_shipping_methods_are_exported_as_products_and_a_removed_one_disabled(
        self, client: httpx.AsyncClient, raw: asyncpg.Connection, runtime: Runtime
    ) -> None:
        await runtime.catalog.seed()
        listed = await client.get("/catalog/shipping-methods", headers=operator_headers())
        assert listed.json() == [{"code": "flatrate_flatrate", "name": "Flat rate"}]
        assert (await exports(raw, "flatrate_flatrate"))[0]["enabled"] is True  # the configured one, exported at start
        await runtime.catalog.seed()  # a restart exports nothing again
        assert len(await exports(raw, "flatrate_flatrate")) == 1
        methods = {"methods": [{"code": "tablerate_bestway", "name": "Best way"}]}
        put = await client.put("/catalog/shipping-methods", json=methods, headers=operator_headers())
        assert put.status_code == 200, put.text
        assert {(o["sku"], o["exported"]) for o in put.json()["outcomes"]} == {
            ("tablerate_bestway", True),
            ("flatrate_flatrate", True),
        }
        assert (await exports(raw, "tablerate_bestway"))[0] == {
            "type": "virtual",
            "sku": "tablerate_bestway",
            "name": [{"value": "Best way", "locale": "en_US"}],
            "enabled": True,
            "custom_attributes": [],
            "children_skus": [],
        }
        assert (await exports(raw, "flatrate_flatrate"))[-1]["enabled"] is False
        again = await client.put("/catalog/shipping-methods", json=methods, headers=operator_headers())
        assert [o["exported"] for o in again.json()["outcomes"]] == [False]


async def test_a_configurable_posted_with_its_children_is_exported_once_with_them(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    parent = product(
        "TEE-ORG", id=4001, name="Organic Tee", type_id="configurable",
        extension_attributes={"configurable_product_links": [4002, 4003]},
    )  # fmt: skip
    children = [product("TEE-ORG-BLU-M", id=4002), product("TEE-ORG-BLU-L", id=4003)]
    answer = await post(client, [parent, *children])
    assert [(o["sku"], o["reason"]) for o in answer.json()["products"]] == [
        ("TEE-ORG", "new"), ("TEE-ORG-BLU-M", "new"), ("TEE-ORG-BLU-L", "new")
    ]  # fmt: skip
    [exported] = await exports(raw, "TEE-ORG")
    assert exported["children_skus"] == ["TEE-ORG-BLU-M", "TEE-ORG-BLU-L"]  # in link order
    view = await client.get("/catalog/products/TEE-ORG", headers=operator_headers())
    assert view.json()["children_skus"] == ["TEE-ORG-BLU-M", "TEE-ORG-BLU-L"] and view.json()["exports"] == 1


async def test_children_posted_together_export_their_earlier_parent_once(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    parent = product(
        "TEE-ORG", id=4001, name="Organic Tee", type_id="configurable",
        extension_attributes={"configurable_product_links": [4002, 4003]},
    )  # fmt: skip
    await post(client, parent)
    answer = await post(client, [product("TEE-ORG-BLU-M", id=4002), product("TEE-ORG-BLU-L", id=4003)])
    assert sorted((o["sku"], o["reason"]) for o in answer.json()["products"]) == [
        ("TEE-ORG", "changed"), ("TEE-ORG-BLU-L", "new"), ("TEE-ORG-BLU-M", "new")
    ]  # fmt: skip
    assert [p["children_skus"] for p in await exports(raw, "TEE-ORG")] == [[], ["TEE-ORG-BLU-M", "TEE-ORG-BLU-L"]]
