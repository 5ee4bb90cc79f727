"""Decimal amounts on the wire. JSON has one number type and the peers read it as a double (protocol §6 #6:
*send* numbers), so an amount leaves as the float whose shortest text is the amount itself. Money is computed in
``Decimal`` throughout; this is only the last step of writing JSON, and it checks that nothing was rounded."""

from __future__ import annotations

from decimal import Decimal
from typing import Any


class InexactNumber(ValueError):
    """A Decimal would not survive as a JSON number (more than 15 significant digits)."""


def wire_number(value: Decimal) -> float:
    number = float(value)
    if Decimal(repr(number)) != value:
        raise InexactNumber(f"{value} cannot be sent as a JSON number without rounding")
    return number


_LEAVES = frozenset({str, int, float, bool, type(None)})  # left as they are, without a call per value


def jsonable(value: Any) -> Any:
    """``value`` with every Decimal replaced by its exact JSON number (dicts and lists walked)."""
    if isinstance(value, Decimal):
        return wire_number(value)
    if isinstance(value, dict):
        return {key: item if type(item) in _LEAVES else jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [item if type(item) in _LEAVES else jsonable(item) for item in value]
    return value
