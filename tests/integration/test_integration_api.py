"""/integration: the status operators read, the enable/disable switch, and registration without an OMS."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from app.services import integration_status
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


def topics_by_name(status: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(row["direction"], row["topic"]): row for row in status["backlog"]["topics"]}


def counts(row: dict[str, Any]) -> dict[str, int]:
    names = ("queued", "waiting", "processing", "retrying", "failed", "dead")
    return {name: row[name] for name in names if row[name]}


async def insert_messages(
    raw: asyncpg.Connection,
    *,
    lanes: list[str],
    topic: str = "magento.sales.order_management.create",
    status: str = "queued",
    direction: str = "out",
    channel: str = "oms",
    created_at: datetime,
    attempts: int = 0,
    last_error: str | None = None,
) -> list[int]:
    """One message per lane given, straight into the table (as the bus leaves them), in the order given."""
    return [
        row["id"]
        for row in await raw.fetch(
            """
            INSERT INTO message (direction, channel, topic, external_id, lane, payload, status, attempts, last_error,
                                 next_attempt_at, first_attempt_at, created_at)
            SELECT CAST($1 AS message_direction), $2, $3, 'ext-' || gen_random_uuid(), lane, '{}',
                   CAST($4 AS message_status), $5, $6, CAST($7 AS timestamptz) + interval '1 hour',
                   CASE WHEN $5 > 0 THEN CAST($7 AS timestamptz) + n * interval '1 second' END, $7
              FROM unnest(CAST($8 AS text[])) WITH ORDINALITY AS t(lane, n)
             ORDER BY n
            RETURNING id
            """,
            direction,
            channel,
            topic,
            status,
            attempts,
            last_error,
            created_at,
            lanes,
        )
    ]


async def test_a_fresh_integration_is_enabled_with_nothing_waiting(client):
    status = await integration(client)
    assert status["enabled"] is True
    assert status["signature"]["mode"] == "required"
    assert status["signature"]["warning"] is None
    assert status["signature"]["rotation_secret_configured"] is True
    assert status["backlog"]["topics"] == []
    assert status["backlog"]["blocked_lanes"] == []
    assert status["backlog"]["blocked_lanes_total"] == 0
    assert status["last_in"] is None
    assert status["last_out"] is None
    assert status["registration"]["registered"] is False


async def test_the_backlog_counts_each_topic_and_lists_the_blocked_lane_with_its_error(client, runtime, raw, clock):
    runtime.bus.inbound_batch = 1  # one message per step: lane A is to be left half-way
    failed = await post_call(client, raw, LANE_C, {"fail": "permanent"})
    assert await runtime.bus.process_next_inbound() is True
    stuck = await post_call(client, raw, LANE_D, {"fail_attempts": 100})
    blocked_at = clock.now()
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
    assert refused.status_code == 401  # journaled as rejected: neither backlog nor the last inbound message

    status = await integration(client)
    topics = topics_by_name(status)
    assert set(topics) == {("in", LANE_A), ("in", LANE_B), ("in", LANE_C), ("in", LANE_D), ("in", NO_HANDLER_TOPIC)}
    assert counts(topics["in", LANE_A]) == {"queued": 2}
    assert datetime.fromisoformat(topics["in", LANE_A]["oldest_pending_at"]) == a_times[1]  # the oldest pending
    assert counts(topics["in", LANE_B]) == {"queued": 1}
    assert counts(topics["in", NO_HANDLER_TOPIC]) == {"queued": 1}
    assert counts(topics["in", LANE_C]) == {"failed": 1}
    assert topics["in", LANE_C]["oldest_pending_at"] is None
    assert counts(topics["in", LANE_D]) == {"retrying": 1}
    assert all(row["channel"] == "oms" for row in topics.values())

    (blocked,) = status["backlog"]["blocked_lanes"]
    assert (status["backlog"]["blocked_lanes_total"], status["backlog"]["blocked_lanes_capped"]) == (1, False)
    assert (blocked["direction"], blocked["lane"], blocked["topic"]) == ("in", LANE_D, LANE_D)
    assert (blocked["message_id"], blocked["attempts"]) == (stuck, 1)
    assert blocked["last_error"] == "TransientHandlerError: asked to fail 100 times"
    assert datetime.fromisoformat(blocked["since"]) == blocked_at
    assert datetime.fromisoformat(blocked["next_attempt_at"]) > blocked_at

    assert status["last_in"]["id"] == unhandled
    assert status["last_in"]["topic"] == NO_HANDLER_TOPIC
    assert status["last_in"]["status"] == "queued"
    assert status["last_out"] is None
    assert {failed, stuck, *a_ids} < set(await raw.fetchval("SELECT array_agg(id) FROM message"))


async def test_the_status_counts_outbound_topics_separately(client, runtime, raw):
    await post_call(client, raw, LANE_A, {"enqueue": "magento.sales.order_management.create"})
    assert await runtime.bus.process_next_inbound() is True

    status = await integration(client)
    topics = topics_by_name(status)
    assert set(topics) == {("out", "magento.sales.order_management.create")}
    assert counts(topics["out", "magento.sales.order_management.create"]) == {"queued": 1}
    assert status["last_out"]["topic"] == "magento.sales.order_management.create"
    assert status["last_out"]["status"] == "queued"
    assert status["last_in"]["status"] == "succeeded"


async def test_order_lanes_are_summarised_in_one_row_per_topic_not_one_per_order(client, raw, clock):
    start = clock.now() - timedelta(hours=2)
    orders = [f"order/10000{n:04d}" for n in range(40)]
    await insert_messages(raw, lanes=orders[:30], created_at=start)
    await insert_messages(raw, lanes=orders[30:], status="waiting", created_at=start + timedelta(minutes=5))
    await insert_messages(raw, lanes=orders[:2], status="processing", created_at=start + timedelta(minutes=6))
    await insert_messages(
        raw, lanes=[f"commerce/order/{n}" for n in range(7)], channel="commerce", topic="commerce.shipment.create",
        created_at=start,
    )  # fmt: skip
    await insert_messages(raw, lanes=orders[:4], status="dead", created_at=start, attempts=9, last_error="HTTP 503")
    await insert_messages(raw, lanes=orders[:3], status="succeeded", created_at=start)  # history: not shown

    rows = (await integration(client))["backlog"]["topics"]
    assert [(row["direction"], row["channel"], row["topic"]) for row in rows] == [
        ("out", "commerce", "commerce.shipment.create"),
        ("out", "oms", "magento.sales.order_management.create"),
    ]
    assert counts(rows[0]) == {"queued": 7}
    assert counts(rows[1]) == {"queued": 30, "waiting": 10, "processing": 2, "dead": 4}
    assert datetime.fromisoformat(rows[1]["oldest_pending_at"]) == start


async def test_blocked_lanes_are_listed_oldest_head_first_up_to_fifty_with_their_number(
    client, raw, clock, monkeypatch
):
    start = clock.now() - timedelta(days=1)
    lanes = [f"order/2000{n:04d}" for n in range(60)]
    heads = await insert_messages(
        raw, lanes=lanes, status="retrying", attempts=3, last_error="OMS answered HTTP 503: " + "x" * 900,
        created_at=start,
    )  # fmt: skip
    # Not blocked: a retrying message behind an older queued one of its lane is not that lane's head.
    await insert_messages(raw, lanes=["order/30000001"], created_at=start)
    await insert_messages(raw, lanes=["order/30000001"], status="retrying", attempts=1, created_at=start)

    backlog = (await integration(client))["backlog"]
    assert (backlog["blocked_lanes_total"], backlog["blocked_lanes_capped"]) == (60, False)
    shown = backlog["blocked_lanes"]
    assert len(shown) == integration_status.BLOCKED_LANES_SHOWN == 50
    assert [lane["message_id"] for lane in shown] == heads[:50]  # the oldest head first
    assert [lane["lane"] for lane in shown] == lanes[:50]
    assert [datetime.fromisoformat(lane["since"]) for lane in shown[:2]] == [
        start + timedelta(seconds=1),
        start + timedelta(seconds=2),
    ]
    assert {lane["attempts"] for lane in shown} == {3}
    assert {len(lane["last_error"]) for lane in shown} == {integration_status.ERROR_CHARS}

    monkeypatch.setattr(integration_status, "BLOCKED_LANES_COUNTED", 55)  # an outage: one blocked lane per order
    backlog = (await integration(client))["backlog"]
    assert (backlog["blocked_lanes_total"], backlog["blocked_lanes_capped"], len(backlog["blocked_lanes"])) == (
        55,
        True,
        50,
    )


async def test_failed_and_dead_are_counted_among_the_newest_and_say_when_there_may_be_more(
    client, raw, clock, monkeypatch
):
    monkeypatch.setattr(integration_status, "FAILED_COUNTED", 5)
    start = clock.now()
    await insert_messages(raw, lanes=[f"order/{n}" for n in range(7)], status="failed", created_at=start)
    await insert_messages(raw, lanes=[f"order/{n}" for n in range(2)], status="dead", created_at=start)

    backlog = (await integration(client))["backlog"]
    (row,) = backlog["topics"]
    assert counts(row) == {"failed": 5, "dead": 2}
    assert (backlog["failed_dead_counted"], backlog["failed_capped"], backlog["dead_capped"]) == (5, True, False)


async def test_the_last_message_of_a_direction_is_looked_for_among_the_newest_messages_only(
    client, raw, clock, monkeypatch
):
    (outbound,) = await insert_messages(raw, lanes=["order/1"], status="succeeded", created_at=clock.now())
    await insert_messages(raw, lanes=["a", "b", "c"], direction="in", status="succeeded", created_at=clock.now())
    monkeypatch.setattr(integration_status, "LAST_MESSAGE_WINDOW", 4)
    assert (await integration(client))["last_out"]["id"] == outbound
    monkeypatch.setattr(integration_status, "LAST_MESSAGE_WINDOW", 3)
    assert (await integration(client))["last_out"] is None  # older than the newest 3: not looked for


@pytest.mark.parametrize("settings_overrides", [{"oms_secret": "", "oms_secret_previous": ""}])
async def test_signature_required_without_a_secret_is_warned_on_the_status(client, settings_overrides):
    signature = (await integration(client))["signature"]
    assert signature["mode"] == "required"
    assert "every OMS call is refused with 401 until OMS_SECRET is set" in signature["warning"]


async def test_the_openapi_document_describes_the_status_and_its_backlog(client):
    document = (await client.get("/openapi.json")).json()
    answer = document["paths"]["/integration"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/IntegrationStatus"}
    schemas = document["components"]["schemas"]
    assert {"backlog", "signature", "registration", "last_in"} <= set(schemas["IntegrationStatus"]["properties"])
    assert {"topics", "blocked_lanes", "blocked_lanes_total"} <= set(schemas["Backlog"]["properties"])
    assert {"lane", "message_id", "attempts", "last_error", "since"} <= set(schemas["BlockedLane"]["properties"])
    assert {"queued", "waiting", "retrying", "failed", "dead", "oldest_pending_at"} <= set(
        schemas["TopicBacklog"]["properties"]
    )


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
    assert topics_by_name(await integration(client))["in", LANE_A]["queued"] == 1


@pytest.mark.parametrize("settings_overrides", [{"oms_url": None}])
@pytest.mark.parametrize("action", ["register", "unregister"])
async def test_register_and_unregister_answer_409_when_the_oms_url_is_not_configured(
    client, raw, settings_overrides, action
):
    response = await client.post(f"/integration/{action}", headers=AUTH)
    assert response.status_code == 409
    body = response.json()
    assert (body["detail"], body["error"]) == ("the OMS is not configured (OMS_URL)", "NotConfigured")
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
