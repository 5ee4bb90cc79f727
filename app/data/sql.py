"""Helpers shared by the statement modules."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import TextClause


def positional(clause: TextClause) -> tuple[str, list[str]]:
    """The same statement for plain asyncpg: ``:name`` → ``$n``, with the parameter names in order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return re.sub(r"(?<![:\w]):(\w+)", number, clause.text), names


@dataclass(frozen=True)
class PlainStatement:
    """A statement for plain asyncpg: its ``$n`` text and how to order named values for it."""

    sql: str
    names: tuple[str, ...]

    @classmethod
    def of(cls, clause: TextClause) -> PlainStatement:
        sql, names = positional(clause)
        return cls(sql, tuple(names))

    def values(self, **parameters: Any) -> list[Any]:
        """The arguments in ``$n`` order (every name is required: a missing one raises KeyError)."""
        return [parameters[name] for name in self.names]
