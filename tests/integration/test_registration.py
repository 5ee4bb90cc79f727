"""Registering the connector's callback URL with the OMS (magento.service_bus.remote.register), the journal of
those calls (secret redacted), and the /integration endpoints that drive and show it."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from typing import Any

import asyncpg
import httpx
import pytest
import respx

import app.services.integration as integration_module
from app import __version__
from app.errors import PeerRejected, PeerUnavailable
from app.protocol.methods import REGISTER, UNREGISTER
from tests.support.signing import SECRET, operator_headers

OMS_URL = "http://oms.test/api/"
CALLBACK_URL = "https://connector.example/oms/rpc"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "oms_url": OMS_URL,
        "oms_application_base_url": "https://connector.example",
        "oms_labels": {"env": "test"},
    }


def go_peer(request: httpx.Request) -> httpx.Response:
    """Answers like the Go peer: echo the id, "error": "" on success."""
    document = json.loads(request.content)
    result: Any = [{"ID": document["params"]["id"], "Url": document["params"].get("url")}]
    if document["method"] == UNREGISTER:
        result = []
    return httpx.Response(200, json={"jsonrpc": "2.0", "id": document["id"], "result": result, "error": ""})


def sent(route: respx.Route) -> list[dict[str, Any]]:
    return [json.loads(call.request.content) for call in route.calls]


async def state(raw: asyncpg.Connection) -> asyncpg.Record:
    record = await raw.fetchrow("SELECT * FROM integration_state WHERE id = 1")
    assert record is not None
    return record


async def test_register_sends_the_callback_url_secret_version_and_labels(runtime, oms):
    route = oms.post(OMS_URL).mock(side_effect=go_peer)

    outcome = await runtime.registrar.register()

    [call] = sent(route)
    assert call["jsonrpc"] == "2.0"
    assert call["method"] == REGISTER
    assert call["id"]
    assert call["params"] == {
        "id": "mdc",
        "url": CALLBACK_URL,
        "secret": SECRET,
        "version": __version__,
        "labels": {"env": "test"},
    }
    assert outcome["registered"] is True
    assert outcome["url"] == CALLBACK_URL
    assert outcome["result"] == [{"ID": "mdc", "Url": CALLBACK_URL}]


@pytest.mark.parametrize(
    "settings_overrides",
    [{"oms_url": OMS_URL, "oms_application_base_url": "https://shop.example/conn/", "oms_application_id": "pyconn"}],
)
async def test_register_uses_the_configured_application_id_and_base_url(runtime, oms):
    route = oms.post(OMS_URL).mock(side_effect=go_peer)
    await runtime.registrar.register()
    [call] = sent(route)
    assert call["params"]["id"] == "pyconn"
    assert call["params"]["url"] == "https://shop.example/conn/oms/rpc"
    assert call["params"]["labels"] == {}


async def test_a_successful_register_is_recorded_in_integration_state(runtime, oms, raw, clock):
    oms.post(OMS_URL).mock(side_effect=go_peer)

    await runtime.registrar.register()

    recorded = await state(raw)
    assert recorded["registered_url"] == CALLBACK_URL
    assert recorded["registered_version"] == __version__
    assert recorded["registered_application_id"] == "mdc"
    assert recorded["registered_at"] == clock.now()
    assert recorded["register_error"] is None
    assert await runtime.registrar.is_current()


async def test_the_register_call_is_journaled_with_the_secret_redacted(runtime, oms, raw):
    oms.post(OMS_URL).mock(side_effect=go_peer)

    await runtime.registrar.register()

    [journaled] = await raw.fetch("SELECT * FROM message WHERE topic = $1", REGISTER)
    assert journaled["direction"] == "out"
    assert journaled["status"] == "succeeded"
    payload = json.loads(journaled["payload"])
    assert payload["secret"] == "***"
    assert payload["url"] == CALLBACK_URL
    assert json.loads(journaled["result"]) == {"result": [{"ID": "mdc", "Url": CALLBACK_URL}]}
    leaks = await raw.fetchval(
        """
        SELECT count(*) FROM message
         WHERE payload::text LIKE '%' || $1 || '%' OR headers::text LIKE '%' || $1 || '%'
            OR coalesce(result::text, '') LIKE '%' || $1 || '%' OR coalesce(last_error, '') LIKE '%' || $1 || '%'
        """,
        SECRET,
    )
    assert leaks == 0


async def test_a_journaled_register_is_not_resent_by_the_outbound_sender(runtime, oms):
    route = oms.post(OMS_URL).mock(side_effect=go_peer)
    await runtime.registrar.register()
    assert await runtime.bus.send_next_outbound("oms") == 0
    assert route.call_count == 1


async def test_registering_again_unregisters_first(runtime, oms, raw):
    route = oms.post(OMS_URL).mock(side_effect=go_peer)

    await runtime.registrar.register()
    await runtime.registrar.register()

    calls = sent(route)
    assert [c["method"] for c in calls] == [REGISTER, UNREGISTER, REGISTER]
    assert calls[1]["params"] == {"id": "mdc"}
    assert len({c["id"] for c in calls}) == 3  # every call has its own id
    topics = [r["topic"] for r in await raw.fetch("SELECT topic FROM message ORDER BY id")]
    assert topics == [REGISTER, UNREGISTER, REGISTER]


async def test_registering_again_goes_on_when_the_peer_has_no_unregister(runtime, oms, raw):
    def peer(request: httpx.Request) -> httpx.Response:
        document = json.loads(request.content)
        if document["method"] == UNREGISTER:  # the Go peer
            return httpx.Response(200, json={"result": None, "error": f"Handler not found for method {UNREGISTER}."})
        return go_peer(request)

    route = oms.post(OMS_URL).mock(side_effect=peer)
    await runtime.registrar.register()

    outcome = await runtime.registrar.register()

    assert outcome["registered"] is True
    assert [c["method"] for c in sent(route)] == [REGISTER, UNREGISTER, REGISTER]
    assert (await state(raw))["register_error"] is None
    statuses = [r["status"] for r in await raw.fetch("SELECT status::text FROM message ORDER BY id")]
    assert statuses == ["succeeded", "failed", "succeeded"]


async def test_keep_registered_does_nothing_when_this_url_and_version_are_registered(runtime, oms):
    route = oms.post(OMS_URL).mock(side_effect=go_peer)
    await runtime.registrar.register()

    await runtime.registrar.keep_registered()

    assert route.call_count == 1


async def test_keep_registered_registers_when_not_registered(runtime, oms, raw):
    route = oms.post(OMS_URL).mock(side_effect=go_peer)

    await runtime.registrar.keep_registered()

    assert [c["method"] for c in sent(route)] == [REGISTER]
    assert (await state(raw))["registered_url"] == CALLBACK_URL


async def test_keep_registered_registers_again_after_an_upgrade(runtime, oms, raw):
    route = oms.post(OMS_URL).mock(side_effect=go_peer)
    await runtime.registrar.register()
    await raw.execute("UPDATE integration_state SET registered_version = '0.0.1-old' WHERE id = 1")

    await runtime.registrar.keep_registered()

    assert [c["method"] for c in sent(route)] == [REGISTER, UNREGISTER, REGISTER]
    assert (await state(raw))["registered_version"] == __version__


@pytest.mark.parametrize(
    ("response", "error", "text"),
    [
        pytest.param(httpx.Response(503, text="maintenance"), PeerUnavailable, "HTTP 503", id="503"),
        pytest.param(httpx.Response(200, content=b""), PeerRejected, "empty body", id="php-duplicate-empty-200"),
        pytest.param(
            httpx.Response(200, json={"result": None, "error": "URL is empty"}), PeerRejected, "URL is empty", id="go"
        ),
    ],
)
async def test_a_failing_register_records_register_error(runtime, oms, raw, clock, response, error, text):
    oms.post(OMS_URL).mock(return_value=response)

    with pytest.raises(error):
        await runtime.registrar.register()

    recorded = await state(raw)
    assert text in recorded["register_error"]
    assert recorded["register_attempted_at"] == clock.now()
    assert recorded["registered_url"] is None
    assert recorded["registered_at"] is None
    [journaled] = await raw.fetch("SELECT * FROM message WHERE topic = $1", REGISTER)
    assert journaled["status"] == "failed"
    assert text in journaled["last_error"]
    assert json.loads(journaled["payload"])["secret"] == "***"


async def test_a_register_error_is_shown_in_get_integration(runtime, oms, client):
    oms.post(OMS_URL).mock(return_value=httpx.Response(500, text="boom"))
    with pytest.raises(PeerUnavailable):
        await runtime.registrar.register()

    response = await client.get("/integration", headers=operator_headers())

    assert response.status_code == 200
    registration = response.json()["registration"]
    assert registration["registered"] is False
    assert "HTTP 500" in registration["error"]
    assert registration["callback_url"] == CALLBACK_URL
    assert SECRET not in response.text


async def test_post_integration_register_registers_and_get_shows_it(client, oms, raw):
    route = oms.post(OMS_URL).mock(side_effect=go_peer)

    response = await client.post("/integration/register", headers=operator_headers())

    assert response.status_code == 200
    assert response.json()["registered"] is True
    assert response.json()["url"] == CALLBACK_URL
    assert [c["method"] for c in sent(route)] == [REGISTER]
    assert SECRET not in response.text

    status = (await client.get("/integration", headers=operator_headers())).json()["registration"]
    assert status["registered"] is True
    assert status["current"] is True
    assert status["url"] == CALLBACK_URL
    assert status["version"] == __version__
    assert status["error"] is None


async def test_post_integration_register_answers_502_when_the_oms_refuses(client, oms, raw):
    oms.post(OMS_URL).mock(return_value=httpx.Response(200, json={"result": None, "error": "Duplicate id mdc"}))

    response = await client.post("/integration/register", headers=operator_headers())

    assert response.status_code == 502
    assert "Duplicate id mdc" in response.json()["detail"]
    assert "Duplicate id mdc" in (await state(raw))["register_error"]


async def test_post_integration_unregister_unregisters_and_clears_the_state(client, oms, raw):
    route = oms.post(OMS_URL).mock(side_effect=go_peer)
    await client.post("/integration/register", headers=operator_headers())

    response = await client.post("/integration/unregister", headers=operator_headers())

    assert response.status_code == 200
    assert response.json()["registered"] is False
    calls = sent(route)
    assert [c["method"] for c in calls] == [REGISTER, UNREGISTER]
    assert calls[1]["params"] == {"id": "mdc"}
    recorded = await state(raw)
    assert recorded["registered_url"] is None
    assert recorded["registered_at"] is None
    status = (await client.get("/integration", headers=operator_headers())).json()["registration"]
    assert status["registered"] is False


@pytest.mark.parametrize("path", ["/integration/register", "/integration/unregister"])
async def test_register_and_unregister_need_the_operator_token(client, oms, path):
    route = oms.post(OMS_URL).mock(side_effect=go_peer)
    assert (await client.post(path)).status_code == 401
    assert (await client.post(path, headers=operator_headers("not-the-operator-token-at-all"))).status_code == 401
    assert route.call_count == 0


@pytest.mark.parametrize("settings_overrides", [{"oms_url": OMS_URL}])
async def test_register_without_a_base_url_is_refused_and_sends_nothing(client, oms):
    route = oms.post(OMS_URL).mock(side_effect=go_peer)
    response = await client.post("/integration/register", headers=operator_headers())
    assert response.status_code == 409
    assert "OMS_APPLICATION_BASE_URL" in response.json()["detail"]
    assert route.call_count == 0


async def test_two_calls_in_the_same_millisecond_are_both_journaled(runtime, oms, raw, monkeypatch):
    # Two replicas (or two operators) may call at the same moment: each call needs its own id, or the second
    # journal row collides with the first on the (direction, channel, external_id) unique index.
    frozen = SimpleNamespace(time=lambda: 1_700_000_000.123, monotonic=time.monotonic)
    monkeypatch.setattr(integration_module, "time", frozen)
    route = oms.post(OMS_URL).mock(side_effect=go_peer)

    await runtime.registrar.unregister()
    await runtime.registrar.unregister()

    ids = [c["id"] for c in sent(route)]
    assert len(set(ids)) == 2
    journaled = await raw.fetch("SELECT external_id FROM message WHERE topic = $1", UNREGISTER)
    assert sorted(r["external_id"] for r in journaled) == sorted(ids)
