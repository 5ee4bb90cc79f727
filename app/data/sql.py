"""Helpers shared by the statement modules."""

from __future__ import annotations

import re

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
