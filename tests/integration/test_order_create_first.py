"""An order's create reaches the OMS before anything else about the order (issue #15, defect 4), on a real
PostgreSQL with a recording respx OMS: a cancel or return request about an order the OMS does not have yet waits
(journal status `waiting`, the answer says why) and follows the create once a create of the order succeeds or the
OMS acknowledges the order; an operator's retry can neither send such a call early nor send a second create."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import httpx
import pytest
import respx

from app.clock import FrozenClock
from app.data.bus import RELEASE_WAITING
from app.data.orders import ORDER_GATE
from app.data.sql import positional
from app.runtime import Runtime
from app.workers.registry import HandlerRegistry, build_registry
from tests.conftest import make_settings
from tests.support.oms_events import CREATED, RETURN_AUTHORIZE, SHIPMENT_DONE, shipment_done
from tests.support.orders import commerce_order, item, order_body
from tests.support.recording_oms import CREATE, RecordingOms
from tests.support.signing import COMMERCE_TOKEN, operator_headers, rpc_body, signed_headers

OMS_URL = "http://oms.test/api/"
CANCEL = "magento.sales.order_management.cancel"
COMMERCE = {"Authorization": f"Bearer {COMMERCE_TOKEN}", "Content-Type": "application/json"}
OPERATOR = operator_headers()
NUMBER = "000000101"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"oms_url": OMS_URL}


@pytest.fixture
def registry() -> HandlerRegistry:
    return build_registry(make_settings())


@pytest.fixture
def recording(oms: respx.Router) -> RecordingOms:
    fake = RecordingOms()
    oms.post(OMS_URL).mock(side_effect=fake)
    return fake


async def post_order(client: httpx.AsyncClient, number: str = NUMBER) -> int:
    document = commerce_order(increment_id=number, items=[item(1001, "MUG-STONE-350", qty=2, price="12.50")])
    response = await client.post("/orders", content=order_body(document), headers=COMMERCE)
    assert response.status_code == 202, response.text
    return int(response.json()["message_id"])


async def cancel(client: httpx.AsyncClient, number: str = NUMBER) -> dict[str, Any]:
    response = await client.post(f"/orders/{number}/cancel", json={"reason": "customer asked"}, headers=COMMERCE)
    assert response.status_code == 202, response.text
    return response.json()


async def deliver(runtime: Runtime) -> int:
    """Send every OMS message that is ready now, lane head by lane head."""
    total = 0
    while sent := await runtime.bus.send_next_outbound("oms"):
        total += sent
    return total


async def oms_calls(client: httpx.AsyncClient, runtime: Runtime, method: str, params: dict[str, Any]) -> None:
    body = rpc_body(method, params)
    response = await client.post("/oms/rpc", content=body, headers=signed_headers(body))
    assert response.status_code == 200, response.text
    while await runtime.bus.process_next_inbound():
        pass


async def status_of(raw: asyncpg.Connection, message_id: int) -> str:
    return await raw.fetchval("SELECT status::text FROM message WHERE id = $1", message_id)


async def lifecycle(client: httpx.AsyncClient, number: str = NUMBER) -> dict[str, Any]:
    response = await client.get(f"/orders/{number}", headers=OPERATOR)
    assert response.status_code == 200, response.text
    return response.json()["lifecycle"]


# --- the scenario --------------------------------------------------------------------------------------
async def test_a_cancel_made_before_its_discarded_create_is_synced_again_reaches_the_oms_after_the_new_create(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection, recording: RecordingOms, clock: FrozenClock
) -> None:
    first_create = await post_order(client)
    answer = await cancel(client)
    assert answer["outcome"] == "requested" and answer["request_delivery"] == "waiting"
    assert f"message {first_create}" in answer["note"] and "on its way" in answer["note"]
    cancel_id = answer["message_id"]
    journaled = (await client.get(f"/journal/{cancel_id}", headers=OPERATOR)).json()
    assert journaled["status"] == "waiting" and f"waits for order {NUMBER}'s create" in journaled["last_error"]

    assert (await client.post(f"/journal/{first_create}/discard", headers=OPERATOR)).status_code == 200
    synced = await client.post("/orders/sync", json={"limit": 1}, headers=OPERATOR)
    [new_create] = synced.json()["message_ids"]
    assert first_create < cancel_id < new_create  # the cancel is older than the create it must follow

    recording.answer = "unavailable"  # the new create waits in its lane: the cancel must not overtake it
    await deliver(runtime)
    assert recording.methods(NUMBER) == [(CREATE, False)]
    assert await status_of(raw, cancel_id) == "waiting"

    clock.advance(minutes=20)
    recording.answer = "ok"
    await deliver(runtime)
    assert recording.methods(NUMBER) == [(CREATE, False), (CREATE, True), (CANCEL, True)]
    assert [call.id for call in recording.received][1] == f"mdc-order-{NUMBER}-2"
    assert (await lifecycle(client))["cancel"]["request_delivery"] == "delivered"


# --- a create the OMS never received ---------------------------------------------------------------------------
async def test_a_cancel_of_an_order_whose_create_the_oms_refused_is_held_and_says_how_to_get_the_create_sent(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection, recording: RecordingOms
) -> None:
    create = await post_order(client)
    recording.answer = "refuse"
    await deliver(runtime)
    assert await status_of(raw, create) == "failed"

    answer = await cancel(client)
    assert answer["request_delivery"] == "waiting"
    assert "refused by the OMS" in answer["note"] and "orders sync" in answer["note"]
    assert f"/journal/{create}/retry" in answer["note"]
    again = await cancel(client)
    assert again["outcome"] == "already_requested" and again["request_delivery"] == "waiting"
    assert again["note"] == answer["note"]

    recording.answer = "ok"
    assert await deliver(runtime) == 0  # nothing about the order goes while the OMS lacks it
    assert recording.methods(NUMBER) == [(CREATE, False)]
    assert (await lifecycle(client))["cancel"]["request_delivery"] == "waiting"

    refused = await client.post(f"/journal/{answer['message_id']}/retry", headers=OPERATOR)
    assert refused.status_code == 409, refused.text
    assert "refused by the OMS" in refused.json()["detail"] and "orders sync" in refused.json()["detail"]

    assert (await client.post(f"/journal/{create}/retry", headers=OPERATOR)).status_code == 200
    await deliver(runtime)
    assert recording.methods(NUMBER) == [(CREATE, False), (CREATE, True), (CANCEL, True)]


async def test_a_discarded_waiting_cancel_is_never_sent_and_shows_discarded(
    client: httpx.AsyncClient, runtime: Runtime, recording: RecordingOms
) -> None:
    await post_order(client)
    answer = await cancel(client)
    discarded = await client.post(f"/journal/{answer['message_id']}/discard", headers=OPERATOR)
    assert discarded.status_code == 200 and discarded.json()["status"] == "discarded"
    await deliver(runtime)
    assert recording.methods(NUMBER) == [(CREATE, True)]
    assert (await lifecycle(client))["cancel"]["request_delivery"] == "discarded"


async def test_a_cancel_after_the_create_succeeded_is_queued_at_once(
    client: httpx.AsyncClient, runtime: Runtime, recording: RecordingOms
) -> None:
    await post_order(client)
    await deliver(runtime)
    answer = await cancel(client)
    assert answer["request_delivery"] == "pending" and answer["note"] is None
    await deliver(runtime)
    assert recording.methods(NUMBER) == [(CREATE, True), (CANCEL, True)]


# --- the OMS's acknowledgement -----------------------------------------------------------------------------------
async def test_the_oms_acknowledging_the_order_releases_its_waiting_cancel_behind_the_create(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection, recording: RecordingOms, clock: FrozenClock
) -> None:
    create = await post_order(client)
    recording.answer = "unavailable"  # the OMS took the create but its answer did not come back
    await deliver(runtime)
    answer = await cancel(client)
    assert answer["request_delivery"] == "waiting"

    params = json.loads(await raw.fetchval("SELECT payload FROM message WHERE id = $1", create))
    await oms_calls(client, runtime, CREATED, {"order": params["order"]})
    acknowledged = await raw.fetchrow("SELECT status::text, result FROM message WHERE topic = $1", CREATED)
    assert acknowledged["status"] == "succeeded" and json.loads(acknowledged["result"])["released_calls"] == 1
    assert await status_of(raw, answer["message_id"]) == "queued"

    clock.advance(minutes=20)
    recording.answer = "ok"
    await deliver(runtime)
    assert recording.methods(NUMBER) == [(CREATE, False), (CREATE, True), (CANCEL, True)]


async def test_the_oms_acknowledging_an_order_discards_a_create_synced_again_and_the_cancel_is_sent_alone(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection, recording: RecordingOms, clock: FrozenClock
) -> None:
    first = await post_order(client)
    recording.answer = "refuse"  # e.g. the PHP peer stored the order, then failed: answered with an error
    await deliver(runtime)
    answer = await cancel(client)
    [second] = (await client.post("/orders/sync", headers=OPERATOR)).json()["message_ids"]
    assert answer["request_delivery"] == "waiting" and first < answer["message_id"] < second

    params = json.loads(await raw.fetchval("SELECT payload FROM message WHERE id = $1", first))
    await oms_calls(client, runtime, CREATED, {"order": params["order"]})
    result = json.loads(await raw.fetchval("SELECT result FROM message WHERE topic = $1", CREATED))
    assert (result["creates_not_sent"], result["released_calls"]) == (1, 1)
    assert await status_of(raw, second) == "discarded"
    assert "the OMS acknowledged order" in await raw.fetchval("SELECT last_error FROM message WHERE id = $1", second)

    recording.answer = "ok"
    await deliver(runtime)
    assert recording.methods(NUMBER) == [(CREATE, False), (CANCEL, True)]  # no second order under a new id


# --- returns go through the same gate ------------------------------------------------------------------------------
async def test_a_return_request_for_an_order_whose_create_is_unanswered_waits_and_follows_the_create(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection, recording: RecordingOms, clock: FrozenClock
) -> None:
    create = await post_order(client)
    recording.answer = "unavailable"
    await deliver(runtime)
    params = json.loads(await raw.fetchval("SELECT payload FROM message WHERE id = $1", create))
    await oms_calls(client, runtime, SHIPMENT_DONE, shipment_done(params["order"], shipment_id="S1"))

    response = await client.post(
        f"/orders/{NUMBER}/returns", json={"items": [{"item_id": "1001", "qty": 1}]}, headers=COMMERCE
    )
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["request_delivery"] == "waiting" and "being retried" in answer["note"]
    assert (await lifecycle(client))["returns"][0]["request_delivery"] == "waiting"

    clock.advance(minutes=20)
    recording.answer = "ok"
    await deliver(runtime)
    assert recording.methods(NUMBER) == [(CREATE, False), (CREATE, True), (RETURN_AUTHORIZE, True)]
    assert (await lifecycle(client))["returns"][0]["request_delivery"] == "delivered"


# --- operators cannot get a second create or an early call sent -----------------------------------------------------
async def test_retrying_an_earlier_create_after_orders_sync_queued_a_new_one_is_refused(
    client: httpx.AsyncClient, runtime: Runtime, recording: RecordingOms
) -> None:
    first = await post_order(client)
    recording.answer = "refuse"
    await deliver(runtime)
    [second] = (await client.post("/orders/sync", headers=OPERATOR)).json()["message_ids"]

    refused = await client.post(f"/journal/{first}/retry", headers=OPERATOR)
    assert refused.status_code == 409, refused.text
    assert f"earlier create of order {NUMBER}" in refused.json()["detail"]
    assert f"message {second}" in refused.json()["detail"]

    recording.answer = "ok"
    await deliver(runtime)
    assert (await client.post(f"/journal/{first}/retry", headers=OPERATOR)).status_code == 409
    assert (await client.post("/orders/sync", headers=OPERATOR)).json()["queued"] == 0
    await deliver(runtime)
    assert recording.methods(NUMBER) == [(CREATE, False), (CREATE, True)]


async def test_retrying_a_failed_call_about_an_order_the_oms_lacks_makes_it_wait_for_the_create(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection, recording: RecordingOms
) -> None:
    create = await post_order(client)
    recording.answer = "refuse"
    await deliver(runtime)
    cancel_id = (await cancel(client))["message_id"]
    # A cancel that an earlier release sent ahead of its create, and the OMS refused ("Order not found").
    await raw.execute("UPDATE message SET status = 'failed', last_error = 'Order not found' WHERE id = $1", cancel_id)

    retried = await client.post(f"/journal/{cancel_id}/retry", headers=OPERATOR)
    assert retried.status_code == 200 and retried.json()["status"] == "waiting"
    assert "waits for order" in await raw.fetchval("SELECT last_error FROM message WHERE id = $1", cancel_id)
    recording.answer = "ok"
    assert await deliver(runtime) == 0

    assert (await client.post(f"/journal/{create}/retry", headers=OPERATOR)).status_code == 200
    await deliver(runtime)
    assert recording.methods(NUMBER) == [(CREATE, False), (CREATE, True), (CANCEL, True)]


# --- no release is missed when a cancel and the create's success meet -------------------------------------------------
async def test_a_cancel_decided_while_the_creates_success_is_being_recorded_waits_for_it_and_is_queued(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection, recording: RecordingOms
) -> None:
    create = await post_order(client)
    [leased] = await runtime.bus.claim_outbound("oms", limit=1)
    release_sql, names = positional(RELEASE_WAITING)
    release_args = {"ids": [create], "now": runtime.clock.now()}
    recording_transaction = raw.transaction()
    await recording_transaction.start()
    # The create's success, recorded by a sender whose transaction has not committed yet.
    await raw.execute("UPDATE message SET status = 'succeeded', lease_until = NULL WHERE id = $1", leased.id)
    request = asyncio.create_task(cancel(client))
    await asyncio.sleep(0.3)
    assert not request.done()  # the decision waits for the record instead of reading the create as unsent
    assert await raw.fetchval(release_sql, *(release_args[n] for n in names)) == 0  # nothing held yet
    await recording_transaction.commit()

    answer = await request
    assert answer["request_delivery"] == "pending"
    assert await status_of(raw, answer["message_id"]) == "queued"


async def test_a_creates_success_recorded_while_a_cancel_is_being_held_releases_that_cancel(
    client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection, recording: RecordingOms
) -> None:
    await post_order(client)
    [leased] = await runtime.bus.claim_outbound("oms", limit=1)
    gate_sql, _ = positional(ORDER_GATE)
    holding = raw.transaction()
    await holding.start()
    # What a cancel request does under the order's lock: read the gate (the create is in flight), hold the call.
    gate = await raw.fetchrow(gate_sql, NUMBER)
    assert gate["export_status"] == "processing" and not gate["acknowledged"]
    held = await raw.fetchval(
        "INSERT INTO message (direction, channel, topic, external_id, lane, payload, status, next_attempt_at,"
        " created_at) VALUES ('out', 'oms', $1, 'held-cancel', $2, '{}'::jsonb, 'waiting', now(), now()) RETURNING id",
        CANCEL,
        f"order/{NUMBER}",
    )
    record = asyncio.create_task(runtime.bus.record_outbound([leased], [[]], [5]))
    await asyncio.sleep(0.3)
    assert not record.done()  # the record waits for the transaction that read the create
    await holding.commit()
    await record

    assert await status_of(raw, leased.id) == "succeeded"
    assert await status_of(raw, held) == "queued"


# --- sync export: the create sent inline by the request that posted the order ---------------------------------------
class TestSyncExport:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"oms_url": OMS_URL, "oms_order_export_mode": "sync"}

    async def test_a_cancel_made_while_the_create_is_on_the_wire_inline_is_released_by_its_success(
        self, client: httpx.AsyncClient, runtime: Runtime, raw: asyncpg.Connection, oms: respx.Router
    ) -> None:
        received: list[str] = []
        canceled: dict[str, Any] = {}

        async def respond(request: httpx.Request) -> httpx.Response:
            document = json.loads(request.content)
            received.append(document["method"])
            if document["method"] == CREATE:  # the store cancels while the OMS has not answered the create yet
                canceled.update(await cancel(client))
            return httpx.Response(200, json={"jsonrpc": "2.0", "id": document["id"], "result": []})

        oms.post(OMS_URL).mock(side_effect=respond)
        document = commerce_order(increment_id=NUMBER)
        response = await client.post("/orders", content=order_body(document), headers=COMMERCE)
        assert response.status_code == 200 and response.json()["delivery"]["delivered"] is True, response.text

        assert canceled["request_delivery"] == "waiting"  # asked while the create was on its way
        assert await status_of(raw, canceled["message_id"]) == "queued"  # released by the inline success
        await deliver(runtime)
        assert received == [CREATE, CANCEL]
