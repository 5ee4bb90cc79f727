"""A worker process killed (SIGKILL) in the middle of a message: nothing of it is kept, the message stays queued,
and the next worker processes it exactly once, in lane order."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import httpx

from app.db import DatabaseUrl
from tests.support.processes import Processes, new_call, wait_until
from tests.support.signing import DEFAULT_METHOD


async def _row_locked(raw: asyncpg.Connection, message_id: int) -> bool:
    """True while another transaction holds the message's row lock (a worker is processing it)."""
    try:
        async with raw.transaction():
            await raw.execute("SELECT id FROM message WHERE id = $1 FOR UPDATE NOWAIT", message_id)
    except asyncpg.exceptions.LockNotAvailableError:
        return True
    return False


async def test_a_message_cut_short_by_a_crash_is_processed_exactly_once_by_the_next_worker(
    tmp_path: Path, database_url: DatabaseUrl, raw: asyncpg.Connection
):
    marker = tmp_path / "first-attempt-started"
    with Processes(tmp_path, database_url) as procs:
        ingest = procs.serve("ingest", workers=False)
        doomed = procs.worker("worker-1")
        await ingest.wait_ready()
        await doomed.wait_for_log("workers started")

        async with httpx.AsyncClient(base_url=ingest.base_url, timeout=10) as http:
            ids: list[str] = []
            for params in ({"seq": 1, "sleep_once": 60, "marker": str(marker)}, {"seq": 2}):
                call_id, body, headers = new_call(DEFAULT_METHOD, params)
                response = await http.post("/oms/rpc", content=body, headers=headers)
                assert response.status_code == 200, response.text
                ids.append(call_id)
        rows = await raw.fetch(
            "SELECT id, external_id FROM message WHERE direction = 'in' AND external_id = ANY($1::text[]) ORDER BY id",
            ids,
        )
        assert [row["external_id"] for row in rows] == ids
        first, second = (row["id"] for row in rows)

        # The first message is inside its handler (effect written, not committed) and its row is locked.
        await wait_until(lambda: _exists(marker), 30, "worker-1 never started the first message", doomed)
        assert await _row_locked(raw, first), "the message being processed should be locked by worker-1"
        doomed.kill()
        assert doomed.proc is not None and doomed.proc.returncode == -9

        # PostgreSQL sees the connection drop and rolls the transaction back: the lock goes, nothing is kept.
        async def released() -> bool:
            return not await _row_locked(raw, first)

        await wait_until(released, 15, "the killed worker's transaction was never rolled back")
        states = await raw.fetch(
            "SELECT id, status::text, attempts FROM message WHERE id = ANY($1) ORDER BY id", [first, second]
        )
        assert [(r["status"], r["attempts"]) for r in states] == [("queued", 0), ("queued", 0)]
        assert await raw.fetchval("SELECT count(*) FROM test_effect") == 0

        survivor = procs.worker("worker-2")

        async def all_done() -> bool:
            return (
                await raw.fetchval(
                    "SELECT count(*) FROM message WHERE id = ANY($1) AND status = 'succeeded'", [first, second]
                )
                == 2
            )

        await wait_until(all_done, 45, "worker-2 did not finish the two messages", survivor)
        effects = await raw.fetch("SELECT message_id, seq, pid FROM test_effect ORDER BY at")
        assert [(e["message_id"], e["seq"]) for e in effects] == [(first, 1), (second, 2)]
        assert {e["pid"] for e in effects} == {survivor.pid}
        attempts = await raw.fetch("SELECT attempts FROM message WHERE id = ANY($1) ORDER BY id", [first, second])
        assert [a["attempts"] for a in attempts] == [1, 1]

        survivor.stop_cleanly()
        ingest.stop_cleanly()


async def _exists(path: Path) -> bool:
    return path.exists()


async def test_a_batch_cut_short_by_a_crash_keeps_none_of_its_messages_and_the_next_worker_applies_each_once(
    tmp_path: Path, database_url: DatabaseUrl, raw: asyncpg.Connection
):
    """Three messages of one lane stored before any worker runs are claimed as one batch; the worker dies inside
    the second one's handler, after the first one's effect was written: the whole batch rolls back."""
    marker = tmp_path / "second-message-started"
    with Processes(tmp_path, database_url) as procs:
        ingest = procs.serve("ingest", workers=False)
        await ingest.wait_ready()
        async with httpx.AsyncClient(base_url=ingest.base_url, timeout=10) as http:
            ids: list[str] = []
            for params in ({"seq": 1}, {"seq": 2, "sleep_once": 60, "marker": str(marker)}, {"seq": 3}):
                call_id, body, headers = new_call(DEFAULT_METHOD, params)
                response = await http.post("/oms/rpc", content=body, headers=headers)
                assert response.status_code == 200, response.text
                ids.append(call_id)
        rows = await raw.fetch(
            "SELECT id FROM message WHERE direction = 'in' AND external_id = ANY($1::text[]) ORDER BY id", ids
        )
        message_ids = [row["id"] for row in rows]
        assert len(message_ids) == 3

        doomed = procs.worker("worker-1")
        await wait_until(lambda: _exists(marker), 30, "worker-1 never reached the second message", doomed)
        # The batch holds all three rows: the head's lock is the claim, the others are locked behind it.
        for message_id in message_ids:
            assert await _row_locked(raw, message_id), f"message {message_id} should be held by worker-1's batch"
        doomed.kill()

        async def released() -> bool:
            return not await _row_locked(raw, message_ids[0])

        await wait_until(released, 15, "the killed worker's transaction was never rolled back")
        states = await raw.fetch(
            "SELECT status::text, attempts FROM message WHERE id = ANY($1) ORDER BY id", message_ids
        )
        assert [(r["status"], r["attempts"]) for r in states] == [("queued", 0)] * 3
        assert await raw.fetchval("SELECT count(*) FROM test_effect") == 0  # the first one's effect went too

        survivor = procs.worker("worker-2")

        async def all_done() -> bool:
            return (
                await raw.fetchval(
                    "SELECT count(*) FROM message WHERE id = ANY($1) AND status = 'succeeded'", message_ids
                )
                == 3
            )

        await wait_until(all_done, 45, "worker-2 did not finish the batch", survivor)
        effects = await raw.fetch("SELECT message_id, seq, pid FROM test_effect ORDER BY at")
        assert [(e["message_id"], e["seq"]) for e in effects] == list(zip(message_ids, [1, 2, 3], strict=True))
        assert {e["pid"] for e in effects} == {survivor.pid}
        survivor.stop_cleanly()
        ingest.stop_cleanly()
