"""`oms-connector journal list | show | retry | discard` as operators run them on the box (real subprocesses): the
same filters, checks and outcomes as /journal, without HTTP."""

from __future__ import annotations

import asyncio
import json
import subprocess

import asyncpg

from app.db import DatabaseUrl
from tests.integration.test_cli import run
from tests.support.handlers import TEST_TOPICS

TOPIC, OTHER = TEST_TOPICS[1], TEST_TOPICS[2]


async def stored(raw: asyncpg.Connection, status: str, topic: str = TOPIC, *, external_id: str) -> int:
    return await raw.fetchval(
        """
        INSERT INTO message (direction, channel, topic, external_id, lane, payload, status, last_error,
                             next_attempt_at, created_at, finished_at)
        VALUES ('in', 'oms', $1, $2, $1, '{"order": {"id": "100000042"}}', $3::message_status, 'it broke', now(),
                now(), now())
        RETURNING id
        """,
        topic,
        external_id,
        status,
    )


def journal(database_url: DatabaseUrl, *args: str) -> asyncio.Future[subprocess.CompletedProcess[str]]:
    return asyncio.ensure_future(
        asyncio.to_thread(run, ["journal", *args], DATABASE_URL=database_url.libpq, RUN_MIGRATIONS="false")
    )


async def test_journal_list_and_show_read_the_journal_as_get_journal_does(raw, database_url):
    failed = await stored(raw, "failed", external_id="call-1")
    await stored(raw, "succeeded", external_id="call-2")
    await stored(raw, "failed", OTHER, external_id="call-3")

    listed, shown, missing = await asyncio.gather(
        journal(database_url, "list", "--status", "failed", "--topic", TOPIC),
        journal(database_url, "show", str(failed)),
        journal(database_url, "show", "987654321"),
    )

    assert listed.returncode == 0, listed.stderr
    [line] = listed.stdout.splitlines()
    assert line.startswith(f"{failed}  ") and f"in  failed     {TOPIC}" in line and "last error: it broke" in line
    assert shown.returncode == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert (detail["id"], detail["external_id"], detail["payload"]) == (
        failed,
        "call-1",
        {"order": {"id": "100000042"}},
    )
    assert missing.returncode == 1 and "no message 987654321" in missing.stderr


async def test_journal_list_pages_with_the_cursor_it_prints(raw, database_url):
    ids = [await stored(raw, "failed", external_id=f"page-{n}") for n in range(3)]
    first = await journal(database_url, "list", "--limit", "2")
    assert first.returncode == 0, first.stderr
    *lines, more = first.stdout.splitlines()
    assert [int(line.split()[0]) for line in lines] == [ids[2], ids[1]]
    assert more == f"more: --cursor {ids[1]}"
    second = await journal(database_url, "list", "--limit", "2", "--cursor", str(ids[1]))
    assert [int(line.split()[0]) for line in second.stdout.splitlines()] == [ids[0]]


async def test_journal_retry_and_discard_act_on_one_message_or_every_message_the_filters_match(raw, database_url):
    a, b = await stored(raw, "failed", external_id="a"), await stored(raw, "dead", external_id="b")
    other = await stored(raw, "failed", OTHER, external_id="c")
    done = await stored(raw, "succeeded", OTHER, external_id="d")

    counted = await journal(database_url, "retry", "--topic", TOPIC, "--dry-run")
    assert counted.returncode == 0, counted.stderr
    assert counted.stdout.strip() == "journal retry (dry run): 2 messages match; nothing changed"
    assert await raw.fetchval("SELECT count(*) FROM message WHERE status = 'queued'") == 0

    retried, discarded, refused = await asyncio.gather(
        journal(database_url, "retry", "--topic", TOPIC, "--since", "2000-01-01"),
        journal(database_url, "discard", str(other), "--reason", "sent twice by the OMS"),
        journal(database_url, "discard", str(done)),
    )
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.splitlines()[0] == "journal retry: 2 messages matched, 2 changed"
    assert f"queued: 2 — retried: queued now, with a fresh retry window; ids {a}, {b}" in retried.stdout
    assert discarded.returncode == 0 and discarded.stdout.strip() == f"message {other}: discarded"
    assert refused.returncode == 1 and "only queued, waiting, retrying, failed or dead" in refused.stderr
    rows = await raw.fetch("SELECT id, status::text, last_error FROM message ORDER BY id")
    assert [(row["id"], row["status"]) for row in rows] == [
        (a, "queued"), (b, "queued"), (other, "discarded"), (done, "succeeded"),
    ]  # fmt: skip
    assert rows[2]["last_error"] == "discarded by an operator: sent twice by the OMS"


async def test_journal_retry_and_discard_take_an_id_or_filters_not_both_and_not_neither(raw, database_url):
    message_id = await stored(raw, "failed", external_id="x")
    both, neither, dry_single, bad_time = await asyncio.gather(
        journal(database_url, "retry", str(message_id), "--topic", TOPIC),
        journal(database_url, "discard"),
        journal(database_url, "discard", str(message_id), "--dry-run"),
        journal(database_url, "retry", "--since", "last tuesday"),
    )
    for result in (both, neither, dry_single, bad_time):
        assert result.returncode == 2, (result.stdout, result.stderr)
    assert "give a message id or filters (and --dry-run), not both" in both.stderr
    assert "give a message id or at least one filter" in neither.stderr
    assert "not an ISO 8601 time" in bad_time.stderr
    assert await raw.fetchval("SELECT status::text FROM message WHERE id = $1", message_id) == "failed"
