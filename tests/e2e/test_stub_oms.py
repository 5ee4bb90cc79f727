"""The connector against a stub OMS over real sockets: OAuth token, registration at start-up, a signed callback
processed end to end, and the `register` command."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import asyncpg
import httpx

from app import __version__
from app.db import DatabaseUrl
from tests.support.processes import Processes, command, connector_env, free_port, wait_until
from tests.support.signing import SECRET, operator_headers
from tests.support.stub_oms import REGISTER, UNREGISTER, StubOms

CLIENT_ID = "mom"
CLIENT_SECRET = "mom-client-secret"
CREATED = "magento.sales.order_management.created"


def _oms_env(stub: StubOms, connector_port: int) -> dict[str, str]:
    return {
        "OMS_URL": stub.rpc_url,
        "OMS_OAUTH_SERVER_URL": stub.token_url,
        "OMS_OAUTH_CLIENT_ID": CLIENT_ID,
        "OMS_OAUTH_CLIENT_SECRET": CLIENT_SECRET,
        "OMS_APPLICATION_BASE_URL": f"http://127.0.0.1:{connector_port}",
        "OMS_SECRET": SECRET,
        "OMS_REGISTER_AT_STARTUP": "true",
    }


def _bearer(authorization: str | None) -> str | None:
    if authorization is None or not authorization.startswith("Bearer "):
        return None
    return authorization.removeprefix("Bearer ")


async def test_the_connector_registers_with_the_oms_and_processes_its_signed_callback(
    tmp_path: Path, database_url: DatabaseUrl, raw: asyncpg.Connection
):
    with StubOms() as stub, Processes(tmp_path, database_url) as procs:
        port = free_port()
        env = _oms_env(stub, port)
        service = procs.serve("serve", workers=True, port=port, **env)  # registers at start-up
        await service.wait_ready()

        # Registration reaches the OMS by itself, with a token the OMS issued.
        async def registered() -> bool:
            return stub.registration() is not None

        await wait_until(registered, 30, "the connector never registered with the stub OMS", service)
        registration = stub.registration()
        assert registration is not None
        assert registration.params["id"] == "mdc"
        assert registration.params["url"] == f"http://127.0.0.1:{port}/oms/rpc"
        assert registration.params["secret"] == SECRET
        assert registration.params["version"] == __version__
        assert _bearer(registration.authorization) in stub.issued_tokens, registration.authorization
        assert stub.token_requests[0].get("grant_type") == "client_credentials"
        assert stub.token_requests[0].get("client_id") == CLIENT_ID
        assert stub.calls_of(UNREGISTER) == []  # nothing was registered before

        # The OMS calls back, signed with the registered secret; the connector stores and processes it.
        call_id = "stub-callback-0001"
        response = await stub.send_callback(CREATED, {"seq": 7, "order": {"id": "300000183"}}, call_id)
        assert response.status_code == 200, response.text
        assert response.json()["id"] == call_id and "result" in response.json()

        async with httpx.AsyncClient(base_url=service.base_url, timeout=10, headers=operator_headers()) as http:

            async def succeeded() -> bool:
                page = await http.get("/journal", params={"external_id": call_id})
                assert page.status_code == 200, page.text
                items = page.json()["items"]
                return bool(items) and items[0]["status"] == "succeeded"

            await wait_until(succeeded, 30, f"callback {call_id} never succeeded in the journal", service)
            items = (await http.get("/journal", params={"external_id": call_id})).json()["items"]
        assert [(i["direction"], i["topic"]) for i in items] == [("in", CREATED)]
        effects = await raw.fetch("SELECT seq FROM test_effect WHERE message_id = $1", items[0]["id"])
        assert [e["seq"] for e in effects] == [7]

        # A badly signed callback is refused (and never processed).
        forged = await _post_forged(f"http://127.0.0.1:{port}/oms/rpc")
        assert forged.status_code == 401

        # `oms-connector register` (run as an operator would): unregister, then register again, with a token.
        before = len(stub.calls)
        cli_env = connector_env(database_url, **env)
        result = await asyncio.to_thread(
            subprocess.run,
            [*command(), "register"],
            env=cli_env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        assert "register: ok" in result.stdout
        new_calls = stub.calls[before:]
        assert [call.method for call in new_calls] == [UNREGISTER, REGISTER]
        assert new_calls[0].params == {"id": "mdc"}
        assert new_calls[1].params["url"] == registration.params["url"]
        assert all(_bearer(call.authorization) in stub.issued_tokens for call in new_calls)

        service.stop_cleanly()


async def _post_forged(url: str) -> httpx.Response:
    body = b'{"jsonrpc":"2.0","id":"forged-1","method":"magento.sales.order_management.created","params":{}}'
    headers = {"Content-Type": "application/json", "X-Signature": "sha1=" + "0" * 40}
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(url, content=body, headers=headers)
