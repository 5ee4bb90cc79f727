"""What the store (or an operator) asks of an exported order: cancel it (seed O8) or return some of its items. Both
become calls to the OMS through the outbox, in the order's lane, written in the transaction that records the request
under the order's row lock — by ``enqueue_order_call`` (app/services/order_gate.py), so that they never reach the
OMS before the order's create: a request about an order the OMS does not have yet (its create is still on its way,
or failed, died or was discarded) is accepted and *waits*, and the answer says so and what gets the create sent.
Also: the order's lifecycle as GET /orders/{id} shows it.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.clock import Clock
from app.data.lifecycle import (
    ABANDONED_RETURNS,
    CANCEL_MESSAGE_OF_ORDER,
    INSERT_RETURN,
    ORDER_LIFECYCLE,
    REQUEST_CANCEL,
    SET_RETURN_REQUEST,
)
from app.data.outbox import Outbox
from app.db import Database
from app.errors import LifecycleConflict, NotFound, OrderRejected
from app.models import Status
from app.protocol.order_events import RETURN_AUTHORIZE
from app.schemas import (
    CancelAnswer,
    CancelView,
    CreditMemoView,
    OrderLifecycle,
    ReturnAnswer,
    ReturnRequest,
    ReturnView,
    ShipmentView,
    StatusChange,
    StoreCreditView,
)
from app.services.lifecycle import Line, OrderRecord, lock_order, order_lines
from app.services.order_gate import enqueue_order_call
from app.settings import Settings

RETURN_REQUESTED = "AUTHORIZE_REQUESTED"  # our status for a return the OMS has not answered yet


class OrderActions:
    def __init__(self, db: Database, clock: Clock, settings: Settings, outbox: Outbox) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.outbox = outbox

    async def _exported_order(self, connection: AsyncConnection, increment_id: str, action: str) -> OrderRecord:
        order = await lock_order(connection, increment_id)
        if order is None:
            raise NotFound(f"no order {increment_id} was posted to the connector")
        if order.export_message_id is None:
            raise LifecycleConflict(
                f"order {increment_id} cannot {action}: it was never exported to the OMS (see its export_status)"
            )
        return order

    # --- POST /orders/{id}/cancel ------------------------------------------------------------------------------
    async def cancel(self, increment_id: str, reason: str) -> CancelAnswer:
        method = self.settings.oms_cancel_method
        now = self.clock.now()
        async with self.db.connect() as connection:
            order = await self._exported_order(connection, increment_id, "be canceled")
            status = (order.oms_status or "").upper()

            def answer(
                outcome: str, message_id: int | None, delivery: str | None = None, note: str | None = None
            ) -> CancelAnswer:
                return CancelAnswer(
                    increment_id=increment_id, outcome=outcome, oms_status=order.oms_status, message_id=message_id,
                    method=method, request_delivery=delivery, note=note,
                )  # fmt: skip

            if order.canceled_at is not None:
                return answer("already_canceled", None)
            if status in self.settings.oms_cancel_blocked_statuses:
                raise LifecycleConflict(
                    f"order {increment_id} cannot be canceled: the OMS has it in status {status} "
                    f"(cancel is refused in {', '.join(sorted(self.settings.oms_cancel_blocked_statuses))})"
                )
            call = await enqueue_order_call(
                connection,
                self.outbox,
                increment_id=increment_id,
                method=method,
                params={"order": {"id": increment_id, "store": order.oms_store or "", "reason": reason}},
                external_id=f"{self.settings.oms_application_id}-order-{increment_id}-cancel",
                now=now,
            )
            if call.message_id is None:  # asked before: the same request, not a second one
                existing = (await connection.execute(CANCEL_MESSAGE_OF_ORDER, {"order_id": order.id})).one()
                waiting = existing.status == Status.WAITING.value
                return answer(
                    "already_requested",
                    existing.cancel_message_id,
                    delivery_state(existing.status) if existing.cancel_message_id else None,
                    call.gate.reason() if waiting else None,
                )
            await connection.execute(
                REQUEST_CANCEL,
                {"order_id": order.id, "reason": reason or None, "message_id": call.message_id, "now": now},
            )
            return answer("requested", call.message_id, delivery_state(call.gate.status.value), call.note)

    # --- POST /orders/{id}/returns -----------------------------------------------------------------------------
    async def request_return(self, increment_id: str, request: ReturnRequest) -> ReturnAnswer:
        now = self.clock.now()
        async with self.db.connect() as connection:
            order = await self._exported_order(connection, increment_id, "take a return")
            lines = await order_lines(connection, order.id)
            abandoned = set((await connection.execute(ABANDONED_RETURNS, {"order_id": order.id})).scalars().all())
            picked = _pick_returnable(lines.all, request, abandoned)
            wire_lines = [
                {
                    "line_number": line.line_number,
                    "sku": line.sku,
                    "reason": item.reason,
                    "reason_description": item.reason_description,
                    "condition": item.condition,
                    "condition_description": item.condition_description,
                }
                for line, item in picked
            ]
            params = {
                "return": {
                    "order_id": increment_id,
                    "sales_channel_id": order.oms_store or "",
                    "source_id": request.source_id,
                    "return_tracking_number": request.return_tracking_number,
                    "return_tracking_carrier": request.return_tracking_carrier,
                    "return_tracking_label_url": request.return_tracking_label_url,
                    "lines": wire_lines,
                }
            }
            return_id = (
                await connection.execute(
                    INSERT_RETURN,
                    {
                        "order_id": order.id,
                        "rma": None,
                        "status": RETURN_REQUESTED,
                        "status_at": now,
                        "source_id": request.source_id or None,
                        "tracking": _json(_tracking(request)),
                        "lines": _json(
                            [
                                {"line_id": line.line_id, "item_id": line.item_id, "status": RETURN_REQUESTED, **wire}
                                for (line, _), wire in zip(picked, wire_lines, strict=True)
                            ]
                        ),
                        "history": _json([{"status": RETURN_REQUESTED, "date": now.isoformat(), "message_id": None}]),
                        "request_message_id": None,
                        "message_id": None,
                        "now": now,
                    },
                )
            ).scalar_one()
            call = await enqueue_order_call(
                connection,
                self.outbox,
                increment_id=increment_id,
                method=RETURN_AUTHORIZE,
                params=params,
                external_id=f"{self.settings.oms_application_id}-order-{increment_id}-return-{return_id}",
                now=now,
            )
            message_id = call.message_id
            assert message_id is not None  # the key holds a new row id
            await connection.execute(
                SET_RETURN_REQUEST, {"id": return_id, "message_id": message_id, "order_id": order.id,
                                             "line_ids": [line.line_id for line, _ in picked]},
            )  # fmt: skip
        return ReturnAnswer(
            increment_id=increment_id,
            message_id=message_id,
            lines=[{"line_number": line.line_number, "sku": line.sku, "item_id": line.item_id} for line, _ in picked],
            request_delivery=delivery_state(call.gate.status.value),
            note=call.note,
        )

    # --- GET /orders/{id} --------------------------------------------------------------------------------------
    async def lifecycle(self, increment_id: str) -> OrderLifecycle | None:
        async with self.db.connect() as connection:
            row = (await connection.execute(ORDER_LIFECYCLE, {"increment_id": increment_id})).first()
        return None if row is None else lifecycle_view(row)


def _pick_returnable(lines: list[Line], request: ReturnRequest, abandoned: set[int]) -> list[tuple[Line, Any]]:
    """Per requested item, that many unit lines that shipped and are neither returned (a return the OMS never took,
    ``abandoned``, does not count) nor refunded; every item at fault is named (422), nothing is sent for a request
    with any fault."""
    errors: list[dict[str, str]] = []
    picked: list[tuple[Line, Any]] = []
    taken: set[str] = set()
    for index, item in enumerate(request.items):
        of_item = [line for line in lines if line.item_id == item.item_id and not line.is_shipping]
        if not of_item:
            errors.append({"field": f"items[{index}].item_id", "message": f"item {item.item_id} is not on this order"})
            continue
        free = [
            line
            for line in of_item
            if line.shipment_id is not None
            and (line.return_id is None or line.return_id in abandoned)
            and line.refund_id is None
            and line.line_id not in taken
        ]
        if len(free) < item.qty:
            errors.append(
                {
                    "field": f"items[{index}].qty",
                    "message": f"item {item.item_id} ({of_item[0].sku}): {item.qty} asked, {len(free)} shipped and "
                    "not yet returned or refunded",
                }
            )
            continue
        for line in free[: item.qty]:
            taken.add(line.line_id)
            picked.append((line, item))
    if errors:
        raise OrderRejected(errors)
    return picked


def _tracking(request: ReturnRequest) -> dict[str, str]:
    values = {
        "number": request.return_tracking_number,
        "carrier": request.return_tracking_carrier,
        "label_url": request.return_tracking_label_url,
    }
    return {name: value for name, value in values.items() if value}


def _json(value: Any) -> str:
    return json.dumps(value, default=str)


def delivery_state(status: str | None) -> str:
    """A delivery message's journal status, as the order view names it (``waiting``: a call to the OMS held until
    the order's create reaches it)."""
    if status is None:
        return "recorded_only"
    return {"succeeded": "delivered", "queued": "pending", "processing": "pending"}.get(status, status)


