"""POST /orders: inputs that size work or memory are bounded and refused with 422 before any work is done."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.support.orders import Selection, bundle, commerce_order, configurable, item, order_body
from tests.support.signing import COMMERCE_TOKEN

COMMERCE = {"Authorization": f"Bearer {COMMERCE_TOKEN}", "Content-Type": "application/json"}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"oms_max_order_lines": 50}


async def post(client: httpx.AsyncClient, body: bytes) -> httpx.Response:
    return await client.post("/orders", content=body, headers=COMMERCE)


async def nothing_stored(raw) -> bool:
    return await raw.fetchval("SELECT count(*) FROM sales_order") == 0 and (
        await raw.fetchval("SELECT count(*) FROM message") == 0
    )


async def test_an_order_of_a_billion_units_is_refused_at_once_naming_the_bound(client, raw):
    order = commerce_order(items=[item(1001, "MUG", qty=1, price="12.50")])
    order["items"][0]["qty_ordered"] = Decimal("1e9")
    started = time.monotonic()
    response = await post(client, order_body(order))
    elapsed = time.monotonic() - started

    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == "items"
    assert "1000000000 units" in error["message"] and "OMS_MAX_ORDER_LINES" in error["message"]
    assert elapsed < 5  # not a correctness bound: a hang here would be the old defect (24 GB, killed)
    assert await nothing_stored(raw)


async def test_the_line_bound_counts_bundle_children_and_a_configurable_once(client, raw):
    kit = bundle(2, "BOX", [Selection(3, "B1", "5.00"), Selection(4, "B2", "5.00")], qty=10)  # 20 child lines
    tee = configurable(5, 6, "TEE-RED-M", qty=10)  # parent and child items: 10 lines
    exactly = commerce_order(items=[item(1, "A", qty=20), *kit, *tee])
    assert (await post(client, order_body(exactly))).status_code == 202, "20 + 20 + 10 lines: at the bound"

    over = commerce_order(increment_id="000000102", items=[item(1, "A", qty=51)])
    response = await post(client, order_body(over))
    assert response.status_code == 422
    assert response.json()["errors"][0]["message"].startswith("the order has 51 units")


@pytest.mark.parametrize("total", ["1e308", "1" + "0" * 400, "-1e13", "10000000000000"])
async def test_an_amount_beyond_any_real_order_is_refused_naming_the_field(client, raw, total):
    order = commerce_order()
    order["grand_total"] = "@@total@@"
    body = order_body(order).replace(b'"@@total@@"', total.encode())
    response = await post(client, body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] in ("grand_total", "(body)")
    assert await nothing_stored(raw)


async def test_a_sku_longer_than_the_oms_keeps_is_refused_naming_the_item(client, raw):
    response = await post(client, order_body(commerce_order(items=[item(1001, "S" * 3000)])))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "items[0].sku"
    assert await nothing_stored(raw)
