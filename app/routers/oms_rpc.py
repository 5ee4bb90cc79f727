"""POST /oms/rpc — the one URL the OMS calls (registered as the callback URL)."""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.responses import JSONResponse

from app.deps import get_runtime
from app.errors import (
    ConnectorError,
    IntegrationDisabled,
    InvalidRequest,
    ParseError,
    PayloadTooLarge,
    SignatureInvalid,
)
from app.protocol import signature
from app.protocol.jsonrpc import best_effort_id, error_response, parse_request, result_response
from app.routers.body import read_limited_body
from app.routers.route import api_router
from app.runtime import Runtime

router = api_router(tags=["OMS webhook"], usual_errors=False)
log = logging.getLogger(__name__)

ACCEPTED = {"status": "accepted"}
WEBHOOK_PATH = "/oms/rpc"

_RPC_RESPONSES = {
    200: {"description": 'Stored in the inbox (or received before): `{"jsonrpc":"2.0","id":…,"result":{…}}`'},
    400: {"description": "Empty or malformed body: JSON-RPC error -32700 / -32600"},
    401: {"description": "Missing or wrong X-Signature: JSON-RPC error -32001 (journaled as rejected)"},
    404: {"description": "Unknown method: JSON-RPC error -32601 (journaled as rejected)"},
    413: {"description": "Body larger than OMS_MAX_BODY_BYTES"},
    503: {"description": "Integration disabled or database unreachable: nothing stored, send again later"},
}


@router.post(WEBHOOK_PATH, responses=_RPC_RESPONSES, summary="Receive a signed JSON-RPC call from the OMS")
async def receive_oms_call(request: Request) -> JSONResponse:
    """Verify the signature of the raw body, store the call in the inbox, answer after the commit.

    Signature: `X-Signature: sha1=<hex>` (or `sha256=<hex>`), an HMAC of the exact body with OMS_SECRET or
    OMS_SECRET_PREVIOUS. A re-delivered id is answered the same way and not stored again; a call without an id
    is keyed by a hash of its body.
    """
    # Not a `RuntimeDep` parameter: FastAPI runs a sync dependency in the thread pool, a thread hop per call
    # on the hottest path (measured with bench/ingest.py).
    runtime = get_runtime(request)
    settings = runtime.settings
    body = b""
    try:
        body = await read_limited_body(request, settings.oms_max_body_bytes, "OMS_MAX_BODY_BYTES")
        if settings.oms_signature == "required":
            try:
                signature.verify(body, request.headers.get(signature.SIGNATURE_HEADER), settings.signing_secrets)
            except SignatureInvalid as exc:
                await runtime.inbox.reject(body, request.headers, exc)
                raise
        if not await runtime.switch.is_enabled():
            raise IntegrationDisabled()
        try:
            rpc = parse_request(body)
        except (ParseError, InvalidRequest) as exc:
            await runtime.inbox.reject(body, request.headers, exc)
            raise
        await runtime.inbox.accept(rpc, body, request.headers)
    except ConnectorError as exc:
        return _error(exc, body, runtime, request)
    return JSONResponse(result_response(rpc.id, ACCEPTED))


def _error(exc: ConnectorError, body: bytes, runtime: Runtime, request: Request) -> JSONResponse:
    status = getattr(exc, "http_status", 500)
    code = getattr(exc, "jsonrpc_code", -32603)
    request_id = best_effort_id(body) if body and not isinstance(exc, PayloadTooLarge) else None
    headers = {"Retry-After": "30"} if exc.retryable else None
    log.info("OMS call refused: %s", exc.message, extra={"action": "rpc_refused", "status": status})
    return JSONResponse(error_response(request_id, code, exc.message), status_code=status, headers=headers)
