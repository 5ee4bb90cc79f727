"""Orders as the stub Adobe Commerce serves them to the order pull: realistic documents (tests/support/orders.py)
with their own ``entity_id``, order number and ``updated_at``, as JSON numbers (what comes over the wire)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.orders import commerce_order, order_body

START = datetime(2026, 3, 1, 8, 0, 0, tzinfo=UTC)  # the stub store's first order time


def at(seconds: float) -> str:
    """``START`` plus ``seconds``, as Adobe Commerce writes ``updated_at`` (UTC, no zone)."""
    return (START + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S")


def number(entity_id: int) -> str:
    """The order number of the order ``entity_id`` (9 digits, as Adobe Commerce numbers orders)."""
    return str(700_000_000 + entity_id)


def store_order(entity_id: int, *, updated_at: str, status: str = "pending", **overrides: Any) -> dict[str, Any]:
    """A valid order (one simple item, flat-rate shipping) the store holds: exportable when ``pending``."""
    document = commerce_order(
        entity_id=entity_id,
        increment_id=number(entity_id),
        status=status,
        created_at=updated_at,
        updated_at=updated_at,
        **overrides,
    )
    return dict(json.loads(order_body(document)))
