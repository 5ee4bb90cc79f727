"""POST /orders with fixed product taxes and gift wrapping, on a real PostgreSQL with a respx-mocked OMS: such an
order is accepted (202) instead of refused, and the create call reaching the OMS carries the fee on the unit lines
and the wrapping lines; an unreadable fee list is refused with 422 naming it, and nothing is stored."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest
import respx

from app.runtime import Runtime
from tests.support.commerce_orders import Fee, settle_extras, with_fixed_taxes, with_gift_wrapping
from tests.support.orders import Selection, bundle, commerce_order, item, order_body
from tests.support.signing import COMMERCE_TOKEN

OMS_URL = "http://oms.test/api/"
CREATE = "magento.sales.order_management.create"
COMMERCE = {"Authorization": f"Bearer {COMMERCE_TOKEN}", "Content-Type": "application/json"}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"oms_url": OMS_URL}


def answer(result: Any = None) -> Callable[[httpx.Request], httpx.Response]:
    def respond(request: httpx.Request) -> httpx.Response:
        document = json.loads(request.content)
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": document["id"], "result": result})

    return respond


def fpt_and_wrapping_order() -> dict[str, Any]:
    """A laptop (2 x 250.00 + 19 %, 10 % off, WEEE 0.85 + 0.16 a unit), a wrapped yoga kit (fixed-price bundle,
    135.66; wrapping 3.00 + 0.57), the order wrapped (4.00 + 0.76) with a printed card (1.50 + 0.29), a 50.00 gift
    card, shipping 5.95: grand_total 639.25 (tests/unit/test_order_gift_wrapping.py works the lines out)."""
    laptop = with_fixed_taxes(
        item(2004, "LAPTOP-14", qty=2, price="250.00", tax_percent=19, discount_percent=10),
        [Fee("WEEE", "0.85", tax="0.16")],
    )
    kit = bundle(5001, "KIT-YOGA", [Selection(5002, "MAT-01", 90), Selection(5003, "STRAP-02", 24)], tax_percent=19)
    doc = commerce_order(
        items=[laptop, *kit],
        gift_cards=[("GC-0042", "50.00")],
        coupon_code="SAVE10",
        shipping_amount="5.00",
        shipping_tax_percent=19,
    )
    with_gift_wrapping(
        doc, order_wrapping=(1, "4.00", "0.76"), card=("1.50", "0.29"), items={5001: (2, "3.00", "0.57")}
    )
    return settle_extras(doc)


async def test_an_order_with_fees_and_wrapping_is_accepted_and_the_oms_gets_the_fee_and_wrapping_lines(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection, oms: respx.Router
) -> None:
    route = oms.post(OMS_URL).mock(side_effect=answer([]))
    document = fpt_and_wrapping_order()
    assert document["grand_total"] == Decimal("639.25")

    response = await client.post("/orders", content=order_body(document), headers=COMMERCE)
    assert response.status_code == 202, response.text
    assert response.json()["export_status"] == "queued"

    assert await runtime.bus.send_next_outbound() == 1
    call = json.loads(route.calls.last.request.content)
    assert call["method"] == CREATE
    lines = {line["id"]: line for line in call["params"]["order"]["lines"]}
    assert list(lines) == [
        "2004-1",
        "2004-2",
        "5002-1",
        "5003-1",
        "GIFT_WRAPPING_5001_1",
        "GIFT_WRAPPING",
        "PRINTED_CARD",
        "SHIPPING",
    ]
    for unit in ("2004-1", "2004-2"):
        assert lines[unit]["amount"]["gross_amount"] == 268.76
        assert lines[unit]["amount"]["taxes"] == [
            {"type": "VAT", "amount": 42.91, "rate": 19},
            {"type": "WEEE", "amount": 0.85, "rate": 0},
        ]
    wrapping = {line_id: lines[line_id] for line_id in ("GIFT_WRAPPING_5001_1", "GIFT_WRAPPING", "PRINTED_CARD")}
    assert {line_id: line["product_type"] for line_id, line in wrapping.items()} == dict.fromkeys(
        wrapping, "GIFT_WRAPPING"
    )
    assert {line_id: line["amount"]["gross_amount"] for line_id, line in wrapping.items()} == {
        "GIFT_WRAPPING_5001_1": 3.57,
        "GIFT_WRAPPING": 4.76,
        "PRINTED_CARD": 1.79,
    }
    assert wrapping["GIFT_WRAPPING_5001_1"]["parent_line_id"] == "5001-1"
    payments = call["params"]["order"]["payments"][0]["transactions"]
    assert [(t["payment_method"], t["amount"]) for t in payments] == [("OFFLINE", 639.25), ("GIFT_CARD", 50)]
    assert sum(Decimal(str(line["amount"]["gross_amount"])) for line in lines.values()) == Decimal("689.25")

    # The order's lines as shipments, returns and refunds name them: a wrapping line is no Magento item's unit.
    stored = {
        row["line_id"]: (row["item_id"], row["product_type"])
        for row in await raw.fetch("SELECT line_id, item_id, product_type FROM order_line")
    }
    assert stored["2004-1"] == ("2004", "PHYSICAL")
    assert stored["GIFT_WRAPPING_5001_1"] == (None, "GIFT_WRAPPING")
    assert stored["PRINTED_CARD"] == (None, "GIFT_WRAPPING")


async def test_an_order_whose_fee_list_cannot_be_read_is_refused_with_422_naming_it_and_nothing_is_stored(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    document = commerce_order(items=[item(2001, "TV-55-OLED", weee_tax_applied='[{"title": "WEEE", "amount": ')])
    response = await client.post("/orders", content=order_body(document), headers=COMMERCE)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "OrderRejected"
    assert [error["field"] for error in body["errors"]] == ["items[0].weee_tax_applied"]
    assert await raw.fetchval("SELECT count(*) FROM sales_order") == 0
    assert await raw.fetchval("SELECT count(*) FROM message WHERE topic = $1", CREATE) == 0
