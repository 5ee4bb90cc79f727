"""The processing-time report's rollup (app/workers/stats.py): exact per-minute counts from the journal, late
commits still counted, idempotent, hours merged once final, retention, and the bound it gives journal pruning."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from app.clock import FrozenClock
from app.db import DatabaseUrl
from app.runtime import Runtime
from app.services.histogram import BUCKET_BOUNDS, bucket_of
from app.services.reports import counted_until
from app.workers.registry import HandlerRegistry
from app.workers.stats import SAFETY_WINDOW, StatsRollup
from tests.conftest import make_settings

T0 = datetime(2026, 12, 8, 10, 0, tzinfo=UTC)  # a whole hour
IN_TOPIC = "magento.sales.order_management.created"
OUT_TOPIC = "magento.sales.order_management.create"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0 + timedelta(hours=1, seconds=30))


async def add_finished(raw: asyncpg.Connection, messages: list[dict[str, Any]]) -> None:
    """Finished messages as the bus leaves them: ``finished`` (when), ``duration_ms`` (processing), ``e2e_ms``
    (created_at = finished - e2e), ``status``, ``direction``, ``channel``, ``topic``."""
    await raw.executemany(
        """
        INSERT INTO message (direction, channel, topic, external_id, lane, payload, status, next_attempt_at,
                             created_at, finished_at, duration_ms)
        VALUES ($1::message_direction, $2, $3, $4, $3, '{}', $5::message_status, $6, $6, $7, $8)
        """,
        [
            (
                m.get("direction", "in"),
                m.get("channel", "oms"),
                m.get("topic", IN_TOPIC),
                f"stat-{index}-{random.random()}",
                m.get("status", "succeeded"),
                m["finished"] - timedelta(milliseconds=m.get("e2e_ms", 10.0)),
                m["finished"],
                m.get("duration_ms", 5),
            )
            for index, m in enumerate(messages)
        ],
    )


async def minute_rows(raw: asyncpg.Connection) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    rows = await raw.fetch(
        """SELECT minute, direction::text, channel, topic, outcome::text, messages, processing_count,
                  processing_sum_ms, processing_max_ms, processing_buckets, processing_counts, end_to_end_sum_ms,
                  end_to_end_max_ms, end_to_end_buckets, end_to_end_counts
             FROM message_stat_minute"""
    )
    return {tuple(row)[:5]: tuple(row)[5:] for row in rows}


def stored_e2e(message: dict[str, Any]) -> float:
    """The end-to-end time PostgreSQL computes for a message: finished_at - created_at, both to the microsecond."""
    microseconds = timedelta(milliseconds=message.get("e2e_ms", 10.0)) // timedelta(microseconds=1)
    return (microseconds / 1e6) * 1000


def expected_minutes(messages: list[dict[str, Any]]) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """What the rollup must give, computed here from the messages themselves."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for m in messages:
        minute = m["finished"].replace(second=0, microsecond=0)
        key = (minute, m.get("direction", "in"), m.get("channel", "oms"), m.get("topic", IN_TOPIC),
               m.get("status", "succeeded"))  # fmt: skip
        groups.setdefault(key, []).append(m)
    expected = {}
    for key, group in groups.items():
        processing = [m.get("duration_ms", 5) for m in group if m.get("duration_ms", 5) is not None]
        e2e = [stored_e2e(m) for m in group]
        p_hist = sorted(Counter(bucket_of(v) for v in processing).items())
        e_hist = sorted(Counter(bucket_of(v) for v in e2e).items())
        expected[key] = (
            len(group), len(processing), sum(processing), max(processing, default=None),
            [b for b, _ in p_hist], [n for _, n in p_hist], pytest.approx(sum(e2e)), pytest.approx(max(e2e)),
            [b for b, _ in e_hist], [n for _, n in e_hist],
        )  # fmt: skip
    return expected


