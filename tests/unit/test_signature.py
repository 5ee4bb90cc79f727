from __future__ import annotations

import pytest

from app.errors import SignatureInvalid
from app.protocol.signature import sign, verify

SECRET = b"9f2c7e41b8d04a6e"
VECTOR_BODY = (
    b'{"jsonrpc":"2.0","id":"65c8f0a1b2c3d4.51234567","method":"magento.inventory.aggregate_stock_management.updated",'
    b'"params":{"snapshot":{"aggregate_id":"EU-WEB","created_on":"2025-02-11 09:30:00","mode":"DELTA",'
    b'"stock":[{"quantity":"7","sku":"MUG-STONE-350"}]}}}'
)


def test_sign_reproduces_the_protocol_test_vector():
    assert len(VECTOR_BODY) == 259
    assert sign(VECTOR_BODY, SECRET) == "sha1=d64079a7fe34b905abb965eb97f7d8d7c81e2ae6"


def test_verify_accepts_the_test_vector_with_upper_case_hex_and_spaces():
    verify(VECTOR_BODY, " sha1=D64079A7FE34B905ABB965EB97F7D8D7C81E2AE6 ", [SECRET])


def test_verify_accepts_sha256():
    verify(VECTOR_BODY, sign(VECTOR_BODY, SECRET, "sha256"), [SECRET])


def test_verify_accepts_any_configured_secret():
    verify(VECTOR_BODY, sign(VECTOR_BODY, b"old"), [SECRET, b"old"])


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing"),
        ("", "missing"),
        ("sha1", "must be"),
        ("md5=00", "must be"),
        ("sha1=" + "0" * 40, "does not match"),
    ],
)
def test_verify_refuses_with_a_reason(header, reason):
    with pytest.raises(SignatureInvalid, match=reason):
        verify(VECTOR_BODY, header, [SECRET])


def test_verify_refuses_a_re_serialised_body():
    # The signature covers the exact bytes: the same JSON with other spacing does not verify.
    header = sign(VECTOR_BODY, SECRET)
    with pytest.raises(SignatureInvalid):
        verify(VECTOR_BODY.replace(b'":"', b'": "'), header, [SECRET])


def test_verify_refuses_when_no_secret_is_configured():
    with pytest.raises(SignatureInvalid, match="no signing secret"):
        verify(VECTOR_BODY, sign(VECTOR_BODY, SECRET), [])
