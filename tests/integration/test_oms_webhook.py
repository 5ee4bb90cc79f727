"""POST /oms/rpc: what is accepted, what is refused, what is stored."""

from __future__ import annotations

import json

import asyncpg
import httpx
import pytest

from tests.support.signing import PREVIOUS_SECRET, SECRET, operator_headers, rpc_body, signed_headers

# The protocol's own test vector (mcom-protocol.md §2).
VECTOR_BODY = (
    b'{"jsonrpc":"2.0","id":"65c8f0a1b2c3d4.51234567","method":"magento.inventory.aggregate_stock_management.updated",'
    b'"params":{"snapshot":{"aggregate_id":"EU-WEB","created_on":"2025-02-11 09:30:00","mode":"DELTA",'
    b'"stock":[{"quantity":"7","sku":"MUG-STONE-350"}]}}}'
)
VECTOR_SIGNATURE = "sha1=d64079a7fe34b905abb965eb97f7d8d7c81e2ae6"


async def post(client: httpx.AsyncClient, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return await client.post("/oms/rpc", content=body, headers=signed_headers(body) if headers is None else headers)


async def messages(raw: asyncpg.Connection) -> list[asyncpg.Record]:
    return await raw.fetch("SELECT * FROM message ORDER BY id")


async def test_the_protocol_test_vector_is_accepted_and_stored_as_sent(client, raw):
    response = await post(client, VECTOR_BODY, {"X-Signature": VECTOR_SIGNATURE})

    assert response.status_code == 200
    assert response.json() == {"jsonrpc": "2.0", "id": "65c8f0a1b2c3d4.51234567", "result": {"status": "accepted"}}
    [row] = await messages(raw)
    assert row["status"] == "queued"
    assert row["direction"] == "in"
    assert row["topic"] == "magento.inventory.aggregate_stock_management.updated"
    assert row["lane"] == row["topic"] + "/EU-WEB"  # stock is ordered per aggregate
    assert row["external_id"] == "65c8f0a1b2c3d4.51234567"
    assert json.loads(row["payload"])["snapshot"]["stock"] == [{"quantity": "7", "sku": "MUG-STONE-350"}]
    assert row["refs"] == ["MUG-STONE-350"]


async def test_a_sha256_signature_is_accepted(client, raw):
    body = rpc_body()
    response = await post(client, body, signed_headers(body, algorithm="sha256"))
    assert response.status_code == 200
    assert len(await messages(raw)) == 1


async def test_a_signature_made_with_the_previous_secret_is_accepted_during_rotation(client, raw):
    body = rpc_body()
    response = await post(client, body, signed_headers(body, secret=PREVIOUS_SECRET))
    assert response.status_code == 200
    assert [r["status"] for r in await messages(raw)] == ["queued"]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"X-Signature": "sha1=" + "0" * 40}, id="wrong"),
        pytest.param({"X-Signature": "md5=abc"}, id="unknown-algorithm"),
        pytest.param({"X-Signature": "d64079a7fe34b905abb965eb97f7d8d7c81e2ae6"}, id="no-prefix"),
    ],
)
async def test_a_bad_signature_is_refused_with_401_and_journaled_as_rejected(client, raw, headers):
    body = rpc_body(params={"order": {"id": "000000042"}}, id="forged-1")
    response = await post(client, body, {"Authorization": "Bearer secret-token", **headers})

    assert response.status_code == 401
    document = response.json()
    assert document["error"]["code"] == -32001
    assert document["id"] == "forged-1"
    [row] = await messages(raw)
    assert row["status"] == "rejected"
    assert row["external_id"] == "forged-1"
    assert "authorization" not in json.loads(row["headers"])


async def test_a_body_signed_with_another_secret_is_refused(client, raw):
    body = rpc_body()
    response = await post(client, body, signed_headers(body, secret="not-" + SECRET))
    assert response.status_code == 401
    assert [r["status"] for r in await messages(raw)] == ["rejected"]


async def test_a_forged_call_does_not_block_the_genuine_call_with_the_same_id(client, raw):
    body = rpc_body(id="same-id")
    await post(client, body, signed_headers(body, secret="forger"))
    response = await post(client, body)
    assert response.status_code == 200
    assert [r["status"] for r in await messages(raw)] == ["rejected", "queued"]


async def test_a_redelivered_id_is_answered_the_same_and_stored_once(client, raw):
    body = rpc_body(id="dup-1")
    first = await post(client, body)
    second = await post(client, body)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert len(await messages(raw)) == 1


async def test_a_call_without_id_is_keyed_by_a_hash_of_its_body(client, raw):
    body = rpc_body(id=None, params={"n": 1})
    first = await post(client, body)
    second = await post(client, body)
    other = await post(client, rpc_body(id=None, params={"n": 2}))
    assert first.status_code == second.status_code == other.status_code == 200
    assert first.json()["id"] is None
    rows = await messages(raw)
    assert len(rows) == 2
    assert all(r["external_id"].startswith("body-sha256:") for r in rows)


