"""The orders of a page read from Adobe Commerce, each the way of ``POST /orders`` (for app/services/order_pull.py).

An order the connector already has as it is (stored from the same ``updated_at`` with the same status — the store
posted it, or an earlier poll read it in its overlap) is left alone without being parsed. Any other goes to
``OrderService.accept``, exactly what ``POST /orders`` calls: stored, exported when its status is exportable (once:
the service decides under the order's row lock, so the pull and a post of the same order at once export it once),
held otherwise. One the service refuses (what ``POST /orders`` answers 422) is journaled ``rejected`` with the
reason and the order as read, once per content (a poll reading it again does not journal it again).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.clock import Clock
from app.data.order_pull import JOURNAL_PULL_ENTRY, KNOWN_ORDERS
from app.db import Database
from app.errors import OrderRejected
from app.models import Status
from app.protocol.order_search import OrderKey
from app.schemas import ExportStatus
from app.services.journal_prune import PRUNE_CHANNEL
from app.services.orders import OrderService
from app.settings import Settings

log = logging.getLogger(__name__)

PULL_CHANNEL = PRUNE_CHANNEL  # the connector's own journal entries: no peer sent them, no worker claims them
PULLED_ORDER_TOPIC = "connector.orders.pull.order"  # an order refused, journaled `rejected` with the reason
FEED_CONCURRENCY = 8  # orders of a page handled at once (each holds a database connection while it is stored)
ERROR_CHARS = 1000  # of a reason, as journaled
MAX_STORED_DEPTH = 64  # of an order refused, as journaled (what POST /orders takes is 32 deep at most)


@dataclass(frozen=True)
class Fed:
    """How one order of a page was handled; ``failure`` set if it could not be (the poll ends before it)."""

    outcome: str  # new | changed | unchanged | rejected | failed
    exported: bool = False  # its export was queued now
    held: bool = False  # it is held (status not exportable)
    reason: str | None = None  # why it was refused
    failure: BaseException | None = None


class OrderFeed:
    def __init__(self, db: Database, clock: Clock, settings: Settings, orders: OrderService) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.orders = orders

    async def feed(self, items: Sequence[Any], keys: Sequence[OrderKey | None], unplaced: dict[int, str]) -> list[Fed]:
        """Handle the orders of a page, at most FEED_CONCURRENCY at once; their outcomes in page order. ``keys``:
        each order's place (None for the ones in ``unplaced``, refused with the reason given there)."""
        known = await self._known(items)
        gate = asyncio.Semaphore(FEED_CONCURRENCY)

        async def feed(index: int, item: Any) -> Fed:
            async with gate:
                try:
                    if index in unplaced:
                        await self.refuse(item, unplaced[index])
                        return Fed("rejected", reason=unplaced[index])
                    return await self._feed_one(item, keys[index], known)
                except Exception as exc:  # the poll ends before this order
                    return Fed("failed", failure=exc)

        return list(await asyncio.gather(*(feed(index, item) for index, item in enumerate(items))))

    async def _known(self, items: Sequence[Any]) -> dict[str, Any]:
        """The stored status and ``updated_at`` of the page's orders the connector has, by number."""
        numbers = sorted({number for item in items if (number := order_number(item)) is not None})
        if not numbers:
            return {}
        async with self.db.connect() as connection:
            rows = (await connection.execute(KNOWN_ORDERS, {"numbers": numbers})).all()
        return {row.increment_id: row for row in rows}

    async def _feed_one(self, item: Any, key: OrderKey | None, known: dict[str, Any]) -> Fed:
        """One order the way of POST /orders, unless the connector has it as it is."""
        stored = known.get(order_number(item) or "")
        if stored is not None and key is not None and _unchanged(stored, item, key):
            return Fed("unchanged")
        body = json.dumps(item, separators=(",", ":")).encode()  # lone surrogates escaped: the parse refuses them
        try:
            answer, _status = await self.orders.accept(body)
        except OrderRejected as exc:
            await self.refuse(item, exc.message)
            return Fed("rejected", reason=exc.message)
        return Fed(
            "changed" if stored is not None else "new",
            exported=answer.exported_now,
            held=answer.export_status is ExportStatus.HELD,
        )

    async def refuse(self, item: Any, reason: str) -> None:
        """Journal an order refused (``rejected``, with the reason and the order as read), once per content."""
        now = self.clock.now()
        number = order_number(item)
        digest = hashlib.sha256(json.dumps(item, sort_keys=True).encode()).hexdigest()[:20]
        external_id = f"{self.settings.oms_application_id}-order-pull-{(number or '-')[:64]}-{digest}"
        async with self.db.connect() as connection:
            journal_id = (
                await connection.execute(
                    JOURNAL_PULL_ENTRY,
                    {
                        "channel": PULL_CHANNEL,
                        "topic": PULLED_ORDER_TOPIC,
                        "external_id": external_id,
                        "payload": json.dumps(storable(item if isinstance(item, dict) else {"order": item})),
                        "refs": [number] if number else [],
                        "status": Status.REJECTED.value,
                        "last_error": storable_text(reason)[:ERROR_CHARS],
                        "result": None,
                        "next_attempt_at": now,
                        "started_at": now,
                        "finished_at": now,
                        "duration_ms": 0,
                    },
                )
            ).scalar_one_or_none()
        if journal_id is not None:
            log.warning(
                "order %s from Adobe Commerce refused: %s",
                number,
                reason,
                extra={"action": "order_pull_refused", "increment_id": number, "message_id": journal_id},
            )


def order_number(item: Any) -> str | None:
    """The order number of an order as read (None: it has none usable — the service then refuses it — or one that
    PostgreSQL text cannot hold, such as a NUL)."""
    number = item.get("increment_id") if isinstance(item, dict) else None
    if isinstance(number, bool) or not isinstance(number, str | int):
        return None
    text = str(number).strip()
    return text if text and len(text) <= 64 and text.isprintable() else None


def _unchanged(stored: Any, item: dict[str, Any], key: OrderKey) -> bool:
    """The connector has this order as it is: stored from the same ``updated_at`` (or a later one: the pull read
    an older state than a post delivered) with the same status."""
    at = stored.commerce_updated_at
    if at is None:
        return False
    return at > key.updated_at or (at == key.updated_at and stored.commerce_status == item.get("status"))


def storable_text(text: str) -> str:
    """``text`` as PostgreSQL can store it: no NUL, no lone surrogate (an order refused may carry either)."""
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def storable(value: Any, depth: int = 0) -> Any:
    """``value`` as jsonb takes it: strings (keys too) storable, numbers finite, at most MAX_STORED_DEPTH deep."""
    if depth > MAX_STORED_DEPTH:
        return "(nested too deep)"
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {storable_text(str(key)): storable(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [storable(item, depth + 1) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
