"""A tiny stand-in OMS on 127.0.0.1, served by uvicorn in a background thread.

* ``POST /oauth/token`` answers 201 ``{"access_token": <fresh random token>}`` (like the PHP mock) and counts calls.
* ``POST /api/`` is the JSON-RPC endpoint: it records every call with its Authorization header and answers
  ``{"jsonrpc":"2.0","id":<id>,"result":[],"error":""}`` (like the Go mock), batches included. With
  ``require_token`` it answers 401 to a call without a token it issued; with ``down`` set, 503 to every call.
* ``send_callback`` POSTs a call to the URL the connector registered, signed (``X-Signature: sha1=<hex>``) with the
  secret it registered, as the PHP OMS does (protocol §1.6, §2).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.loopback import LoopbackStub

REGISTER = "magento.service_bus.remote.register"
UNREGISTER = "magento.service_bus.remote.unregister"


@dataclass(frozen=True)
class RecordedCall:
    method: str
    id: Any
    params: dict[str, Any]
    authorization: str | None


class StubOms(LoopbackStub):
    name = "stub OMS"

    def __init__(self, *, require_token: bool = False) -> None:
        self.require_token = require_token  # refuse (401) calls without a token it issued, as a real OMS would
        self.down = False  # answer every call 503 (an OMS outage)
        self.refused = 0
        self._lock = threading.Lock()
        self.issued_tokens: list[str] = []
        self.token_requests: list[dict[str, str]] = []  # the form fields of each token request
        self.calls: list[RecordedCall] = []
        self.app = Starlette(
            routes=[
                Route("/oauth/token", self._token, methods=["POST"]),
                Route("/api/", self._rpc, methods=["POST"]),
            ]
        )

    # --- URLs the connector is configured with ------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self.port is not None, "the stub OMS is not started"
        return f"http://127.0.0.1:{self.port}"

    @property
    def rpc_url(self) -> str:
        return f"{self.base_url}/api/"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/oauth/token"

    # --- endpoints ----------------------------------------------------------------------------------------
    async def _token(self, request: Request) -> JSONResponse:
        form = {key: values[-1] for key, values in parse_qs((await request.body()).decode()).items()}
        token = secrets.token_urlsafe(16)
        with self._lock:
            self.token_requests.append(form)
            self.issued_tokens.append(token)
        return JSONResponse({"access_token": token}, status_code=201)

    async def _rpc(self, request: Request) -> JSONResponse:
        authorization = request.headers.get("authorization")
        with self._lock:
            token = (authorization or "").removeprefix("Bearer ")
            if self.down or (self.require_token and token not in self.issued_tokens):
                self.refused += 1
                status = 503 if self.down else 401
                return JSONResponse({"error_message": "unavailable" if self.down else "bad token"}, status_code=status)
        document = json.loads(await request.body())
        items = document if isinstance(document, list) else [document]
        answers = []
        with self._lock:
            for item in items:
                self.calls.append(RecordedCall(item["method"], item.get("id"), item.get("params") or {}, authorization))
                answers.append({"jsonrpc": "2.0", "id": item.get("id"), "result": [], "error": ""})
        return JSONResponse(answers if isinstance(document, list) else answers[0])

    # --- what the test looks at -----------------------------------------------------------------------------
    @property
    def token_calls(self) -> int:
        with self._lock:
            return len(self.issued_tokens)

    def calls_of(self, method: str) -> list[RecordedCall]:
        with self._lock:
            return [call for call in self.calls if call.method == method]

    def registration(self) -> RecordedCall | None:
        """The latest register call, or None."""
        registered = self.calls_of(REGISTER)
        return registered[-1] if registered else None

    async def send_callback(self, method: str, params: dict[str, Any], call_id: str | None = None) -> httpx.Response:
        """POST a signed O→C call to the registered URL, signed with the registered secret."""
        registration = self.registration()
        assert registration is not None, "nobody registered with the stub OMS"
        document = {"jsonrpc": "2.0", "id": call_id or str(uuid.uuid4()), "method": method, "params": params}
        body = json.dumps(document, separators=(",", ":")).encode()
        digest = hmac.new(registration.params["secret"].encode(), body, hashlib.sha1).hexdigest()
        headers = {"Content-Type": "application/json", "X-Signature": f"sha1={digest}"}
        async with httpx.AsyncClient(timeout=10) as http:
            return await http.post(registration.params["url"], content=body, headers=headers)
