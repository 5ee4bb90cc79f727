"""Order export: store what the store posts, decide held or export, queue the create call in the same transaction,
deliver it inline in sync mode, show each order's export status, and queue again what was never exported.

Never exported twice: every decision about one order is taken under its row lock, an order with an export message
is not exported again by a post, and each export message has a stable id (``<app>-order-<number>-<attempt>``).
Never lost: the order and its export message commit together; in sync mode the message is leased to the request
that sends it, and if that request fails or dies the outbox delivers it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import asyncpg
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.clock import Clock
from app.data.bus import LEASE_FOR_INLINE_SEND
from app.data.orders import (
    BUNDLE_RULES,
    COUNT_EXPORT_MESSAGES,
    EXPORT_NEW_ORDER,
    INSERT_ORDER,
    LOCK_ORDER,
    ORDER_VIEW,
    ORDERS_TO_SYNC,
    RARE_EXPORTS,
    SET_ORDER_EXPORT,
    UPDATE_ORDER,
    order_page,
)
from app.data.outbox import OMS_CHANNEL, OutboundMessage, Outbox
from app.data.sql import PlainStatement
from app.db import Database
from app.errors import ConnectorError, NotFound, OrderRejected, PeerError, PluginFailed
from app.mappers.order_to_mcom import (
    LineAttributePlugin,
    LineAttributePluginFailed,
    MappingError,
    OrderMappingOptions,
    order_to_mcom,
)
from app.models import BundleSourcingRule, Status
from app.protocol.commerce_order import CommerceOrder, ParsedOrder, describe_errors, parse_order_body
from app.protocol.json_numbers import InexactNumber, jsonable
from app.protocol.references import MAX_REFERENCES
from app.protocol.strict_json import MAX_INT
from app.schemas import (
    ExportStatus,
    OrderDelivery,
    OrderExportAnswer,
    OrderPage,
    OrderSummary,
    OrderSyncResult,
    OrderView,
    SourcingRuleView,
)
from app.settings import Settings

log = logging.getLogger(__name__)

CREATE_ORDER = "magento.sales.order_management.create"
MAX_PAGE = 500
SYNC_BATCH = 500  # orders queued again per transaction by `orders sync`
MAX_CACHED_RULES = 10_000  # bundle SKUs whose sourcing rule a process remembers (then it forgets them all)
MAX_SYNC_LISTED = 1000  # orders (and skipped ones) named in the answer of a sync; `queued` counts them all
BUNDLE_RULES_SQL = PlainStatement.of(BUNDLE_RULES)
EXPORT_NEW_ORDER_SQL = PlainStatement.of(EXPORT_NEW_ORDER)


def order_lane(increment_id: str) -> str:
    """Outbound lane of one order: its calls (create, later cancel / return) reach the OMS in order, while
    different orders proceed in parallel and one order the OMS keeps failing never blocks the others. Every call
    but the create is enqueued by app/services/order_gate.enqueue_order_call, so that it waits for the create."""
    return f"order/{increment_id}"


# The statuses of an order's export message behind each export status (app/data/orders.py ORDER_EXPORT_STATUS says
# the same as one expression; a filter needs them as values its index can find).
EXPORT_MESSAGE_STATUSES: dict[ExportStatus, frozenset[str]] = {
    ExportStatus.QUEUED: frozenset({Status.QUEUED.value, Status.PROCESSING.value, Status.RETRYING.value}),
    ExportStatus.SENT: frozenset({Status.SUCCEEDED.value}),
    ExportStatus.DEAD: frozenset({Status.DEAD.value}),
    ExportStatus.FAILED: frozenset(
        status.value
        for status in Status
        if status not in {Status.QUEUED, Status.PROCESSING, Status.RETRYING, Status.SUCCEEDED, Status.DEAD}
    ),
}


class InlineSender(Protocol):
    """What a sync export needs of the bus (app/workers/bus.py ``Bus``, given by app/runtime.py; this service imports
    no worker): its outbox, whether it can send now, and one leased message delivered and recorded as a worker would."""

    outbox: Outbox
    lease_s: float  # how long an inline send's lease lasts

    def can_send(self, channel: str) -> bool: ...

    async def enabled(self) -> bool: ...

    def leased_message(self, row: Mapping[str, Any], lease_until: datetime) -> OutboundMessage: ...

    async def send_inline(self, message: OutboundMessage) -> Any | PeerError: ...


@dataclass(frozen=True)
class StoredOrder:
    """What a post found in the database, under the order's row lock."""

    id: int
    status: str  # the store's status now in force (a stale post does not change it)
    export_message_id: int | None  # set once the order was exported
    exports: int  # export messages queued so far (the next one's id suffix is exports + 1)


