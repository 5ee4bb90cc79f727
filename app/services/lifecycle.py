"""The order lifecycle after the export: what the OMS reports (status, shipments, returns, refunds) recorded as the
connector's own record, and delivered to Adobe Commerce through the outbox in the same transaction.

The handlers (app/workers/handlers/order_*.py, one per topic) parse their message and call one function here with
the message's transaction, so a crash rolls the record, the journal status and the outgoing effects back together.
Natural keys make replays harmless: one history entry per status change, a shipment per shipment id, a refund per
credit note number, a return per RMA.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.data.lifecycle import (
    FIND_RETURN,
    INSERT_REFUND,
    INSERT_RETURN,
    INSERT_SHIPMENT,
    INSERT_STATUS_CHANGE,
    LOCK_ORDER_LIFECYCLE,
    MARK_LINES,
    ORDER_DOCUMENT_TEXT,
    ORDER_LINES,
    SET_CANCEL_DELIVERY,
    SET_LINE_STATUSES,
    SET_OMS_STATUS,
    SET_REFUND_DELIVERY,
    SET_SHIPMENT_DELIVERY,
    SET_STATUS_CHANGE_DELIVERY,
    SET_STORE_CREDIT,
    SET_STORE_CREDIT_DELIVERY,
    UNITS_OF_CHARGES,
    UPDATE_RETURN,
)
from app.data.outbox import Outbox
from app.mappers.lifecycle_to_commerce import (
    ItemQuantity,
    RefundedLine,
    comment_body,
    credit_memo,
    invoice_body,
    item_quantities,
    note_body,
    refund_body,
    ship_body,
)
from app.protocol.commerce_order import parse_order_body
from app.protocol.order_events import (
    SHIPPING_LINE_ID,
    InvalidEvent,
    OrderStatus,
    Refund,
    Return,
    Shipment,
    optional_time,
    required,
)
from app.services.commerce_effects import CANCEL, COMMENT, INVOICE, REFUND, SHIP, CommerceEffects
from app.settings import Settings

log = logging.getLogger(__name__)

NOT_A_RETURN = frozenset({"return", "cancelled", "canceled", ""})  # refund types that take the line back
CANCELED = "canceled"


@dataclass(frozen=True)
class OrderRecord:
    id: int
    increment_id: str
    entity_id: str | None
    store_id: str | None
    oms_store: str | None  # the OMS sales channel the order was exported to
    export_message_id: int | None
    oms_status: str | None
    oms_status_reason: str | None
    cancel_requested_at: datetime | None
    canceled_at: datetime | None
    store_credit: Decimal | None
    store_credit_note: str | None


@dataclass(frozen=True)
class Line:
    line_id: str
    line_number: int
    item_id: str | None
    sku: str
    product_type: str
    gross: Decimal
    status: str | None
    shipment_id: int | None
    return_id: int | None
    refund_id: int | None
    refunded_before_shipment: bool

    @property
    def is_shipping(self) -> bool:
        return self.line_id == SHIPPING_LINE_ID or self.product_type == "SHIPPING"

    @property
    def is_charge(self) -> bool:
        """A line without a product — the SHIPPING line, a gift wrapping, the printed card — has no Magento item
        (the order-line table's item id is NULL: app/data/orders.py). It is never shipped itself, is not what makes
        an order entirely refunded, and its refund reaches Adobe Commerce as an amount, not an item."""
        return self.item_id is None or self.is_shipping


class Lines:
    """An order's lines, found by id or by line number (peers send either; protocol §6, row 7)."""

    def __init__(self, lines: Sequence[Line]) -> None:
        self.all = list(lines)
        self.by_id = {line.line_id: line for line in lines}
        self.by_number = {line.line_number: line for line in lines}

    def find(self, line_id: str, number: int | None, field: str) -> Line:
        line = self.by_id.get(line_id) if line_id else None
        if line is None and number is not None:
            line = self.by_number.get(number)
        if line is None:
            shown = line_id or (str(number) if number is not None else "(none)")
            raise InvalidEvent(f"{field}: no line {shown!r} in this order")
        return line

    def find_number_first(self, value: str, field: str) -> Line:
        """A package's ``items`` entry: a line number in customer_shipment_done, else tried as an id."""
        if value.isdigit() and int(value) in self.by_number:
            return self.by_number[int(value)]
        if value in self.by_id:
            return self.by_id[value]
        raise InvalidEvent(f"{field}: no line number or id {value!r} in this order")


async def lock_order(connection: AsyncConnection, increment_id: str) -> OrderRecord | None:
    row = (await connection.execute(LOCK_ORDER_LIFECYCLE, {"increment_id": increment_id})).first()
    if row is None:
        return None
    return OrderRecord(
        id=row.id,
        increment_id=row.increment_id,
        entity_id=row.entity_id,
        store_id=row.store_id,
        oms_store=row.oms_store,
        export_message_id=row.export_message_id,
        oms_status=row.oms_status,
        oms_status_reason=row.oms_status_reason,
        cancel_requested_at=row.cancel_requested_at,
        canceled_at=row.canceled_at,
        store_credit=row.store_credit,
        store_credit_note=row.store_credit_note,
    )


async def order_lines(connection: AsyncConnection, order_id: int) -> Lines:
    rows = (await connection.execute(ORDER_LINES, {"order_id": order_id})).all()
    return Lines(
        [
            Line(
                line_id=row.line_id,
                line_number=row.line_number,
                item_id=row.item_id,
                sku=row.sku,
                product_type=row.product_type,
                gross=row.gross,
                status=row.status,
                shipment_id=row.shipment_id,
                return_id=row.return_id,
                refund_id=row.refund_id,
                refunded_before_shipment=row.refunded_before_shipment,
            )
            for row in rows
        ]
    )


class Lifecycle:
    """Applies lifecycle events inside the caller's transaction."""

    def __init__(self, connection: AsyncConnection, settings: Settings, outbox: Outbox, now: datetime) -> None:
        self.connection = connection
        self.settings = settings
        self.outbox = outbox
        self.now = now
        self.effects = CommerceEffects(settings, outbox)

    async def order(self, increment_id: str, field: str) -> OrderRecord:
        order = await lock_order(self.connection, increment_id)
        if order is None:
            raise InvalidEvent(f"{field}: order {increment_id} was never posted to this connector")
        return order

    # --- magento.sales.order_management.updated ----------------------------------------------------------------
    async def status_update(self, update: OrderStatus, message_id: int) -> dict[str, Any]:
        number = required(update.id, "order.id")
        status = required(update.status, "order.status").upper()
        reason = update.status_reason or None
        order = await self.order(number, "order.id")
        lines = await order_lines(self.connection, order.id)
        status_at = self._time(update.status_date, "order.status_date")
        changed_lines = self._line_statuses(update, lines)
        if changed_lines:
            await self.connection.execute(
                SET_LINE_STATUSES,
                {
                    "order_id": order.id,
                    "line_ids": [line_id for line_id, _, _ in changed_lines],
                    "statuses": [line_status for _, line_status, _ in changed_lines],
                    "reasons": [line_reason for _, _, line_reason in changed_lines],
                },
            )
        summary: dict[str, Any] = {"order": number, "status": status, "line_statuses": len(changed_lines)}
        if status == (order.oms_status or ""):
            summary["recorded"] = False  # a repeated status adds nothing to the history
            return summary
        commerce_status = self.settings.status_map.get(status)
        canceled = commerce_status == CANCELED
        await self.connection.execute(
            SET_OMS_STATUS,
            {
                "order_id": order.id,
                "status": status,
                "reason": reason,
                "status_at": status_at or self.now,
                "canceled": canceled,
                "now": self.now,
            },
        )
        change_id = (
            await self.connection.execute(
                INSERT_STATUS_CHANGE,
                {
                    "order_id": order.id,
                    "status": status,
                    "reason": reason,
                    "commerce_status": commerce_status,
                    "status_at": status_at,
                    "line_statuses": json.dumps(
                        [{"line_id": i, "status": s, "reason": r or None} for i, s, r in changed_lines]
                    ),
                    "message_id": message_id,
                    "now": self.now,
                },
            )
        ).scalar_one()
        summary.update(recorded=True, commerce_status=commerce_status)
        if status not in self.settings.status_map:
            summary["unmapped"] = f"{status} is not in OMS_STATUS_MAP: recorded, no Adobe Commerce status"
        if self.effects.delivers_to(order.entity_id):
            key = self.effects.key(number, f"status-{change_id}")
            body = comment_body(oms_status=status, reason=reason, commerce_status=commerce_status, key=key)
            comment_id = await self._deliver(order, COMMENT, key, body)
            await self.connection.execute(SET_STATUS_CHANGE_DELIVERY, {"id": change_id, "message_id": comment_id})
            if canceled and order.canceled_at is None:
                cancel_id = await self._deliver(order, CANCEL, self.effects.key(number, "cancel"), None)
                await self.connection.execute(SET_CANCEL_DELIVERY, {"order_id": order.id, "message_id": cancel_id})
        return summary

    @staticmethod
    def _line_statuses(update: OrderStatus, lines: Lines) -> list[tuple[str, str, str]]:
        """(line id, status, reason) of the lines whose status the update gives and changes; a line without a
        status is unchanged (the Go peer echoes the create, protocol §6, row 12)."""
        changed: dict[str, tuple[str, str, str]] = {}
        for index, entry in enumerate(update.lines):
            if not entry.status:
                continue
            line = lines.find(entry.id, entry.line_number, f"order.lines[{index}].id")
            if (line.status or "").upper() != entry.status.upper():
                changed[line.line_id] = (line.line_id, entry.status.upper(), entry.status_reason)
        return list(changed.values())

    # --- magento.logistics.fulfillment_management.customer_shipment_done -------------------------------------
    async def shipment(self, shipment: Shipment, message_id: int) -> dict[str, Any]:
        number = required(shipment.order_id, "shipment.order_id")
        order = await self.order(number, "shipment.order_id")
        lines = await order_lines(self.connection, order.id)
        shipped: dict[str, Line] = {}
        for index, entry in enumerate(shipment.items):
            line = lines.find(entry.order_line_id, entry.order_line_number, f"shipment.items[{index}].order_line_id")
            if not line.is_charge and entry.item_type.upper() != "SHIPPING":
                shipped[line.line_id] = line
        packages: list[dict[str, Any]] = []
        for index, package in enumerate(shipment.packages):
            in_package = [
                lines.find_number_first(value, f"shipment.packages[{index}].items[{position}]")
                for position, value in enumerate(package.items)
            ]
            if not shipment.items:  # no item list: the packages say what shipped
                shipped.update({line.line_id: line for line in in_package if not line.is_charge})
            packages.append(
                {
                    "id": package.id or None,
                    "carrier": package.carrier or None,
                    "tracking_number": package.tracking_number or None,
                    "tracking_link": package.tracking_link or None,
                    "tracking_comment": package.tracking_comment or None,
                    "line_ids": [line.line_id for line in in_package if not line.is_charge],
                }
            )
        if not shipped:
            raise InvalidEvent("shipment.items: no product line is shipped")
        key = shipment.shipment_id or shipment.shimpent_id
        key_source = "shipment_id" if shipment.shipment_id else "shimpent_id" if key else "derived"
        if not key:  # protocol §6, row 5: both empty (the PHP peer) ⇒ our own key
            key = f"{number}:{shipment.source_id}:{','.join(sorted(shipped))}"
        summary: dict[str, Any] = {"order": number, "shipment": key, "key_from": key_source}
        earlier = sorted({line.line_id for line in shipped.values() if line.shipment_id is not None})
        new_lines = [line for line in shipped.values() if line.shipment_id is None]
        if not new_lines:
            summary.update(recorded=False, reason="every line of it was shipped by an earlier shipment")
            return summary
        items = [
            {
                "item_id": quantity.item_id,
                "sku": next(line.sku for line in new_lines if line.item_id == quantity.item_id),
                "qty": quantity.qty,
                "line_ids": [line.line_id for line in new_lines if line.item_id == quantity.item_id],
            }
            for quantity in item_quantities(line.item_id for line in new_lines)
        ]
        shipment_id = (
            await self.connection.execute(
                INSERT_SHIPMENT,
                {
                    "order_id": order.id,
                    "shipment_key": key,
                    "source_id": shipment.source_id or None,
                    "method": shipment.method or None,
                    "shipped_at": optional_time(
                        shipment.shipment_date, "shipment.shipment_date", self.settings.oms_zone
                    ),
                    "items": json.dumps(items),
                    "packages": json.dumps(packages),
                    "message_id": message_id,
                    "now": self.now,
                },
            )
        ).scalar_one_or_none()
        if shipment_id is None:
            summary.update(recorded=False, reason="this shipment was recorded before")
            return summary
        await self._mark(order.id, [line.line_id for line in new_lines], shipment_id=shipment_id)
        summary.update(
            recorded=True, lines=len(new_lines), items=[{"item_id": i["item_id"], "qty": i["qty"]} for i in items]
        )
        if earlier:
            summary["already_shipped"] = earlier
        if self.effects.delivers_to(order.entity_id):
            quantities = item_quantities(line.item_id for line in new_lines)
            invoice_id = None
            if self.settings.adobe_commerce_invoice_on_shipment:
                invoice_key = self.effects.key(number, f"invoice-{shipment_id}")
                invoice_id = await self._deliver(
                    order, INVOICE, invoice_key, invoice_body(items=quantities, key=invoice_key)
                )
            ship_key = self.effects.key(number, f"shipment-{shipment_id}")
            ship_id = await self._deliver(
                order,
                SHIP,
                ship_key,
                ship_body(
                    items=quantities,
                    packages=packages,
                    source_id=shipment.source_id or None,
                    key=ship_key,
                    notify=self.settings.adobe_commerce_notify_customer,
                ),
            )
            await self.connection.execute(
                SET_SHIPMENT_DELIVERY,
                {"id": shipment_id, "invoice_message_id": invoice_id, "message_id": ship_id},
            )
        return summary

    # --- magento.postsales.return_management.updated ---------------------------------------------------------
    async def return_update(self, update: Return, message_id: int) -> dict[str, Any]:
        rma = required(update.rma, "return.rma")
        number = required(update.order_id, "return.order_id")
        order = await self.order(number, "return.order_id")
        lines = await order_lines(self.connection, order.id)
        status = update.status.code or update.status.name or next((x.status for x in update.lines if x.status), "")
        status = required(status, "return.status.code").upper()
        status_at = self._time(update.status.date, "return.status.date")
        returned: list[dict[str, Any]] = []
        for index, entry in enumerate(update.lines):
            line = lines.find(entry.id, entry.line_number, f"return.lines[{index}].id")
            returned.append(
                {
                    "line_id": line.line_id,
                    "line_number": line.line_number,
                    "item_id": line.item_id,
                    "sku": line.sku,
                    "reason": entry.reason or None,
                    "reason_description": entry.reason_description or None,
                    "condition": entry.condition or None,
                    "condition_description": entry.condition_description or None,
                    "status": (entry.status or status).upper(),
                }
            )
        tracking = {
            name: value
            for name, value in (
                ("number", update.return_tracking_number),
                ("carrier", update.return_tracking_carrier),
                ("label_url", update.return_tracking_label_url),
                ("url", update.return_tracking_url),
            )
            if value
        }
        numbers = sorted(entry["line_number"] for entry in returned)
        candidates = (
            await self.connection.execute(FIND_RETURN, {"order_id": order.id, "rma": rma, "match_pending": True})
        ).all()
        # The RMA id first reaches us here: a return the store asked for is found by its line numbers (§6, row 21).
        existing = next((row for row in candidates if row.rma == rma), None) or next(
            (row for row in candidates if sorted(line["line_number"] for line in row.lines) == numbers), None
        )
        entry = {"status": status, "date": status_at.isoformat() if status_at else None, "message_id": message_id}
        summary: dict[str, Any] = {"order": number, "rma": rma, "status": status, "lines": len(returned)}
        if existing is None:
            return_id = (
                await self.connection.execute(
                    INSERT_RETURN,
                    {
                        "order_id": order.id,
                        "rma": rma,
                        "status": status,
                        "status_at": status_at,
                        "source_id": update.source_id or None,
                        "tracking": json.dumps(tracking),
                        "lines": json.dumps(returned),
                        "history": json.dumps([entry]),
                        "request_message_id": None,
                        "message_id": message_id,
                        "now": self.now,
                    },
                )
            ).scalar_one()
            summary["recorded"] = "new return"
        else:
            return_id = existing.id
            same = existing.rma == rma and existing.status == status
            await self.connection.execute(
                UPDATE_RETURN,
                {
                    "id": existing.id,
                    "rma": rma,
                    "status": status,
                    "status_at": status_at,
                    "source_id": update.source_id or None,
                    "tracking": json.dumps(tracking),
                    "lines": json.dumps(_merge_return_lines(existing.lines, returned)),
                    "history": json.dumps([] if same else [entry]),
                    "message_id": message_id,
                    "now": self.now,
                },
            )
            summary["recorded"] = "unchanged" if same else "status changed"
        await self._mark(order.id, [entry["line_id"] for entry in returned], return_id=return_id)
        return summary

    # --- magento.postsales.refund_management.updated ---------------------------------------------------------
    async def refund(self, refund: Refund, message_id: int) -> dict[str, Any]:
        note_number = required(refund.credit_note_number, "refund.credit_note_number")
        number = required(refund.order_id, "refund.order_id")
        order = await self.order(number, "refund.order_id")
        lines = await order_lines(self.connection, order.id)
        appeasement = refund.refund_type.strip().lower() not in NOT_A_RETURN
        kind = "appeasement" if appeasement else "return"
        refunded: list[tuple[Line, dict[str, Any]]] = []
        for index, entry in enumerate(refund.lines):
            line = lines.find(entry.order_item_id, entry.order_line, f"refund.lines[{index}].order_item_id")
            details = next((p.details for p in entry.payments), None)
            refunded.append(
                (
                    line,
                    {
                        "line_id": line.line_id,
                        "line_number": line.line_number,
                        "item_id": line.item_id,
                        "sku": line.sku,
                        "gross": entry.gross,
                        "tax": entry.tax,
                        "tax_rate": details.vat_rate if details else None,
                        "reason": entry.reason or None,
                        "shipped": line.shipment_id is not None,
                    },
                )
            )
        if not refunded:
            raise InvalidEvent("refund.lines: no line is refunded")
        summary: dict[str, Any] = {"order": number, "credit_note_number": note_number, "kind": kind}
        already = sorted(line.line_id for line, _ in refunded if line.refund_id is not None and not appeasement)
        taken = [(line, data) for line, data in refunded if line.line_id not in already]
        invoiced = await self._invoiced(order.id, lines, [line for line, _ in taken])
        before_shipment = [line.line_id for line, _ in taken if line.line_id not in invoiced]
        total = sum((data["gross"] for _, data in refunded), Decimal(0))
        credit_memo_data: dict[str, Any] | None = None
        in_memo = [
            RefundedLine(line.line_id, None if line.is_charge else line.item_id, data["gross"], line.is_shipping)
            for line, data in taken
            if line.line_id in invoiced
        ]
        if in_memo:
            anchor = next(
                (line.item_id for line in lines.all if not line.is_charge and line.shipment_id is not None), None
            )
            credit_memo_data = credit_memo(in_memo, appeasement=appeasement, anchor_item=anchor)
        refund_id = (
            await self.connection.execute(
                INSERT_REFUND,
                {
                    "order_id": order.id,
                    "number": note_number,
                    "note_date": optional_time(
                        refund.credit_note_date, "refund.credit_note_date", self.settings.oms_zone
                    ),
                    "rma": refund.rma or None,
                    "refund_type": refund.refund_type or "Return",
                    "refund_reason": refund.refund_reason or None,
                    "kind": kind,
                    "credit_memo": json.dumps(credit_memo_data, default=str) if credit_memo_data else None,
                    "lines": json.dumps([data for _, data in refunded], default=str),
                    "before_shipment": before_shipment,
                    "total": total,
                    "message_id": message_id,
                    "now": self.now,
                },
            )
        ).scalar_one_or_none()
        if refund_id is None:
            summary.update(recorded=False, reason="this credit note was recorded before")
            return summary
        summary.update(recorded=True, credit_memo=credit_memo_data is not None, total=str(total))
        if before_shipment:
            summary["refunded_before_shipment"] = before_shipment
        if already:
            summary["already_refunded"] = already
        if not appeasement:
            await self._mark(order.id, [line.line_id for line, _ in taken], refund_id=refund_id)
            await self._mark(order.id, before_shipment, before_shipment=True)
        if credit_memo_data is not None and self.effects.delivers_to(order.entity_id):
            key = self.effects.key(number, f"creditmemo-{refund_id}")
            reason = f"Appeasement {note_number}" if appeasement else f"Refund {note_number}"
            memo_id = await self._deliver(
                order,
                REFUND,
                key,
                refund_body(
                    items=[ItemQuantity(i["item_id"], i["qty"]) for i in credit_memo_data["items"]],
                    shipping_amount=credit_memo_data["shipping_amount"],
                    adjustment_positive=credit_memo_data["adjustment_positive"],
                    reason=reason,
                    key=key,
                    notify=self.settings.adobe_commerce_notify_customer,
                ),
            )
            await self.connection.execute(SET_REFUND_DELIVERY, {"id": refund_id, "message_id": memo_id})
        if not appeasement and order.store_credit_note is None:
            outcome = await self._store_credit(order, refund_id)
            if outcome is not None:
                summary["store_credit"] = outcome
        return summary

    async def _store_credit(self, order: OrderRecord, refund_id: int) -> str | None:
        """Seed O16: an order partly paid by gift card and now entirely refunded gets the gift-card part back as
        store credit; an order paid by gift cards alone gets none (and the journal says why). Entirely refunded:
        every product line is; the charges (shipping, gift wrapping, printed card) need not be — the OMS may refund
        the products alone."""
        lines = await order_lines(self.connection, order.id)
        if any(line.refund_id is None for line in lines.all if not line.is_charge):
            return None
        text = (await self.connection.execute(ORDER_DOCUMENT_TEXT, {"order_id": order.id})).scalar_one()
        document = parse_order_body(text).order
        gift_cards = document.gift_card_total
        if gift_cards <= 0:
            return None
        if document.grand_total <= 0:
            note = (
                f"no store credit: the order was paid entirely by gift cards ({gift_cards}); "
                "the seed issues store credit only for the gift-card part of a partly paid order"
            )
            amount = None
        else:
            note = f"store credit {gift_cards} issued: the gift-card part of an entirely refunded order"
            amount = gift_cards
        await self.connection.execute(
            SET_STORE_CREDIT, {"order_id": order.id, "amount": amount, "note": note, "now": self.now}
        )
        if amount is not None and self.effects.delivers_to(order.entity_id):
            key = self.effects.key(order.increment_id, f"store-credit-{refund_id}")
            credit_id = await self._deliver(
                order, COMMENT, key, note_body(f"Store credit of {amount} issued for the gift-card part (OMS)", key)
            )
            await self.connection.execute(SET_STORE_CREDIT_DELIVERY, {"order_id": order.id, "message_id": credit_id})
        return note

    async def _invoiced(self, order_id: int, lines: Lines, refunded: Sequence[Line]) -> set[str]:
        """The ids of the ``refunded`` lines a credit memo can take, those Adobe Commerce has invoiced (the connector
        invoices what a shipment ships): a unit line once shipped; a charge once what it belongs to shipped — a
        wrapped unit's wrapping with its unit (a bundle unit: any of its children), a charge of the whole order
        (SHIPPING, the order's wrapping, the printed card) with the order's first shipment (Adobe Commerce invoices
        the shipping with the first invoice; the order's wrapping and card too, unverified). Any other line was
        refunded before shipment: no credit memo."""
        wrappings = [line.line_id for line in refunded if line.is_charge and not line.is_shipping]
        units: dict[str, list[str]] = {}
        if wrappings:
            rows = await self.connection.execute(UNITS_OF_CHARGES, {"order_id": order_id, "line_ids": wrappings})
            units = {row.line_id: list(row.unit_line_ids) for row in rows}
        order_shipped = any(line.shipment_id is not None for line in lines.all if not line.is_charge)

        def invoiced(line: Line) -> bool:
            if not line.is_charge:
                return line.shipment_id is not None
            if line.line_id in units:
                return any(lines.by_id[unit].shipment_id is not None for unit in units[line.line_id])
            return order_shipped

        return {line.line_id for line in refunded if invoiced(line)}

    async def _deliver(self, order: OrderRecord, topic: str, key: str, body: dict[str, Any] | None) -> int | None:
        """Queue one effect for Adobe Commerce in this transaction (the caller checked ``delivers_to``)."""
        assert order.entity_id is not None
        return await self.effects.enqueue(
            self.connection,
            topic=topic,
            key=key,
            increment_id=order.increment_id,
            entity_id=order.entity_id,
            body=body,
            now=self.now,
        )

    def _time(self, value: str, field: str) -> datetime | None:
        return optional_time(value, field, self.settings.oms_zone)

    async def _mark(
        self,
        order_id: int,
        line_ids: Iterable[str],
        *,
        shipment_id: int | None = None,
        return_id: int | None = None,
        refund_id: int | None = None,
        before_shipment: bool = False,
    ) -> None:
        ids = list(line_ids)
        if not ids:
            return
        await self.connection.execute(
            MARK_LINES,
            {
                "order_id": order_id,
                "line_ids": ids,
                "shipment_id": shipment_id,
                "return_id": return_id,
                "refund_id": refund_id,
                "before_shipment": before_shipment,
            },
        )


def _merge_return_lines(stored: list[dict[str, Any]], update: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The OMS's view of the lines wins; what only the store's request said (condition) is kept."""
    by_id = {line["line_id"]: line for line in stored}
    merged = []
    for line in update:
        before = by_id.pop(line["line_id"], {})
        merged.append({**before, **{k: v for k, v in line.items() if v is not None or k not in before}})
    return merged + list(by_id.values())
