"""Handler for `magento.sales.order_management.updated` (protocol §3.5): the OMS's order status and line statuses; each
change adds one entry to the status history. The work is in app/services/lifecycle.py."""

from __future__ import annotations

from typing import Any

from app.protocol.order_events import ORDER_UPDATED, OrderUpdate, reject_placeholders
from app.services.lifecycle import Lifecycle
from app.workers.registry import HandlerContext, HandlerRegistry, InboundMessage


def install(registry: HandlerRegistry) -> None:
    registry.register(ORDER_UPDATED, handle)


async def handle(context: HandlerContext, message: InboundMessage) -> dict[str, Any]:
    payload = message.payload or {}
    reject_placeholders(payload)
    update = OrderUpdate.model_validate(payload)
    lifecycle = Lifecycle(context.connection, context.settings, context.outbox, context.now)
    return await lifecycle.status_update(update.order, message.id)
