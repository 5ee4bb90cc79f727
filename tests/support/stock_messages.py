"""Stock messages stored as the inbox would store them and applied by the stock handler directly (no worker): the
outcome and the stock it leaves, for comparing the ways a message can be applied (tests/integration/test_stock_*)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from app.errors import PermanentHandlerError
from app.protocol.stock import STOCK_UPDATED, header_marks
from app.runtime import Runtime
from app.workers.handlers import stock as stock_handler
from app.workers.registry import HandlerContext, InboundMessage

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def apply_stored(
    runtime: Runtime,
    raw: asyncpg.Connection,
    rows: list[Any],
    *,
    headers: dict[str, Any] | None,
    in_postgres: bool,
    aggregate: str | None = None,
    created_on: str = "2026-01-01 00:00:00",
    mode: str = "FULL",
) -> tuple[Any, Any]:
    """Store a stock message with ``rows`` and these headers (None: what the webhook would store), run the handler on
    it as a claim leaving its payload in the database would (``in_postgres``) or bringing it along, and return the
    outcome (summary or refusal) and the stock of its aggregate (a new one unless given) after it."""
    aggregate = aggregate or f"X-{uuid.uuid4().hex[:8]}"
    params = {"snapshot": {"aggregate_id": aggregate, "mode": mode, "created_on": created_on}}
    params["snapshot"]["stock"] = rows
    stored_headers = header_marks(params) if headers is None else headers
    message_id, payload = await raw.fetchrow(
        "INSERT INTO message (direction, channel, topic, external_id, lane, payload, headers, status,"
        " next_attempt_at, created_at) VALUES ('in', 'oms', $1, $2, $2, $3::jsonb, $4::jsonb, 'succeeded', now(),"
        " now()) RETURNING id, payload",
        STOCK_UPDATED,
        f"{aggregate}-{uuid.uuid4().hex[:8]}",
        json.dumps(params),
        json.dumps(stored_headers),
    )
    claimed = InboundMessage(
        id=message_id,
        topic=STOCK_UPDATED,
        external_id=str(message_id),
        lane=aggregate,
        channel="oms",
        payload=None if in_postgres else json.loads(payload),
        attempts=0,
        received_at=T0,
    )
    try:
        async with runtime.db.connect() as connection:
            context = HandlerContext(
                connection=connection, outbox=runtime.bus.outbox, settings=runtime.settings, now=T0
            )
            summary = await stock_handler.handle(context, claimed)
    except PermanentHandlerError as exc:
        return ("refused", str(exc)), None
    summary.pop("aggregate_id")
    stock = await raw.fetch(
        "SELECT sku, quantity, unlimited FROM stock WHERE aggregate_id = $1 ORDER BY sku", aggregate
    )
    return ("applied", summary), [tuple(r) for r in stock]
