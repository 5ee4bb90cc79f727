"""Handler for `magento.sales.order_management.created` (protocol §3.4): the OMS confirms it has the order. Its
params echo the create call; the order is matched by ``order.id`` and its export becomes *acknowledged*. The OMS
has the order now, so the order's calls that waited for its create (a cancel, a return request) join its lane, and a
create not sent yet (``orders sync`` queued it after one whose answer was lost) is discarded, in this message's
transaction (app/services/order_gate.py)."""

from __future__ import annotations

from typing import Any

from app.data.orders import ACKNOWLEDGE_ORDER
from app.errors import PermanentHandlerError
from app.services.order_gate import acknowledged_order_calls
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
            ACKNOWLEDGE_ORDER, {"increment_id": number, "now": context.now, "message_id": message.id}
        )
    ).first()
    if row is None:
        raise PermanentHandlerError(f"order.id: order {number} was never posted to this connector")
    # After the order row's update (which waits for a call being held under its lock): this statement sees it.
    superseded, released = await acknowledged_order_calls(context.connection, number, context.now, message.id)
    summary: dict[str, Any] = {
        "order": number,
        "acknowledged": True,
        "first_acknowledgement": row.acknowledged_message_id == message.id,
    }
    if superseded:
        summary["creates_not_sent"] = superseded
    if released:
        summary["released_calls"] = released
    return summary
