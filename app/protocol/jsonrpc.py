"""JSON-RPC 2.0 envelopes as the OMS peers really send them (protocol §1, §6).

Tolerant where peers are sloppy (no "jsonrpc" member, extra top-level keys such as "client", ids as numbers),
strict where it protects data (an object body, a string method, object params).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from app.errors import InvalidRequest, ParseError
from app.protocol import strict_json

MAX_ID_LENGTH = 200


@dataclass(frozen=True)
class RpcRequest:
    """One JSON-RPC call, with the id it must be answered with and the key it is de-duplicated by."""

    method: str
    params: dict[str, Any]
    id: str | int | None  # as sent (echoed in the answer)
    message_id: str  # the idempotency key: the id as text, or a hash of the body when there is none


def parse_request(body: bytes) -> RpcRequest:
    """Parse one JSON-RPC request.

    Raises:
        ParseError: empty body, or not JSON this service accepts (``strict_json``: depth, numbers, NUL…).
        InvalidRequest: not an object, no string method, params not an object, unusable id.
    """
    if not body.strip():
        raise ParseError("empty body")
    try:
        document = strict_json.loads(body)
    except strict_json.UnacceptableJson as exc:
        raise ParseError(f"body is not JSON this service accepts: {exc}") from None
    if isinstance(document, list):
        raise InvalidRequest("batch requests are not accepted here; send one call per request")
    if not isinstance(document, dict):
        raise InvalidRequest("the body must be a JSON-RPC request object")
    method = document.get("method")
    if not isinstance(method, str) or not method.strip():
        raise InvalidRequest("'method' must be a non-empty string")
    if "params" not in document:
        raise InvalidRequest("'params' is required")
    params = document["params"]
    if not isinstance(params, dict):
        raise InvalidRequest("'params' must be an object")
    version = document.get("jsonrpc")
    if version is not None and version != "2.0":
        raise InvalidRequest("'jsonrpc' must be \"2.0\" when present")
    raw_id = document.get("id")
    if raw_id is None:
        # A notification: the peers still expect it processed once, so key it by its content.
        message_id = "body-sha256:" + hashlib.sha256(body).hexdigest()
    elif isinstance(raw_id, bool) or not isinstance(raw_id, str | int | float):
        raise InvalidRequest("'id' must be a string or a number")
    else:
        message_id = str(raw_id).strip()
        if not message_id or len(message_id) > MAX_ID_LENGTH:
            raise InvalidRequest(f"'id' must have 1 to {MAX_ID_LENGTH} characters")
    return RpcRequest(method=method.strip(), params=params, id=raw_id, message_id=message_id)


def best_effort_id(body: bytes) -> str | int | None:
    """The id of a request we are about to refuse, so the error answer can carry it."""
    try:
        document = strict_json.loads(body)
    except strict_json.UnacceptableJson:
        return None
    raw_id = document.get("id") if isinstance(document, dict) else None
    return raw_id if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else None


def result_response(request_id: str | int | None, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def error_response(request_id: str | int | None, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


def request_envelope(request_id: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def encoded_request(request_id: str, method: str, encoded_params: str) -> str:
    """The same envelope around params already encoded as JSON text (a catalog export encodes each product once,
    for its fingerprint and for the wire)."""
    head = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method}, separators=(",", ":"))
    return f'{head[:-1]},"params":{encoded_params}}}'
