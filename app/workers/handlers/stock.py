"""Handler for `magento.inventory.aggregate_stock_management.updated`: apply the OMS's stock with the timestamp
filter, all-or-nothing per message.

The whole message is one set-based statement in the message's own transaction: either every row that passes the
filter is written and the message is recorded succeeded, or nothing is. A large message (a FULL page) is applied
inside PostgreSQL straight from the stored payload (``APPLY_STOCK_FROM_MESSAGE``: it never travels to Python and
back; its rows are checked there, unless the inbox found them plain when it stored the message, where the webhook
had them parsed anyway: ``APPLY_PLAIN_STOCK_FROM_MESSAGE``); a small one, or one with any unusual row, is read by
app/protocol/stock.py, which tolerates what peers send sloppily, names the field of anything bad, and applies the
cleaned rows with ``APPLY_STOCK``.

A SKU absent from the message is left unchanged in every mode: a FULL or NONZERO snapshot may span many messages
(pages) and the protocol says neither how many nor which is the last, so "absent ⇒ zero" cannot be decided from one
message without zeroing the SKUs of the other pages.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from app.data.bus import MESSAGE_PAYLOAD
from app.data.stock import (
    APPLY_PLAIN_STOCK_FROM_MESSAGE,
    APPLY_STOCK,
    APPLY_STOCK_BATCH,
    APPLY_STOCK_FROM_MESSAGE,
    QUEUE_SOURCE_ITEMS,
    STOCK_HEADER,
)
from app.protocol.stock import PLAIN_ROWS_MARK, STOCK_UPDATED, EmptySnapshot, StockSnapshot, parse_snapshot
from app.services.commerce_effects import COMMERCE_CHANNEL, SOURCE_ITEMS
from app.workers.registry import HandlerContext, HandlerRegistry, InboundMessage

log = logging.getLogger(__name__)


def install(registry: HandlerRegistry) -> None:
    registry.register(STOCK_UPDATED, handle, fetch_large_payload=False, batch_handler=handle_batch)


async def handle_batch(context: HandlerContext, messages: Sequence[InboundMessage]) -> list[dict[str, Any]] | None:
    """Several messages of one aggregate's lane (DELTAs, typically: one per reservation), applied in one statement
    with the result of applying them in turn (APPLY_STOCK_BATCH: the newest timestamp per SKU wins, ties keep
    arrival order), each with the summary ``handle`` would give it. None — the bus then runs ``handle`` on each,
    in the same transaction — when any of them is not plain: a payload left in the database (a FULL page), one
    that does not parse (``handle`` names its bad field, alone), or stock that also goes to Adobe Commerce (its
    source items are queued per message)."""
    zone = context.settings.oms_zone
    parsed: list[StockSnapshot | EmptySnapshot] = []
    for message in messages:
        if message.payload is None:
            return None
        try:
            snapshot = parse_snapshot(message.payload, zone=zone, received_at=message.received_at)
        except Exception:  # handle() raises the same on its own, and the bus records that message's failure alone
            return None
        if isinstance(snapshot, StockSnapshot) and _goes_to_commerce(context, snapshot):
            return None
        parsed.append(snapshot)
    rows: dict[str, list[Any]] = {key: [] for key in ("message_ids", "aggregate_ids", "source_ts", "skus")}
    rows.update(quantities=[], unlimited=[])
    for message, snapshot in zip(messages, parsed, strict=True):
        if isinstance(snapshot, StockSnapshot):
            count = len(snapshot.skus)
            rows["message_ids"] += [message.id] * count
            rows["aggregate_ids"] += [snapshot.aggregate_id] * count
            rows["source_ts"] += [snapshot.created_on] * count
            rows["skus"] += snapshot.skus
            rows["quantities"] += snapshot.quantities
            rows["unlimited"] += snapshot.unlimited
    applied: dict[int, int] = {}
    if rows["skus"]:
        result = await context.connection.execute(APPLY_STOCK_BATCH, {**rows, "now": context.now})
        applied = {row.message_id: int(row.applied) for row in result}
    summaries = []
    for message, snapshot in zip(messages, parsed, strict=True):
        if isinstance(snapshot, EmptySnapshot):
            summaries.append(_ignored(message, snapshot))
        else:
            summaries.append(
                _summary(
                    snapshot,
                    skus=len(snapshot.skus),
                    applied=applied.get(message.id, 0),
                    repeated=snapshot.repeated_skus,
                )
            )
    return summaries


async def handle(context: HandlerContext, message: InboundMessage) -> dict[str, Any]:
    connection = context.connection
    zone, received_at = context.settings.oms_zone, message.received_at
    if message.payload is None:
        stored = (
            await connection.execute(STOCK_HEADER, {"message_id": message.id, "plain_mark": PLAIN_ROWS_MARK})
        ).one()
        if stored.header is not None:
            # The snapshot's own fields, checked by the same code as always; its rows are checked in SQL, unless the
            # inbox found them plain when it stored the message.
            fields = parse_snapshot({"snapshot": {**stored.header, "stock": []}}, zone=zone, received_at=received_at)
            assert isinstance(fields, StockSnapshot)
            parameters = {
                "message_id": message.id,
                "aggregate_id": fields.aggregate_id,
                "source_ts": fields.created_on,
                "now": context.now,
            }
            if stored.rows_plain:
                applied = (await connection.execute(APPLY_PLAIN_STOCK_FROM_MESSAGE, parameters)).scalar_one()
                summary = _summary(fields, skus=stored.rows, applied=applied, repeated=0)
                return await _to_commerce(context, message, fields, None, summary)
            outcome = (await connection.execute(APPLY_STOCK_FROM_MESSAGE, parameters)).one()
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
        return _ignored(message, snapshot)
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
    if not _goes_to_commerce(context, snapshot) or not summary["applied"]:
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


def _goes_to_commerce(context: HandlerContext, snapshot: StockSnapshot) -> bool:
    settings = context.settings
    return settings.commerce_configured and snapshot.aggregate_id in settings.adobe_commerce_source_codes


def _ignored(message: InboundMessage, snapshot: EmptySnapshot) -> dict[str, Any]:
    log.warning(
        "stock message ignored: %s", snapshot.reason, extra={"action": "stock_ignored", "message_id": message.id}
    )
    return {"applied": 0, "stale": 0, "ignored": snapshot.reason}


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
