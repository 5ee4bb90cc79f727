from __future__ import annotations

import pytest

from app.errors import InvalidRequest, ParseError
from app.protocol.jsonrpc import best_effort_id, parse_request


def test_a_full_request_is_parsed():
    request = parse_request(b'{"jsonrpc":"2.0","id":"a1","method":" m.x ","params":{"k":1}}')
    assert (request.method, request.params, request.id, request.message_id) == ("m.x", {"k": 1}, "a1", "a1")


def test_a_numeric_id_keeps_its_type_for_the_answer_and_is_text_as_a_key():
    request = parse_request(b'{"id":42,"method":"m","params":{}}')
    assert request.id == 42
    assert request.message_id == "42"


def test_without_id_the_key_is_a_hash_of_the_exact_body():
    first = parse_request(b'{"method":"m","params":{}}')
    second = parse_request(b'{"method":"m", "params":{}}')
    assert first.id is None
    assert first.message_id.startswith("body-sha256:")
    assert first.message_id != second.message_id


@pytest.mark.parametrize("body", [b"", b"  \n", b"{", b"\xff\xfe", b"nan-json"])
def test_unparseable_bodies_raise_parse_error(body):
    with pytest.raises(ParseError):
        parse_request(body)


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b"1",
        b'{"params":{}}',
        b'{"method":1,"params":{}}',
        b'{"method":"","params":{}}',
        b'{"method":"m"}',
        b'{"method":"m","params":"x"}',
        b'{"method":"m","params":{},"jsonrpc":"1.0"}',
        b'{"method":"m","params":{},"id":true}',
        b'{"method":"m","params":{},"id":[1]}',
        b'{"method":"m","params":{},"id":""}',
        b'{"method":"m","params":{},"id":"' + b"x" * 201 + b'"}',
    ],
)
def test_invalid_requests_raise_invalid_request(body):
    with pytest.raises(InvalidRequest):
        parse_request(body)


def test_best_effort_id_reads_ids_from_requests_we_refuse():
    assert best_effort_id(b'{"id":"x","method":5}') == "x"
    assert best_effort_id(b"not json") is None
    assert best_effort_id(b'{"id":true}') is None
