"""app.protocol.strict_json: the JSON every endpoint accepts. A property test holds ``loads`` to an independent
statement of the rules on any JSON document; the named tests pin the edges the cheap pre-scans must not get wrong."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.protocol.strict_json import MAX_DEPTH, MAX_INT, MIN_INT, UnacceptableJson, loads


def acceptable(value: Any, depth: int = 0) -> bool:
    """The rules, written plainly (recursively) for the property test."""
    if isinstance(value, dict | list):
        if depth + 1 > MAX_DEPTH:
            return False
        items = list(value.items()) if isinstance(value, dict) else [(None, item) for item in value]
        return all((key is None or acceptable(key)) and acceptable(item, depth + 1) for key, item in items)
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int):
        return MIN_INT <= value <= MAX_INT
    if isinstance(value, float):
        return math.isfinite(value)
    assert isinstance(value, str)
    return "\x00" not in value and not any(0xD800 <= ord(char) <= 0xDFFF for char in value)


_TEXT = st.text(
    st.one_of(st.characters(), st.sampled_from(["\x00", "\ud800", "\udfff", "[", "{", "\\", '"', "😀"])), max_size=8
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=MIN_INT, max_value=MAX_INT),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    _TEXT,
)
_DOCUMENTS = st.recursive(
    _SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(_TEXT, children, max_size=4)),
    max_leaves=30,
)


def nested(levels: int, inner: Any = 1) -> Any:
    for level in range(levels):
        inner = [inner] if level % 2 else {"k": inner}
    return inner


@settings(max_examples=400)
@given(document=st.one_of(_DOCUMENTS, st.integers(1, 40).map(nested)))
def test_loads_accepts_exactly_the_documents_the_rules_allow_and_reads_them_as_json_does(document):
    body = json.dumps(document).encode()  # ensure_ascii: lone surrogates and NUL become \u escapes
    if acceptable(document):
        assert loads(body) == json.loads(body) or _has_nan(document)
    else:
        with pytest.raises(UnacceptableJson):
            loads(body)


def _has_nan(document: Any) -> bool:
    return "NaN" in json.dumps(document)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"x": 1e999}', "out of range"),
        (b"NaN", "NaN is not a JSON number"),
        (b"[-Infinity]", "-Infinity is not a JSON number"),
        (b'"\\ud800"', "lone surrogate"),
        (b'{"\\u0000": 1}', "NUL"),
        (b"9223372036854775808", "does not fit in 64 bits"),
        (b"-9223372036854775809", "does not fit in 64 bits"),
        (b"1" * 5000, "5000 digits"),
        (b"[" * 100_000 + b"]" * 100_000, f"nested more than {MAX_DEPTH} levels"),
        (b'{"x": "\xc3\x28"}', "not UTF-8"),
        (b'{"x": ', "not valid JSON"),
    ],
)
def test_each_rule_is_refused_with_its_reason(body, reason):
    with pytest.raises(UnacceptableJson, match=reason.replace("(", r"\(")):
        loads(body)


def test_exactly_max_depth_levels_are_accepted_and_one_more_refused():
    assert loads(json.dumps(nested(MAX_DEPTH))) == nested(MAX_DEPTH)
    with pytest.raises(UnacceptableJson, match="nested"):
        loads(json.dumps(nested(MAX_DEPTH + 1)))


def test_brackets_inside_strings_do_not_count_as_nesting():
    document = {"a": "[[[[{{{{" * 20, "b": "]]]]" * 50}
    assert loads(json.dumps(document)) == document


def test_an_escaped_backslash_before_u0000_is_text_not_nul():
    assert loads(rb'{"path": "C:\\u0000"}') == {"path": "C:\\u0000"}


def test_a_surrogate_pair_is_one_character_and_accepted():
    assert loads(b'"\\ud83d\\ude00"') == "😀"


def test_the_64_bit_bounds_are_accepted_and_long_digit_runs_in_strings_are_fine():
    assert loads(f"[{MIN_INT}, {MAX_INT}, 1e308]") == [MIN_INT, MAX_INT, 1e308]
    assert loads('{"ean": "12345678901234567890123"}') == {"ean": "12345678901234567890123"}


def test_decimals_reads_fractions_as_decimal_and_keeps_the_same_range():
    assert loads(b'{"total": 12.50, "qty": 2}', decimals=True) == {"total": Decimal("12.50"), "qty": 2}
    with pytest.raises(UnacceptableJson, match="out of range"):
        loads(b'{"total": 1e400}', decimals=True)


def test_a_str_with_a_lone_surrogate_is_refused():
    with pytest.raises(UnacceptableJson, match="lone surrogate"):
        loads('{"x": "\ud800"}')
