"""The inbound side of the bus, driven one step at a time: lane order, exactly-once, failures, the outbox."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import timedelta
from typing import Any

import asyncpg
import httpx

from app.errors import PermanentHandlerError, TransientHandlerError
from app.workers.registry import HandlerContext, InboundMessage
from tests.support.handlers import TEST_TOPICS, record_effect
from tests.support.signing import rpc_body, signed_headers

LANE_A, LANE_B, LANE_C = TEST_TOPICS[0], TEST_TOPICS[1], TEST_TOPICS[2]
NO_HANDLER_TOPIC = "magento.inventory.aggregate_stock_management.updated"  # known method, no test handler
OUTBOUND_METHOD = "magento.sales.order_management.create"


async def post_call(client: httpx.AsyncClient, raw: asyncpg.Connection, topic: str, params: dict[str, Any]) -> int:
    """POST a signed OMS call and return the id of the inbound message it stored."""
    body = rpc_body(method=topic, params=params)
    response = await client.post("/oms/rpc", content=body, headers=signed_headers(body))
    assert response.status_code == 200, response.text
    external_id = json.loads(body)["id"]
    message_id = await raw.fetchval(
        "SELECT id FROM message WHERE direction = 'in' AND external_id = $1 AND status <> 'rejected'", external_id
    )
    assert message_id is not None
    return message_id


async def drain(runtime, limit: int = 100) -> int:
    """Process until no ready head is left; returns how many steps processed something."""
    for done in range(limit):
        if not await runtime.bus.process_next_inbound():
            return done
    raise AssertionError(f"the bus was still busy after {limit} steps")


async def effects(raw: asyncpg.Connection) -> list[int]:
    """Message ids in test_effect, in the order they were committed."""
    return [r["message_id"] for r in await raw.fetch("SELECT message_id FROM test_effect ORDER BY at, message_id")]


async def row(raw: asyncpg.Connection, message_id: int) -> asyncpg.Record:
    return await raw.fetchrow("SELECT * FROM message WHERE id = $1", message_id)


async def outbound(raw: asyncpg.Connection) -> list[asyncpg.Record]:
    return await raw.fetch("SELECT * FROM message WHERE direction = 'out' ORDER BY id")


def without_knobs(message: InboundMessage) -> InboundMessage:
    """The message as record_effect would see it without its failure knobs (so it records, then we fail)."""
    payload = {k: v for k, v in message.payload.items() if k not in ("fail", "fail_attempts")}
    return dataclasses.replace(message, payload=payload)


async def test_messages_of_one_lane_are_processed_in_arrival_order_and_each_exactly_once(client, runtime, raw):
    ids_a, ids_b = [], []
    for seq in range(5):  # two lanes interleaved, so the bus has a choice at every step
        ids_a.append(await post_call(client, raw, LANE_A, {"seq": seq}))
        ids_b.append(await post_call(client, raw, LANE_B, {"seq": seq}))

    processed: list[int] = []
    while await runtime.bus.process_next_inbound():
        processed = await effects(raw)
        # after every single step, each lane's processed messages are a prefix of its arrivals
        done_a = [i for i in processed if i in ids_a]
        done_b = [i for i in processed if i in ids_b]
        assert done_a == ids_a[: len(done_a)]
        assert done_b == ids_b[: len(done_b)]

    assert sorted(processed) == sorted(ids_a + ids_b)
    assert len(processed) == len(set(processed)) == 10
    assert await runtime.bus.process_next_inbound() is False  # nothing is processed a second time
    assert len(await effects(raw)) == 10
    statuses = await raw.fetch("SELECT status, attempts FROM message WHERE direction = 'in'")
    assert {(r["status"], r["attempts"]) for r in statuses} == {("succeeded", 1)}


async def test_different_lanes_both_progress_while_one_lane_head_is_being_processed(client, runtime, raw, registry):
    a1 = await post_call(client, raw, LANE_A, {"seq": 1})
    a2 = await post_call(client, raw, LANE_A, {"seq": 2})
    b1 = await post_call(client, raw, LANE_B, {"seq": 1})
    b2 = await post_call(client, raw, LANE_B, {"seq": 2})
    started, release = asyncio.Event(), asyncio.Event()

    async def holds_the_first(context: HandlerContext, message: InboundMessage) -> dict[str, Any]:
        if message.id == a1:  # only lane A's head is held; anything else would go straight through
            started.set()
            await release.wait()
        return await record_effect(context, message)

    registry.register(LANE_A, holds_the_first, replace=True)

    def step() -> Any:  # a hang must fail the test, not stall it
        return asyncio.wait_for(runtime.bus.process_next_inbound(), 30)

    busy = asyncio.create_task(step())  # one worker holds lane A's head
    try:
        await asyncio.wait_for(started.wait(), 30)
        # another worker: lane B moves on (its two messages, one batch), lane A's second message is not taken
        # by anyone else while its head is in progress (it is in the head's batch)
        assert await step() is True
        assert await step() is False
        assert await effects(raw) == [b1, b2]
        assert (await row(raw, a2))["status"] == "queued"
    finally:
        release.set()
        assert await busy is True

    assert await drain(runtime) == 0  # a2 went with its head
    assert await effects(raw) == [b1, b2, a1, a2]


async def test_a_message_whose_topic_has_no_handler_stays_queued_and_does_not_block_other_lanes(
    client, runtime, raw, registry
):
    waiting = await post_call(client, raw, NO_HANDLER_TOPIC, {"snapshot": {"mode": "DELTA", "stock": []}})
    a1 = await post_call(client, raw, LANE_A, {"seq": 1})
    b1 = await post_call(client, raw, LANE_B, {"seq": 1})

    assert await drain(runtime) == 2
    assert await effects(raw) == [a1, b1]
    unhandled = await row(raw, waiting)
    assert unhandled["status"] == "queued"
    assert unhandled["attempts"] == 0
    assert unhandled["last_error"] is None

    registry.register(NO_HANDLER_TOPIC, record_effect)  # a release that adds the handler picks it up
    assert await drain(runtime) == 1
    assert await effects(raw) == [a1, b1, waiting]


async def test_a_permanent_failure_marks_the_message_failed_and_the_lane_moves_on(client, runtime, raw):
    bad = await post_call(client, raw, LANE_A, {"fail": "permanent"})
    good = await post_call(client, raw, LANE_A, {"seq": 2})

    assert await runtime.bus.process_next_inbound() is True
    failed = await row(raw, bad)
    assert failed["status"] == "failed"
    assert failed["attempts"] == 1
    assert "asked to fail permanently" in failed["last_error"]
    assert failed["finished_at"] is not None
    assert await effects(raw) == []

    assert await runtime.bus.process_next_inbound() is True
    assert (await row(raw, good))["status"] == "succeeded"
    assert await effects(raw) == [good]
    assert await runtime.bus.process_next_inbound() is False
    assert (await row(raw, bad))["status"] == "failed"  # not tried again


async def test_a_transient_failure_retries_later_and_blocks_only_its_own_lane(client, runtime, raw, clock):
    flaky = await post_call(client, raw, LANE_A, {"fail_attempts": 2})
    behind = await post_call(client, raw, LANE_A, {"seq": 2})
    other = await post_call(client, raw, LANE_B, {"seq": 1})

    before = clock.now()
    assert await runtime.bus.process_next_inbound() is True
    waiting = await row(raw, flaky)
    assert waiting["status"] == "retrying"
    assert waiting["attempts"] == 1
    assert waiting["last_error"] == "TransientHandlerError: asked to fail 2 times"
    assert waiting["next_attempt_at"] > before
    assert waiting["finished_at"] is None

    # the other lane still progresses; the blocked lane's next message is not taken
    assert await runtime.bus.process_next_inbound() is True
    assert await effects(raw) == [other]
    assert await runtime.bus.process_next_inbound() is False
    assert (await row(raw, behind))["status"] == "queued"

    # one microsecond before next_attempt_at: still waiting
    gap = waiting["next_attempt_at"] - clock.now()
    clock.advance(microseconds=gap // timedelta(microseconds=1) - 1)
    assert await runtime.bus.process_next_inbound() is False
    assert (await row(raw, behind))["status"] == "queued"

    # at next_attempt_at: tried again, fails a second time, still blocks
    clock.advance(microseconds=1)
    assert await runtime.bus.process_next_inbound() is True
    again = await row(raw, flaky)
    assert (again["status"], again["attempts"]) == ("retrying", 2)
    assert again["next_attempt_at"] > clock.now()
    assert await runtime.bus.process_next_inbound() is False
    assert await effects(raw) == [other]

    clock.advance(seconds=301)  # past any inbound backoff (at most 300 s)
    assert await runtime.bus.process_next_inbound() is True  # the head and the message behind it, one batch
    done = await row(raw, flaky)
    assert (done["status"], done["attempts"]) == ("succeeded", 3)
    assert (await row(raw, behind))["status"] == "succeeded"
    assert await runtime.bus.process_next_inbound() is False
    assert await effects(raw) == [other, flaky, behind]


async def test_a_handler_effect_is_rolled_back_with_a_transient_or_permanent_failure(
    client, runtime, raw, registry, clock
):
    async def record_then_fail(context: HandlerContext, message: InboundMessage) -> dict[str, Any]:
        await record_effect(context, without_knobs(message))  # the effect is written…
        if message.payload.get("fail") == "permanent":
            raise PermanentHandlerError("refused after writing")
        if message.attempts < int(message.payload.get("fail_attempts", 0)):
            raise TransientHandlerError("failed after writing")  # …then the handler fails
        return {"recorded": True}

    registry.register(LANE_A, record_then_fail, replace=True)
    registry.register(LANE_B, record_then_fail, replace=True)
    transient = await post_call(client, raw, LANE_A, {"fail_attempts": 1})
    permanent = await post_call(client, raw, LANE_B, {"fail": "permanent"})

    assert await drain(runtime) == 2
    assert (await row(raw, transient))["status"] == "retrying"
    assert (await row(raw, permanent))["status"] == "failed"
    assert await effects(raw) == []  # neither effect survived its failure

    clock.advance(seconds=301)
    assert await drain(runtime) == 1
    assert (await row(raw, transient))["status"] == "succeeded"
    assert await effects(raw) == [transient]  # success commits the effect with the status, once


async def test_a_handler_that_enqueues_an_outbound_message_writes_it_in_the_same_transaction(client, runtime, raw):
    source = await post_call(client, raw, LANE_A, {"enqueue": OUTBOUND_METHOD})

    assert await runtime.bus.process_next_inbound() is True
    assert (await row(raw, source))["status"] == "succeeded"
    [sent] = await outbound(raw)
    assert sent["direction"] == "out"
    assert sent["status"] == "queued"
    assert sent["topic"] == sent["lane"] == OUTBOUND_METHOD
    assert sent["channel"] == "oms"
    assert json.loads(sent["payload"]) == {"from": source}
    assert sent["created_at"] == (await row(raw, source))["started_at"]


async def test_no_outbound_message_is_left_when_the_handler_that_enqueued_it_fails(client, runtime, raw, registry):
    async def enqueue_then_fail(context: HandlerContext, message: InboundMessage) -> dict[str, Any]:
        await record_effect(context, without_knobs(message))
        assert message.payload.get("enqueue")
        if message.payload.get("fail") == "permanent":
            raise PermanentHandlerError("refused after enqueueing")
        raise TransientHandlerError("failed after enqueueing")

    registry.register(LANE_A, enqueue_then_fail, replace=True)
    registry.register(LANE_B, enqueue_then_fail, replace=True)
    transient = await post_call(client, raw, LANE_A, {"enqueue": OUTBOUND_METHOD})
    permanent = await post_call(client, raw, LANE_B, {"enqueue": OUTBOUND_METHOD, "fail": "permanent"})

    assert await drain(runtime) == 2
    assert (await row(raw, transient))["status"] == "retrying"
    assert (await row(raw, permanent))["status"] == "failed"
    assert await outbound(raw) == []
    assert await effects(raw) == []


async def test_the_journal_records_when_processing_started_and_finished_and_how_long_it_took(
    client, runtime, raw, registry, clock
):
    async def takes_time(context: HandlerContext, message: InboundMessage) -> dict[str, Any]:
        clock.advance(seconds=2.5)
        return await record_effect(context, message)

    registry.register(LANE_A, takes_time, replace=True)
    message_id = await post_call(client, raw, LANE_A, {"seq": 1})
    started = clock.now()

    assert await runtime.bus.process_next_inbound() is True
    timed = await row(raw, message_id)
    assert timed["status"] == "succeeded"
    assert timed["started_at"] == started
    assert timed["first_attempt_at"] == started
    assert timed["finished_at"] == started + timedelta(seconds=2.5)
    assert isinstance(timed["duration_ms"], int)
    assert timed["duration_ms"] >= 0
    assert json.loads(timed["result"]) == {"recorded": True}
