"""Handler for `magento.postsales.return_management.updated` (protocol §3.12): an RMA and its state changes, keyed by
rma. The work is in app/services/lifecycle.py."""

from __future__ import annotations

from typing import Any

from app.protocol.order_events import RETURN_UPDATED, ReturnUpdate, reject_placeholders
from app.services.lifecycle import Lifecycle
from app.workers.registry import HandlerContext, HandlerRegistry, InboundMessage


def install(registry: HandlerRegistry) -> None:
    registry.register(RETURN_UPDATED, handle)


async def handle(context: HandlerContext, message: InboundMessage) -> dict[str, Any]:
    payload = message.payload or {}
    reject_placeholders(payload)
    update = ReturnUpdate.model_validate(payload)
    lifecycle = Lifecycle(context.connection, context.settings, context.outbox, context.now)
    return await lifecycle.return_update(update.return_, message.id)
