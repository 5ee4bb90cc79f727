"""Hostile input against every operation of the API, one test per family of bad input (not one per endpoint).

The operations are read from the app's own OpenAPI document, so an endpoint added later is swept too. Every answer
must be a 4xx in the usual error shape (JSON-RPC error objects for the webhook), and nothing may be stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.signing import COMMERCE_TOKEN, OPERATOR_TOKEN, signed_headers

BODY_LIMIT = 64 * 1024  # above the hostile bodies below, so that each reaches its own rule
WEBHOOK = "/oms/rpc"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"commerce_max_body_bytes": BODY_LIMIT, "oms_max_body_bytes": BODY_LIMIT}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # the template, e.g. /orders/{increment_id}
    path_params: dict[str, str]  # name → schema type
    query_params: dict[str, str]
    json_body: bool

    def url(self, **values: str) -> str:
        url = self.path
        for name, kind in self.path_params.items():
            value = values.get(name, "1" if kind == "integer" else "X")
            url = url.replace("{" + name + "}", quote(value, safe=""))
        return url

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def operations_of(openapi: dict[str, Any]) -> Iterator[Operation]:
    for path, item in openapi["paths"].items():
        for method, operation in item.items():
            parameters = operation.get("parameters", [])
            content = operation.get("requestBody", {}).get("content", {})
            yield Operation(
                method=method.upper(),
                path=path,
                path_params={p["name"]: p["schema"].get("type", "string") for p in parameters if p["in"] == "path"},
                query_params={p["name"]: p["schema"].get("type", "string") for p in parameters if p["in"] == "query"},
                json_body="application/json" in content,
            )


@pytest.fixture
async def operations(client: httpx.AsyncClient) -> list[Operation]:
    found = list(operations_of((await client.get("/openapi.json")).json()))
    assert len(found) > 30  # the sweep really covers the API
    return found


async def send(
    client: httpx.AsyncClient, operation: Operation, url: str | None = None, body: bytes | None = None
) -> httpx.Response:
    """The call as its caller would make it: signed for the webhook, else with the operator token (the commerce
    token where only the store may call)."""
    url = url or operation.url()
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if operation.path == WEBHOOK:
        return await client.request(operation.method, url, content=body, headers=signed_headers(body or b""))
    for token in (OPERATOR_TOKEN, COMMERCE_TOKEN):
        response = await client.request(
            operation.method, url, content=body, headers={**headers, "Authorization": f"Bearer {token}"}
        )
        if response.status_code != 401:
            return response
    return response


def assert_refused_in_the_usual_shape(operation: Operation, response: httpx.Response) -> None:
    assert 400 <= response.status_code < 500, f"{operation}: {response.status_code} {response.text[:300]}"
    document = response.json()
    if operation.path == WEBHOOK:
        assert set(document) == {"jsonrpc", "id", "error"}, document
        assert isinstance(document["error"]["code"], int) and document["error"]["message"]
        return
    assert isinstance(document["detail"], str) and document["detail"], f"{operation}: {document}"
    assert isinstance(document["error"], str) and document["error"], f"{operation}: {document}"
    assert document["request_id"] == response.headers["x-request-id"]
    for error in document.get("errors", []):
        assert set(error) == {"field", "message"}


async def nothing_accepted(raw: asyncpg.Connection) -> None:
    assert await raw.fetchval("SELECT count(*) FROM message WHERE status <> 'rejected'") == 0
    assert await raw.fetchval("SELECT count(*) FROM sales_order") == 0
    assert await raw.fetchval("SELECT count(*) FROM catalog_product") == 0


HOSTILE_JSON = {
    "an out-of-range number": b'{"x": 1e999}',
    "a bare out-of-range number": b"-1e999",
    "NaN": b'{"x": NaN}',
    "Infinity": b'{"x": [Infinity]}',
    "a lone surrogate": b'{"x": "\\ud800"}',
    "a lone surrogate in a key": b'{"\\udfff": 1}',
    "NUL in a string": b'{"x": "a\\u0000b"}',
    "NUL in a key": b'{"a\\u0000": 1}',
    "an integer beyond 64 bits": b'{"id": 9223372036854775808}',
    "an integer of 400 digits": b'{"id": 1' + b"0" * 400 + b"}",
    "an integer of 5,000 digits": b"[" + b"7" * 5000 + b"]",
    "5,000 levels of arrays": b"[" * 5000 + b"]" * 5000,
    "5,000 levels of objects": b'{"a":' * 1000 + b"1" + b"}" * 1000,
    "invalid UTF-8": b'{"x": "\xff\xfe"}',
    "truncated JSON": b'{"x": [1, 2',
    "an empty body": b"",
    "a body over the limit": b'{"x": "' + b"a" * BODY_LIMIT + b'"}',
}


@pytest.mark.parametrize("body", HOSTILE_JSON.values(), ids=HOSTILE_JSON.keys())
async def test_every_json_endpoint_refuses_hostile_json_with_a_4xx_and_stores_nothing(client, raw, operations, body):
    swept = [operation for operation in operations if operation.json_body]
    assert len(swept) >= 10
    for operation in swept:
        response = await send(client, operation, body=body)
        if not body and operation.path != WEBHOOK and response.status_code < 300:
            continue  # an optional body (e.g. a cancel's reason) may be left out: that is not hostile
        assert_refused_in_the_usual_shape(operation, response)
    await nothing_accepted(raw)


async def test_a_hostile_webhook_body_is_journaled_as_rejected(client, raw):
    for body in HOSTILE_JSON.values():
        response = await client.post(WEBHOOK, content=body, headers=signed_headers(body))
        assert response.status_code in (400, 413), response.text
    statuses = await raw.fetch("SELECT DISTINCT status::text FROM message")
    assert [row["status"] for row in statuses] == ["rejected"]
    # every refusal but the oversized body (never read whole) left a journal entry saying why
    assert await raw.fetchval("SELECT count(*) FROM message") == len(HOSTILE_JSON) - 1
    reasons = await raw.fetch("SELECT last_error FROM message ORDER BY id")
    assert all(row["last_error"].startswith("ParseError: ") for row in reasons), reasons


async def test_nul_in_any_path_parameter_is_refused_with_a_4xx(client, raw, operations):
    swept = [operation for operation in operations if operation.path_params]
    assert len(swept) >= 10
    for operation in swept:
        for name in operation.path_params:
            response = await send(client, operation, operation.url(**{name: "a\x00b"}))
            assert_refused_in_the_usual_shape(operation, response)
    await nothing_accepted(raw)


async def test_nul_in_any_query_parameter_is_refused_with_a_4xx(client, raw, operations):
    for operation in operations:
        for name in operation.query_params or {"q": "string"}:
            response = await send(client, operation, f"{operation.url()}?{name}=a%00b")
            assert_refused_in_the_usual_shape(operation, response)
    await nothing_accepted(raw)


@pytest.mark.parametrize("value", ["A" * 5000, "99999999999999999999", "-1"], ids=["long", "huge", "negative"])
async def test_an_oversized_path_parameter_never_reaches_the_database(client, raw, operations, value):
    for operation in [operation for operation in operations if operation.path_params]:
        for name in operation.path_params:
            response = await send(client, operation, operation.url(**{name: value}))
            assert response.status_code < 500, f"{operation} {name}: {response.status_code} {response.text[:200]}"
            if response.status_code >= 400:
                assert_refused_in_the_usual_shape(operation, response)
    await nothing_accepted(raw)


async def test_out_of_range_numbers_in_query_parameters_are_refused_with_a_4xx(client, operations):
    swept = [(operation, name) for operation in operations for name, kind in operation.query_params.items()]
    assert len(swept) >= 10
    for operation, name in swept:
        for value in ("1e999", "99999999999999999999999", "NaN", "-0", "A" * 5000):
            response = await send(client, operation, f"{operation.url()}?{name}={value}")
            assert response.status_code < 500, f"{operation} {name}={value[:20]}: {response.text[:200]}"


# --- any JSON at all -----------------------------------------------------------------------------------------
_ATOMS = st.sampled_from(
    [
        "0", "-1", "1.5", "1e308", "1e999", "-1e999", "NaN", "Infinity", "9223372036854775807",
        "9223372036854775808", "true", "null", '""', '"X"', '"\\u0000"', '"\\ud800"', '"\\ud83d\\ude00"',
        '"' + "x" * 300 + '"', '"\\"', "[", "}", ",",
    ]
)  # fmt: skip
_KEYS = st.sampled_from(["id", "sku", "items", "methods", "attributes", "aggregates", "reason", "limit", "rule"])


def _json_text(depth: int = 0) -> st.SearchStrategy[str]:
    if depth > 3:
        return _ATOMS
    child = st.deferred(lambda: _json_text(depth + 1))
    return st.one_of(
        _ATOMS,
        st.lists(child, max_size=4).map(lambda items: "[" + ",".join(items) + "]"),
        st.dictionaries(_KEYS, child, max_size=4).map(
            lambda entries: "{" + ",".join(f'"{key}":{value}' for key, value in entries.items()) + "}"
        ),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=_json_text(), pick=st.integers(min_value=0))
async def test_any_json_text_to_any_json_endpoint_never_gets_a_5xx(client, operations, text, pick):
    swept = [operation for operation in operations if operation.json_body]
    operation = swept[pick % len(swept)]
    response = await send(client, operation, body=text.encode())
    assert response.status_code < 500, f"{operation} {text[:200]}: {response.text[:300]}"
    if response.status_code >= 400:
        assert_refused_in_the_usual_shape(operation, response)


async def test_an_unexpected_error_is_a_json_500_with_a_request_id_and_one_log_line(runtime, caplog, monkeypatch):
    from app.main import create_app

    app = create_app(runtime, start_workers=False, register=False)

    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("the disk caught fire")

    monkeypatch.setattr(runtime.journal, "search", broken)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.get(
            "/journal", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}", "X-Request-ID": "ticket-4711"}
        )
    assert response.status_code == 500
    assert response.json() == {
        "detail": "unexpected error (RuntimeError); quote request id ticket-4711",
        "error": "InternalError",
        "request_id": "ticket-4711",
    }
    assert response.headers["x-request-id"] == "ticket-4711"
    errors = [record for record in caplog.records if record.levelname == "ERROR"]
    assert len(errors) == 1 and errors[0].exc_info is None
    assert "ticket-4711" in errors[0].getMessage() and "the disk caught fire" in errors[0].getMessage()
    assert json.dumps(response.json())  # a JSON body, not the plain-text "Internal Server Error"
