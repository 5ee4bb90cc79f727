"""Builders for OMS calls: a valid signed call, which each test then breaks in one way."""

from __future__ import annotations

import json
import uuid
from typing import Any

from app.protocol.signature import sign

SECRET = "9f2c7e41b8d04a6e"
PREVIOUS_SECRET = "old-secret-being-rotated-out"
OPERATOR_TOKEN = "operator-token-for-tests-0123456789"
COMMERCE_TOKEN = "commerce-token-for-tests-0123456789"
DEFAULT_METHOD = "magento.sales.order_management.created"


def rpc_body(
    method: str = DEFAULT_METHOD, params: dict[str, Any] | None = None, id: Any = "auto", **extra: Any
) -> bytes:
    document: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params if params is not None else {}}
    if id == "auto":
        document["id"] = str(uuid.uuid4())
    elif id is not None:
        document["id"] = id
    document.update(extra)
    return json.dumps(document, separators=(",", ":")).encode()


def signed_headers(body: bytes, secret: str = SECRET, algorithm: str = "sha1") -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Signature": sign(body, secret.encode(), algorithm)}


def operator_headers(token: str = OPERATOR_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