def spread(count: int, start: datetime, minutes: int, **fields: Any) -> list[dict[str, Any]]:
    """``count`` messages finished over ``minutes`` minutes from ``start`` (a second boundary included)."""
    return [{"finished": start + timedelta(seconds=(i * 60 * minutes) // count), **fields} for i in range(count)]


async def test_the_rollup_counts_each_finished_message_in_its_minute_direction_channel_topic_and_outcome(
    runtime: Runtime, raw: asyncpg.Connection, clock: FrozenClock
) -> None:
    rng = random.Random(7)
    messages = [
        {"finished": T0 + timedelta(seconds=rng.uniform(0, 3599)), "duration_ms": rng.choice([0, 1, 3, 40, 900]),
         "e2e_ms": rng.uniform(0.2, 90_000), "status": status, "direction": direction, "channel": channel,
         "topic": IN_TOPIC if direction == "in" else OUT_TOPIC}
        for status, direction, channel in [
            ("succeeded", "in", "oms"), ("failed", "in", "oms"), ("succeeded", "out", "oms"), ("dead", "out", "oms"),
            ("succeeded", "out", "commerce"), ("discarded", "out", "oms"),
        ]
        for _ in range(rng.randint(20, 60))
    ]  # fmt: skip
    rejected = [{"finished": T0 + timedelta(minutes=7, seconds=1), "status": "rejected", "duration_ms": None}] * 3
    messages += rejected
    await add_finished(raw, messages)
    # neither pending messages nor ones outside the hour count
    await add_finished(raw, [{"finished": T0 - timedelta(days=500)}])
    await raw.execute("UPDATE message SET status = 'queued', finished_at = NULL WHERE external_id LIKE 'stat-0-%'")
    messages = messages[1:]

    steps = await runtime.stats.roll_up()

    assert steps and steps[-1].minutes_to == T0 + timedelta(hours=1)  # up to the last whole minute
    assert await minute_rows(raw) == expected_minutes(messages)
    assert await raw.fetchval("SELECT sum(messages) FROM message_stat_minute") == len(messages)


async def test_a_message_committed_after_its_minute_was_rolled_up_is_still_counted(
    runtime: Runtime, raw: asyncpg.Connection, clock: FrozenClock
) -> None:
    early = spread(10, T0 + timedelta(minutes=58), 2)
    await add_finished(raw, early)
    await runtime.stats.roll_up()  # minutes up to 11:00 are rolled up now
    # a handler stamped its finish at 10:59:40 but committed only now (a slow commit, a clock a little behind)
    late = [{"finished": T0 + timedelta(minutes=59, seconds=40), "duration_ms": 77}]
    await add_finished(raw, late)
    assert sum(row[0] for row in (await minute_rows(raw)).values()) == 10

    clock.advance(minutes=1)
    await runtime.stats.roll_up()

    assert await minute_rows(raw) == expected_minutes(early + late)


async def test_rolling_up_again_gives_the_same_rows_and_the_same_minute_is_not_redone(
    runtime: Runtime, raw: asyncpg.Connection, clock: FrozenClock
) -> None:
    messages = spread(200, T0, 60, duration_ms=12)
    await add_finished(raw, messages)
    await runtime.stats.roll_up()
    first = await minute_rows(raw)
    assert await runtime.stats.roll_up() == []  # within the same minute: nothing to do

    # the same minutes recomputed from scratch (as a step that died after its work and is run again)
    await raw.execute("UPDATE message_stat_state SET rolled_up_until = NULL, counted_until = NULL, hours_until = NULL")
    await runtime.stats.roll_up()
    assert await minute_rows(raw) == first == expected_minutes(messages)


async def test_two_processes_rolling_up_at_once_count_each_message_once(
    runtime: Runtime, raw: asyncpg.Connection, clock: FrozenClock
) -> None:
    messages = spread(300, T0, 60)
    await add_finished(raw, messages)
    other = StatsRollup(runtime.db, clock, runtime.settings)

    await asyncio.gather(runtime.stats.roll_up(), other.roll_up(), runtime.stats.roll_up())

    assert await minute_rows(raw) == expected_minutes(messages)


async def test_a_first_rollup_catches_up_in_steps_of_an_hour_from_the_oldest_finished_message(
    runtime: Runtime, raw: asyncpg.Connection, clock: FrozenClock
) -> None:
    messages = spread(500, T0 - timedelta(hours=3, minutes=20), 200)  # 06:40 … 10:00
    await add_finished(raw, messages)

    steps = await runtime.stats.roll_up()

    hour = timedelta(hours=1)
    assert [step.minutes_to for step in steps] == [T0 - 2 * hour - timedelta(minutes=20 * n) for n in (1,)] + [
        T0 - timedelta(minutes=80),
        T0 - timedelta(minutes=20),
        T0 + timedelta(minutes=40),
        T0 + hour,
    ]  # fmt: skip  (an hour past the oldest finish, then an hour at a time, up to the last whole minute: 11:00)
    assert all(step.minutes_to - step.minutes_from <= hour + SAFETY_WINDOW for step in steps[1:])
    assert await minute_rows(raw) == expected_minutes(messages)


async def test_final_hours_are_merged_from_their_minutes(
    runtime: Runtime, raw: asyncpg.Connection, clock: FrozenClock
) -> None:
    clock.advance(hours=1)  # 12:00:30: hour 10 is final; 11 not yet (its last two minutes may still change)
    rng = random.Random(3)
    messages = [
        {"finished": T0 + timedelta(seconds=rng.uniform(0, 7200)), "duration_ms": rng.randint(0, 5000),
         "e2e_ms": rng.uniform(1, 1e6), "status": rng.choice(["succeeded", "failed"])}
        for _ in range(400)
    ]  # fmt: skip
    await add_finished(raw, messages)

    await runtime.stats.roll_up()

    hours = await raw.fetch(
        """SELECT hour, outcome::text, messages, processing_sum_ms, processing_buckets, processing_counts,
                  end_to_end_max_ms FROM message_stat_hour ORDER BY hour, outcome"""
    )
    assert sorted({row["hour"] for row in hours}) == [T0]  # 11:00-12:00 ends after counted_until (11:55)
    for row in hours:
        mine = [m for m in messages if m["status"] == row["outcome"] and m["finished"] < T0 + timedelta(hours=1)]
        histogram = sorted(Counter(bucket_of(m["duration_ms"]) for m in mine).items())
        assert row["messages"] == len(mine)
        assert row["processing_sum_ms"] == sum(m["duration_ms"] for m in mine)
        assert (row["processing_buckets"], row["processing_counts"]) == (
            [b for b, _ in histogram], [n for _, n in histogram]
        )  # fmt: skip
        assert row["end_to_end_max_ms"] == pytest.approx(max(m["e2e_ms"] for m in mine))

    clock.advance(minutes=5)
    await runtime.stats.roll_up()
    assert await raw.fetchval("SELECT count(DISTINCT hour) FROM message_stat_hour") == 2


async def test_stats_older_than_the_retention_are_deleted_and_never_rolled_up(
    runtime: Runtime, raw: asyncpg.Connection, clock: FrozenClock
) -> None:
    assert runtime.settings.oms_stats_retention_days == 400
    # five of these finished more than 400 days ago, five less
    await add_finished(raw, spread(10, clock.now() - timedelta(days=400, minutes=5), 10) + spread(5, T0, 5))
    steps = await runtime.stats.roll_up()
    assert len(steps) == 2  # an hour from the first finish; then the gap of 400 days and 10:00-11:00 in one step
    kept = await raw.fetchval("SELECT min(minute) FROM message_stat_minute")
    assert kept >= (clock.now() - timedelta(days=400)).replace(second=0)
    assert await raw.fetchval("SELECT sum(messages) FROM message_stat_minute") == 5 + 5  # 5 within the retention

    clock.advance(days=2)
    await runtime.stats.roll_up()
    assert await raw.fetchval("SELECT sum(messages) FROM message_stat_minute") == 5  # the old ones are gone
    assert await raw.fetchval("SELECT min(minute) FROM message_stat_minute") == T0
    assert await raw.fetchval("SELECT min(hour) FROM message_stat_hour") == T0


async def test_counted_until_is_none_before_any_rollup_then_trails_the_rollup_by_the_safety_window(
    runtime: Runtime, raw: asyncpg.Connection, clock: FrozenClock
) -> None:
    async with runtime.db.connect() as connection:
        assert await counted_until(connection) is None
    await add_finished(raw, spread(5, T0, 5))
    await runtime.stats.roll_up()
    async with runtime.db.connect() as connection:
        assert await counted_until(connection) == T0 + timedelta(hours=1) - SAFETY_WINDOW
    # what it promises: the minutes before it are never recomputed — deleting their messages changes nothing
    before = await minute_rows(raw)
    await raw.execute("DELETE FROM message WHERE finished_at < $1", T0 + timedelta(hours=1) - SAFETY_WINDOW)
    clock.advance(minutes=3)
    await runtime.stats.roll_up()
    assert await minute_rows(raw) == before


async def test_postgresql_puts_a_duration_in_the_same_bucket_as_python(raw: asyncpg.Connection) -> None:
    values = [0.0, 0.999, 1.0, 1.18, 1.19, 2.0, 3.0, 8.0, 1000.0, 2.0**32 - 1, 2.0**32, 1e15]
    values += [bound for bound in BUCKET_BOUNDS] + [random.Random(5).uniform(0, 1e7) for _ in range(500)]
    found = await raw.fetch(
        "SELECT v, width_bucket(v, $2::double precision[]) AS b FROM unnest($1::double precision[]) AS v",
        values,
        list(BUCKET_BOUNDS),
    )
    assert [row["b"] for row in found] == [bucket_of(v) for v in values]


async def test_a_process_with_workers_rolls_the_stats_up_in_the_background(
    database_url: DatabaseUrl, raw: asyncpg.Connection, clock: FrozenClock, registry: HandlerRegistry
) -> None:
    await add_finished(raw, spread(7, T0, 7))
    runtime = Runtime.build(make_settings(database_url), url=database_url, clock=clock, registry=registry)
    await runtime.start(workers=True, register=False)
    try:
        for _ in range(200):
            if await raw.fetchval("SELECT rolled_up_until FROM message_stat_state") is not None:
                break
            await asyncio.sleep(0.05)
    finally:
        await runtime.stop()
    assert await raw.fetchval("SELECT rolled_up_until FROM message_stat_state") == T0 + timedelta(hours=1)
    assert await raw.fetchval("SELECT sum(messages) FROM message_stat_minute") == 7
