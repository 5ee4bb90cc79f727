"""What a real `serve` process logs, its output being a file (not a terminal: JSON by default) and LOG_FILE set:
JSON lines with the request id (the caller's) on uvicorn's access line and on the app's lines, the webhook's
message context on the worker's lines, uvicorn's own warnings in the same format, and a LOG_FILE that logrotate
moves away."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from app.db import DatabaseUrl
from tests.support.handlers import TEST_TOPICS
from tests.support.processes import ConnectorProcess, Processes, wait_until
from tests.support.signing import rpc_body, signed_headers

Line = dict[str, Any]


def lines_of(text: str) -> list[Line]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


async def line_where(process: ConnectorProcess, source: Callable[[], str], wanted: Callable[[Line], bool]) -> Line:
    async def found() -> Line | None:
        return next((line for line in lines_of(source()) if wanted(line)), None)

    return await wait_until(found, 30, "the line was never logged", process)


async def test_serve_logs_json_lines_with_request_and_message_context_to_stderr_and_a_rotated_log_file(
    tmp_path: Path, database_url: DatabaseUrl
):
    log_file = tmp_path / "connector.log"
    with Processes(tmp_path, database_url) as procs:
        service = procs.serve("serve", LOG_FILE=str(log_file))  # no LOG_FORMAT: auto
        await service.wait_ready()
        async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as http:
            answer = await http.get("/health/live", headers={"X-Request-ID": "caller-req-42"})
            assert answer.headers["x-request-id"] == "caller-req-42"
            access = await line_where(service, service.log, lambda line: line.get("request_id") == "caller-req-42")
            assert access["logger"] == "uvicorn.access" and access["level"] == "INFO"
            assert (access["method"], access["path"], access["status"]) == ("GET", "/health/live", 200)
            assert access["duration_ms"] >= 0 and access["message"].endswith('"GET /health/live HTTP/1.1" 200')

            body = rpc_body(TEST_TOPICS[0], {"fail": "permanent"}, id="rpc-e2e-1")
            headers = {**signed_headers(body, secret="forged"), "X-Request-ID": "caller-req-43"}
            assert (await http.post("/oms/rpc", content=body, headers=headers)).status_code == 401
            refused = await line_where(service, service.log, lambda line: line["message"].startswith("OMS call"))
            assert refused["request_id"] == "caller-req-43" and refused["logger"] == "app.routers.oms_rpc"

            assert (await http.post("/oms/rpc", content=body, headers=signed_headers(body))).status_code == 200
            failed = await line_where(service, service.log, lambda line: line.get("action") == "message_failed")
            assert (failed["external_id"], failed["topic"], failed["lane"]) == (
                "rpc-e2e-1",
                TEST_TOPICS[0],
                TEST_TOPICS[0],
            )
            assert isinstance(failed["message_id"], int) and failed["level"] == "WARNING"

        # Not HTTP at all: uvicorn's warning, in the same format.
        _, writer = await asyncio.open_connection("127.0.0.1", service.port)
        writer.write(b"\x16\x03\x01 definitely not HTTP\r\n\r\n")
        await writer.drain()
        writer.close()
        invalid = await line_where(service, service.log, lambda line: "Invalid HTTP request" in line["message"])
        assert (invalid["logger"], invalid["level"]) == ("uvicorn.error", "WARNING")

        # The same lines in LOG_FILE; logrotate moves it away, the next line starts a new one.
        kept = [line["message"] for line in lines_of(log_file.read_text())]
        assert access["message"] in kept and refused["message"] in kept and invalid["message"] in kept
        log_file.rename(tmp_path / "connector.log.1")
        async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as http:
            await http.get("/health/live", headers={"X-Request-ID": "after-rotation"})
        fresh = await line_where(
            service,
            lambda: log_file.read_text() if log_file.exists() else "",
            lambda line: line.get("request_id") == "after-rotation",
        )
        assert fresh["logger"] == "uvicorn.access"
        assert "after-rotation" not in (tmp_path / "connector.log.1").read_text()
        service.stop_cleanly()
    stderr_lines = lines_of(service.log())
    assert len(stderr_lines) >= len(kept) + 1
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in stderr_lines)
