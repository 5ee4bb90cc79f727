"""A batch of stock messages applied in one statement (the stock handler's batch handler, used by the bus for a
lane's consecutive messages) leaves the same stock, and gives each message the same summary, as the same messages
applied one by one in arrival order — whatever their timestamps (ties included) and whatever stock was there."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.protocol.stock import STOCK_UPDATED
from app.runtime import Runtime
from app.workers.handlers import stock as stock_handler
from app.workers.registry import HandlerContext, InboundMessage

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SKUS = ["A", "B", "C", "D"]

message_strategy = st.tuples(
    st.integers(min_value=0, max_value=4),  # created_on = T0 + n minutes: few values, so ties are common
    st.dictionaries(
        st.sampled_from(SKUS), st.tuples(st.integers(min_value=0, max_value=99), st.booleans()), max_size=4
    ),
)
before_strategy = st.dictionaries(st.sampled_from(SKUS), st.integers(min_value=0, max_value=4), max_size=4)


def payload(minutes: int, rows: dict[str, tuple[int, bool]], aggregate: str) -> dict[str, Any]:
    created_on = T0 + timedelta(minutes=minutes)
    return {
        "snapshot": {
            "aggregate_id": aggregate,
            "mode": "DELTA",
            "created_on": created_on.isoformat(),
            "stock": [{"sku": sku, "quantity": str(q), "unlimited": u} for sku, (q, u) in rows.items()],
        }
    }


async def stored(raw: asyncpg.Connection, aggregate: str, messages: list[tuple[int, dict]]) -> list[InboundMessage]:
    """The messages as inbound rows (their ids are what stock rows point at), as the bus would hand them over."""
    result = []
    for index, (minutes, rows) in enumerate(messages):
        body = payload(minutes, rows, aggregate)
        message_id = await raw.fetchval(
            "INSERT INTO message (direction, channel, topic, external_id, lane, payload, status, next_attempt_at,"
            " created_at) VALUES ('in', 'oms', $1, $2, $3, $4::jsonb, 'succeeded', now(), now()) RETURNING id",
            STOCK_UPDATED,
            f"{aggregate}-{index}",
            aggregate,
            json.dumps(body),
        )
        result.append(
            InboundMessage(
                id=message_id,
                topic=STOCK_UPDATED,
                external_id=f"{aggregate}-{index}",
                lane=aggregate,
                channel="oms",
                payload=body,
                attempts=0,
                received_at=T0,
            )
        )
    return result


async def stock_of(raw: asyncpg.Connection, aggregate: str, ids: list[int]) -> dict[str, tuple]:
    """Each SKU's stock, with the index (in arrival order) of the message that set it instead of its id."""
    rows = await raw.fetch(
        "SELECT sku, quantity, unlimited, source_ts, message_id FROM stock WHERE aggregate_id = $1", aggregate
    )
    return {
        r["sku"]: (
            r["quantity"],
            r["unlimited"],
            r["source_ts"],
            ids.index(r["message_id"]) if r["message_id"] in ids else None,
        )
        for r in rows
    }


def without_aggregate(summary: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in summary.items() if key != "aggregate_id"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(message_strategy, min_size=1, max_size=8), before=before_strategy)
async def test_a_batch_of_stock_messages_leaves_what_applying_them_one_by_one_in_arrival_order_leaves(
    runtime: Runtime, raw: asyncpg.Connection, messages: list[tuple[int, dict]], before: dict[str, int]
):
    suffix = await raw.fetchval("SELECT nextval('message_id_seq')")  # fresh aggregates for every example
    one_by_one, batched = f"seq-{suffix}", f"batch-{suffix}"
    for aggregate in (one_by_one, batched):  # the same stock before, set by a message of its own
        [earlier] = await stored(raw, f"{aggregate}-before", [(0, {})])
        for sku, minutes in before.items():
            await raw.execute(
                "INSERT INTO stock (sku, aggregate_id, quantity, unlimited, source_ts, message_id, updated_at)"
                " VALUES ($1, $2, 7, false, $3, $4, now())",
                sku,
                aggregate,
                T0 + timedelta(minutes=minutes),
                earlier.id,
            )
    sequential = await stored(raw, one_by_one, messages)
    together = await stored(raw, batched, messages)

    summaries_one_by_one = []
    for message in sequential:
        async with runtime.db.connect() as connection:
            context = HandlerContext(
                connection=connection, outbox=runtime.bus.outbox, settings=runtime.settings, now=T0
            )
            summaries_one_by_one.append(await stock_handler.handle(context, message))
    async with runtime.db.connect() as connection:
        context = HandlerContext(connection=connection, outbox=runtime.bus.outbox, settings=runtime.settings, now=T0)
        summaries_batched = await stock_handler.handle_batch(context, together)

    assert summaries_batched is not None
    assert [without_aggregate(s) for s in summaries_batched] == [without_aggregate(s) for s in summaries_one_by_one]
    assert await stock_of(raw, batched, [m.id for m in together]) == await stock_of(
        raw, one_by_one, [m.id for m in sequential]
    )


async def test_a_batch_with_a_message_that_does_not_parse_is_left_to_the_one_by_one_handler(
    runtime: Runtime, raw: asyncpg.Connection
):
    good, bad = await stored(raw, "parse-check", [(1, {"A": (1, False)}), (2, {"B": (2, False)})])
    bad = InboundMessage(**{**bad.__dict__, "payload": {"snapshot": {"aggregate_id": "parse-check", "stock": 5}}})
    async with runtime.db.connect() as connection:
        context = HandlerContext(connection=connection, outbox=runtime.bus.outbox, settings=runtime.settings, now=T0)
        assert await stock_handler.handle_batch(context, [good, bad]) is None
    assert await raw.fetchval("SELECT count(*) FROM stock WHERE aggregate_id = 'parse-check'") == 0  # nothing written