class OrderService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: Settings,
        bus: InlineSender,
        plugins: list[tuple[str, LineAttributePlugin]] | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.bus = bus
        self.plugins = plugins or []
        self._rules_cache: dict[str, str | None] = {}  # bundle SKU → its stored rule (None: the default), last read

    # --- POST /orders ----------------------------------------------------------------------------------------
    async def accept(self, body: bytes) -> tuple[OrderExportAnswer, int]:
        """Store a posted order and export it if its status says so. Returns the answer and its HTTP status."""
        parsed, text = self._parse(body)
        order = parsed.order
        path = ["data", "value"] if parsed.wrapped else []
        sync = self.settings.oms_order_export_mode == "sync"
        inline = sync and self.bus.can_send(OMS_CHANNEL) and await self.bus.enabled()
        # Mapped before any statement: the CPU work must not hold a connection and the order's row lock. An order
        # that cannot be mapped is refused below, unless it was exported before (the store then only tells us
        # something new about an order the OMS already has). The first post of an exportable order (async mode) is
        # one statement, which also checks that the bundle rules it was mapped with are still the stored ones (so
        # they may come from this process's cache); anything else takes the locked path below.
        first_post = not sync and order.status in self.settings.oms_export_statuses
        rules = self._cached_rules(order) if first_post else None
        if rules is None:
            rules = await self._bundle_rules(order)
        mapped, refusal = self._try_map(order, parsed.document, rules)
        now = self.clock.now()
        if first_post and mapped is not None:
            message_id, rules_changed = await self._export_new(order, text, path, mapped, rules, now)
            if message_id is not None:  # the usual case: a new order, queued now
                return self._queued(order.increment_id, message_id), 202
            if rules_changed:  # an operator changed a rule (here or on another replica): map with the stored ones
                mapped, refusal = self._try_map(order, parsed.document, await self._bundle_rules(order))
        leased: OutboundMessage | None = None
        message_id = None
        async with self.db.connect() as connection:
            stored = await self._store(connection, order, text, path, now)
            exported_before = stored.export_message_id is not None
            if not exported_before and refusal is not None:
                raise refusal  # rolls the insert back: nothing of an unusable order is stored
            if not exported_before and stored.status in self.settings.oms_export_statuses:
                assert mapped is not None
                message_id = await self._queue_export(
                    connection, stored.id, order.increment_id, stored.exports, mapped, now
                )
                if inline:
                    leased = await self._lease(connection, message_id, now)

        mode = "sync" if sync else "async"
        if message_id is None and not exported_before:  # held
            answer = OrderExportAnswer(
                increment_id=order.increment_id,
                export_status=ExportStatus.HELD,
                message_id=None,
                exported_now=False,
                mode=mode,
                reason=self._held_reason(stored.status),
            )
            return answer, 202
        if message_id is not None and not sync:  # queued now, nothing more to read
            return self._queued(order.increment_id, message_id), 202
        delivery = await self._deliver_inline(leased) if message_id is not None else None
        view = await self.get(order.increment_id, with_documents=False)
        answer = OrderExportAnswer(
            increment_id=view.increment_id,
            export_status=view.export_status,
            message_id=view.message_id,
            exported_now=message_id is not None,
            mode=mode,
            reason=view.export_error,
            delivery=delivery,
        )
        return answer, 200 if delivery is not None and delivery.delivered else 202

    @staticmethod
    def _queued(increment_id: str, message_id: int) -> OrderExportAnswer:
        return OrderExportAnswer(
            increment_id=increment_id,
            export_status=ExportStatus.QUEUED,
            message_id=message_id,
            exported_now=True,
            mode="async",
        )

    async def _export_new(
        self,
        order: CommerceOrder,
        text: str,
        path: list[str],
        params: dict[str, Any],
        rules: dict[str, str],
        now: datetime,
    ) -> tuple[int | None, bool]:
        """The first post of an exportable order in one statement (EXPORT_NEW_ORDER), mapped with bundle ``rules``:
        its export message id, or None when the order is stored already (or being stored by a concurrent post) or
        the stored rules of its bundles are not ``rules`` (then the second value is True) — the general path
        decides."""
        bundle_skus = _bundle_skus(order)
        values = EXPORT_NEW_ORDER_SQL.values(
            bundle_skus=bundle_skus,
            bundle_rules=[rules.get(sku) for sku in bundle_skus],
            channel=OMS_CHANNEL,
            topic=CREATE_ORDER,
            external_id=self._export_id(order.increment_id, 0),
            lane=order_lane(order.increment_id),
            params=json.dumps(params, separators=(",", ":")),
            refs=_order_references(params),
            now=now,
            increment_id=order.increment_id,
            entity_id=order.entity_id,
            store_id=order.store_id,
            status=order.status,
            commerce_updated_at=_commerce_time(order.updated_at),
            body=text,
            path=path,
        )
        try:
            async with self.db.bus_connection() as connection:  # one self-committing statement
                row = await connection.fetchrow(EXPORT_NEW_ORDER_SQL.sql, *values)
        except asyncpg.UniqueViolationError:
            return None, False
        assert row is not None
        return row["message_id"], row["rules_changed"]

    def _export_id(self, increment_id: str, exports: int) -> str:
        """The stable JSON-RPC id of an order's export number ``exports + 1``."""
        return f"{self.settings.oms_application_id}-order-{increment_id}-{exports + 1}"

    @staticmethod
    def _parse(body: bytes | str) -> tuple[ParsedOrder, str]:
        try:
            parsed = parse_order_body(body)
        except ValidationError as exc:
            raise OrderRejected(describe_errors(exc)) from exc
        except ValueError as exc:
            raise OrderRejected([{"field": "(body)", "message": str(exc)}]) from exc
        text = body.decode() if isinstance(body, bytes) else body
        return parsed, text

    async def _store(
        self, connection: AsyncConnection, order: CommerceOrder, text: str, path: list[str], now: datetime
    ) -> StoredOrder:
        """Insert the order or lock the stored one (newer post wins; an older one changes nothing)."""
        updated_at = _commerce_time(order.updated_at)
        values = {
            "increment_id": order.increment_id,
            "entity_id": order.entity_id,
            "store_id": order.store_id,
            "status": order.status,
            "commerce_updated_at": updated_at,
            "body": text,
            "path": path,
            "now": now,
        }
        inserted = (await connection.execute(INSERT_ORDER, values)).first()
        if inserted is not None:
            return StoredOrder(id=inserted.id, status=order.status, export_message_id=None, exports=0)
        row = (await connection.execute(LOCK_ORDER, {"increment_id": order.increment_id})).one()
        stale = updated_at is not None and row.commerce_updated_at is not None and updated_at < row.commerce_updated_at
        if not stale:  # a late event (Adobe I/O delivers at least once, in any order) leaves the newer state
            await connection.execute(UPDATE_ORDER, {**values, "id": row.id})
        status = row.commerce_status if stale else order.status
        return StoredOrder(id=row.id, status=status, export_message_id=row.export_message_id, exports=row.exports)

    async def _bundle_rules(self, order: CommerceOrder) -> dict[str, str]:
        """The stored sourcing rules of the order's bundles (a bundle without one is absent); kept in the cache."""
        bundle_skus = _bundle_skus(order)
        if not bundle_skus:
            return {}
        async with self.db.bus_connection() as connection:
            rules = {row["sku"]: row["rule"] for row in await connection.fetch(BUNDLE_RULES_SQL.sql, bundle_skus)}
        if len(self._rules_cache) + len(bundle_skus) > MAX_CACHED_RULES:
            self._rules_cache.clear()
        self._rules_cache.update({sku: rules.get(sku) for sku in bundle_skus})
        return rules

    def _cached_rules(self, order: CommerceOrder) -> dict[str, str] | None:
        """The order's bundle rules as this process last read them, or None if it has not read them all. Only for
        EXPORT_NEW_ORDER, which checks them against the stored ones."""
        cached: dict[str, str] = {}
        for sku in _bundle_skus(order):
            if sku not in self._rules_cache:
                return None
            if (rule := self._rules_cache[sku]) is not None:
                cached[sku] = rule
        return cached

    def _try_map(
        self, order: CommerceOrder, document: dict[str, Any], rules: dict[str, str]
    ) -> tuple[dict[str, Any] | None, ConnectorError | None]:
        """``_map``, with a refusal returned instead of raised (it only counts for an order not exported before)."""
        try:
            return self._map(order, document, rules), None
        except (OrderRejected, PluginFailed) as exc:
            return None, exc

    def _map(self, order: CommerceOrder, document: dict[str, Any], rules: dict[str, str]) -> dict[str, Any]:
        """The create params as JSON-ready data. Raises OrderRejected (names the field) or PluginFailed."""
        options = OrderMappingOptions(
            sales_channel=self.settings.oms_sales_channel_id,
            store_channels=self.settings.oms_store_channels,
            bundle_sourcing_rules=rules,
            default_bundle_sourcing_rule=self.settings.oms_bundle_sourcing_rule,
            line_attribute_plugins=self.plugins,
            max_lines=self.settings.oms_max_order_lines,
        )
        try:
            return jsonable(order_to_mcom(order, options, document))
        except MappingError as exc:
            raise OrderRejected([{"field": exc.field, "message": exc.message}]) from exc
        except InexactNumber as exc:
            raise OrderRejected([{"field": "(amounts)", "message": str(exc)}]) from exc
        except LineAttributePluginFailed as exc:
            log.error("line-attribute plugin failed: %s", exc, extra={"action": "plugin_failed", "plugin": exc.name})
            raise PluginFailed(str(exc)) from exc

    def _held_reason(self, status: str) -> str:
        allowed = ", ".join(self.settings.oms_export_statuses)
        return f"status {status!r} is not in OMS_EXPORT_STATUSES ({allowed})"

    async def _queue_export(
        self,
        connection: AsyncConnection,
        row_id: int,
        increment_id: str,
        exports: int,
        params: dict[str, Any],
        now: datetime,
    ) -> int:
        external_id = self._export_id(increment_id, exports)
        message_id = await self.bus.outbox.enqueue(
            connection,
            method=CREATE_ORDER,
            params=params,
            now=now,
            lane=order_lane(increment_id),
            channel=OMS_CHANNEL,
            external_id=external_id,
            refs=_order_references(params),
        )
        if message_id is None:  # only if the message table and the order disagree: refuse rather than send twice
            raise RuntimeError(f"export message {external_id} exists already")
        await connection.execute(
            SET_ORDER_EXPORT,
            {"id": row_id, "message_id": message_id, "now": now},
        )
        return message_id

    async def _lease(self, connection: AsyncConnection, message_id: int, now: datetime) -> OutboundMessage:
        lease_until = now + timedelta(seconds=self.bus.lease_s)
        row = (
            await connection.execute(LEASE_FOR_INLINE_SEND, {"id": message_id, "now": now, "lease_until": lease_until})
        ).one()
        return self.bus.leased_message(row._mapping, lease_until)

    async def _deliver_inline(self, message: OutboundMessage | None) -> OrderDelivery:
        if message is None:
            reason = "the OMS is not configured (OMS_URL)" if not self.bus.can_send(OMS_CHANNEL) else None
            return OrderDelivery(
                delivered=False,
                error=reason or "the integration is disabled by an operator",
                fallback="outbox",
            )
        outcome = await self.bus.send_inline(message)
        if isinstance(outcome, PeerError):
            log.warning(
                "sync order export failed, left to the outbox: %s",
                outcome.message,
                extra={"action": "order_sync_fallback", "message_id": message.id},
            )
            return OrderDelivery(delivered=False, error=outcome.message, fallback="outbox")
        return OrderDelivery(delivered=True, result=outcome)

    # --- reads -----------------------------------------------------------------------------------------------
    async def get(self, increment_id: str, *, with_documents: bool = True) -> OrderView:
        async with self.db.connect() as connection:
            row = (await connection.execute(ORDER_VIEW, {"increment_id": increment_id})).first()
        if row is None:
            raise NotFound(f"no order {increment_id} was posted to the connector")
        summary = self._summary(row)
        return OrderView(
            **summary.model_dump(),
            order=row.document if with_documents else {},
            mcom=row.mcom if with_documents else None,
        )

    async def page(
        self,
        *,
        export_status: ExportStatus | None,
        since: datetime | None,
        cursor: str | None,
        limit: int,
        newest_first: bool = False,
    ) -> OrderPage:
        """A page of orders in arrival order (oldest first, as GET /orders; ``newest_first`` for the console's
        grid), walking the primary key: the cursor is the last id of the previous page."""
        position: int | None = None
        if cursor is not None:
            if not (cursor.isascii() and cursor.isdigit()) or int(cursor) > MAX_INT:  # "²".isdigit() too
                raise OrderRejected([{"field": "cursor", "message": "not a cursor returned by this endpoint"}])
            position = int(cursor)
        filters: dict[str, Any] = {"since": since, "limit": limit + 1}
        kind: str | None = None
        if export_status in (ExportStatus.HELD, ExportStatus.ACKNOWLEDGED):
            kind = export_status.value
        elif export_status is not None:
            kind, filters["message_statuses"] = "sent", sorted(EXPORT_MESSAGE_STATUSES[export_status])
        if newest_first:
            filters["before"] = MAX_INT if position is None else position
        else:
            filters["after"] = position or 0
        async with self.db.connect() as connection:
            if kind == "sent" and export_status is not ExportStatus.SENT:  # rare statuses: from their messages
                bound = {"message_statuses": filters["message_statuses"], "bound": RARE_EXPORTS}
                if (await connection.execute(COUNT_EXPORT_MESSAGES, bound)).scalar_one() < RARE_EXPORTS:
                    kind = "rare"
            statement = order_page(kind, newest_first=newest_first)
            rows = (await connection.execute(statement, filters)).all()
        more = len(rows) > limit
        rows = rows[:limit]
        return OrderPage(
            items=[self._summary(row) for row in rows], next_cursor=str(rows[-1].id) if more and rows else None
        )

    def _summary(self, row: Any) -> OrderSummary:
        status = ExportStatus(row.export_status)
        error = row.export_error
        if status is ExportStatus.HELD:
            error = self._held_reason(row.commerce_status)
        elif status is ExportStatus.FAILED and row.message_status == "discarded":
            error = f"the export message was discarded by an operator; {error or ''}".rstrip("; ")
        elif status in (ExportStatus.SENT, ExportStatus.ACKNOWLEDGED):
            error = None
        return OrderSummary(
            increment_id=row.increment_id,
            entity_id=row.entity_id,
            store_id=row.store_id,
            commerce_status=row.commerce_status,
            oms_status=row.oms_status,
            export_status=status,
            export_error=error,
            export_attempts=row.export_attempts,
            message_id=row.export_message_id,
            message_ids=list(row.export_message_ids or []),
            acknowledged_message_id=row.acknowledged_message_id,
            received_at=row.received_at,
            updated_at=row.updated_at,
            sent_at=row.sent_at if row.message_status == "succeeded" else None,
            acknowledged_at=row.acknowledged_at,
        )

    # --- orders sync -----------------------------------------------------------------------------------------
    async def sync(self, limit: int | None = None) -> OrderSyncResult:
        """Queue again, oldest first, the orders whose status is exportable but that were never exported, and
        those whose export failed, was discarded or died (the seed's oms:orders:sync [N]). Done in batches of
        SYNC_BATCH orders, one transaction each: a sync of every order of a large backlog holds no long transaction
        and keeps what it queued if it is interrupted. The answer lists the first MAX_SYNC_LISTED orders."""
        now = self.clock.now()
        numbers: list[str] = []
        message_ids: list[int] = []
        skipped: list[dict[str, str]] = []
        queued = considered = after = 0
        while limit is None or considered < limit:
            batch = SYNC_BATCH if limit is None else min(SYNC_BATCH, limit - considered)
            async with self.db.connect() as connection:
                rows = (
                    await connection.execute(
                        ORDERS_TO_SYNC,
                        {"statuses": self.settings.oms_export_statuses, "after": after, "limit": batch},
                    )
                ).all()
                for row in rows:
                    after = row.id
                    considered += 1
                    try:
                        parsed, _text = self._parse(row.document_text)
                        params = self._map(parsed.order, parsed.document, await self._bundle_rules(parsed.order))
                    except (OrderRejected, PluginFailed) as exc:  # e.g. a plugin installed since: report, go on
                        if len(skipped) < MAX_SYNC_LISTED:
                            skipped.append({"increment_id": row.increment_id, "reason": exc.message})
                        continue
                    message_id = await self._queue_export(
                        connection, row.id, row.increment_id, row.exports, params, now
                    )
                    queued += 1
                    if len(numbers) < MAX_SYNC_LISTED:
                        numbers.append(row.increment_id)
                        message_ids.append(message_id)
            if len(rows) < batch:
                break
        log.info("orders queued again: %d", queued, extra={"action": "orders_sync", "count": queued})
        return OrderSyncResult(queued=queued, increment_ids=numbers, message_ids=message_ids, skipped=skipped)

    # --- bundle sourcing rules -------------------------------------------------------------------------------
    async def sourcing_rule(self, sku: str) -> SourcingRuleView:
        async with self.db.connect() as connection:
            row = (await connection.execute(select(BundleSourcingRule).where(BundleSourcingRule.sku == sku))).first()
        if row is None:
            return SourcingRuleView(
                sku=sku, rule=self.settings.oms_bundle_sourcing_rule, source="default", updated_at=None
            )
        return SourcingRuleView(sku=sku, rule=row.rule, source="bundle", updated_at=row.updated_at)

    async def set_sourcing_rule(self, sku: str, rule: str) -> SourcingRuleView:
        now = self.clock.now()
        statement = insert(BundleSourcingRule).values(sku=sku, rule=rule, updated_at=now)
        statement = statement.on_conflict_do_update(
            index_elements=[BundleSourcingRule.sku], set_={"rule": rule, "updated_at": now}
        )
        async with self.db.connect() as connection:
            await connection.execute(statement)
        self._rules_cache.pop(sku, None)  # read again by the next order (other processes find out on their own)
        return SourcingRuleView(sku=sku, rule=rule, source="bundle", updated_at=now)


def _bundle_skus(order: CommerceOrder) -> list[str]:
    return sorted({item.sku for item in order.items if item.product_type.lower() == "bundle"})


def _order_references(params: dict[str, Any]) -> list[str]:
    """The order number and its SKUs (the shipping method too), for finding the export in the journal."""
    order = params["order"]
    return list(dict.fromkeys([order["id"], *(line["sku"] for line in order["lines"])]))[:MAX_REFERENCES]


def _commerce_time(value: str | None) -> datetime | None:
    """Adobe Commerce's ``updated_at`` (UTC, "YYYY-MM-DD HH:MM:SS"); None if absent or unreadable."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
