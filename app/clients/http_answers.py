"""Reading peers' HTTP answers the same way for every client: Retry-After, and error text short enough for the
journal."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

MAX_ERROR_TEXT = 500


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def shorten(text: str) -> str:
    """One line, at most MAX_ERROR_TEXT characters: an HTML error page must not flood the journal."""
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_TEXT else text[:MAX_ERROR_TEXT] + "…"
