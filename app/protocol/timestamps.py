"""OMS timestamps in the three shapes real peers send (protocol §6, row 14).

``2025-02-11T09:30:00+02:00`` (ISO 8601 with offset), ``2025-02-11 09:30:00+02:00``, and ``2025-02-11 09:30:00``
with no zone (the PHP peer, server-local time): a zoneless time is read in the configured OMS zone.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

MAX_TIMESTAMP_CHARS = 64


class InvalidTimestamp(ValueError):
    """The text is not a timestamp we can read."""


def parse_oms_timestamp(value: object, zone: tzinfo) -> datetime:
    """An aware UTC datetime for ``value``; a zoneless time is taken as wall-clock time in ``zone``.

    Raises InvalidTimestamp for anything else (numbers, empty text, impossible dates)."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TIMESTAMP_CHARS:
        raise InvalidTimestamp(f"expected 'YYYY-MM-DD HH:MM:SS' or ISO 8601, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidTimestamp(f"expected 'YYYY-MM-DD HH:MM:SS' or ISO 8601, got {value!r}") from None
    if parsed.tzinfo is None:
        # An ambiguous wall-clock time (the hour repeated when DST ends) is read as its first occurrence.
        parsed = parsed.replace(tzinfo=zone)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise InvalidTimestamp(f"out of range: {value!r}") from None
