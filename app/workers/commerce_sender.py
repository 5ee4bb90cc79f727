"""Delivers outbound messages of the ``commerce`` channel to Adobe Commerce's REST API, one at a time.

Magento has no idempotency keys, so each effect carries its own key in its comment (app/mappers/lifecycle_to_commerce)
and a retried message — ``attempts > 1``: a timeout, a lost answer, a crash between send and record — first looks
for that key in the order's comments, shipments, invoices or credit memos, and posts only if it is not there. A
first attempt posts straight away: nothing can have been delivered before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.clients.commerce import CommerceClient
from app.data.outbox import OutboundMessage
from app.errors import PeerError, PeerRejected
from app.mappers.lifecycle_to_commerce import marker
from app.services.commerce_effects import CANCEL, COMMENT, INVOICE, REFUND, SHIP, SOURCE_ITEMS

DOCUMENTS = {INVOICE: "invoices", SHIP: "shipments", REFUND: "creditmemos"}
ROUTES = {INVOICE: "/order/{}/invoice", SHIP: "/order/{}/ship", REFUND: "/order/{}/refund"}


class CommerceSender:
    # A claim leases this many lane heads (one per order); the bus delivers them concurrently, each effect with
    # its own REST calls in order.
    batch_size = 4
    one_request = False

    def __init__(self, client: CommerceClient) -> None:
        self.client = client

    async def deliver(self, messages: Sequence[OutboundMessage]) -> list[Any | PeerError]:
        outcomes: list[Any | PeerError] = []
        for message in messages:
            try:
                outcomes.append(await self.deliver_one(message))
            except PeerError as exc:
                outcomes.append(exc)
            except (KeyError, TypeError, ValueError) as exc:  # a payload this sender cannot use: never retried
                outcomes.append(PeerRejected(f"cannot build the Adobe Commerce request: {exc!r}"))
        return outcomes

    async def deliver_one(self, message: OutboundMessage) -> Any:
        params = message.payload
        body = params.get("body")
        if message.topic == SOURCE_ITEMS:  # sets absolute quantities: sending twice is harmless
            return await self.client.post("/inventory/source-items", body)
        entity_id = str(params["entity_id"])
        retried = message.attempts > 1
        if message.topic == COMMENT:
            return await self._comment(entity_id, message.external_id, body, retried=retried)
        if message.topic == CANCEL:
            return await self._cancel(entity_id)
        if message.topic == INVOICE:
            return await self._invoice(entity_id, message.external_id, body, retried=retried)
        if message.topic in (SHIP, REFUND):
            if retried and (found := await self._document(message.topic, entity_id, message.external_id)):
                return {"already_delivered": found}
            return await self.client.post(ROUTES[message.topic].format(entity_id), body)
        raise PeerRejected(f"no Adobe Commerce route for {message.topic}")

    async def _comment(self, entity_id: str, key: str, body: dict[str, Any], *, retried: bool) -> Any:
        """A comment that sets no status names the order's current one: before Magento 2.4.4 (AC-1342) a comment
        without ``status`` set the order's status to NULL, dropping it from the admin grid."""
        history = body["statusHistory"]
        if not retried and history.get("status"):
            return await self.client.post(f"/orders/{entity_id}/comments", body)
        order = await self.client.get_order(entity_id)
        if retried and any(
            marker(key) in str(entry.get("comment") or "") for entry in order.get("status_histories") or []
        ):
            return {"already_delivered": True}
        if not history.get("status") and order.get("status"):
            body = {**body, "statusHistory": {**history, "status": order["status"]}}
        return await self.client.post(f"/orders/{entity_id}/comments", body)

    async def _document(self, topic: str, entity_id: str, key: str) -> Any:
        """The entity id of the document of ``topic`` whose comment carries ``key``, if Adobe Commerce has one."""
        for document in await self.client.documents_of_order(DOCUMENTS[topic], entity_id):
            if any(marker(key) in str(c.get("comment") or "") for c in document.get("comments") or []):
                return document.get("entity_id", True)
        return None

    async def _invoice(self, entity_id: str, key: str, body: dict[str, Any], *, retried: bool) -> Any:
        """Invoice, before a shipment, what that shipment will ship and is not invoiced yet: an order the store
        invoiced at checkout (online capture) needs nothing; a partly invoiced one only the rest."""
        if retried and (found := await self._document(INVOICE, entity_id, key)):
            return {"already_delivered": found}
        order = await self.client.get_order(entity_id)
        items = {str(item.get("item_id")): item for item in order.get("items") or []}
        wanted = []
        for entry in body.get("items") or []:
            item = items.get(str(entry["order_item_id"]))
            if item is None:
                raise PeerRejected(f"Adobe Commerce order {entity_id} has no item {entry['order_item_id']}")
            room = _number(item, "qty_ordered") - _number(item, "qty_invoiced") - _number(item, "qty_canceled")
            uninvoiced = _number(item, "qty_shipped") + entry["qty"] - _number(item, "qty_invoiced")
            qty = min(entry["qty"], room, uninvoiced)
            if qty > 0:
                wanted.append({**entry, "qty": _whole(qty)})
        if not wanted:
            return {"skipped": "the shipped items are already invoiced"}
        return await self.client.post(f"/order/{entity_id}/invoice", {**body, "items": wanted})

    async def _cancel(self, entity_id: str) -> Any:
        """``POST /orders/{id}/cancel`` answers ``false`` when Magento will not cancel: fine if the order is
        canceled already (a retry, or canceled in the admin), a refusal otherwise."""
        if await self.client.post(f"/orders/{entity_id}/cancel", None) is True:
            return True
        order = await self.client.get_order(entity_id)
        if order.get("state") == "canceled":
            return {"already_canceled": True}
        raise PeerRejected(
            f"Adobe Commerce refused to cancel order {entity_id} (state {order.get('state')!r}: "
            "an order with invoices or shipments cannot be canceled; refund it instead)"
        )


def _number(item: dict[str, Any], field: str) -> float:
    return float(item.get(field) or 0)


def _whole(qty: float) -> int | float:
    return int(qty) if float(qty).is_integer() else qty
