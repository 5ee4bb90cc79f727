"""A handler plugin for tests (installed via HANDLER_PLUGINS or directly): it records each message it processes
in ``test_effect`` inside the message's own transaction, so tests can check exactly-once and lane order.

Payload knobs: ``{"seq": n}`` recorded; ``{"fail": "permanent"}`` raises PermanentHandlerError;
``{"fail_attempts": k}`` raises a transient error while fewer than k attempts were made;
``{"sleep": s}`` sleeps s seconds after recording (to kill a worker mid-message);
``{"sleep_once": s, "marker": path}`` sleeps s seconds after recording only while the file ``path`` does not exist
(the handler creates it first), so a message can hang in one worker and go straight through in the next.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from sqlalchemy import text

from app.errors import PermanentHandlerError, TransientHandlerError
from app.settings import Settings
from app.workers.registry import HandlerContext, HandlerRegistry, InboundMessage

# The methods the test handler takes: each is its own lane.
TEST_TOPICS = (
    "magento.sales.order_management.created",
    "magento.sales.order_management.updated",
    "magento.logistics.fulfillment_management.customer_shipment_done",
    "magento.postsales.return_management.updated",
)

CREATE_EFFECT_TABLE = text(
    """
    CREATE TABLE IF NOT EXISTS test_effect (
        message_id bigint NOT NULL,
        lane text NOT NULL,
        seq integer,
        pid integer NOT NULL,
        at timestamptz NOT NULL DEFAULT clock_timestamp()
    )
    """
)


async def record_effect(context: HandlerContext, message: InboundMessage) -> dict[str, Any]:
    payload = message.payload
    if payload.get("fail") == "permanent":
        raise PermanentHandlerError("params.fail: asked to fail permanently")
    if message.attempts < int(payload.get("fail_attempts", 0)):
        raise TransientHandlerError(f"asked to fail {payload['fail_attempts']} times")
    await context.connection.execute(
        text("INSERT INTO test_effect (message_id, lane, seq, pid) VALUES (:id, :lane, :seq, :pid)"),
        {"id": message.id, "lane": message.lane, "seq": payload.get("seq"), "pid": os.getpid()},
    )
    if payload.get("sleep"):
        await asyncio.sleep(float(payload["sleep"]))
    if payload.get("sleep_once") and payload.get("marker"):
        marker = Path(payload["marker"])
        if not marker.exists():
            marker.touch()
            await asyncio.sleep(float(payload["sleep_once"]))
    if payload.get("enqueue"):
        await context.outbox.enqueue(
            context.connection, method=payload["enqueue"], params={"from": message.id}, now=context.now
        )
    return {"recorded": True}


def install(registry: HandlerRegistry, settings: Settings) -> None:
    for topic in TEST_TOPICS:
        registry.register(topic, record_effect, replace=True)
