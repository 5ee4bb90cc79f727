"""Order export over real sockets: the store posts orders to a `serve` process, its workers deliver them to a stub
OMS that accepts only tokens it issued, the OMS acknowledges with a signed `created` callback; then an OMS outage in
sync mode: the order falls back to the outbox and reaches the OMS once it is back, exactly once."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from app.db import DatabaseUrl
from tests.support.orders import Selection, bundle, commerce_order, configurable, item, order_body
from tests.support.processes import Processes, free_port, wait_until
from tests.support.signing import COMMERCE_TOKEN, SECRET, operator_headers
from tests.support.stub_oms import StubOms

CREATE = "magento.sales.order_management.create"
CREATED = "magento.sales.order_management.created"
COMMERCE = {"Authorization": f"Bearer {COMMERCE_TOKEN}", "Content-Type": "application/json"}


def _env(stub: StubOms, port: int, **extra: str) -> dict[str, str]:
    return {
        "OMS_URL": stub.rpc_url,
        "OMS_OAUTH_SERVER_URL": stub.token_url,
        "OMS_OAUTH_CLIENT_ID": "mom",
        "OMS_OAUTH_CLIENT_SECRET": "mom-client-secret",
        "OMS_APPLICATION_BASE_URL": f"http://127.0.0.1:{port}",
        "OMS_SECRET": SECRET,
        "OMS_REGISTER_AT_STARTUP": "true",
        "HANDLER_PLUGINS": "[]",  # the release's handlers only: `created` acknowledges the order
        **extra,
    }


def _orders() -> list[dict[str, Any]]:
    mixed = [
        item(1, "MUG-STONE-350", qty=3, price="12.99", tax_percent=19, discount_percent=15),
        *configurable(2, 3, "TEE-ORG-BLU-M", price="29.90", tax_percent=19),
        *bundle(4, "KIT-YOGA", [Selection(5, "MAT-01", "90.00"), Selection(6, "STRAP-02", "30.00")], price="99.00"),
    ]
    return [
        commerce_order(increment_id="500000001", items=mixed, shipping_tax_percent=19),
        commerce_order(increment_id="500000002", gift_cards=[("GC-AB12", "5.00")]),
        commerce_order(increment_id="500000003", status="payment_review"),  # held
    ]


async def test_orders_reach_the_oms_once_with_its_token_and_are_acknowledged(tmp_path: Path, database_url: DatabaseUrl):
    with StubOms(require_token=True) as stub, Processes(tmp_path, database_url) as procs:
        port = free_port()
        service = procs.serve("serve", workers=True, port=port, **_env(stub, port))
        await service.wait_ready()
        posted = _orders()
        async with httpx.AsyncClient(base_url=service.base_url, timeout=30) as http:
            for document in posted:
                response = await http.post("/orders", content=order_body(document), headers=COMMERCE)
                assert response.status_code == 202, response.text

            async def delivered() -> bool:
                return len(stub.calls_of(CREATE)) >= 2

            await wait_until(delivered, 30, "the orders never reached the stub OMS", service)
            calls = stub.calls_of(CREATE)
            assert sorted(call.params["order"]["id"] for call in calls) == ["500000001", "500000002"]
            assert all(
                call.authorization and call.authorization.removeprefix("Bearer ") in stub.issued_tokens
                for call in calls
            )

            mixed = next(call.params["order"] for call in calls if call.params["order"]["id"] == "500000001")
            units = [line for line in mixed["lines"] if line["product_type"] != "SHIPPING"]
            assert [line["id"] for line in units] == ["1-1", "1-2", "1-3", "2-1", "5-1", "6-1"]
            assert [line["sku"] for line in units[3:]] == ["TEE-ORG-BLU-M", "MAT-01", "STRAP-02"]
            gross = sum(Decimal(str(line["amount"]["gross_amount"])) for line in mixed["lines"])
            assert gross == Decimal(str(posted[0]["grand_total"]))
            paid = sum(Decimal(str(t["amount"])) for t in mixed["payments"][0]["transactions"])
            assert paid == gross

            # The OMS acknowledges one order with a signed callback (Go mock style: the create's params echoed).
            ack = await stub.send_callback(CREATED, {"order": mixed}, "stub-ack-1")
            assert ack.status_code == 200, ack.text
            headers = operator_headers()

            async def acknowledged() -> bool:
                view = await http.get("/orders/500000001", headers=headers)
                return view.json()["export_status"] == "acknowledged"

            await wait_until(acknowledged, 30, "order 500000001 was never acknowledged", service)
            statuses = {
                number: (await http.get(f"/orders/{number}", headers=headers)).json()["export_status"]
                for number in ("500000002", "500000003")
            }
            assert statuses == {"500000002": "sent", "500000003": "held"}
        assert stub.refused == 0
        service.stop_cleanly()
    assert len(stub.calls_of(CREATE)) == 2  # nothing sent twice


async def test_in_sync_mode_an_oms_outage_falls_back_to_the_outbox_and_the_order_arrives_once(
    tmp_path: Path, database_url: DatabaseUrl
):
    with StubOms(require_token=True) as stub, Processes(tmp_path, database_url) as procs:
        port = free_port()
        env = _env(stub, port, OMS_ORDER_EXPORT_MODE="sync", OMS_REGISTER_AT_STARTUP="false")
        service = procs.serve("serve", workers=True, port=port, **env)
        await service.wait_ready()
        async with httpx.AsyncClient(base_url=service.base_url, timeout=30) as http:
            first = await http.post("/orders", content=order_body(commerce_order(increment_id="1")), headers=COMMERCE)
            assert first.status_code == 200, first.text
            assert first.json()["delivery"]["delivered"] is True

            stub.down = True
            second = await http.post("/orders", content=order_body(commerce_order(increment_id="2")), headers=COMMERCE)
            assert second.status_code == 202, second.text
            assert second.json()["delivery"]["fallback"] == "outbox" and "503" in second.json()["delivery"]["error"]
            stub.down = False

            # The outbox retries with backoff (about a second for a first retry).
            async def arrived() -> bool:
                return any(call.params["order"]["id"] == "2" for call in stub.calls_of(CREATE))

            await wait_until(arrived, 60, "order 2 never reached the OMS after the outage", service)

            # The OMS has it; the connector records the answer a moment later (under load, a noticeable moment).
            async def recorded() -> bool:
                view = await http.get("/orders/2", headers=operator_headers())
                return view.json()["export_status"] != "queued"

            await wait_until(recorded, 30, "order 2's delivery was never recorded", service)
            view = await http.get("/orders/2", headers=operator_headers())
            assert view.json()["export_status"] == "sent" and view.json()["export_attempts"] >= 2
        service.stop_cleanly()
    ids = [call.params["order"]["id"] for call in stub.calls_of(CREATE)]
    assert ids.count("1") == 1 and ids.count("2") == 1
    assert stub.refused >= 1  # the inline attempt during the outage