def lifecycle_view(row: Any) -> OrderLifecycle:
    cancel = None
    if row.cancel_requested_at is not None or row.canceled_at is not None:
        cancel = CancelView(
            requested_at=row.cancel_requested_at,
            reason=row.cancel_reason,
            message_id=row.cancel_message_id,
            request_delivery=delivery_state(row.cancel_message_status) if row.cancel_message_id else None,
            canceled_at=row.canceled_at,
            delivery=delivery_state(row.cancel_delivery),
            commerce_message_id=row.cancel_commerce_message_id,
        )
    store_credit = None
    if row.store_credit_note is not None:
        store_credit = StoreCreditView(
            amount=row.store_credit,
            note=row.store_credit_note,
            delivery=delivery_state(row.store_credit_delivery),
            commerce_message_id=row.store_credit_message_id,
        )
    return OrderLifecycle(
        oms_status=row.oms_status,
        oms_status_reason=row.oms_status_reason,
        oms_status_at=row.oms_status_at,
        history=[StatusChange(**{**c, "delivery": delivery_state(c["delivery"])}) for c in row.history],
        lines=row.lines,
        shipments=[
            ShipmentView(
                **{
                    **s,
                    "delivery": delivery_state(s["delivery"]),
                    "invoice_delivery": delivery_state(s["invoice_delivery"]),
                }
            )
            for s in row.shipments
        ],
        returns=[
            ReturnView(
                **{
                    **r,
                    "request_delivery": delivery_state(r["request_delivery"]) if r["request_message_id"] else None,
                }
            )
            for r in row.returns
        ],
        credit_memos=[CreditMemoView(**{**f, "delivery": delivery_state(f["delivery"])}) for f in row.refunds],
        cancel=cancel,
        store_credit=store_credit,
    )
