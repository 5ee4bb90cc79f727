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

from app.data.bus import MESSAGE_PAYLOAD
from app.data.stock import APPLY_STOCK, APPLY_STOCK_FROM_MESSAGE, QUEUE_SOURCE_ITEMS, STOCK_HEADER
from app.protocol.stock import STOCK_UPDATED, EmptySnapshot, StockSnapshot, parse_snapshot
from app.services.commerce_effects import COMMERCE_CHANNEL, SOURCE_ITEMS
from app.workers.registry import HandlerContext, HandlerRegistry, InboundMessage

log = logging.getLogger(__name__)


def install(registry: HandlerRegistry) -> None:
    registry.register(STOCK_UPDATED, handle, fetch_large_payload=False)


async def handle(context: HandlerContext, message: InboundMessage) -> dict[str, Any]:
    connection = context.connection
    zone, received_at = context.settings.oms_zone, message.received_at
    if message.payload is None:
        header = (await connection.execute(STOCK_HEADER, {"message_id": message.id})).scalar_one()
        if header is not None:
            # The snapshot's own fields, checked by the same code as always; its rows are checked in SQL.
            fields = parse_snapshot({"snapshot": {**header, "stock": []}}, zone=zone, received_at=received_at)
            assert isinstance(fields, StockSnapshot)
            outcome = (
                await connection.execute(
                    APPLY_STOCK_FROM_MESSAGE,
                    {
                        "message_id": message.id,
                        "aggregate_id": fields.aggregate_id,
                        "source_ts": fields.created_on,
                        "now": context.now,
                    },
                )
            ).one()
            if outcome.first_irregular is None:
                summary = _summary(
                    fields, skus=outcome.skus, applied=outcome.applied, repeated=outcome.rows - outcome.skus
                )
                return await _to_commerce(context, message, fields, None, summary)
        payload = (await connection.execute(MESSAGE_PAYLOAD, {"message_id": message.id})).scalar_one()
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
            APPLY_STOCK,
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
    summary = _summary(snapshot, skus=len(snapshot.skus), applied=applied, repeated=snapshot.repeated_skus)
    return await _to_commerce(context, message, snapshot, snapshot.skus, summary)


async def _to_commerce(
    context: HandlerContext,
    message: InboundMessage,
    snapshot: StockSnapshot,
    skus: list[str] | None,
    summary: dict[str, Any],
) -> dict[str, Any]:
    """Queue what this message applied as Adobe Commerce source items, in the same transaction (#5, Part B), when
    ADOBE_COMMERCE_* is set and the aggregate has a source code in ADOBE_COMMERCE_SOURCE_CODES."""
    settings = context.settings
    source_code = settings.adobe_commerce_source_codes.get(snapshot.aggregate_id)
    if not settings.commerce_configured or source_code is None or not summary["applied"]:
        return summary
    queued = (
        await context.connection.execute(
            QUEUE_SOURCE_ITEMS,
            {
                "skus": skus,
                "message_id": message.id,
                "aggregate_id": snapshot.aggregate_id,
                "source_code": source_code,
                "batch": settings.adobe_commerce_source_items_batch,
                "channel": COMMERCE_CHANNEL,
                "topic": SOURCE_ITEMS,
                "key_prefix": f"{settings.oms_application_id}-commerce-stock-{message.id}-",
                "lane": f"commerce/stock/{source_code}",
                "now": context.now,
            },
        )
    ).one()
    summary["commerce_source_items"] = {"source_code": source_code, "skus": queued.skus, "batches": queued.messages}
    return summary


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
