"""Secrets never reach a log line or the database, proven on a whole flow: a real `serve` process at LOG_LEVEL=DEBUG
(JSON lines on stderr and in LOG_FILE), configured with known, distinctive secret values — the OMS signing secrets,
the OAuth client secret, the access tokens (operator, commerce, metrics), the Adobe Commerce token, a DATABASE_URL
password — between a stub OMS (OAuth, issuing its own access tokens) and a stub Adobe Commerce. The flow:
registration, an order export, signed webhooks (current and previous secret) whose effects reach the store, calls
carrying credentials in their headers, an OMS outage, the token endpoint refusing the client (401), the store down,
the operator API, a Prometheus scrape. Then every line the process wrote and every column of every row of every
table is searched for each secret, as it is and as it would look encoded (Basic auth, base64, hex, URL-quoted)."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse

from app.db import DatabaseUrl
from tests.support.oms_events import CREATED, SHIPMENT_DONE, UPDATED, shipment_done, status_update
from tests.support.orders import commerce_order, item, order_body
from tests.support.processes import Processes, free_port, wait_until
from tests.support.signing import rpc_body, signed_headers
from tests.support.stub_commerce import StubCommerce
from tests.support.stub_oms import StubOms

CREATE = "magento.sales.order_management.create"
SECRETS = {
    "OMS_SECRET": "oms-current-SECRET-7f3a9c1e5b20d4",
    "OMS_SECRET_PREVIOUS": "oms-previous-SECRET-2d8b6e4a0c91f7",
    "OMS_OAUTH_CLIENT_SECRET": "oauth-client-SECRET-9e1f3a5c7b3d6e",
    "OPERATOR_TOKEN": "operator-SECRET-token-4c6e8a0b2d5f1a",
    "COMMERCE_TOKEN": "commerce-SECRET-token-1a3c5e7f9b2e8c",
    "ADOBE_COMMERCE_TOKEN": "adobe-commerce-SECRET-8b0d2f4a6c1e9b",
    "METRICS_TOKEN": "metrics-SECRET-token-6f2b8d4e0a3c7b",
}
DB_PASSWORD = "db-SECRET-password-5e7a9c1b3d0f2a"
CLIENT_ID = "oms-logs-client"
NUMBER, ENTITY = "800000001", 8001


class TokenRefusingOms(StubOms):
    """The stub OMS whose token endpoint can answer 401 (a client secret the OAuth server no longer accepts), and
    which can revoke the tokens it issued (the next call gets 401, so the connector asks for a new token)."""

    def __init__(self) -> None:
        super().__init__(require_token=True)
        self.refuse_tokens = False
        self.revoked: list[str] = []

    async def _token(self, request: Request) -> JSONResponse:
        if self.refuse_tokens:
            body = {"error": "invalid_client", "error_description": "client authentication failed"}
            return JSONResponse(body, status_code=401)
        return await super()._token(request)

    def revoke_tokens(self) -> None:
        with self._lock:
            self.revoked.extend(self.issued_tokens)
            self.issued_tokens.clear()

    def every_token(self) -> list[str]:
        with self._lock:
            return [*self.revoked, *self.issued_tokens]


def encodings(secret: str) -> set[str]:
    """The forms in which a secret could show up in a line or a row."""
    raw = secret.encode()
    return {
        secret,
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        raw.hex(),
        quote(secret, safe=""),
    }


def basic_auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def with_credentials(url: DatabaseUrl, user: str, password: str) -> DatabaseUrl:
    parts = urlsplit(url.libpq)
    host = parts.netloc.rpartition("@")[2]
    return DatabaseUrl.parse(urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}")))


async def every_row_as_text(url: DatabaseUrl) -> dict[str, list[str]]:
    """Each table of the public schema → each of its rows, every column, as PostgreSQL renders the row."""
    connection = await asyncpg.connect(url.libpq)
    try:
        tables = [
            row["tablename"]
            for row in await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        return {
            table: [row["r"] for row in await connection.fetch(f'SELECT t::text AS r FROM "{table}" t')]
            for table in tables
        }
    finally:
        await connection.close()


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


async def test_a_whole_flow_at_debug_writes_no_secret_to_any_log_line_or_database_row(
    tmp_path: Path, database_url: DatabaseUrl, pg_server: DatabaseUrl
):
    role = f"omslogs_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(pg_server.libpq)
    await admin.execute(f"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{DB_PASSWORD}'")
    url = with_credentials(database_url, role, DB_PASSWORD)
    log_file = tmp_path / "logs" / "connector.log"
    log_file.parent.mkdir()
    operator = {"Authorization": f"Bearer {SECRETS['OPERATOR_TOKEN']}"}
    commerce = {"Authorization": f"Bearer {SECRETS['COMMERCE_TOKEN']}", "Content-Type": "application/json"}
    try:
        with (
            TokenRefusingOms() as oms,
            StubCommerce(token=SECRETS["ADOBE_COMMERCE_TOKEN"]) as store,
            Processes(tmp_path, url) as procs,
        ):
            store.add_order(ENTITY, NUMBER, [{"item_id": 21, "qty_ordered": 1}])
            port = free_port()
            service = procs.serve(
                "serve",
                port=port,
                LOG_LEVEL="DEBUG",
                LOG_FORMAT="json",
                LOG_FILE=str(log_file),
                OMS_URL=oms.rpc_url,
                OMS_OAUTH_SERVER_URL=oms.token_url,
                OMS_OAUTH_CLIENT_ID=CLIENT_ID,
                OMS_APPLICATION_BASE_URL=f"http://127.0.0.1:{port}",
                OMS_REGISTER_AT_STARTUP="true",
                ADOBE_COMMERCE_URL=store.base_url,
                HANDLER_PLUGINS="[]",
                **SECRETS,
            )
            await service.wait_ready()
            async with httpx.AsyncClient(base_url=service.base_url, timeout=30) as http:

                async def journal(**query: str) -> list[dict[str, Any]]:
                    answer = await http.get("/journal", params={"limit": "200", **query}, headers=operator)
                    assert answer.status_code == 200, answer.text
                    return answer.json()["items"]

                # An order export, delivered with an OAuth token; the OMS acknowledges it and ships it (signed with
                # the current secret, one update with the previous one): the effects reach the store.
                document = commerce_order(increment_id=NUMBER, entity_id=ENTITY, items=[item(21, "MUG-1", qty=1)])
                response = await http.post("/orders", content=order_body(document), headers=commerce)
                assert response.status_code == 202, response.text

                async def exported() -> bool:
                    return bool(oms.calls_of(CREATE)) and oms.registration() is not None

                await wait_until(exported, 30, "the order never reached the stub OMS", service)
                order = oms.calls_of(CREATE)[0].params["order"]
                assert (await oms.send_callback(CREATED, {"order": order})).status_code == 200
                body = rpc_body(UPDATED, status_update(order, "RECEIVED", "accepted"))
                previous = signed_headers(body, secret=SECRETS["OMS_SECRET_PREVIOUS"])
                assert (await http.post("/oms/rpc", content=body, headers=previous)).status_code == 200
                shipped = shipment_done(order, shimpent_id=f"{NUMBER}-1")
                assert (await oms.send_callback(SHIPMENT_DONE, shipped)).status_code == 200

                async def delivered() -> bool:
                    return len(store.shipments) == 1

                await wait_until(delivered, 30, "the shipment never reached the stub store", service)

                # Calls carrying credentials in their headers, one forged (bad signature: refused), one well signed
                # (stored): both journaled without them.
                credentials = {
                    "Authorization": f"Bearer {SECRETS['OPERATOR_TOKEN']}",
                    "Proxy-Authorization": f"Basic {basic_auth(CLIENT_ID, SECRETS['OMS_OAUTH_CLIENT_SECRET'])}",
                    "Cookie": f"session={SECRETS['COMMERCE_TOKEN']}",
                    "X-Api-Key": SECRETS["ADOBE_COMMERCE_TOKEN"],
                }
                forged = {**signed_headers(body, secret="not-the-secret"), **credentials}
                assert (await http.post("/oms/rpc", content=body, headers=forged)).status_code == 401
                picking = rpc_body(UPDATED, status_update(order, "LOGISTICS", "picking"))
                signed = {**signed_headers(picking, secret=SECRETS["OMS_SECRET"]), **credentials}
                assert (await http.post("/oms/rpc", content=picking, headers=signed)).status_code == 200

                # An OMS outage, then the token endpoint refusing the client: a second order waits, then goes.
                second = "800000002"
                oms.down = True
                document = commerce_order(increment_id=second, items=[item(31, "MUG-2", qty=1)])
                assert (await http.post("/orders", content=order_body(document), headers=commerce)).status_code == 202

                async def failed_with(text: str) -> bool:
                    items = await journal(reference=second, direction="out")
                    return any(text in (entry.get("last_error") or "") for entry in items)

                await wait_until(lambda: failed_with("503"), 30, "the OMS outage was never recorded", service)
                oms.refuse_tokens = True
                oms.revoke_tokens()
                oms.down = False
                await wait_until(lambda: failed_with("token request failed"), 30, "no refused token", service)
                oms.refuse_tokens = False
                [export] = [e for e in await journal(reference=second, direction="out") if e["topic"] == CREATE]
                retried = await http.post(f"/journal/{export['id']}/retry", headers=operator)
                assert retried.status_code == 200, retried.text

                async def second_exported() -> bool:
                    return any(call.params["order"]["id"] == second for call in oms.calls_of(CREATE))

                await wait_until(second_exported, 30, "the second order never reached the OMS", service)

                # The store down while an effect is due: retried, then delivered.
                store.down = True
                completed = status_update(order, "COMPLETE", "done")
                assert (await oms.send_callback(UPDATED, completed)).status_code == 200

                async def store_refused() -> bool:
                    return any(r.status == 503 for r in store.requests)

                await wait_until(store_refused, 30, "the store outage was never hit", service)
                store.down = False

                # The operator API: the journal and each entry, the integration, a registration on demand; a wrong
                # token; a Prometheus scrape.
                for entry in await journal():
                    assert (await http.get(f"/journal/{entry['id']}", headers=operator)).status_code == 200
                assert (await http.get("/integration", headers=operator)).status_code == 200
                assert (await http.post("/integration/register", headers=operator)).status_code == 200
                assert (await http.get("/journal", headers={"Authorization": "Bearer wrong"})).status_code == 401
                scraped = await http.get("/metrics", headers={"Authorization": f"Bearer {SECRETS['METRICS_TOKEN']}"})
                assert scraped.status_code == 200
                assert (await http.get(f"/orders/{NUMBER}", headers=commerce)).status_code == 200
            service.stop_cleanly()
            output = service.log()
            issued = oms.every_token()
        rows = await every_row_as_text(database_url)
    finally:
        await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()

    # The flow did what it says: tokens were issued and refused, the secrets were used.
    assert len(issued) >= 2 and oms.refused >= 1
    assert all(call.authorization for call in oms.calls_of(CREATE))
    assert store.requests and all(
        r.authorization == f"Bearer {SECRETS['ADOBE_COMMERCE_TOKEN']}" for r in store.requests
    )
    assert oms.registration().params["secret"] == SECRETS["OMS_SECRET"]

    written = log_file.read_text()
    lines = json_lines(output)
    file_lines = [json.loads(line) for line in written.splitlines()]
    assert len(file_lines) > 50 and len(lines) >= len(file_lines)
    for line in lines + file_lines:
        assert {"time", "level", "logger", "message"} <= line.keys(), line
    assert any(line["level"] == "DEBUG" for line in file_lines)
    assert any(line["logger"] == "uvicorn.access" for line in file_lines)
    assert sum(len(found) for found in rows.values()) > 10 and rows["message"]

    wanted: dict[str, set[str]] = {name: encodings(value) for name, value in SECRETS.items()}
    wanted["DATABASE_URL password"] = encodings(DB_PASSWORD)
    wanted["OAuth client (Basic auth)"] = {basic_auth(CLIENT_ID, SECRETS["OMS_OAUTH_CLIENT_SECRET"])}
    for n, token in enumerate(issued):
        wanted[f"OMS access token {n}"] = encodings(token)
    places = {"the process output": output, "LOG_FILE": written}
    places.update({f"table {table}": "\n".join(found) for table, found in rows.items()})
    leaks = [
        f"{name} in {place}"
        for name, forms in wanted.items()
        for place, text in places.items()
        if any(form in text for form in forms)
    ]
    assert leaks == []
