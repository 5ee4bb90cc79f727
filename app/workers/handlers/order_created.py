"""Handler for `magento.sales.order_management.created` (protocol §3.4): the OMS confirms it has the order. Its
params echo the create call; the order is matched by ``order.id`` and its export becomes *acknowledged*."""

from __future__ import annotations

from typing import Any

from app.errors import PermanentHandlerError
from app.workers import queries
from app.workers.registry import HandlerContext, HandlerRegistry, InboundMessage

ORDER_CREATED = "magento.sales.order_management.created"


def install(registry: HandlerRegistry) -> None:
    registry.register(ORDER_CREATED, handle)


async def handle(context: HandlerContext, message: InboundMessage) -> dict[str, Any]:
    payload = message.payload or {}
    order = payload.get("order")
    number = order.get("id") if isinstance(order, dict) else None
    if isinstance(number, int) and not isinstance(number, bool):
        number = str(number)
    if not isinstance(number, str) or not number.strip():
        raise PermanentHandlerError("order.id: missing; cannot tell which order the OMS acknowledges")
    number = number.strip()
    row = (
        await context.connection.execute(
            queries.ACKNOWLEDGE_ORDER, {"increment_id": number, "now": context.now, "message_id": message.id}
        )
    ).first()
    if row is None:
        raise PermanentHandlerError(f"order.id: order {number} was never posted to this connector")
    return {"order": number, "acknowledged": True, "first_acknowledgement": row.acknowledged_message_id == message.id}
