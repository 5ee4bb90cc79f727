"""Outbound delivery to the OMS: the bus leases lane heads, sends them with their stable JSON-RPC id, and records
succeeded / retrying / failed / dead, on a real PostgreSQL with a respx-mocked OMS and an injected clock."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import respx

from app.clock import FrozenClock
from app.errors import PeerRejected
from app.runtime import Runtime

OMS_URL = "http://oms.test/api/"
CREATE = "magento.sales.order_management.create"
STOCK = "magento.inventory.source_stock_management.update"
PRODUCT = "magento.catalog.product_management.updated"
BASE_SETTINGS: dict[str, Any] = {"oms_url": OMS_URL, "oms_retry_window_hours": 48, "oms_http_timeout_s": 30}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return dict(BASE_SETTINGS)


def answer(result: Any = None) -> Callable[[httpx.Request], httpx.Response]:
    """An OMS that answers every single call with ``result`` and echoes the id (as the Go peer does)."""

    def respond(request: httpx.Request) -> httpx.Response:
        document = json.loads(request.content)
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": document["id"], "result": result, "error": ""})

    return respond


def sent_ids(route: respx.Route) -> list[str]:
    return [json.loads(call.request.content)["id"] for call in route.calls]


async def enqueue(
    runtime: Runtime, clock: FrozenClock, method: str = CREATE, params: dict[str, Any] | None = None, **kwargs: Any
) -> int:
    async with runtime.db.connect() as connection:
        message_id = await runtime.bus.outbox.enqueue(
            connection, method=method, params=params if params is not None else {"n": 1}, now=clock.now(), **kwargs
        )
    assert message_id is not None
    return message_id


async def row(raw: asyncpg.Connection, message_id: int) -> asyncpg.Record:
    record = await raw.fetchrow("SELECT * FROM message WHERE id = $1", message_id)
    assert record is not None
    return record


# --- success ----------------------------------------------------------------------------------------------------


async def test_a_message_the_oms_accepts_succeeds_with_its_result_stored(runtime, clock, oms, raw):
    route = oms.post(OMS_URL).mock(side_effect=answer({"order": "accepted"}))
    params = {"order": {"increment_id": "000000042"}}
    message_id = await enqueue(runtime, clock, params=params)

    assert await runtime.bus.send_next_outbound("oms") == 1

    stored = await row(raw, message_id)
    assert stored["status"] == "succeeded"
    assert json.loads(stored["result"]) == {"result": {"order": "accepted"}}
    assert stored["attempts"] == 1
    assert stored["last_error"] is None
    assert stored["finished_at"] == clock.now()
    assert route.call_count == 1
    sent = json.loads(route.calls.last.request.content)
    assert sent == {"jsonrpc": "2.0", "id": stored["external_id"], "method": CREATE, "params": params}
    assert await runtime.bus.send_next_outbound("oms") == 0  # nothing left: not sent twice


async def test_nothing_to_send_sends_nothing(runtime, oms):
    route = oms.post(OMS_URL).mock(side_effect=answer())
    assert await runtime.bus.send_next_outbound("oms") == 0
    assert route.call_count == 0


# --- transient failures: retrying ----------------------------------------------------------------------------------


async def test_a_500_leaves_the_message_retrying_and_it_is_resent_later_with_the_same_id(runtime, clock, oms, raw):
    route = oms.post(OMS_URL).mock(side_effect=[httpx.Response(500, text="Internal Server Error"), answer("ok")])
    message_id = await enqueue(runtime, clock)
    sent_at = clock.now()

    assert await runtime.bus.send_next_outbound("oms") == 1

    stored = await row(raw, message_id)
    assert stored["status"] == "retrying"
    assert stored["attempts"] == 1
    assert "HTTP 500" in stored["last_error"]
    assert stored["next_attempt_at"] > sent_at
    assert stored["lease_until"] is None
    assert stored["finished_at"] is None

    assert await runtime.bus.send_next_outbound("oms") == 0  # not before next_attempt_at
    assert route.call_count == 1

    clock.advance(seconds=(stored["next_attempt_at"] - clock.now()).total_seconds() + 1)
    assert await runtime.bus.send_next_outbound("oms") == 1

    stored = await row(raw, message_id)
    assert stored["status"] == "succeeded"
    assert stored["attempts"] == 2
    assert json.loads(stored["result"]) == {"result": "ok"}
    assert sent_ids(route) == [stored["external_id"], stored["external_id"]]


async def test_the_json_rpc_id_stays_the_same_on_every_retry(runtime, clock, oms, raw):
    route = oms.post(OMS_URL).mock(
        side_effect=[httpx.Response(503), httpx.ReadTimeout("slow"), httpx.Response(502), answer("ok")]
    )
    message_id = await enqueue(runtime, clock)

    for _ in range(4):
        clock.advance(minutes=15)
        assert await runtime.bus.send_next_outbound("oms") == 1

    stored = await row(raw, message_id)
    assert stored["status"] == "succeeded"
    assert stored["attempts"] == 4
    assert sent_ids(route) == [stored["external_id"]] * 4


async def test_a_429_with_retry_after_is_not_resent_before_it(runtime, clock, oms, raw):
    route = oms.post(OMS_URL).mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "120"}, text="slow down"), answer("ok")]
    )
    message_id = await enqueue(runtime, clock)
    sent_at = clock.now()

    await runtime.bus.send_next_outbound("oms")

    stored = await row(raw, message_id)
    assert stored["status"] == "retrying"
    assert "HTTP 429" in stored["last_error"]
    assert stored["next_attempt_at"] >= sent_at + timedelta(seconds=120)

    clock.advance(seconds=119)
    assert await runtime.bus.send_next_outbound("oms") == 0
    assert route.call_count == 1

    clock.advance(seconds=(stored["next_attempt_at"] - clock.now()).total_seconds() + 1)
    assert await runtime.bus.send_next_outbound("oms") == 1
    assert (await row(raw, message_id))["status"] == "succeeded"


@pytest.mark.parametrize("error", [httpx.ReadTimeout, httpx.ConnectError])
async def test_a_timeout_or_connection_error_leaves_the_message_retrying(runtime, clock, oms, raw, error):
    oms.post(OMS_URL).mock(side_effect=error)
    message_id = await enqueue(runtime, clock)

    await runtime.bus.send_next_outbound("oms")

    stored = await row(raw, message_id)
    assert stored["status"] == "retrying"
    assert error.__name__ in stored["last_error"]
    assert stored["next_attempt_at"] > clock.now()


# --- the OMS says no: failed ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "text"),
    [
        pytest.param(
            httpx.Response(200, json={"jsonrpc": "2.0", "result": None, "error": "Handler not found for method x."}),
            "Handler not found for method x.",
            id="go-error-string",
        ),
        pytest.param(
            httpx.Response(200, json={"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "bad sku"}}),
            "bad sku",
            id="json-rpc-error-object",
        ),
        pytest.param(httpx.Response(400, text="order lines are missing"), "order lines are missing", id="http-400"),
        pytest.param(httpx.Response(200, content=b""), "empty body", id="empty-200"),
    ],
)
async def test_a_refused_message_fails_without_retry_and_keeps_the_oms_message(
    runtime, clock, oms, raw, response, text
):
    route = oms.post(OMS_URL).mock(return_value=response)
    message_id = await enqueue(runtime, clock)

    assert await runtime.bus.send_next_outbound("oms") == 1

    stored = await row(raw, message_id)
    assert stored["status"] == "failed"
    assert text in stored["last_error"]
    assert stored["finished_at"] == clock.now()
    assert stored["result"] is None

    clock.advance(hours=1)
    assert await runtime.bus.send_next_outbound("oms") == 0
    assert route.call_count == 1


async def test_a_failed_head_lets_its_lane_move_on(runtime, clock, oms, raw):
    route = oms.post(OMS_URL).mock(
        side_effect=[httpx.Response(200, json={"result": None, "error": "Order exists"}), answer("ok")]
    )
    first = await enqueue(runtime, clock, params={"n": 1})
    second = await enqueue(runtime, clock, params={"n": 2})

    await runtime.bus.send_next_outbound("oms")
    await runtime.bus.send_next_outbound("oms")

    assert (await row(raw, first))["status"] == "failed"
    assert (await row(raw, second))["status"] == "succeeded"
    assert route.call_count == 2


# --- the retry window ----------------------------------------------------------------------------------------------


async def test_an_oms_failing_for_the_whole_retry_window_makes_the_message_dead(runtime, clock, oms, raw):
    route = oms.post(OMS_URL).mock(return_value=httpx.Response(503, text="maintenance"))
    message_id = await enqueue(runtime, clock)
    started = clock.now()
    window = timedelta(hours=runtime.settings.oms_retry_window_hours)

    await runtime.bus.send_next_outbound("oms")
    steps = 0
    while (stored := await row(raw, message_id))["status"] == "retrying":
        assert stored["next_attempt_at"] <= started + window  # never scheduled after the window
        clock.advance(minutes=15)
        await runtime.bus.send_next_outbound("oms")
        steps += 1
        assert steps < 400, "the message never gave up"

    assert stored["status"] == "dead"
    assert clock.now() - started >= window
    assert "48 h" in stored["last_error"]
    assert "maintenance" in stored["last_error"]
    assert stored["finished_at"] == clock.now()
    assert stored["attempts"] == route.call_count
    assert route.call_count > 48 * 2  # it kept trying throughout (at most 15 minutes apart)

    calls = route.call_count
    clock.advance(hours=24)
    assert await runtime.bus.send_next_outbound("oms") == 0
    assert route.call_count == calls


@pytest.mark.parametrize("settings_overrides", [{**BASE_SETTINGS, "oms_retry_window_hours": 1}])
async def test_the_retry_window_comes_from_the_settings(runtime, clock, oms, raw):
    oms.post(OMS_URL).mock(side_effect=httpx.ConnectError("refused"))
    message_id = await enqueue(runtime, clock)
    started = clock.now()

    await runtime.bus.send_next_outbound("oms")
    for _ in range(20):
        clock.advance(minutes=5)
        await runtime.bus.send_next_outbound("oms")

    stored = await row(raw, message_id)
    assert stored["status"] == "dead"
    assert stored["finished_at"] - started >= timedelta(hours=1)
    assert stored["finished_at"] - started < timedelta(hours=2)
    assert "1 h" in stored["last_error"]


# --- lanes -----------------------------------------------------------------------------------------------------------


async def test_a_retrying_head_blocks_its_own_lane_but_not_other_lanes(runtime, clock, oms, raw):
    failed_once: set[str] = set()

    def respond(request: httpx.Request) -> httpx.Response:
        document = json.loads(request.content)
        if document["params"].get("flaky") and document["id"] not in failed_once:
            failed_once.add(document["id"])
            return httpx.Response(500)
        return answer("ok")(request)

    route = oms.post(OMS_URL).mock(side_effect=respond)
    head = await enqueue(runtime, clock, params={"flaky": True})
    behind = await enqueue(runtime, clock, params={"n": 2})  # same lane (the method)
    other = await enqueue(runtime, clock, method=STOCK, params={"n": 3})

    # One claim leases both lane heads and sends them at once: the head fails, the other lane goes on.
    assert await runtime.bus.send_next_outbound("oms") == 2
    assert await runtime.bus.send_next_outbound("oms") == 0  # `behind` waits for its head

    assert (await row(raw, head))["status"] == "retrying"
    assert (await row(raw, behind))["status"] == "queued"
    assert (await row(raw, other))["status"] == "succeeded"
    behind_id = (await row(raw, behind))["external_id"]
    assert behind_id not in sent_ids(route)

    clock.advance(minutes=15)
    assert await runtime.bus.send_next_outbound("oms") == 1
    assert await runtime.bus.send_next_outbound("oms") == 1

    assert (await row(raw, head))["status"] == "succeeded"
    assert (await row(raw, behind))["status"] == "succeeded"
    head_id = (await row(raw, head))["external_id"]
    other_id = (await row(raw, other))["external_id"]
    assert sorted(sent_ids(route)[:2]) == sorted([head_id, other_id])  # concurrent: either may go first
    assert sent_ids(route)[2:] == [head_id, behind_id]


async def test_one_claim_sends_its_lane_heads_at_once_and_records_each_with_its_own_outcome(runtime, clock, oms, raw):
    arrived: list[str] = []
    all_in = asyncio.Event()

    async def respond(request: httpx.Request) -> httpx.Response:
        document = json.loads(request.content)
        arrived.append(document["id"])
        if len(arrived) == 3:
            all_in.set()
        await asyncio.wait_for(all_in.wait(), 5)  # sent one after the other, the first call would time out here
        if document["params"]["n"] == 2:
            return httpx.Response(200, json={"jsonrpc": "2.0", "id": document["id"], "error": {"code": -32602}})
        return answer("ok")(request)

    oms.post(OMS_URL).mock(side_effect=respond)
    ids = [await enqueue(runtime, clock, params={"n": n}, lane=f"lane-{n}") for n in (1, 2, 3)]

    assert await runtime.bus.send_next_outbound("oms") == 3

    assert len(arrived) == 3
    assert [(await row(raw, i))["status"] for i in ids] == ["succeeded", "failed", "succeeded"]


async def test_a_sender_claims_again_at_once_only_when_a_lane_has_more_or_its_claim_was_full(runtime, clock, oms, raw):
    oms.post(OMS_URL).mock(side_effect=answer("ok"))
    first = await enqueue(runtime, clock, params={"n": 1}, lane="order-1")
    second = await enqueue(runtime, clock, params={"n": 2}, lane="order-1")
    await enqueue(runtime, clock, params={"n": 3}, lane="order-2")

    assert await runtime.bus.outbound_step("oms") is True  # order-1 has `second` behind `first`
    assert (await row(raw, first))["status"] == "succeeded"
    assert await runtime.bus.outbound_step("oms") is False  # `second` alone in its lane, the claim not full
    assert (await row(raw, second))["status"] == "succeeded"
    assert await runtime.bus.outbound_step("oms") is False  # nothing left

    runtime.bus.senders["oms"].batch_size = 2
    for n in range(3):
        await enqueue(runtime, clock, params={"n": n}, lane=f"lane-{n}")
    assert await runtime.bus.outbound_step("oms") is True  # a full claim: there may be more
    assert await runtime.bus.outbound_step("oms") is False


async def test_a_delivery_that_raises_leaves_its_message_leased_and_the_others_recorded(runtime, clock, oms, raw):
    class BuggySender:
        batch_size = 4
        one_request = False

        async def deliver(self, messages):
            if messages[0].payload["n"] == 2:
                raise RuntimeError("a bug in the sender")
            return ["ok"]

    runtime.bus.senders["oms"] = BuggySender()
    ids = [await enqueue(runtime, clock, params={"n": n}, lane=f"lane-{n}") for n in (1, 2, 3)]

    with pytest.raises(RuntimeError, match="a bug in the sender"):
        await runtime.bus.send_next_outbound("oms")

    stored = [await row(raw, message_id) for message_id in ids]
    assert [r["status"] for r in stored] == ["succeeded", "processing", "succeeded"]
    assert stored[1]["lease_until"] is not None  # it expires, and the message is sent again with the same id


async def test_the_params_go_on_the_wire_as_stored_numbers_included(runtime, clock, oms, raw):
    route = oms.post(OMS_URL).mock(side_effect=answer("ok"))
    message_id = await enqueue(runtime, clock, params={"n": 1})
    # Money as the database keeps it: 12.50 with its scale, 0.1 exact (a float round trip would print 12.5).
    await raw.execute(
        'UPDATE message SET payload = \'{"total": 12.50, "tax": 0.1, "qty": 3}\'::jsonb WHERE id = $1', message_id
    )

    assert await runtime.bus.send_next_outbound("oms") == 1

    body = route.calls.last.request.content.decode()
    assert '"params":{"qty": 3, "tax": 0.1, "total": 12.50}' in body
    assert json.loads(body)["id"] == (await row(raw, message_id))["external_id"]


async def test_an_explicit_lane_orders_messages_of_different_methods(runtime, clock, oms, raw):
    route = oms.post(OMS_URL).mock(side_effect=[httpx.Response(500), answer("ok"), answer("ok")])
    first = await enqueue(runtime, clock, method=CREATE, lane="order-42")
    second = await enqueue(runtime, clock, method=PRODUCT, lane="order-42")

    await runtime.bus.send_next_outbound("oms")
    assert await runtime.bus.send_next_outbound("oms") == 0
    assert (await row(raw, second))["status"] == "queued"

    clock.advance(minutes=15)
    await runtime.bus.send_next_outbound("oms")
    await runtime.bus.send_next_outbound("oms")
    assert (await row(raw, first))["status"] == "succeeded"
    assert (await row(raw, second))["status"] == "succeeded"
    assert [json.loads(c.request.content)["method"] for c in route.calls] == [CREATE, CREATE, PRODUCT]


# --- leases ------------------------------------------------------------------------------------------------------


async def test_an_expired_lease_is_reclaimed_and_resent_with_the_same_id(runtime, clock, oms, raw):
    route = oms.post(OMS_URL).mock(side_effect=answer("ok"))
    message_id = await enqueue(runtime, clock)

    [claimed] = await runtime.bus.claim_outbound("oms", limit=1)  # a sender that dies before recording
    assert claimed.id == message_id
    assert (await row(raw, message_id))["status"] == "processing"

    assert await runtime.bus.send_next_outbound("oms") == 0  # the lease is still held
    clock.advance(seconds=runtime.bus.lease_s - 1)
    assert await runtime.bus.send_next_outbound("oms") == 0

    clock.advance(seconds=2)
    assert await runtime.bus.send_next_outbound("oms") == 1

    stored = await row(raw, message_id)
    assert stored["status"] == "succeeded"
    assert stored["attempts"] == 2
    assert sent_ids(route) == [claimed.external_id]
    assert claimed.external_id == stored["external_id"]


async def test_a_sender_whose_lease_was_taken_over_cannot_overwrite_the_new_owner(runtime, clock, oms, raw):
    message_id = await enqueue(runtime, clock)
    [stale] = await runtime.bus.claim_outbound("oms", limit=1)
    clock.advance(seconds=runtime.bus.lease_s + 1)
    [owner] = await runtime.bus.claim_outbound("oms", limit=1)
    assert owner.id == stale.id == message_id
    assert owner.lease_until != stale.lease_until

    await runtime.bus.record_outbound([stale], [PeerRejected("late answer")], [5])

    stored = await row(raw, message_id)
    assert stored["status"] == "processing"
    assert stored["lease_until"] == owner.lease_until
    assert stored["last_error"] is None

    await runtime.bus.record_outbound([owner], [{"order": "ok"}], [5])
    await runtime.bus.record_outbound([stale], [PeerRejected("even later")], [5])

    stored = await row(raw, message_id)
    assert stored["status"] == "succeeded"
    assert json.loads(stored["result"]) == {"result": {"order": "ok"}}
    assert stored["last_error"] is None


# --- the integration switch ---------------------------------------------------------------------------------


async def test_a_disabled_integration_sends_nothing_and_keeps_the_message_queued(runtime, clock, oms, raw):
    route = oms.post(OMS_URL).mock(side_effect=answer("ok"))
    message_id = await enqueue(runtime, clock)

    await runtime.switch.set_enabled(False)
    assert await runtime.bus.send_next_outbound("oms") == 0
    clock.advance(hours=72)  # held messages do not age out while disabled
    assert await runtime.bus.send_next_outbound("oms") == 0

    assert route.call_count == 0
    stored = await row(raw, message_id)
    assert stored["status"] == "queued"
    assert stored["attempts"] == 0

    await runtime.switch.set_enabled(True)
    assert await runtime.bus.send_next_outbound("oms") == 1
    assert (await row(raw, message_id))["status"] == "succeeded"
    assert route.call_count == 1


# --- rpc-batch mode ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("settings_overrides", [{**BASE_SETTINGS, "oms_send_mode": "rpc-batch"}])
async def test_batch_mode_sends_the_lane_heads_in_one_post_with_per_item_outcomes(runtime, clock, oms, raw):
    ids: dict[str, str] = {}

    def respond(request: httpx.Request) -> httpx.Response:
        calls = json.loads(request.content)
        assert isinstance(calls, list)
        by_method = {call["method"]: call["id"] for call in calls}
        items = []
        if CREATE in by_method:
            items.append({"jsonrpc": "2.0", "id": by_method[CREATE], "result": {"created": True}, "error": ""})
        if STOCK in by_method:
            items.append({"jsonrpc": "2.0", "id": by_method[STOCK], "result": None, "error": "Unknown source"})
        # PRODUCT left out of the answer: it is retried later with the same id
        ids.update(by_method)
        return httpx.Response(200, json=items)

    route = oms.post(OMS_URL).mock(side_effect=respond)
    create = await enqueue(runtime, clock, method=CREATE, params={"n": 1})
    create_next = await enqueue(runtime, clock, method=CREATE, params={"n": 2})
    stock = await enqueue(runtime, clock, method=STOCK, params={"n": 3})
    product = await enqueue(runtime, clock, method=PRODUCT, params={"n": 4})

    assert await runtime.bus.send_next_outbound("oms") == 3

    assert route.call_count == 1
    batch = json.loads(route.calls.last.request.content)
    assert [call["method"] for call in batch] == [CREATE, STOCK, PRODUCT]  # lane heads only, in id order
    assert all(call["jsonrpc"] == "2.0" for call in batch)
    assert [call["params"] for call in batch] == [{"n": 1}, {"n": 3}, {"n": 4}]
    assert [call["id"] for call in batch] == [
        (await row(raw, message_id))["external_id"] for message_id in (create, stock, product)
    ]

    assert (await row(raw, create))["status"] == "succeeded"
    assert json.loads((await row(raw, create))["result"]) == {"result": {"created": True}}
    assert (await row(raw, stock))["status"] == "failed"
    assert "Unknown source" in (await row(raw, stock))["last_error"]
    assert (await row(raw, product))["status"] == "retrying"
    assert (await row(raw, create_next))["status"] == "queued"

    clock.advance(minutes=15)
    assert await runtime.bus.send_next_outbound("oms") == 2
    second = json.loads(route.calls.last.request.content)
    assert [call["method"] for call in second] == [CREATE, PRODUCT]
    assert second[1]["id"] == (await row(raw, product))["external_id"]  # the same id again


@pytest.mark.parametrize("settings_overrides", [{**BASE_SETTINGS, "oms_send_mode": "rpc-batch"}])
async def test_batch_mode_a_failed_exchange_retries_every_item(runtime, clock, oms, raw):
    oms.post(OMS_URL).mock(return_value=httpx.Response(502, text="bad gateway"))
    first = await enqueue(runtime, clock, method=CREATE)
    second = await enqueue(runtime, clock, method=STOCK)

    assert await runtime.bus.send_next_outbound("oms") == 2

    for message_id in (first, second):
        stored = await row(raw, message_id)
        assert stored["status"] == "retrying"
        assert "HTTP 502" in stored["last_error"]
