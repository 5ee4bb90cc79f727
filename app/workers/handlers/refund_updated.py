"""Handler for `magento.postsales.refund_management.updated` (protocol §3.13): a credit memo for the refunded lines
already shipped, once per credit note number. The work is in app/services/lifecycle.py."""

from __future__ import annotations

from typing import Any

from app.protocol.order_events import REFUND_UPDATED, RefundUpdate, reject_placeholders
from app.services.lifecycle import Lifecycle
from app.workers.registry import HandlerContext, HandlerRegistry, InboundMessage


def install(registry: HandlerRegistry) -> None:
    registry.register(REFUND_UPDATED, handle)


async def handle(context: HandlerContext, message: InboundMessage) -> dict[str, Any]:
    payload = message.payload or {}
    reject_placeholders(payload)
    update = RefundUpdate.model_validate(payload)
    lifecycle = Lifecycle(context.connection, context.settings, context.outbox, context.now)
    return await lifecycle.refund(update.refund, message.id)
