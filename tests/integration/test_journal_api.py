"""/journal (search, inspect, retry, discard), who may call the operator API, and the anonymous endpoints."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from app.errors import PermanentHandlerError
from app.workers.registry import HandlerContext, InboundMessage
from tests.support.handlers import TEST_TOPICS, record_effect
from tests.support.signing import COMMERCE_TOKEN, OPERATOR_TOKEN, operator_headers, rpc_body, signed_headers

LANE_A, LANE_B = TEST_TOPICS[0], TEST_TOPICS[1]
STOCK_TOPIC = "magento.inventory.aggregate_stock_management.updated"
OUTBOUND_METHOD = "magento.sales.order_management.create"
AUTH = operator_headers()


async def post_call(
    client: httpx.AsyncClient,
    raw: asyncpg.Connection,
    topic: str = LANE_A,
    params: dict[str, Any] | None = None,
    *,
    id: str = "auto",
    extra_headers: dict[str, str] | None = None,
) -> int:
    """POST a signed OMS call and return the id of the inbound message it stored."""
    body = rpc_body(method=topic, params=params or {}, id=id)
    response = await client.post("/oms/rpc", content=body, headers={**signed_headers(body), **(extra_headers or {})})
    assert response.status_code == 200, response.text
    message_id = await raw.fetchval(
        "SELECT id FROM message WHERE direction = 'in' AND external_id = $1 AND status <> 'rejected'",
        json.loads(body)["id"],
    )
    assert message_id is not None
    return message_id


async def journal(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/journal", params=params, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


async def journal_ids(client: httpx.AsyncClient, **params: Any) -> list[int]:
    return [item["id"] for item in (await journal(client, **params))["items"]]


async def status_of(raw: asyncpg.Connection, message_id: int) -> str:
    return await raw.fetchval("SELECT status::text FROM message WHERE id = $1", message_id)


# --- search ------------------------------------------------------------------------------------------------


async def test_the_journal_lists_every_message_newest_first(client, raw):
    ids = [await post_call(client, raw, params={"seq": n}) for n in range(3)]
    page = await journal(client)
    assert [item["id"] for item in page["items"]] == ids[::-1]
    assert page["next_cursor"] is None
    first = page["items"][-1]
    assert (first["direction"], first["topic"], first["status"], first["lane"]) == ("in", LANE_A, "queued", LANE_A)


async def test_the_journal_filters_by_direction(client, runtime, raw):
    inbound = await post_call(client, raw, params={"enqueue": OUTBOUND_METHOD})
    assert await runtime.bus.process_next_inbound() is True
    outbound = await raw.fetchval("SELECT id FROM message WHERE direction = 'out'")

    assert await journal_ids(client, direction="out") == [outbound]
    assert await journal_ids(client, direction="in") == [inbound]
    assert sorted(await journal_ids(client)) == sorted([inbound, outbound])


async def test_the_journal_filters_by_topic(client, raw):
    a1 = await post_call(client, raw, LANE_A)
    b1 = await post_call(client, raw, LANE_B)
    a2 = await post_call(client, raw, LANE_A)

    assert await journal_ids(client, topic=LANE_A) == [a2, a1]
    assert await journal_ids(client, topic=LANE_B) == [b1]
    assert await journal_ids(client, topic="magento.nothing.here") == []


async def test_the_journal_filters_by_status(client, runtime, raw):
    failed = await post_call(client, raw, LANE_A, {"fail": "permanent"})
    succeeded = await post_call(client, raw, LANE_B)
    assert await runtime.bus.process_next_inbound() is True
    assert await runtime.bus.process_next_inbound() is True
    queued = await post_call(client, raw, LANE_A)

    assert await journal_ids(client, status="failed") == [failed]
    assert await journal_ids(client, status="succeeded") == [succeeded]
    assert await journal_ids(client, status="queued") == [queued]
    assert await journal_ids(client, status="dead") == []


async def test_the_journal_filters_by_the_jsonrpc_id(client, raw):
    wanted = await post_call(client, raw, id="oms-msg-0001")
    await post_call(client, raw, id="oms-msg-0002")

    page = await journal(client, external_id="oms-msg-0001")
    assert [item["id"] for item in page["items"]] == [wanted]
    assert page["items"][0]["external_id"] == "oms-msg-0001"


async def test_the_journal_finds_messages_by_order_number_or_sku(client, raw):
    order = await post_call(client, raw, LANE_A, {"order": {"id": "000000042", "status": "processing"}})
    other_order = await post_call(client, raw, LANE_B, {"order": {"id": "000000043"}})
    stock = await post_call(
        client,
        raw,
        STOCK_TOPIC,
        {"snapshot": {"mode": "DELTA", "stock": [{"sku": "MUG-STONE-350", "quantity": "7"}]}},
    )
    shipment = await post_call(client, raw, LANE_B, {"order_id": "000000042", "items": [{"sku": "MUG-STONE-350"}]})

    assert await journal_ids(client, reference="000000042") == [shipment, order]
    assert await journal_ids(client, reference="000000043") == [other_order]
    assert await journal_ids(client, reference="MUG-STONE-350") == [shipment, stock]
    assert await journal_ids(client, reference="MUG") == []  # a whole reference, not a substring


async def test_the_journal_filters_by_time_range_since_inclusive_until_exclusive(client, raw, clock):
    t0 = clock.now()
    m0 = await post_call(client, raw)
    t1 = clock.advance(minutes=1)
    m1 = await post_call(client, raw)
    t2 = clock.advance(minutes=1)
    m2 = await post_call(client, raw)

    assert await journal_ids(client, since=t1.isoformat()) == [m2, m1]
    assert await journal_ids(client, until=t2.isoformat()) == [m1, m0]
    assert await journal_ids(client, since=t1.isoformat(), until=t2.isoformat()) == [m1]
    assert await journal_ids(client, since=(t2 + timedelta(seconds=1)).isoformat()) == []
    assert await journal_ids(client, until=t0.isoformat()) == []


async def test_paging_with_limit_and_cursor_returns_every_entry_once_newest_first(client, raw):
    ids = [await post_call(client, raw, params={"seq": n}) for n in range(7)]

    pages: list[list[int]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor is not None:
            params["cursor"] = cursor
        page = await journal(client, **params)
        pages.append([item["id"] for item in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 10

    assert [len(p) for p in pages] == [3, 3, 1]
    assert [i for p in pages for i in p] == ids[::-1]  # no repeats, no gaps, newest first


async def test_paging_a_filtered_search_skips_what_does_not_match(client, raw):
    wanted = []
    for n in range(5):
        wanted.append(await post_call(client, raw, LANE_A, {"seq": n}))
        await post_call(client, raw, LANE_B, {"seq": n})

    seen: list[int] = []
    page = await journal(client, topic=LANE_A, limit=2)
    seen += [item["id"] for item in page["items"]]
    while page["next_cursor"] is not None:
        page = await journal(client, topic=LANE_A, limit=2, cursor=page["next_cursor"])
        seen += [item["id"] for item in page["items"]]
    assert seen == wanted[::-1]


async def test_a_page_exactly_full_has_no_next_cursor(client, raw):
    for n in range(3):
        await post_call(client, raw, params={"seq": n})
    page = await journal(client, limit=3)
    assert len(page["items"]) == 3
    assert page["next_cursor"] is None


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"limit": 0}, id="limit-0"),
        pytest.param({"limit": 501}, id="limit-too-big"),
        pytest.param({"cursor": "abc"}, id="cursor-not-a-number"),
        pytest.param({"status": "sleeping"}, id="unknown-status"),
        pytest.param({"direction": "sideways"}, id="unknown-direction"),
        pytest.param({"since": "yesterday"}, id="bad-since"),
        pytest.param({"since": "0001-01-01T00:00:00+14:00"}, id="since-before-year-1-in-utc"),
        pytest.param({"until": "9999-12-31T23:59:59-14:00"}, id="until-after-year-9999-in-utc"),
    ],
)
async def test_bad_search_parameters_get_422_not_500(client, params):
    response = await client.get("/journal", params=params, headers=AUTH)
    assert response.status_code == 422


async def test_a_cursor_beyond_the_largest_id_starts_from_the_newest_entry(client, raw):
    ids = [await post_call(client, raw, params={"seq": n}) for n in range(2)]
    assert await journal_ids(client, cursor="9999999999999999999") == ids[::-1]


@pytest.mark.parametrize("field", ["topic", "external_id", "reference"])
async def test_a_nul_character_in_a_text_filter_is_refused_with_422_naming_the_query(client, raw, field):
    await post_call(client, raw, params={"order": {"id": "000000042"}})
    response = await client.get("/journal", params={field: "000000042\x00"}, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "(query)", "message": "contains NUL (%00), which no value can hold"}]


# --- one entry -----------------------------------------------------------------------------------------------


async def test_an_entry_shows_payload_headers_without_secrets_attempts_error_and_timings(client, runtime, raw, clock):
    params = {"order": {"id": "000000042"}, "fail": "permanent"}
    message_id = await post_call(
        client,
        raw,
        LANE_A,
        params,
        extra_headers={
            "Authorization": "Bearer oms-side-token",
            "Cookie": "session=abc",
            "X-Request-Source": "oms-test",
        },
    )
    started = clock.now()
    assert await runtime.bus.process_next_inbound() is True

    response = await client.get(f"/journal/{message_id}", headers=AUTH)
    assert response.status_code == 200
    entry = response.json()
    assert entry["id"] == message_id
    assert entry["payload"] == params
    assert entry["refs"] == ["000000042"]
    headers = {name.lower(): value for name, value in entry["headers"].items()}
    assert headers["x-request-source"] == "oms-test"
    assert "x-signature" in headers
    assert "authorization" not in headers
    assert "cookie" not in headers
    assert "oms-side-token" not in json.dumps(entry)
    assert entry["status"] == "failed"
    assert entry["attempts"] == 1
    assert "asked to fail permanently" in entry["last_error"]
    assert entry["started_at"] is not None
    assert entry["finished_at"] is not None
    assert entry["first_attempt_at"] is not None
    assert isinstance(entry["duration_ms"], int)
    assert entry["created_at"] is not None
    assert datetime.fromisoformat(entry["started_at"]) == started
    assert datetime.fromisoformat(entry["finished_at"]) == started


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("GET", "/journal/987654321", id="get"),
        pytest.param("POST", "/journal/987654321/retry", id="retry"),
        pytest.param("POST", "/journal/987654321/discard", id="discard"),
        pytest.param("GET", "/journal/9223372036854775808", id="get-beyond-bigint"),
        pytest.param("POST", "/journal/99999999999999999999/retry", id="retry-beyond-bigint"),
        pytest.param("POST", "/journal/9223372036854775808/discard", id="discard-beyond-bigint"),
        pytest.param("GET", "/journal/0", id="get-zero"),
    ],
)
async def test_an_unknown_message_id_gets_404(client, method, path):
    response = await client.request(method, path, headers=AUTH)
    assert response.status_code == 404
    assert path.split("/")[2] in response.json()["detail"]


# --- operator actions ------------------------------------------------------------------------------------------


async def test_retrying_a_failed_message_queues_it_and_it_is_processed_again(client, runtime, raw, registry):
    async def fails_the_first_time(context: HandlerContext, message: InboundMessage) -> dict[str, Any]:
        if message.attempts == 0:
            raise PermanentHandlerError("missing product (first attempt)")
        return await record_effect(context, message)

    registry.register(LANE_A, fails_the_first_time, replace=True)
    message_id = await post_call(client, raw, LANE_A)
    assert await runtime.bus.process_next_inbound() is True
    assert await status_of(raw, message_id) == "failed"
    assert await runtime.bus.process_next_inbound() is False

    response = await client.post(f"/journal/{message_id}/retry", headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {"id": message_id, "status": "queued"}
    assert await status_of(raw, message_id) == "queued"

    assert await runtime.bus.process_next_inbound() is True
    assert await status_of(raw, message_id) == "succeeded"
    assert await raw.fetchval("SELECT attempts FROM message WHERE id = $1", message_id) == 2
    assert [r["message_id"] for r in await raw.fetch("SELECT message_id FROM test_effect")] == [message_id]


async def test_retrying_a_succeeded_message_is_refused_with_409(client, runtime, raw):
    message_id = await post_call(client, raw)
    assert await runtime.bus.process_next_inbound() is True

    response = await client.post(f"/journal/{message_id}/retry", headers=AUTH)
    assert response.status_code == 409
    assert "succeeded" in response.json()["detail"]
    assert await status_of(raw, message_id) == "succeeded"
    assert await runtime.bus.process_next_inbound() is False
    assert await raw.fetchval("SELECT count(*) FROM test_effect") == 1


async def test_discarding_a_retrying_head_lets_its_lane_move_on(client, runtime, raw):
    stuck = await post_call(client, raw, LANE_A, {"fail_attempts": 100})
    behind = await post_call(client, raw, LANE_A, {"seq": 2})
    assert await runtime.bus.process_next_inbound() is True
    assert await status_of(raw, stuck) == "retrying"
    assert await runtime.bus.process_next_inbound() is False  # the lane is blocked

    response = await client.post(f"/journal/{stuck}/discard", json={"reason": "sent twice by the OMS"}, headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {"id": stuck, "status": "discarded"}
    entry = (await client.get(f"/journal/{stuck}", headers=AUTH)).json()
    assert entry["status"] == "discarded"
    assert "sent twice by the OMS" in entry["last_error"]
    assert entry["finished_at"] is not None

    assert await runtime.bus.process_next_inbound() is True  # no clock advance needed
    assert await status_of(raw, behind) == "succeeded"
    assert await status_of(raw, stuck) == "discarded"


async def test_discarding_without_a_body_keeps_the_last_error(client, runtime, raw):
    stuck = await post_call(client, raw, LANE_A, {"fail_attempts": 100})
    assert await runtime.bus.process_next_inbound() is True

    response = await client.post(f"/journal/{stuck}/discard", headers=AUTH)
    assert response.status_code == 200
    assert await status_of(raw, stuck) == "discarded"
    last_error = await raw.fetchval("SELECT last_error FROM message WHERE id = $1", stuck)
    assert last_error == "TransientHandlerError: asked to fail 100 times"


async def test_a_discard_reason_with_a_nul_character_gets_422_and_changes_nothing(client, runtime, raw):
    message_id = await post_call(client, raw, LANE_A, {"fail": "permanent"})
    assert await runtime.bus.process_next_inbound() is True

    response = await client.post(f"/journal/{message_id}/discard", json={"reason": "a\u0000b"}, headers=AUTH)
    assert response.status_code == 422
    assert await status_of(raw, message_id) == "failed"


async def test_discarding_a_succeeded_message_is_refused_with_409(client, runtime, raw):
    message_id = await post_call(client, raw)
    assert await runtime.bus.process_next_inbound() is True

    response = await client.post(f"/journal/{message_id}/discard", json={"reason": "oops"}, headers=AUTH)
    assert response.status_code == 409
    assert "succeeded" in response.json()["detail"]
    assert await status_of(raw, message_id) == "succeeded"


# --- who may call -----------------------------------------------------------------------------------------------

OPERATOR_ENDPOINTS = [
    ("GET", "/journal"),
    ("GET", "/journal/{id}"),
    ("POST", "/journal/{id}/retry"),
    ("POST", "/journal/{id}/discard"),
    ("GET", "/integration"),
    ("POST", "/integration/register"),
    ("POST", "/integration/unregister"),
    ("POST", "/integration/disable"),
    ("POST", "/integration/enable"),
]
BAD_CREDENTIALS = [
    pytest.param({}, id="no-token"),
    pytest.param({"Authorization": "Bearer not-the-operator-token-at-all"}, id="wrong-token"),
    pytest.param({"Authorization": f"Bearer {COMMERCE_TOKEN}"}, id="commerce-token"),
    pytest.param({"Authorization": f"Basic {OPERATOR_TOKEN}"}, id="operator-token-wrong-scheme"),
    pytest.param({"Authorization": f"Bearer {OPERATOR_TOKEN}x"}, id="operator-token-plus-one"),
    pytest.param({"Authorization": "Bearer"}, id="empty-bearer"),
]


@pytest.mark.parametrize("headers", BAD_CREDENTIALS)
@pytest.mark.parametrize(("method", "path"), OPERATOR_ENDPOINTS, ids=[f"{m} {p}" for m, p in OPERATOR_ENDPOINTS])
async def test_operator_endpoints_answer_401_without_the_operator_token(client, runtime, raw, method, path, headers):
    message_id = await post_call(client, raw, LANE_A, {"fail": "permanent"})
    assert await runtime.bus.process_next_inbound() is True  # failed: both retry and discard would change it

    response = await client.request(method, path.format(id=message_id), headers=headers)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "payload" not in response.text
    assert await status_of(raw, message_id) == "failed"
    assert await raw.fetchval("SELECT enabled FROM integration_state WHERE id = 1") is True
    assert await raw.fetchval("SELECT count(*) FROM message") == 1  # nothing journaled (no register call)


async def test_the_operator_token_is_accepted_on_every_operator_endpoint(client, runtime, raw):
    message_id = await post_call(client, raw, LANE_A, {"fail": "permanent"})
    assert await runtime.bus.process_next_inbound() is True
    for method, path in OPERATOR_ENDPOINTS:
        response = await client.request(method, path.format(id=message_id), headers=AUTH)
        assert response.status_code != 401, (method, path)


# --- anonymous ---------------------------------------------------------------------------------------------------


async def test_liveness_is_anonymous(client):
    response = await client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readiness_is_anonymous_and_reports_the_migration(client, runtime):
    response = await client.get("/health/ready")
    assert response.status_code == 200
    assert runtime.head_revision is not None
    assert response.json() == {"status": "ok", "database": "ok", "migration": runtime.head_revision}


async def test_readiness_answers_503_when_the_schema_is_not_at_the_head(client, raw, runtime):
    await raw.execute("UPDATE alembic_version SET version_num = '0000'")
    response = await client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["expected"] == runtime.head_revision


async def test_the_docs_and_the_openapi_document_are_anonymous(client):
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "text/html" in docs.headers["content-type"]
    schema = await client.get("/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/journal", "/journal/{message_id}", "/integration", "/oms/rpc", "/health/ready"} <= set(paths)
