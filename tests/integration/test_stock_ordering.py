"""The timestamp filter under any arrival order and concurrent writers: the final stock of every SKU is the one
of the newest update that named it, whatever order updates arrive in and however two workers interleave them."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.protocol.stock import STOCK_UPDATED
from app.runtime import Runtime
from app.workers.handlers import stock as stock_handler
from app.workers.registry import HandlerContext, InboundMessage

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SKUS = ["A", "B", "C", "D", "E", "F"]


@dataclass(frozen=True)
class Update:
    """One stock message: a mode, a time, and (quantity, unlimited) per SKU."""

    seconds: int  # created_on = T0 + seconds; unique per update, so "the newest" is well defined
    mode: str
    rows: dict[str, tuple[int, bool]]
    in_postgres: bool  # applied by the SQL path (payload left in the database) or read in Python
    sloppy: bool  # `unlimited` as the words "true"/"false": the SQL path hands such a message to Python


rows_strategy = st.dictionaries(
    st.sampled_from(SKUS), st.tuples(st.integers(min_value=0, max_value=500), st.booleans()), min_size=1
)


@st.composite
def updates_and_arrival(draw: st.DrawFn) -> tuple[list[Update], list[int], list[bool]]:
    times = draw(st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=12, unique=True))
    updates = [
        Update(
            t,
            draw(st.sampled_from(["FULL", "DELTA", "NONZERO"])),
            draw(rows_strategy),
            draw(st.booleans()),
            draw(st.booleans()),
        )
        for t in times
    ]
    arrival = draw(st.permutations(range(len(updates))))
    linger = draw(st.lists(st.booleans(), min_size=len(updates), max_size=len(updates)))
    return updates, list(arrival), linger


def payload(update: Update, aggregate: str) -> dict[str, Any]:
    created_on = T0 + timedelta(seconds=update.seconds)
    return {
        "snapshot": {
            "aggregate_id": aggregate,
            "mode": update.mode,
            # half the peers send zoneless times, half ISO 8601 with an offset: both must compare as instants
            "created_on": created_on.strftime("%Y-%m-%d %H:%M:%S")
            if update.seconds % 2
            else created_on.astimezone(datetime.now().astimezone().tzinfo).isoformat(),
            "stock": [
                {
                    "sku": sku,
                    "quantity": str(quantity),
                    "unlimited": str(unlimited).lower() if update.sloppy else unlimited,
                }
                for sku, (quantity, unlimited) in update.rows.items()
            ],
        }
    }


async def store(raw: asyncpg.Connection, update: Update, aggregate: str, index: int) -> int:
    """The update as an inbound message row (already finished: no bus worker is running), for the SQL path."""
    return await raw.fetchval(
        "INSERT INTO message (direction, channel, topic, external_id, lane, payload, status, next_attempt_at,"
        " created_at) VALUES ('in', 'oms', $1, $2, $3, $4::jsonb, 'succeeded', now(), now()) RETURNING id",
        STOCK_UPDATED,
        f"{aggregate}-{index}",
        aggregate,
        json.dumps(payload(update, aggregate)),
    )


async def apply_with_two_workers(
    runtime: Runtime,
    raw: asyncpg.Connection,
    updates: list[Update],
    arrival: list[int],
    linger: list[bool],
    aggregate: str,
) -> None:
    """Two workers take the updates in arrival order from one queue; each applies one in its own transaction and
    may hold it open a moment (so the two transactions overlap on the same rows) before committing."""
    ids = [await store(raw, update, aggregate, index) for index, update in enumerate(updates)]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in arrival:
        queue.put_nowait(index)

    async def worker() -> None:
        while not queue.empty():
            index = queue.get_nowait()
            message = InboundMessage(
                id=ids[index],
                topic=STOCK_UPDATED,
                external_id=f"{aggregate}-{index}",
                lane=aggregate,
                channel="oms",
                payload=None if updates[index].in_postgres else payload(updates[index], aggregate),
                attempts=0,
                received_at=T0,
            )
            async with runtime.db.connect() as connection:
                context = HandlerContext(
                    connection=connection, outbox=runtime.bus.outbox, settings=runtime.settings, now=T0
                )
                await stock_handler.handle(context, message)
                if linger[index]:
                    await asyncio.sleep(0.002)

    await asyncio.gather(worker(), worker())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=updates_and_arrival())
async def test_any_arrival_order_and_two_workers_end_with_the_newest_update_of_every_sku(runtime, raw, case):
    updates, arrival, linger = case
    aggregate = f"P-{uuid.uuid4().hex[:8]}"  # each example its own aggregate: examples share the database

    await apply_with_two_workers(runtime, raw, updates, arrival, linger, aggregate)

    expected: dict[str, tuple[Decimal, bool, datetime]] = {}
    for update in sorted(updates, key=lambda u: u.seconds):
        for sku, (quantity, unlimited) in update.rows.items():
            expected[sku] = (Decimal(quantity), unlimited, T0 + timedelta(seconds=update.seconds))
    rows = await raw.fetch("SELECT sku, quantity, unlimited, source_ts FROM stock WHERE aggregate_id = $1", aggregate)
    assert {r["sku"]: (r["quantity"], r["unlimited"], r["source_ts"]) for r in rows} == expected
