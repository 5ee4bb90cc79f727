"""What a real `oms-connector serve` prints and keeps at start-up: the generated tokens (kept in DATA_DIR and reused,
shown only the first time) and the warning for OMS_SIGNATURE=required without OMS_SECRET."""

from __future__ import annotations

import re

import httpx

from app.db import DatabaseUrl
from tests.support.processes import ConnectorProcess, connector_env, free_port

TOKEN_LINE = re.compile(r"^  OPERATOR_TOKEN  generated, kept in (\S+) \(shown this once\): (\S+)$", re.MULTILINE)


def without_tokens(database_url: DatabaseUrl, **extra: str) -> dict[str, str]:
    env = connector_env(database_url, **extra)
    del env["OPERATOR_TOKEN"], env["COMMERCE_TOKEN"]
    return env


async def integration_answer(process: ConnectorProcess, token: str) -> int:
    async with httpx.AsyncClient(base_url=process.base_url, timeout=10) as http:
        response = await http.get("/integration", headers={"Authorization": f"Bearer {token}"})
        return response.status_code


async def test_a_generated_token_still_works_after_a_restart_and_is_printed_only_the_first_time(
    database_url: DatabaseUrl, tmp_path
):
    env = without_tokens(database_url, DATA_DIR=str(tmp_path / "data"))
    first = ConnectorProcess("serve-1", ["serve", "--port", str(port := free_port())], env, tmp_path, port).start()
    try:
        await first.wait_ready()
        match = TOKEN_LINE.search(first.log())
        assert match, first.describe()
        kept_in, token = match.groups()
        assert kept_in == str(tmp_path / "data" / "tokens.json")
        assert await integration_answer(first, token) == 200
    finally:
        first.kill()

    second = ConnectorProcess("serve-2", ["serve", "--port", str(port)], env, tmp_path, port).start()
    try:
        await second.wait_ready()
        assert f"  OPERATOR_TOKEN  generated earlier, kept in {kept_in}\n" in second.log()
        assert token not in second.log()
        assert await integration_answer(second, token) == 200  # the store keeps working with the printed token
    finally:
        second.kill()


async def test_signature_required_without_a_secret_is_warned_at_start(database_url: DatabaseUrl, tmp_path):
    env = connector_env(database_url, OMS_SECRET="", RUN_WORKERS="false", LOG_FORMAT="text")
    port = free_port()
    service = ConnectorProcess("serve", ["serve", "--port", str(port)], env, tmp_path, port).start()
    try:
        await service.wait_ready()
        log = service.log()
        assert (
            "  WARNING         OMS_SIGNATURE=required but OMS_SECRET is not set: every OMS call is refused with 401 "
            "until OMS_SECRET is set\n" in log
        )
        assert re.search(r" WARNING app: OMS_SIGNATURE=required but OMS_SECRET is not set", log)
    finally:
        service.kill()
