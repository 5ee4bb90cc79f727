"""Handler for `magento.logistics.fulfillment_management.customer_shipment_done` (protocol §3.6): a shipment with its
lines and packages, once per shipment id. The work is in app/services/lifecycle.py."""

from __future__ import annotations

from typing import Any

from app.protocol.order_events import SHIPMENT_DONE, ShipmentDone, reject_placeholders
from app.services.lifecycle import Lifecycle
from app.workers.registry import HandlerContext, HandlerRegistry, InboundMessage


def install(registry: HandlerRegistry) -> None:
    registry.register(SHIPMENT_DONE, handle)


async def handle(context: HandlerContext, message: InboundMessage) -> dict[str, Any]:
    payload = message.payload or {}
    reject_placeholders(payload)
    update = ShipmentDone.model_validate(payload)
    lifecycle = Lifecycle(context.connection, context.settings, context.outbox, context.now)
    return await lifecycle.shipment(update.shipment, message.id)
