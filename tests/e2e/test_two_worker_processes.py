"""Two `oms-connector worker` processes on one database: every message is processed exactly once, each lane in
order, and both processes share the work."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import httpx

from app.db import DatabaseUrl
from tests.support.handlers import TEST_TOPICS
from tests.support.processes import Processes, new_call, wait_until

PER_LANE = 260  # 4 lanes: 1,040 messages


async def test_two_worker_processes_process_every_message_once_and_in_lane_order(
    tmp_path: Path, database_url: DatabaseUrl, raw: asyncpg.Connection
):
    total = PER_LANE * len(TEST_TOPICS)
    with Processes(tmp_path, database_url) as procs:
        ingest = procs.serve("ingest", workers=False)
        workers = [procs.worker("worker-a"), procs.worker("worker-b")]
        await ingest.wait_ready()
        for worker in workers:
            await worker.wait_for_log("workers started")

        async def post_lane(http: httpx.AsyncClient, topic: str) -> None:
            # One lane's calls one after the other: each is acknowledged (committed) before the next is sent.
            for seq in range(1, PER_LANE + 1):
                _call_id, body, headers = new_call(topic, {"seq": seq})
                response = await http.post("/oms/rpc", content=body, headers=headers)
                assert response.status_code == 200, f"{topic} seq {seq}: {response.status_code} {response.text}"

        async with httpx.AsyncClient(base_url=ingest.base_url, timeout=30) as http:
            await asyncio.gather(*(post_lane(http, topic) for topic in TEST_TOPICS))
        assert await raw.fetchval("SELECT count(*) FROM message WHERE direction = 'in' AND channel = 'oms'") == total

        async def done() -> bool:
            count = await raw.fetchval(
                "SELECT count(*) FROM message WHERE direction = 'in' AND channel = 'oms' AND status = 'succeeded'"
            )
            return count == total

        async def progress() -> str:
            rows = await raw.fetch("SELECT status::text, count(*) FROM message GROUP BY 1 ORDER BY 1")
            return "not every message succeeded: " + ", ".join(f"{r['status']}={r['count']}" for r in rows)

        try:
            await wait_until(done, 180, "not every message succeeded", ingest, *workers, interval_s=0.5)
        except AssertionError as exc:
            raise AssertionError(f"{await progress()}\n{exc}") from None

        # Exactly once: one effect per message, none for anything else.
        duplicates = await raw.fetch(
            "SELECT message_id, count(*) FROM test_effect GROUP BY message_id HAVING count(*) <> 1 LIMIT 10"
        )
        assert duplicates == []
        missing = await raw.fetchval(
            "SELECT count(*) FROM message m WHERE direction = 'in' AND channel = 'oms'"
            " AND NOT EXISTS (SELECT 1 FROM test_effect e WHERE e.message_id = m.id)"
        )
        assert missing == 0
        assert await raw.fetchval("SELECT count(*) FROM test_effect") == total
        attempts = await raw.fetchval("SELECT max(attempts) FROM message WHERE direction = 'in' AND channel = 'oms'")
        assert attempts == 1

        # Lane order: in the order the effects were made, seq (and message id) strictly increase in every lane.
        for topic in TEST_TOPICS:
            effects = await raw.fetch("SELECT message_id, seq FROM test_effect WHERE lane = $1 ORDER BY at", topic)
            seqs = [e["seq"] for e in effects]
            ids = [e["message_id"] for e in effects]
            assert seqs == list(range(1, PER_LANE + 1)), f"lane {topic} out of order"
            assert ids == sorted(ids) and len(set(ids)) == len(ids), f"lane {topic} out of id order"

        # Both processes did some of the work, and nobody else did.
        by_pid = {r["pid"]: r["count"] for r in await raw.fetch("SELECT pid, count(*) FROM test_effect GROUP BY pid")}
        assert set(by_pid) == {worker.pid for worker in workers}, by_pid

        for process in (*workers, ingest):
            process.stop_cleanly()
        for worker in workers:  # one pool per process (it was once started twice: twice the workers, a stray LISTEN)
            assert worker.log().count("workers started") == 1, worker.describe()
            assert "workers stopped" in worker.log(), worker.describe()
