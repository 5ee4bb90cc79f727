"""What every HTTP request passes before a router, and what it gets when something unexpected fails.

* A request id: the caller's ``X-Request-ID`` when it is a sane token, else a new one; echoed on every answer and
  put in every error body and on every log line written while the request runs (app/logs.py), so a refusal
  quoted in a ticket can be found in the log.
* No NUL in the path or the query string (``/orders/a%00b``): no identifier can hold it and PostgreSQL refuses it
  in text, so it is refused here (422, the usual error shape) for every route at once.
* A catch-all: an exception nothing else handled becomes a JSON 500 in the usual shape with the request id, and one
  log line (its traceback at DEBUG) instead of a traceback wall. The exception is not raised further, so the
  server does not log it again.
* With ``metrics``: every answer is counted by method, route template and status, and timed (app/metrics.py).

On the JSON-RPC webhook (``jsonrpc_paths``) these answers are JSON-RPC error objects, as its callers expect; below
``html_prefix`` (the console, /admin) a small HTML page, as a browser expects.
"""

from __future__ import annotations

import logging
import re
import uuid
from html import escape
from typing import Any

from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.logs import request_context
from app.metrics import Metrics
from app.protocol.jsonrpc import error_response
from app.routers.errors import REQUEST_ID_HEADER, ErrorAnswer

log = logging.getLogger(__name__)

_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_HEADER = REQUEST_ID_HEADER.lower().encode()


class RequestGuard:
    def __init__(
        self,
        app: ASGIApp,
        jsonrpc_paths: frozenset[str] = frozenset(),
        metrics: Metrics | None = None,
        html_prefix: str | None = None,
    ) -> None:
        self.app = app
        self.jsonrpc_paths = jsonrpc_paths
        self.html_prefix = html_prefix
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.metrics is not None:  # counted once answered, the guard's own answers too
            send = self.metrics.measure_http(scope, send)
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        with request_context(request_id):  # on every line logged for this request, uvicorn's access line too
            await self._guarded(scope, receive, send, request_id)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), (_HEADER, request_id.encode())]
            await send(message)

        jsonrpc = scope.get("path") in self.jsonrpc_paths
        html = self.html_prefix is not None and str(scope.get("path", "")).startswith(self.html_prefix)
        refusal = _nul_refusal(scope)
        if refusal is not None:
            field, message = refusal
            await _answer(
                422,
                f"{field}: {message}",
                "InputRejected",
                request_id,
                send_with_id,
                field=field,
                jsonrpc=jsonrpc,
                html=html,
            )
            return
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            log.error(
                "unexpected %s on %s %s (request %s): %s",
                exc.__class__.__name__,
                scope.get("method"),
                scope.get("path"),
                request_id,
                str(exc)[:300],
                extra={"action": "request_failed", "request_id": request_id},
            )
            log.debug("traceback of request %s", request_id, exc_info=exc)
            if not started:
                detail = f"unexpected error ({exc.__class__.__name__}); quote request id {request_id}"
                await _answer(500, detail, "InternalError", request_id, send_with_id, jsonrpc=jsonrpc, html=html)


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == _HEADER:
            given = value.decode("latin-1")
            if _SANE_REQUEST_ID.fullmatch(given):
                return given
            break
    return uuid.uuid4().hex


def _nul_refusal(scope: Scope) -> tuple[str, str] | None:
    if "\x00" in scope.get("path", ""):
        return "(path)", "contains NUL (%00), which no identifier can hold"
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        return "(query)", "contains NUL (%00), which no value can hold"
    return None


async def _answer(
    status: int,
    detail: str,
    error: str,
    request_id: str,
    send: Send,
    *,
    field: str | None = None,
    jsonrpc: bool = False,
    html: bool = False,
) -> None:
    content: dict[str, Any]
    response: Response
    if html:
        response = HTMLResponse(
            f"<!doctype html><title>{status}</title><h1>{status}</h1><p>{escape(detail)}</p>"
            f"<p>Request id: {escape(request_id)}</p>",
            status_code=status,
        )
        await response({"type": "http"}, _no_body, send)
        return
    if jsonrpc:
        code = -32603 if status >= 500 else -32600
        content = error_response(None, code, detail)
    else:
        errors: Any = [{"field": field, "message": detail.split(": ", 1)[-1]}] if field else None
        content = ErrorAnswer(detail=detail, error=error, errors=errors, request_id=request_id).model_dump(
            exclude_none=True
        )
    response = JSONResponse(content, status_code=status)
    await response({"type": "http"}, _no_body, send)


async def _no_body(_: Any = None) -> Message:  # the guard's answers need no request body
    return {"type": "http.disconnect"}
