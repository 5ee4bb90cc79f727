"""CSV import on a real PostgreSQL: a Magento product-import CSV with good and bad rows, upserted in batches, new or
changed products queued for export, bad rows named by row number in the answer and in the journal."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.signing import COMMERCE_TOKEN, operator_headers

UPDATED = "magento.catalog.product_management.updated"
CSV_HEADERS = {"Authorization": f"Bearer {COMMERCE_TOKEN}", "Content-Type": "text/csv", "X-File-Name": "catalog.csv"}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"oms_url": "http://oms.test/api/", "oms_catalog_batch_size": 3, "oms_product_attributes": ["color"]}


CSV = (
    "sku,name,product_type,product_online,color,additional_attributes,configurable_variations,bundle_values\n"
    "MUG-1,Mug one,simple,1,red,,,\n"
    ",No SKU,simple,1,,,,\n"  # row 2: missing SKU
    'TEE,Tee,configurable,1,,"color=blue,size=M","sku=TEE-S,size=S|sku=TEE-M,size=M",\n'
    'KIT,Kit,bundle,0,,,,"name=Mat,type=select,sku=MAT-1,price=0|name=Strap,type=select,sku=STRAP-1"\n'
    "ROCKET,Rocket,spaceship,1,,,,\n"  # row 5: unknown type
    "WARRANTY,Warranty,virtual,1,,,,\n"
    "MUG-1,Mug one again,simple,1,red,,,\n"  # row 7: the same SKU later: it wins (in its own batch here)
)


async def exports(raw: asyncpg.Connection) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for row in await raw.fetch("SELECT payload FROM message WHERE topic = $1 ORDER BY id", UPDATED):
        product = json.loads(row["payload"])["product"]
        found.setdefault(product["sku"], []).append(product)
    return found


async def test_good_rows_are_imported_and_exported_and_bad_rows_are_named(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    response = await client.post("/catalog/import", content=CSV.encode(), headers=CSV_HEADERS)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["rows"], answer["batches"], answer["stored"], answer["error_count"]) == (7, 3, 5, 2)
    assert [(e["row"], e["field"]) for e in answer["errors"]] == [(2, "sku"), (5, "product_type")]
    assert answer["exported"] == 5  # 4 new products and MUG-1 renamed in a later batch
    sent = await exports(raw)
    assert [p["name"][0]["value"] for p in sent["MUG-1"]] == ["Mug one", "Mug one again"]
    assert sent["TEE"][0]["children_skus"] == ["TEE-S", "TEE-M"]
    assert sent["TEE"][0]["custom_attributes"] == [{"attribute_code": "color", "value": "blue"}]
    assert sent["KIT"][0] == {
        "type": "bundle", "sku": "KIT", "name": [{"value": "Kit", "locale": "en_US"}], "enabled": False,
        "custom_attributes": [], "children_skus": ["MAT-1", "STRAP-1"],
    }  # fmt: skip
    assert sent["MUG-1"][0]["custom_attributes"] == [{"attribute_code": "color", "value": "red"}]

    journal = await client.get(f"/journal/{answer['journal_message_id']}", headers=operator_headers())
    assert journal.status_code == 200
    body = journal.json()
    result = body["result"] if isinstance(body["result"], dict) else json.loads(body["result"])
    assert result["error_count"] == 2 and result["errors"][0]["row"] == 2 and result["file"] == "catalog.csv"

    again = await client.post("/catalog/import", content=CSV.encode(), headers=CSV_HEADERS)
    # Only MUG-1 changes: its first row renames it back, its last row again (one export each); the rest is unchanged.
    assert (again.json()["exported"], again.json()["unchanged"]) == (2, 3)


async def test_bad_encoding_is_a_row_error_and_a_csv_without_sku_column_is_refused(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    body = b"sku,name,product_type\nGOOD,Good,simple\nBAD,Caf\xe9,simple\n"
    answer = (await client.post("/catalog/import", content=body, headers=CSV_HEADERS)).json()
    assert answer["stored"] == 1
    assert answer["errors"] == [{"row": 2, "field": "encoding", "message": "column 'name' is not UTF-8"}]
    refused = await client.post("/catalog/import", content=b"name,type\nA,simple\n", headers=CSV_HEADERS)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "header"
    assert (await client.post("/catalog/import", content=body, headers={"Content-Type": "text/csv"})).status_code == 401


async def test_a_sku_that_is_not_utf8_or_holds_nul_is_a_row_error_before_it_reaches_the_database(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    body = b"sku,name,product_type\nA\xff\xfeB,x,simple\nA\x00B,x,simple\nGOOD,G\x00od,simple\nFINE,Fine,simple\n"
    response = await client.post("/catalog/import", content=body, headers=CSV_HEADERS)
    assert response.status_code == 200, response.text
    assert response.json()["errors"] == [
        {"row": 1, "field": "encoding", "message": "column 'sku' is not UTF-8"},
        {"row": 2, "field": "encoding", "message": "column 'sku' contains a NUL byte"},
        {"row": 3, "field": "encoding", "message": "column 'name' contains a NUL byte"},
    ]
    assert [row["sku"] for row in await raw.fetch("SELECT sku FROM catalog_product")] == ["FINE"]


async def test_an_import_over_the_size_limit_is_refused(client: httpx.AsyncClient, runtime) -> None:  # type: ignore[no-untyped-def]
    runtime.settings.catalog_import_max_bytes = 1024
    big = b"sku,name,product_type\n" + b"".join(f"S{n},Name {n},simple\n".encode() for n in range(200))
    response = await client.post("/catalog/import", content=big, headers=CSV_HEADERS)
    assert response.status_code == 413
