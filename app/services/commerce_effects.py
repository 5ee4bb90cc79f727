"""Writing what the OMS told us to the outbox channel ``commerce``, in the transaction that records it, so that
Adobe Commerce gets each effect exactly when the connector's own record has it (ARCHITECTURE §7).

One lane per order (``commerce/order/<number>``): one order's comments, invoices, shipments and credit memos arrive
in the order they were recorded, and an order Adobe Commerce keeps refusing holds up only itself. Each message id
is the effect's idempotency key, built from the effect's own row id, and is written into the request's comment so
that a retried send can tell whether the first attempt went through (app/clients/commerce.py).

Nothing is written when ADOBE_COMMERCE_URL / ADOBE_COMMERCE_TOKEN are not set (effects are then recorded only), or
when the order has no ``entity_id`` (the REST routes need it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.data.outbox import Outbox
from app.protocol.json_numbers import jsonable
from app.settings import Settings

COMMERCE_CHANNEL = "commerce"
COMMENT = "commerce.order.comment"
INVOICE = "commerce.order.invoice"
SHIP = "commerce.order.ship"
REFUND = "commerce.order.refund"
CANCEL = "commerce.order.cancel"
SOURCE_ITEMS = "commerce.inventory.source_items"
COMMERCE_TOPICS = (COMMENT, INVOICE, SHIP, REFUND, CANCEL, SOURCE_ITEMS)


def commerce_lane(increment_id: str) -> str:
    return f"commerce/order/{increment_id}"


class CommerceEffects:
    def __init__(self, settings: Settings, outbox: Outbox) -> None:
        self.settings = settings
        self.outbox = outbox

    @property
    def enabled(self) -> bool:
        return self.settings.commerce_configured

    def key(self, increment_id: str, effect: str) -> str:
        return f"{self.settings.oms_application_id}-commerce-{increment_id}-{effect}"

    def delivers_to(self, entity_id: str | None) -> bool:
        return self.enabled and bool(entity_id)

    async def enqueue(
        self,
        connection: AsyncConnection,
        *,
        topic: str,
        key: str,
        increment_id: str,
        entity_id: str,
        body: dict[str, Any] | None,
        now: datetime,
        refs: Sequence[str] = (),
    ) -> int | None:
        """Queue one request to Adobe Commerce; the message id, or None if ``key`` was queued before."""
        params = {"entity_id": entity_id, "increment_id": increment_id, "body": jsonable(body)}
        return await self.outbox.enqueue(
            connection,
            method=topic,
            params=params,
            now=now,
            lane=commerce_lane(increment_id),
            channel=COMMERCE_CHANNEL,
            external_id=key,
            refs=[increment_id, *refs],
        )
