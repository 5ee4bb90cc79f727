"""Wake-ups: an insert notifies the kinds of what it stored, and only workers of those kinds wake."""

from __future__ import annotations

import asyncio

import asyncpg

from app.data.bus import BUS_CHANNEL
from app.workers.runner import Wakeups

INSERT = """
    INSERT INTO message (direction, channel, topic, external_id, lane, payload, headers, refs, status,
                         next_attempt_at, created_at)
    SELECT CAST(d AS message_direction), c, 't', e, 'lane', '{}'::jsonb, '{}'::jsonb, '{}', 'queued', now(), now()
      FROM unnest($1::text[], $2::text[], $3::text[]) AS t(d, c, e)
    ON CONFLICT (direction, channel, external_id) WHERE status <> 'rejected' DO NOTHING
"""


async def notifications_of(raw: asyncpg.Connection, *rows: tuple[str, str, str]) -> list[str]:
    received: asyncio.Queue[str] = asyncio.Queue()

    def listen(*args: object) -> None:
        received.put_nowait(str(args[-1]))

    await raw.add_listener(BUS_CHANNEL, listen)
    try:
        await raw.execute(INSERT, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
        await raw.execute("SELECT 1")  # a round trip after the commit: its notification has arrived
        return [received.get_nowait() for _ in range(received.qsize())]
    finally:
        await raw.remove_listener(BUS_CHANNEL, listen)


async def test_an_insert_notifies_the_direction_and_channel_of_each_kind_it_stored(raw: asyncpg.Connection):
    payloads = await notifications_of(raw, ("in", "oms", "a"), ("in", "oms", "b"), ("out", "commerce", "c"))
    assert len(payloads) == 1  # one per statement
    assert sorted(payloads[0].split(",")) == ["in/oms", "out/commerce"]


async def test_an_insert_of_duplicates_only_notifies_nobody(raw: asyncpg.Connection):
    await notifications_of(raw, ("out", "oms", "x"))
    assert await notifications_of(raw, ("out", "oms", "x")) == []


def counting(wakeups: Wakeups, *kinds: str) -> dict[str, list[int]]:
    woken: dict[str, list[int]] = {}
    for kind in kinds:
        wakeup = wakeups.of(kind)
        woken[kind] = []
        original = wakeup.notify
        wakeup.notify = lambda kind=kind, original=original: (woken[kind].append(1), original())  # type: ignore[method-assign]
    return woken


def test_a_notification_wakes_only_the_kinds_it_names_and_an_empty_one_wakes_every_kind():
    wakeups = Wakeups()
    woken = counting(wakeups, "in", "out/oms", "out/commerce")

    wakeups.notify("out/oms")
    assert {kind: len(calls) for kind, calls in woken.items()} == {"in": 0, "out/oms": 1, "out/commerce": 0}

    wakeups.notify("in/oms,out/commerce")
    assert {kind: len(calls) for kind, calls in woken.items()} == {"in": 1, "out/oms": 1, "out/commerce": 1}

    wakeups.notify("")  # NOTIFY_BUS, or a process of an older version
    assert {kind: len(calls) for kind, calls in woken.items()} == {"in": 2, "out/oms": 2, "out/commerce": 2}

    wakeups.notify("out/elsewhere")  # a channel this process does not send on: nobody
    assert {kind: len(calls) for kind, calls in woken.items()} == {"in": 2, "out/oms": 2, "out/commerce": 2}
