"""Journal retention (issue #16, item 4): finished messages older than OMS_JOURNAL_RETENTION_DAYS are deleted in
batches, pending ones never, nothing the processing-time report has not counted, nothing an order's state is read
from; once a day by the workers (one replica), on demand by `POST /journal/prune`."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest
from pydantic import ValidationError

from app.clock import FrozenClock
from app.db import Database, DatabaseUrl
from app.runtime import Runtime
from app.services.journal_prune import PRUNE_TOPIC, JournalPrune
from tests.conftest import make_settings
from tests.support.orders import commerce_order, order_body
from tests.support.signing import COMMERCE_TOKEN, operator_headers

TOPIC = "magento.sales.order_management.updated"
FINISHED = ("succeeded", "failed", "dead", "discarded", "rejected")
PENDING = ("queued", "waiting", "processing", "retrying")
AUTH = operator_headers()


async def stored(
    raw: asyncpg.Connection,
    now: datetime,
    *,
    status: str = "succeeded",
    age_days: float = 40,
    finished_days: float | None = None,
    direction: str = "in",
    channel: str = "oms",
    lane: str = TOPIC,
) -> int:
    """A message created ``age_days`` before ``now`` and, if finished, finished ``finished_days`` before it (by
    default a second after it was created)."""
    created = now - timedelta(days=age_days)
    finished = None
    if status in FINISHED:
        finished = now - timedelta(days=finished_days) if finished_days is not None else created + timedelta(seconds=1)
    return await raw.fetchval(
        """
        INSERT INTO message (direction, channel, topic, external_id, lane, payload, status, next_attempt_at,
                             created_at, finished_at)
        VALUES ($1::message_direction, $2, $3, $4, $5, '{"x": 1}', $6::message_status, $7, $7, $8)
        RETURNING id
        """,
        direction, channel, TOPIC, uuid.uuid4().hex, lane, status, created, finished,
    )  # fmt: skip


async def report_counted(raw: asyncpg.Connection, until: datetime) -> None:
    """The processing-time report has counted every message finished before ``until`` (its rollup's state)."""
    await raw.execute("UPDATE message_stat_state SET counted_until = $1 WHERE id = 1", until)


async def ids(raw: asyncpg.Connection) -> set[int]:
    return {row["id"] for row in await raw.fetch("SELECT id FROM message WHERE topic <> $1", PRUNE_TOPIC)}


async def test_only_finished_messages_older_than_the_retention_are_pruned(runtime: Runtime, raw, clock):
    now = clock.now()
    old = {status: await stored(raw, now, status=status, age_days=31) for status in FINISHED}
    young = {status: await stored(raw, now, status=status, age_days=29) for status in FINISHED}
    # created long ago but finished within the retention (retried for weeks): not old enough
    late = await stored(raw, now, status="succeeded", age_days=40, finished_days=10)
    await report_counted(raw, now)

    result = await runtime.journal_prune.prune()

    assert await ids(raw) == {*young.values(), late}
    assert set(old.values()) & await ids(raw) == set()
    assert (result.deleted, result.examined, result.kept_recent, result.older_than_days) == (5, 6, 1, 30)


async def test_pending_messages_are_never_pruned_whatever_their_age(runtime: Runtime, raw, clock):
    pending = {await stored(raw, clock.now(), status=status, age_days=4000, direction="out") for status in PENDING}
    gone = await stored(raw, clock.now(), status="failed", age_days=4000)
    await report_counted(raw, clock.now())

    result = await runtime.journal_prune.prune(3)

    assert await ids(raw) == pending
    assert gone not in await ids(raw)
    assert (result.deleted, result.kept_pending) == (1, 4)


async def test_a_finished_message_the_report_has_not_counted_yet_is_kept(runtime: Runtime, raw, clock):
    now = clock.now()
    counted = await stored(raw, now, age_days=40)  # finished 40 days ago: counted
    uncounted = await stored(raw, now, age_days=40, finished_days=33)  # old enough, but after the report's bound
    await report_counted(raw, now - timedelta(days=35))

    result = await runtime.journal_prune.prune()

    assert await ids(raw) == {uncounted}
    assert counted not in await ids(raw)
    assert (result.counted_until, result.finished_before) == (now - timedelta(days=35), now - timedelta(days=35))
    assert result.kept_recent == 1


async def test_nothing_finished_is_pruned_while_the_report_has_counted_nothing(runtime: Runtime, raw, clock):
    old = {await stored(raw, clock.now(), age_days=400) for _ in range(3)}  # the report's state is fresh

    result = await runtime.journal_prune.prune()

    assert await ids(raw) == old
    assert (result.deleted, result.finished_before, result.counted_until) == (0, None, None)


async def test_the_bound_can_be_given_to_the_prune(database_url, raw, clock):
    kept = await stored(raw, clock.now(), age_days=40, finished_days=39)
    gone = await stored(raw, clock.now(), age_days=40)

    async def counted_until(_connection: Any) -> datetime:
        return clock.now() - timedelta(days=39, hours=12)

    pruning = JournalPrune(Database(database_url), clock, make_settings(database_url), counted_until=counted_until)
    try:
        await pruning.prune()
    finally:
        await pruning.db.dispose()
    assert await ids(raw) == {kept}
    assert gone not in await ids(raw)


async def test_the_prune_reads_each_old_message_once_in_batches_of_its_size(database_url, raw, clock):
    now = clock.now()
    kept = set()
    for n in range(30):  # every third one pending, spread over the index
        status = "retrying" if n % 3 == 0 else "succeeded"
        message_id = await stored(raw, now, status=status, age_days=60 - n * 0.5)
        if status == "retrying":
            kept.add(message_id)
    recent = await stored(raw, now, age_days=1)
    await report_counted(raw, now)

    pruning = JournalPrune(Database(database_url), clock, make_settings(database_url), batch_size=7)
    try:
        result = await pruning.prune()
    finally:
        await pruning.db.dispose()

    assert await ids(raw) == {*kept, recent}
    # 30 old messages, 7 a batch: 5 batches, each message read once (the keyset moves past the kept ones)
    assert (result.batches, result.examined, result.deleted, result.kept_pending) == (5, 30, 20, 10)


async def test_messages_sharing_one_creation_time_are_all_pruned_across_batches(database_url, raw, clock):
    at = clock.now() - timedelta(days=50)
    await raw.execute(
        """
        INSERT INTO message (direction, channel, topic, external_id, lane, payload, status, next_attempt_at,
                             created_at, finished_at)
        SELECT 'in', 'oms', $1, 'same-' || n, $1, '{}', 'succeeded', $2, $2, $2 FROM generate_series(1, 23) AS n
        """,
        TOPIC,
        at,
    )  # one group commit stamps all its rows with one time
    await report_counted(raw, clock.now())
    pruning = JournalPrune(Database(database_url), clock, make_settings(database_url), batch_size=5)
    try:
        result = await pruning.prune()
    finally:
        await pruning.db.dispose()
    assert await ids(raw) == set()
    assert (result.deleted, result.batches) == (23, 5)


async def test_a_dry_run_counts_what_would_be_pruned_and_deletes_nothing(runtime: Runtime, raw, clock):
    everything = {await stored(raw, clock.now(), age_days=40) for _ in range(4)}
    everything.add(await stored(raw, clock.now(), status="queued", age_days=40))
    await report_counted(raw, clock.now())

    result = await runtime.journal_prune.prune(dry_run=True)

    assert (result.deleted, result.kept_pending, result.dry_run, result.journal_id) == (4, 1, True, None)
    assert await ids(raw) == everything
    assert await raw.fetchval("SELECT count(*) FROM message WHERE topic = $1", PRUNE_TOPIC) == 0


async def test_each_prune_is_journaled_with_what_it_did(client, runtime: Runtime, raw, clock):
    await stored(raw, clock.now(), age_days=40)
    await report_counted(raw, clock.now())
    result = await runtime.journal_prune.prune()

    response = await client.get("/journal", params={"topic": PRUNE_TOPIC}, headers=AUTH)
    [entry] = response.json()["items"]
    assert (entry["id"], entry["status"], entry["direction"]) == (result.journal_id, "succeeded", "in")
    detail = (await client.get(f"/journal/{entry['id']}", headers=AUTH)).json()
    assert detail["payload"] == {"trigger": "operator", "older_than_days": 30}
    assert detail["result"]["deleted"] == 1


# --- what an order's state is read from ----------------------------------------------------------------------
async def test_an_orders_current_create_cancel_and_return_requests_outlive_the_retention(client, runtime, raw, clock):
    await runtime.orders.accept(order_body(commerce_order(increment_id="700")))
    first = await raw.fetchval("SELECT export_message_id FROM sales_order WHERE increment_id = '700'")
    await raw.execute("UPDATE message SET status = 'failed', finished_at = $2 WHERE id = $1", first, clock.now())
    await runtime.orders.sync(None)  # a second create: the first is no longer the order's export
    current = await raw.fetchval("SELECT export_message_id FROM sales_order WHERE increment_id = '700'")
    assert current != first
    await raw.execute("UPDATE message SET status = 'succeeded', finished_at = $2 WHERE id = $1", current, clock.now())
    cancel = await runtime.order_actions.cancel("700", "customer asked")
    await raw.execute(
        "UPDATE message SET status = 'failed', finished_at = $2 WHERE id = $1", cancel.message_id, clock.now()
    )
    order_id = await raw.fetchval("SELECT id FROM sales_order WHERE increment_id = '700'")
    request = await stored(raw, clock.now(), status="dead", age_days=0, direction="out", lane="order/700")
    await raw.execute(
        """
        INSERT INTO order_return (order_id, status, lines, request_message_id, created_at, updated_at)
        VALUES ($1, 'REQUESTED', '[]', $2, now(), now())
        """,
        order_id,
        request,
    )
    other_lane_call = await stored(raw, clock.now(), status="failed", age_days=0, direction="out", lane="order/700")
    clock.advance(days=40)
    await report_counted(raw, clock.now())

    result = await runtime.journal_prune.prune()

    assert await ids(raw) == {current, cancel.message_id, request}
    assert {first, other_lane_call} & await ids(raw) == set()
    assert result.kept_for_orders == 3
    view = (await client.get("/orders/700", headers={"Authorization": f"Bearer {COMMERCE_TOKEN}"})).json()
    assert view["export_status"] == "sent"
    assert view["lifecycle"]["cancel"]["request_delivery"] == "failed"


async def test_a_delivery_whose_message_was_pruned_reads_pruned_in_the_order_view(client, runtime, raw, clock):
    await runtime.orders.accept(order_body(commerce_order(increment_id="701")))
    order_id = await raw.fetchval("SELECT id FROM sales_order WHERE increment_id = '701'")
    delivered = await stored(raw, clock.now(), age_days=40, direction="out", channel="commerce", lane="commerce/701")
    await raw.execute(
        """
        INSERT INTO order_status_change (order_id, oms_status, message_id, commerce_message_id, recorded_at)
        VALUES ($1, 'RECEIVED', 1, $2, now()), ($1, 'ONHOLD', 2, NULL, now())
        """,
        order_id,
        delivered,
    )
    await report_counted(raw, clock.now())
    await runtime.journal_prune.prune()

    view = (await client.get("/orders/701", headers={"Authorization": f"Bearer {COMMERCE_TOKEN}"})).json()
    history = view["lifecycle"]["history"]
    assert [(change["commerce_message_id"], change["delivery"]) for change in history] == [
        (delivered, "pruned"),
        (None, "recorded_only"),
    ]


# --- the daily prune ---------------------------------------------------------------------------------------------
async def daily_runs(raw: asyncpg.Connection) -> int:
    """Daily runs that deleted something (each is journaled)."""
    return await raw.fetchval(
        "SELECT count(*) FROM message WHERE topic = $1 AND payload->>'trigger' = 'daily'", PRUNE_TOPIC
    )


async def last_daily_prune(raw: asyncpg.Connection):
    return await raw.fetchval("SELECT daily_prune_at FROM integration_state WHERE id = 1")


async def test_the_daily_prune_runs_once_a_day_across_two_replicas(database_url: DatabaseUrl, raw, clock):
    settings = make_settings(database_url)
    replicas = [JournalPrune(Database(database_url), clock, settings) for _ in range(2)]
    try:
        await stored(raw, clock.now(), age_days=40)
        await report_counted(raw, clock.now())
        first = await asyncio.gather(*(replica.prune_if_due() for replica in replicas))
        assert [result is not None for result in first].count(True) == 1
        assert [result.deleted for result in first if result] == [1]

        await stored(raw, clock.now(), age_days=40)
        clock.advance(hours=23)
        assert await asyncio.gather(*(replica.prune_if_due() for replica in replicas)) == [None, None]
        assert await raw.fetchval("SELECT count(*) FROM message WHERE topic <> $1", PRUNE_TOPIC) == 1

        clock.advance(hours=1, seconds=1)
        again = await asyncio.gather(*(replica.prune_if_due() for replica in replicas))
        assert [result is not None for result in again].count(True) == 1
        assert await daily_runs(raw) == 2
        assert await raw.fetchval("SELECT count(*) FROM message WHERE topic <> $1", PRUNE_TOPIC) == 0
    finally:
        for replica in replicas:
            await replica.db.dispose()


async def test_an_operators_prune_does_not_count_as_the_days_prune(runtime: Runtime, raw, clock):
    await report_counted(raw, clock.now())
    await runtime.journal_prune.prune(90)
    assert await last_daily_prune(raw) is None
    assert (await runtime.journal_prune.prune_if_due()) is not None
    assert await last_daily_prune(raw) == clock.now()


async def test_a_prune_that_deletes_nothing_leaves_the_journal_alone_and_the_day_is_still_done(runtime, raw, clock):
    await stored(raw, clock.now(), age_days=1)  # finished, but not old enough
    await report_counted(raw, clock.now())
    daily = await runtime.journal_prune.prune_if_due()
    assert daily is not None and daily.deleted == 0 and daily.journal_id is None
    assert (await runtime.journal_prune.prune()).journal_id is None
    assert await raw.fetchval("SELECT count(*) FROM message") == 1  # no entry of its own either
    clock.advance(hours=23)
    assert await runtime.journal_prune.prune_if_due() is None  # remembered without a journal entry


async def test_a_replica_that_holds_the_prune_lock_keeps_the_others_out(database_url, raw, clock):
    from app.services.journal_prune import PRUNE_LOCK_KEY

    holder = await asyncpg.connect(database_url.libpq)
    pruning = JournalPrune(Database(database_url), clock, make_settings(database_url))
    try:
        assert await holder.fetchval("SELECT pg_try_advisory_lock($1)", PRUNE_LOCK_KEY)
        assert await pruning.prune_if_due() is None
        await holder.close()
        assert await pruning.prune_if_due() is not None
    finally:
        await pruning.db.dispose()


async def test_a_process_with_workers_prunes_by_itself_at_start(database_url: DatabaseUrl, raw):
    clock = FrozenClock()
    old = await stored(raw, clock.now(), age_days=40)
    await report_counted(raw, clock.now())
    runtime = Runtime.build(make_settings(database_url), url=database_url, clock=clock)
    await runtime.start(workers=True, register=False)
    try:
        for _ in range(100):
            if await last_daily_prune(raw) is not None:
                break
            await asyncio.sleep(0.05)
    finally:
        await runtime.stop()
    assert await last_daily_prune(raw) == clock.now()
    assert await daily_runs(raw) == 1
    assert old not in await ids(raw)


# --- autovacuum of `message` held while a prune runs ------------------------------------------------------------
async def autovacuum_stopped(connection: Any) -> bool:
    """Whether autovacuum of `message` is off (its storage parameter), on an asyncpg or SQLAlchemy connection."""
    sql = "SELECT coalesce('autovacuum_enabled=false' = ANY(reloptions), false) FROM pg_class WHERE relname = 'message'"
    if isinstance(connection, asyncpg.Connection):
        return await connection.fetchval(sql)
    from sqlalchemy import text

    return (await connection.execute(text(sql))).scalar_one()


@pytest.fixture
async def autovacuum_restored(raw) -> Any:
    """Whatever a test does, autovacuum of `message` is on again after it."""
    yield
    await raw.execute("ALTER TABLE message RESET (autovacuum_enabled)")


async def test_a_prune_holds_autovacuum_of_the_message_table_while_it_deletes_and_gives_it_back_after(
    database_url, raw, clock, autovacuum_restored
):
    old = await stored(raw, clock.now(), age_days=40)
    seen_while_pruning: list[bool] = []

    async def counted_until(connection: Any) -> datetime:  # runs inside the prune, before its first batch
        seen_while_pruning.append(await autovacuum_stopped(connection))
        return clock.now()

    pruning = JournalPrune(Database(database_url), clock, make_settings(database_url), counted_until=counted_until)
    try:
        assert not await autovacuum_stopped(raw)
        result = await pruning.prune()
    finally:
        await pruning.db.dispose()
    assert seen_while_pruning == [True]
    assert result.deleted == 1 and old not in await ids(raw)
    assert not await autovacuum_stopped(raw)


async def test_a_dry_run_leaves_autovacuum_alone(database_url, raw, clock, autovacuum_restored):
    seen: list[bool] = []

    async def counted_until(connection: Any) -> datetime:
        seen.append(await autovacuum_stopped(connection))
        return clock.now()

    pruning = JournalPrune(Database(database_url), clock, make_settings(database_url), counted_until=counted_until)
    try:
        await pruning.prune(dry_run=True)
    finally:
        await pruning.db.dispose()
    assert seen == [False]


async def test_overlapping_prunes_give_autovacuum_back_only_when_the_last_one_ends(
    database_url, raw, clock, autovacuum_restored
):
    first_inside, release_first = asyncio.Event(), asyncio.Event()
    seen_by_second: list[bool] = []

    async def first_counted(_connection: Any) -> datetime:
        first_inside.set()
        await release_first.wait()  # the first prune stays inside its run until the second one has ended
        return clock.now()

    async def second_counted(_connection: Any) -> datetime:
        return clock.now()

    settings = make_settings(database_url)
    first = JournalPrune(Database(database_url), clock, settings, counted_until=first_counted)
    second = JournalPrune(Database(database_url), clock, settings, counted_until=second_counted)
    try:
        running = asyncio.create_task(first.prune())
        await first_inside.wait()
        await second.prune()
        seen_by_second.append(await autovacuum_stopped(raw))  # the first is still running: still held
        release_first.set()
        await running
    finally:
        await first.db.dispose()
        await second.db.dispose()
    assert seen_by_second == [True]
    assert not await autovacuum_stopped(raw)


async def test_autovacuum_left_off_by_a_prune_that_died_is_resumed_once_no_prune_runs(
    database_url, raw, clock, autovacuum_restored
):
    from app.services.journal_prune import HOLD_KEY

    await raw.execute("ALTER TABLE message SET (autovacuum_enabled = false)")  # what a killed prune leaves behind
    running_prune = await asyncpg.connect(database_url.libpq)
    pruning = JournalPrune(Database(database_url), clock, make_settings(database_url))
    try:
        await running_prune.execute("SELECT pg_advisory_lock_shared($1)", HOLD_KEY)  # another prune is running
        assert await pruning.resume_autovacuum() is False
        assert await autovacuum_stopped(raw)
        await running_prune.close()  # it ends (or dies: its session's lock goes either way)
        assert await pruning.resume_autovacuum() is True
        assert not await autovacuum_stopped(raw)
        assert await pruning.resume_autovacuum() is False  # nothing left to resume
    finally:
        await pruning.db.dispose()


async def test_a_prune_that_cannot_hold_autovacuum_still_prunes(database_url, raw, clock, autovacuum_restored):
    old = await stored(raw, clock.now(), age_days=40)
    await report_counted(raw, clock.now())
    blocker = await asyncpg.connect(database_url.libpq)
    pruning = JournalPrune(Database(database_url), clock, make_settings(database_url))
    try:
        # a transaction holding what a manual VACUUM holds (SHARE UPDATE EXCLUSIVE): the prune's ALTER waits 5 s
        await blocker.execute("BEGIN; LOCK TABLE message IN SHARE UPDATE EXCLUSIVE MODE")
        result = await pruning.prune()
    finally:
        await blocker.close()
        await pruning.db.dispose()
    assert result.deleted == 1 and old not in await ids(raw)
    assert not await autovacuum_stopped(raw)


# --- settings and HTTP ---------------------------------------------------------------------------------------
def test_a_retention_below_three_days_is_refused_naming_the_variable():
    with pytest.raises(ValidationError) as refused:
        make_settings(oms_journal_retention_days=2)
    assert "at least 3" in str(refused.value)
    assert make_settings(oms_journal_retention_days=3).oms_journal_retention_days == 3
    assert make_settings().oms_journal_retention_days == 30


async def test_post_journal_prune_needs_the_operator_token(client, raw, clock):
    gone = await stored(raw, clock.now(), age_days=40)
    await report_counted(raw, clock.now())
    for headers in ({}, {"Authorization": f"Bearer {COMMERCE_TOKEN}"}):
        response = await client.post("/journal/prune", json={}, headers=headers)
        assert response.status_code == 401, response.text
    assert gone in await ids(raw)

    response = await client.post("/journal/prune", json={"dry_run": True}, headers=AUTH)
    assert response.status_code == 200, response.text
    assert (response.json()["deleted"], response.json()["dry_run"]) == (1, True)
    assert gone in await ids(raw)

    response = await client.post("/journal/prune", json={"older_than_days": 35}, headers=AUTH)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["deleted"], answer["older_than_days"], answer["trigger"]) == (1, 35, "operator")
    assert gone not in await ids(raw)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"older_than_days": 2}, "older_than_days"),
        ({"older_than_days": -1}, "older_than_days"),
        ({"older_than_days": "30d"}, "older_than_days"),
        ({"olderthan": 30}, "olderthan"),
    ],
)
async def test_a_bad_prune_request_gets_422_naming_the_field_and_deletes_nothing(client, raw, clock, body, field):
    kept = await stored(raw, clock.now(), age_days=400)
    response = await client.post("/journal/prune", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == [field]
    assert kept in await ids(raw)