async def test_a_missing_jsonrpc_member_and_extra_keys_are_tolerated(client, raw):
    body = json.dumps(
        {"params": {}, "method": "magento.sales.order_management.created", "id": "go-1", "client": "FAKE"}
    )
    response = await post(client, body.encode())
    assert response.status_code == 200
    assert response.json()["id"] == "go-1"


async def test_a_numeric_id_is_echoed_as_a_number(client):
    response = await post(client, rpc_body(id=17))
    assert response.json()["id"] == 17


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param(b"", -32700, id="empty"),
        pytest.param(b"   ", -32700, id="blank"),
        pytest.param(b"{not json", -32700, id="not-json"),
        pytest.param(b"[1,2]", -32600, id="batch"),
        pytest.param(b'"a string"', -32600, id="not-an-object"),
        pytest.param(b'{"id":"x","params":{}}', -32600, id="no-method"),
        pytest.param(b'{"id":"x","method":"magento.sales.order_management.created"}', -32600, id="no-params"),
        pytest.param(
            b'{"id":"x","method":"magento.sales.order_management.created","params":null}', -32600, id="null-params"
        ),
        pytest.param(
            b'{"id":"x","method":"magento.sales.order_management.created","params":[1]}', -32600, id="list-params"
        ),
        pytest.param(
            b'{"id":{"a":1},"method":"magento.sales.order_management.created","params":{}}', -32600, id="object-id"
        ),
    ],
)
async def test_malformed_calls_get_400_with_the_jsonrpc_error_code_and_nothing_is_queued(client, raw, body, code):
    response = await post(client, body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert [r["status"] for r in await messages(raw)] == ["rejected"]


async def test_an_unknown_method_gets_32601_and_is_journaled_as_rejected(client, raw):
    response = await post(client, rpc_body(method="magento.nothing.here", id="u-1"))
    assert response.json()["error"]["code"] == -32601
    assert response.json()["id"] == "u-1"
    [row] = await messages(raw)
    assert (row["status"], row["topic"]) == ("rejected", "magento.nothing.here")


@pytest.mark.parametrize("settings_overrides", [{"oms_max_body_bytes": 2048}])
async def test_a_body_over_the_limit_gets_413_and_is_not_stored(client, raw, settings_overrides):
    body = rpc_body(params={"blob": "x" * 4096})
    response = await post(client, body)
    assert response.status_code == 413
    assert await messages(raw) == []


@pytest.mark.parametrize("settings_overrides", [{"oms_max_body_bytes": 2048}])
async def test_a_chunked_body_over_the_limit_gets_413(client, raw, settings_overrides):
    body = rpc_body(params={"blob": "x" * 4096})

    async def chunks():
        for start in range(0, len(body), 512):
            yield body[start : start + 512]

    response = await client.post("/oms/rpc", content=chunks(), headers=signed_headers(body))
    assert response.status_code == 413
    assert await messages(raw) == []


async def test_a_disabled_integration_answers_503_and_stores_nothing(client, raw):
    assert (await client.post("/integration/disable", headers=operator_headers())).status_code == 200
    response = await post(client, rpc_body())
    assert response.status_code == 503
    assert response.json()["error"]["code"] == -32002
    assert await messages(raw) == []

    await client.post("/integration/enable", headers=operator_headers())
    assert (await post(client, rpc_body())).status_code == 200


@pytest.mark.parametrize("settings_overrides", [{"oms_signature": "off"}])
async def test_signature_off_accepts_unsigned_calls(client, raw, settings_overrides):
    response = await post(client, rpc_body(), {"Content-Type": "application/json"})
    assert response.status_code == 200
    integration = (await client.get("/integration", headers=operator_headers())).json()
    assert integration["signature"]["mode"] == "off"
    assert integration["signature"]["warning"]


async def test_a_nul_character_the_database_cannot_store_is_refused_without_failing_others(client, raw):
    bad = rpc_body(params={"text": "a\u0000b"}, id="nul")
    good = [rpc_body(id=f"good-{i}") for i in range(5)]
    import asyncio

    responses = await asyncio.gather(post(client, bad), *(post(client, body) for body in good))
    assert responses[0].status_code == 400
    assert [r.status_code for r in responses[1:]] == [200] * 5
    assert sorted(r["external_id"] for r in await messages(raw) if r["status"] == "queued") == sorted(
        f"good-{i}" for i in range(5)
    )


async def test_concurrent_calls_are_each_stored_once(client, raw):
    import asyncio

    bodies = [rpc_body(id=f"c-{i}") for i in range(200)]
    responses = await asyncio.gather(*(post(client, body) for body in bodies + bodies[:50]))
    assert all(r.status_code == 200 for r in responses)
    assert await raw.fetchval("SELECT count(*) FROM message") == 200
