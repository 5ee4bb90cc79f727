"""The context on the log lines of real work (the app in process, a real PostgreSQL, the OMS mocked): an HTTP
request's lines carry its request id, the caller's when given; a message's lines carry its id, topic, lane and
JSON-RPC id, and the order number or the SKU count where the message has one."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest
import respx

from app.runtime import Runtime
from app.workers.registry import HandlerRegistry, build_registry
from tests.conftest import make_settings
from tests.support import handlers
from tests.support.log_capture import Captured, capture_logs
from tests.support.orders import commerce_order, order_body
from tests.support.signing import COMMERCE_TOKEN, rpc_body, signed_headers

OMS_URL = "http://oms.test/api/"
STOCK = "magento.inventory.aggregate_stock_management.updated"
TEST_TOPIC = handlers.TEST_TOPICS[1]  # a topic the test handler takes


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"oms_url": OMS_URL}


@pytest.fixture
def registry() -> HandlerRegistry:
    """The release's handlers (stock) and the test handler (which fails when asked to)."""
    registry = build_registry(make_settings())
    handlers.install(registry, make_settings())
    return registry


@pytest.fixture
def logs() -> Iterator[Captured]:
    with capture_logs(log_format="json", log_level="DEBUG") as stream:
        yield stream


def lines_with(logs: Captured, message: str) -> list[dict[str, Any]]:
    return [line for line in logs.lines() if line["message"].startswith(message)]


async def test_a_requests_lines_carry_the_request_id_the_caller_gave(client: httpx.AsyncClient, logs: Captured):
    body = rpc_body()
    headers = {**signed_headers(body, secret="wrong-secret"), "X-Request-ID": "ticket-4711.a"}
    response = await client.post("/oms/rpc", content=body, headers=headers)
    assert response.status_code == 401 and response.headers["x-request-id"] == "ticket-4711.a"
    [refused] = lines_with(logs, "OMS call refused")
    assert refused["request_id"] == "ticket-4711.a"


async def test_a_request_without_an_id_logs_the_one_its_answer_carries(client: httpx.AsyncClient, logs: Captured):
    body = rpc_body()
    response = await client.post("/oms/rpc", content=body, headers=signed_headers(body, secret="wrong-secret"))
    [refused] = lines_with(logs, "OMS call refused")
    assert refused["request_id"] == response.headers["x-request-id"] and len(refused["request_id"]) == 32


async def test_lines_after_a_request_no_longer_carry_its_id(client: httpx.AsyncClient, logs: Captured):
    body = rpc_body()
    await client.post("/oms/rpc", content=body, headers={**signed_headers(body, secret="x"), "X-Request-ID": "r-1"})
    logging.getLogger("app.test").warning("after the request")
    [after] = lines_with(logs, "after the request")
    assert "request_id" not in after


async def test_a_webhooks_processing_lines_carry_its_message_id_topic_lane_and_jsonrpc_id(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection, logs: Captured
):
    failing = rpc_body(TEST_TOPIC, {"fail": "permanent"}, id="rpc-id-failing")
    working = rpc_body(TEST_TOPIC, {"seq": 1}, id="rpc-id-working")
    for body in (failing, working):
        assert (await client.post("/oms/rpc", content=body, headers=signed_headers(body))).status_code == 200
    assert await runtime.bus.process_next_inbound() and await runtime.bus.process_next_inbound()
    ids = {row["external_id"]: row["id"] for row in await raw.fetch("SELECT id, external_id FROM message")}

    [failed] = lines_with(logs, "message failed permanently")
    [processed] = lines_with(logs, "message processed")
    for line, rpc_id in ((failed, "rpc-id-failing"), (processed, "rpc-id-working")):
        assert line["message_id"] == ids[rpc_id] and line["external_id"] == rpc_id
        assert (line["topic"], line["lane"], line["direction"], line["channel"]) == (
            TEST_TOPIC,
            TEST_TOPIC,
            "in",
            "oms",
        )
        assert "request_id" not in line  # the worker's line, not the request's
    assert failed["level"] == "WARNING" and failed["action"] == "message_failed"


async def test_a_stock_messages_line_carries_its_sku_count(client: httpx.AsyncClient, runtime: Runtime, logs: Captured):
    rows = [{"sku": f"MUG-{n}", "quantity": "5"} for n in range(3)]
    params = {
        "snapshot": {"aggregate_id": "EU-WEB", "mode": "DELTA", "created_on": "2026-05-04 06:00:00", "stock": rows}
    }
    body = rpc_body(STOCK, params, id="stock-1")
    assert (await client.post("/oms/rpc", content=body, headers=signed_headers(body))).status_code == 200
    assert await runtime.bus.process_next_inbound()
    [processed] = lines_with(logs, "message processed")
    assert (processed["topic"], processed["lane"], processed["sku_count"]) == (STOCK, f"{STOCK}/EU-WEB", 3)


async def test_an_order_exports_failed_delivery_line_carries_the_order_number(
    client: httpx.AsyncClient, runtime: Runtime, oms: respx.Router, logs: Captured
):
    oms.post(OMS_URL).mock(return_value=httpx.Response(503, text="maintenance"))
    document = commerce_order(increment_id="100000042")
    headers = {"Authorization": f"Bearer {COMMERCE_TOKEN}", "Content-Type": "application/json"}
    assert (await client.post("/orders", content=order_body(document), headers=headers)).status_code == 202
    assert await runtime.bus.send_next_outbound() == 1
    [retry] = lines_with(logs, "message will be retried: OMS answered HTTP 503")
    assert (retry["increment_id"], retry["lane"], retry["direction"]) == ("100000042", "order/100000042", "out")
    assert retry["topic"] == "magento.sales.order_management.create" and retry["external_id"]
    assert retry["level"] == "WARNING" and retry["action"] == "message_retry"
