"""Handler for `magento.inventory.aggregate_stock_management.updated`: apply the OMS's stock with the timestamp
filter, all-or-nothing per message.

The whole message is one set-based statement in the message's own transaction: either every row that passes the
filter is written and the message is recorded succeeded, or nothing is. A large message (a FULL page) is applied
inside PostgreSQL straight from the stored payload (``APPLY_STOCK_FROM_MESSAGE``: it never travels to Python and
back); a small one, or one with any unusual row, is read by app/protocol/stock.py, which tolerates what peers send
sloppily, names the field of anything bad, and applies the cleaned rows with ``APPLY_STOCK``.

A SKU absent from the message is left unchanged in every mode: a FULL or NONZERO snapshot may span many messages
(pages) and the protocol says neither how many nor which is the last, so "absent ⇒ zero" cannot be decided from one
message without zeroing the SKUs of the other pages.
"""

from __future__ import annotations

import logging
from typing import Any

from app.protocol.stock import STOCK_UPDATED, EmptySnapshot, StockSnapshot, parse_snapshot
from app.workers import queries
from app.workers.registry import HandlerContext, HandlerRegistry, InboundMessage

log = logging.getLogger(__name__)


def install(registry: HandlerRegistry) -> None:
    registry.register(STOCK_UPDATED, handle, fetch_large_payload=False)


async def handle(context: HandlerContext, message: InboundMessage) -> dict[str, Any]:
    connection = context.connection
    zone, received_at = context.settings.oms_zone, message.received_at
    if message.payload is None:
        header = (await connection.execute(queries.STOCK_HEADER, {"message_id": message.id})).scalar_one()
        if header is not None:
            # The snapshot's own fields, checked by the same code as always; its rows are checked in SQL.
            fields = parse_snapshot({"snapshot": {**header, "stock": []}}, zone=zone, received_at=received_at)
            assert isinstance(fields, StockSnapshot)
            outcome = (
                await connection.execute(
                    queries.APPLY_STOCK_FROM_MESSAGE,
                    {
                        "message_id": message.id,
                        "aggregate_id": fields.aggregate_id,
                        "source_ts": fields.created_on,
                        "now": context.now,
                    },
                )
            ).one()
            if outcome.first_irregular is None:
                return _summary(
                    fields, skus=outcome.skus, applied=outcome.applied, repeated=outcome.rows - outcome.skus
                )
        payload = (await connection.execute(queries.MESSAGE_PAYLOAD, {"message_id": message.id})).scalar_one()
    else:
        payload = message.payload
    snapshot = parse_snapshot(payload, zone=zone, received_at=received_at)
    if isinstance(snapshot, EmptySnapshot):
        log.warning(
            "stock message ignored: %s", snapshot.reason, extra={"action": "stock_ignored", "message_id": message.id}
        )
        return {"applied": 0, "stale": 0, "ignored": snapshot.reason}
    applied = 0
    if snapshot.skus:
        result = await connection.execute(
            queries.APPLY_STOCK,
            {
                "aggregate_id": snapshot.aggregate_id,
                "source_ts": snapshot.created_on,
                "message_id": message.id,
                "now": context.now,
                "skus": snapshot.skus,
                "quantities": snapshot.quantities,
                "unlimited": snapshot.unlimited,
            },
        )
        applied = int(result.scalar_one())
    return _summary(snapshot, skus=len(snapshot.skus), applied=applied, repeated=snapshot.repeated_skus)


def _summary(snapshot: StockSnapshot, *, skus: int, applied: int, repeated: int) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "aggregate_id": snapshot.aggregate_id,
        "mode": snapshot.mode.value,
        "created_on": snapshot.created_on.isoformat(),
        "created_on_source": "message" if snapshot.created_on_given else "received_at",
        "skus": skus,
        "applied": applied,
        "stale": skus - applied,
    }
    if repeated:
        summary["repeated_skus"] = repeated
    return summary
