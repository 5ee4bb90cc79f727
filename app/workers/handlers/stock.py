"""Handler for `magento.inventory.aggregate_stock_management.updated`: apply the OMS's stock with the timestamp
filter, all-or-nothing per message.

The whole message is one set-based statement (``APPLY_STOCK``) in the message's own transaction: either every
row that passes the filter is written and the message is recorded succeeded, or nothing is. A SKU absent from the
message is left unchanged in every mode: a FULL or NONZERO snapshot may span many messages (pages) and the
protocol says neither how many nor which is the last, so "absent ⇒ zero" cannot be decided from one message
without zeroing the SKUs of the other pages.
"""

from __future__ import annotations

import logging
from typing import Any

from app.protocol.stock import EmptySnapshot, parse_snapshot
from app.workers import queries
from app.workers.registry import HandlerContext, InboundMessage

log = logging.getLogger(__name__)


async def handle(context: HandlerContext, message: InboundMessage) -> dict[str, Any]:
    snapshot = parse_snapshot(message.payload, zone=context.settings.oms_zone, received_at=message.received_at)
    if isinstance(snapshot, EmptySnapshot):
        log.warning(
            "stock message ignored: %s", snapshot.reason, extra={"action": "stock_ignored", "message_id": message.id}
        )
        return {"applied": 0, "stale": 0, "ignored": snapshot.reason}
    applied = 0
    if snapshot.skus:
        result = await context.connection.execute(
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
    summary: dict[str, Any] = {
        "aggregate_id": snapshot.aggregate_id,
        "mode": snapshot.mode.value,
        "created_on": snapshot.created_on.isoformat(),
        "created_on_source": "message" if snapshot.created_on_given else "received_at",
        "skus": len(snapshot.skus),
        "applied": applied,
        "stale": len(snapshot.skus) - applied,
    }
    if snapshot.repeated_skus:
        summary["repeated_skus"] = snapshot.repeated_skus
    return summary
