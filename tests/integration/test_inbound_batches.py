"""Inbound batches: a lane's ready head and the ready messages behind it are applied in one transaction, each still
with its own status, result and timings, in lane order, exactly once; a failure behind the head is isolated."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg

import app.workers.bus as bus_module
from app.workers.registry import HandlerContext, InboundMessage
from tests.integration.test_inbound_workers import LANE_A, LANE_B, effects, post_call, row
from tests.support.handlers import record_effect
from tests.support.signing import OPERATOR_TOKEN


async def test_a_lanes_ready_messages_are_applied_as_one_batch_each_with_its_own_status_and_result(
    client, runtime, raw, registry, clock
):
    transactions: list[int] = []

    async def records_its_transaction(context: HandlerContext, message: InboundMessage) -> dict[str, Any]:
        transactions.append(int((await context.connection.exec_driver_sql("SELECT txid_current()")).scalar_one()))
        clock.advance(seconds=1)
        return {**await record_effect(context, message), "seq": message.payload["seq"]}

    registry.register(LANE_A, records_its_transaction, replace=True)
    lane_a = [await post_call(client, raw, LANE_A, {"seq": seq}) for seq in range(5)]
    other = await post_call(client, raw, LANE_B, {"seq": 0})

    assert await runtime.bus.process_next_inbound() is True
    assert len(set(transactions)) == 1 and len(transactions) == 5  # five handlers, one transaction
    assert await effects(raw) == lane_a
    rows = [await row(raw, message_id) for message_id in lane_a]
    assert [(r["status"], r["attempts"]) for r in rows] == [("succeeded", 1)] * 5
    assert [json.loads(r["result"])["seq"] for r in rows] == [0, 1, 2, 3, 4]  # each its own summary
    starts = [r["started_at"] for r in rows]
    assert starts == sorted(starts) and len(set(starts)) == 5  # each its own start, in lane order
    assert {r["finished_at"] for r in rows} == {clock.now()}  # all committed together
    assert (await row(raw, other))["status"] == "queued"  # another lane is another batch

    assert await runtime.bus.process_next_inbound() is True
    assert await runtime.bus.process_next_inbound() is False
    assert await effects(raw) == [*lane_a, other]


async def test_a_batch_takes_at_most_the_bus_batch_size_and_the_rest_follows_in_order(client, runtime, raw):
    runtime.bus.inbound_batch = 3
    ids = [await post_call(client, raw, LANE_A, {"seq": seq}) for seq in range(7)]

    sizes = []
    while await runtime.bus.process_next_inbound():
        sizes.append(len(await effects(raw)) - sum(sizes))
    assert sizes == [3, 3, 1]
    assert await effects(raw) == ids


async def test_a_batch_stops_before_the_payload_bound_but_always_takes_its_head(client, runtime, raw, monkeypatch):
    monkeypatch.setattr(bus_module, "INBOUND_BATCH_BYTES", 1)  # every payload is over it
    ids = [await post_call(client, raw, LANE_A, {"seq": seq}) for seq in range(3)]

    assert await runtime.bus.process_next_inbound() is True
    assert await effects(raw) == ids[:1]
    assert await runtime.bus.process_next_inbound() is True
    assert await effects(raw) == ids[:2]


async def test_a_permanent_failure_behind_the_head_applies_the_messages_before_it_once_then_fails_alone(
    client, runtime, raw
):
    first = await post_call(client, raw, LANE_A, {"seq": 1})
    second = await post_call(client, raw, LANE_A, {"seq": 2})
    bad = await post_call(client, raw, LANE_A, {"fail": "permanent"})
    after = await post_call(client, raw, LANE_A, {"seq": 4})

    assert await runtime.bus.process_next_inbound() is True
    assert await effects(raw) == [first, second]  # applied once, though their first batch was rolled back
    assert [(await row(raw, i))["status"] for i in (first, second, bad, after)] == [
        "succeeded",
        "succeeded",
        "queued",
        "queued",
    ]
    assert (await row(raw, bad))["attempts"] == 0  # a failure behind the head is no attempt of its own

    assert await runtime.bus.process_next_inbound() is True
    failed = await row(raw, bad)
    assert (failed["status"], failed["attempts"]) == ("failed", 1)
    assert "asked to fail permanently" in failed["last_error"]
    assert (await row(raw, after))["status"] == "queued"

    assert await runtime.bus.process_next_inbound() is True
    assert await effects(raw) == [first, second, after]
    assert await runtime.bus.process_next_inbound() is False


async def test_a_transient_failure_behind_the_head_blocks_the_lane_at_that_message(client, runtime, raw, clock):
    first = await post_call(client, raw, LANE_A, {"seq": 1})
    flaky = await post_call(client, raw, LANE_A, {"fail_attempts": 1})
    behind = await post_call(client, raw, LANE_A, {"seq": 3})

    assert await runtime.bus.process_next_inbound() is True  # first, alone (flaky failed behind it)
    assert await runtime.bus.process_next_inbound() is True  # flaky fails as the head
    assert (await row(raw, flaky))["status"] == "retrying"
    assert await runtime.bus.process_next_inbound() is False  # the lane waits, behind included
    assert (await row(raw, behind))["status"] == "queued"
    assert await effects(raw) == [first]

    clock.advance(seconds=301)
    assert await runtime.bus.process_next_inbound() is True  # flaky and behind, as one batch
    assert [(await row(raw, i))["status"] for i in (flaky, behind)] == ["succeeded", "succeeded"]
    assert await effects(raw) == [first, flaky, behind]


async def test_a_message_held_by_someone_else_ends_the_batch_before_it_and_keeps_lane_order(
    client, runtime, raw, database_url
):
    ids = [await post_call(client, raw, LANE_A, {"seq": seq}) for seq in range(4)]
    holder = await asyncpg.connect(database_url.libpq)
    try:
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("SELECT 1 FROM message WHERE id = $1 FOR UPDATE", ids[2])  # e.g. an operator's action
        assert await runtime.bus.process_next_inbound() is True
        assert await effects(raw) == ids[:2]  # not the third (held), nor the fourth behind it
        assert await runtime.bus.process_next_inbound() is False  # the third is the head, and it is held
        await transaction.rollback()
    finally:
        await holder.close()
    assert await runtime.bus.process_next_inbound() is True
    assert await effects(raw) == ids


async def test_an_operator_discard_of_a_message_inside_a_running_batch_waits_and_finds_it_applied(
    client, runtime, raw, registry
):
    started, release = asyncio.Event(), asyncio.Event()
    head = await post_call(client, raw, LANE_A, {"seq": 0})
    behind = await post_call(client, raw, LANE_A, {"seq": 1})

    async def holds_the_head(context: HandlerContext, message: InboundMessage) -> dict[str, Any]:
        if message.id == head:
            started.set()
            await release.wait()
        return await record_effect(context, message)

    registry.register(LANE_A, holds_the_head, replace=True)
    batch = asyncio.create_task(asyncio.wait_for(runtime.bus.process_next_inbound(), 30))
    await asyncio.wait_for(started.wait(), 30)
    discard = asyncio.create_task(
        client.post(f"/journal/{behind}/discard", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
    )
    await asyncio.sleep(0.3)
    assert not discard.done()  # it waits for the batch, which holds the message
    release.set()
    assert await batch is True
    answer = await asyncio.wait_for(discard, 30)
    assert answer.status_code == 409, answer.text  # applied meanwhile: nothing to discard
    assert (await row(raw, behind))["status"] == "succeeded"
    assert await effects(raw) == [head, behind]
