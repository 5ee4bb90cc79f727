"""/integration: the status operators read, the enable/disable switch, and registration without an OMS."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.handlers import TEST_TOPICS
from tests.support.signing import OPERATOR_TOKEN, PREVIOUS_SECRET, SECRET, operator_headers, rpc_body, signed_headers

LANE_A, LANE_B, LANE_C, LANE_D = TEST_TOPICS
NO_HANDLER_TOPIC = "magento.inventory.aggregate_stock_management.updated"
AUTH = operator_headers()


async def post_call(
    client: httpx.AsyncClient, raw: asyncpg.Connection, topic: str = LANE_A, params: dict[str, Any] | None = None
) -> int:
    body = rpc_body(method=topic, params=params or {})
    response = await client.post("/oms/rpc", content=body, headers=signed_headers(body))
    assert response.status_code == 200, response.text
    return await raw.fetchval(
        "SELECT id FROM message WHERE direction = 'in' AND external_id = $1 AND status <> 'rejected'",
        json.loads(body)["id"],
    )


async def integration(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/integration", headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def lanes_by_name(status: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(lane["direction"], lane["lane"]): lane for lane in status["lanes"]}


async def test_a_fresh_integration_is_enabled_with_nothing_waiting(client):
    status = await integration(client)
    assert status["enabled"] is True
    assert status["signature"]["mode"] == "required"
    assert status["signature"]["warning"] is None
    assert status["signature"]["rotation_secret_configured"] is True
    assert status["lanes"] == []
    assert status["last_in"] is None
    assert status["last_out"] is None
    assert status["registration"]["registered"] is False


async def test_the_status_shows_the_backlog_of_each_lane_and_the_last_inbound_message(client, runtime, raw, clock):
    failed = await post_call(client, raw, LANE_C, {"fail": "permanent"})
    assert await runtime.bus.process_next_inbound() is True
    stuck = await post_call(client, raw, LANE_D, {"fail_attempts": 100})
    assert await runtime.bus.process_next_inbound() is True
    a_ids, a_times = [], []
    for n in range(3):  # a millisecond apart: lane D's retry (at least 0.5 s away) stays not ready
        a_times.append(clock.advance(milliseconds=1))
        a_ids.append(await post_call(client, raw, LANE_A, {"seq": n}))
    await post_call(client, raw, LANE_B)
    unhandled = await post_call(client, raw, NO_HANDLER_TOPIC, {"snapshot": {"stock": []}})
    assert await runtime.bus.process_next_inbound() is True  # lane A's first message (lane D waits for its retry)
    forged = rpc_body(id="forged-after-all")
    refused = await client.post("/oms/rpc", content=forged, headers=signed_headers(forged, secret="nope"))
    assert refused.status_code == 401  # journaled as rejected: not the last inbound message

    status = await integration(client)
    lanes = lanes_by_name(status)
    assert set(lanes) == {("in", LANE_A), ("in", LANE_B), ("in", LANE_C), ("in", LANE_D), ("in", NO_HANDLER_TOPIC)}
    assert (lanes["in", LANE_A]["backlog"], lanes["in", LANE_A]["retrying"]) == (2, 0)
    assert datetime.fromisoformat(lanes["in", LANE_A]["oldest"]) == a_times[1]  # the oldest still pending
    assert lanes["in", LANE_B]["backlog"] == 1
    assert lanes["in", NO_HANDLER_TOPIC]["backlog"] == 1
    assert (lanes["in", LANE_C]["backlog"], lanes["in", LANE_C]["dead_or_failed"]) == (0, 1)
    assert (lanes["in", LANE_D]["backlog"], lanes["in", LANE_D]["retrying"]) == (1, 1)
    assert all(lane["dead_or_failed"] == 0 for key, lane in lanes.items() if key != ("in", LANE_C))

    assert status["last_in"]["id"] == unhandled
    assert status["last_in"]["topic"] == NO_HANDLER_TOPIC
    assert status["last_in"]["status"] == "queued"
    assert status["last_out"] is None
    assert {failed, stuck, *a_ids} < set(await raw.fetchval("SELECT array_agg(id) FROM message"))


async def test_the_status_counts_outbound_lanes_separately(client, runtime, raw):
    await post_call(client, raw, LANE_A, {"enqueue": "magento.sales.order_management.create"})
    assert await runtime.bus.process_next_inbound() is True

    status = await integration(client)
    lanes = lanes_by_name(status)
    assert set(lanes) == {("out", "magento.sales.order_management.create")}
    assert lanes["out", "magento.sales.order_management.create"]["backlog"] == 1
    assert status["last_out"]["topic"] == "magento.sales.order_management.create"
    assert status["last_out"]["status"] == "queued"
    assert status["last_in"]["status"] == "succeeded"


async def test_the_status_never_shows_a_secret(client):
    text = (await client.get("/integration", headers=AUTH)).text
    for secret in (SECRET, PREVIOUS_SECRET, OPERATOR_TOKEN):
        assert secret not in text


async def test_disabling_refuses_oms_calls_with_503_until_enabled_again(client, raw, clock):
    response = await client.post("/integration/disable", headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {"enabled": False}
    status = await integration(client)
    assert status["enabled"] is False
    assert datetime.fromisoformat(status["enabled_changed_at"]) == clock.now()
    assert await raw.fetchval("SELECT enabled FROM integration_state WHERE id = 1") is False

    body = rpc_body(id="while-disabled")
    refused = await client.post("/oms/rpc", content=body, headers=signed_headers(body))
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "30"
    assert refused.json()["error"]["code"] == -32002
    assert refused.json()["id"] == "while-disabled"
    assert await raw.fetchval("SELECT count(*) FROM message") == 0

    response = await client.post("/integration/enable", headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {"enabled": True}
    assert (await integration(client))["enabled"] is True
    accepted = await client.post("/oms/rpc", content=body, headers=signed_headers(body))
    assert accepted.status_code == 200
    assert await raw.fetchval("SELECT status::text FROM message WHERE external_id = 'while-disabled'") == "queued"


async def test_disabling_keeps_the_messages_already_queued(client, runtime, raw):
    queued = await post_call(client, raw)
    assert (await client.post("/integration/disable", headers=AUTH)).status_code == 200
    assert await raw.fetchval("SELECT status::text FROM message WHERE id = $1", queued) == "queued"
    assert lanes_by_name(await integration(client))["in", LANE_A]["backlog"] == 1


@pytest.mark.parametrize("settings_overrides", [{"oms_url": None}])
@pytest.mark.parametrize("action", ["register", "unregister"])
async def test_register_and_unregister_answer_409_when_the_oms_url_is_not_configured(
    client, raw, settings_overrides, action
):
    response = await client.post(f"/integration/{action}", headers=AUTH)
    assert response.status_code == 409
    assert response.json() == {"detail": "the OMS is not configured (OMS_URL)", "error": "NotConfigured"}
    assert await raw.fetchval("SELECT count(*) FROM message") == 0  # no call was made or journaled
    status = await integration(client)
    assert status["oms"]["configured"] is False
    assert status["registration"]["registered"] is False
    assert status["registration"]["error"] is None


@pytest.mark.parametrize(
    "settings_overrides", [{"oms_url": "http://127.0.0.1:9/rpc", "oms_application_base_url": None}]
)
async def test_register_answers_409_when_there_is_no_callback_url(client, raw, settings_overrides):
    response = await client.post("/integration/register", headers=AUTH)
    assert response.status_code == 409
    assert "OMS_APPLICATION_BASE_URL" in response.json()["detail"]
    assert await raw.fetchval("SELECT count(*) FROM message") == 0
