"""The JSON this service accepts — decided here, once, for every endpoint.

Whatever an outsider sends (the OMS's webhook, the store's orders and products, an operator's request) is read by
``loads``; routers that let FastAPI parse the body get it through ``app/routers/route.py``, so a new endpoint cannot
forget these rules:

* UTF-8 text holding one JSON value (RFC 8259), nested at most ``MAX_DEPTH`` arrays or objects deep;
* integers within 64 bits (PostgreSQL's ``bigint``), other numbers finite: ``NaN``, ``Infinity`` and ``1e999``
  (a double's overflow) are refused;
* strings and keys without NUL (``\\u0000``: PostgreSQL text cannot hold it) and without a lone surrogate
  (``\\ud800``: not a Unicode character; it cannot be stored as UTF-8);
* a key given twice in one object: the last one counts (as in every JSON parser we meet, PostgreSQL's included).

Why here and not in each model: a value that breaks these rules fails somewhere deep down (an ``OverflowError`` in
a response encoder, ``RecursionError`` in a walk, PostgreSQL refusing a row), long after the work it sized began.
The checks cost little: cheap scans of the raw bytes decide whether the exact (slower) check is needed at all, so a
5,000-SKU stock page pays ~0.5 ms on top of the ~3 ms its parse takes.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

MAX_DEPTH = 32  # arrays/objects; the deepest real payload (an order's item options) is under 10
MAX_INT = 2**63 - 1
MIN_INT = -(2**63)
_MAX_INT_DIGITS = len(str(MAX_INT))  # 19: a longer digit run may be a too-large integer (or a long string)
_DOUBLE_MAX_EXPONENT = 308  # the largest double is 1.79…e308: only numbers this large can overflow one

_BRACKETS_ONLY = bytes(c for c in range(256) if c not in b"[]{}")  # bytes.translate(None, delete=…)
_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= c <= 0x39 else 0x20 for c in range(256))
_LONG_DIGIT_RUN = b"0" * _MAX_INT_DIGITS
# \u0000 or a \ud800-\udfff escape (a surrogate; it may still be half of a valid pair): worth the exact check.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


class UnacceptableJson(json.JSONDecodeError):
    """The body is not JSON this service accepts (malformed, or against one of the module's rules).

    A ``JSONDecodeError``, so that FastAPI answers it as the JSON error it is (app/main.py renders it in the usual
    error shape)."""

    def __init__(self, reason: str, document: str = "", position: int = 0) -> None:
        super().__init__(reason, document, position)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


def loads(body: bytes | str, *, decimals: bool = False) -> Any:
    """Parse ``body`` under the rules above. ``decimals``: numbers with a fraction or an exponent become
    ``Decimal`` (money), not float. Raises UnacceptableJson with the reason."""
    raw = _as_bytes(body)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnacceptableJson(f"not UTF-8 text (byte {exc.start})") from None
    exact_depth = not _shallow(raw)
    big_numbers = _LONG_DIGIT_RUN in raw.translate(_DIGITS_AS_ZERO)
    suspect_strings = _SUSPECT_ESCAPE.search(raw) is not None
    try:
        document = _DECODERS[decimals, big_numbers].decode(text)
    except UnacceptableJson:
        raise
    except json.JSONDecodeError as exc:
        raise UnacceptableJson(f"not valid JSON: {exc}", text, exc.pos) from None
    except RecursionError:
        raise UnacceptableJson(f"nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:  # from a hook, or int()'s digit limit
        raise UnacceptableJson(str(exc)) from None
    if exact_depth and _depth(document) > MAX_DEPTH:
        raise UnacceptableJson(f"nested more than {MAX_DEPTH} levels deep")
    if suspect_strings:
        _check_strings(document)
    return document


def _as_bytes(body: bytes | str) -> bytes:
    if isinstance(body, bytes):
        return body
    try:
        return body.encode("utf-8")
    except UnicodeEncodeError:
        raise UnacceptableJson("contains a lone surrogate (not a Unicode character)") from None


def _shallow(raw: bytes) -> bool:
    """True when the brackets of ``raw`` certainly nest at most MAX_DEPTH deep; False means "check exactly" (brackets
    inside strings are counted too). Each pass removes the innermost pairs at C speed, which peels one or two
    levels: a bracket string emptied within MAX_DEPTH // 2 passes nests at most MAX_DEPTH deep."""
    brackets = raw.translate(None, _BRACKETS_ONLY)
    for _ in range(MAX_DEPTH // 2):
        if not brackets:
            return True
        peeled = brackets.replace(b"{}", b"").replace(b"[]", b"")
        if peeled == brackets:
            return False
        brackets = peeled
    return not brackets


def _depth(document: Any) -> int:
    deepest = 0
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def _check_strings(document: Any) -> None:
    stack: list[Any] = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                _check_string(key)
                stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str):
            _check_string(node)


def _check_string(value: str) -> None:
    if "\x00" in value:
        raise UnacceptableJson("a string contains NUL (\\u0000), which cannot be stored")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UnacceptableJson(f"a string contains a lone surrogate ({value[:40]!r}…): not Unicode text") from None


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > _MAX_INT_DIGITS:
        raise ValueError(f"the integer {text[:24]}… has {digits} digits: integers must fit in 64 bits")
    value = int(text)
    if not MIN_INT <= value <= MAX_INT:
        raise ValueError(f"the integer {text} does not fit in 64 bits")
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:24]} is out of range (beyond ±1.8e308)")
    return value


def _decimal(text: str) -> Decimal:
    value = Decimal(text)
    if value.adjusted() >= _DOUBLE_MAX_EXPONENT:  # the same range as floats: a peer reading it must not see infinity
        _finite_float(text)
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


# (numbers with a fraction as Decimal, integers checked one by one) → decoder. The exact integer check costs a call
# per integer: only bodies with a long digit run pay it.
_DECODERS = {
    (decimals, check_ints): json.JSONDecoder(
        parse_float=_decimal if decimals else _finite_float,
        parse_int=_bounded_int if check_ints else None,
        parse_constant=_refuse_constant,
    )
    for decimals in (False, True)
    for check_ints in (False, True)
}
