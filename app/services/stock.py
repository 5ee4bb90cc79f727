"""Stock as the OMS set it: reads per SKU and per website, the aggregate → website map, and the reset.

The only writers of stock are OMS messages (app/workers/handlers/stock.py) and the development-only reset here;
the HTTP API refuses manual edits (the OMS owns stock, seed I3).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.clock import Clock
from app.data.outbox import OMS_CHANNEL, NewMessage, insert_messages
from app.data.stock import STOCK_RESET_SKUS
from app.db import Database
from app.errors import NotFound, OperatorActionRefused
from app.models import Direction, Stock, StockAggregate
from app.protocol.jsonrpc import request_envelope
from app.protocol.methods import lane_for
from app.protocol.references import extract_references
from app.protocol.stock import STOCK_UPDATED, header_marks
from app.schemas import (
    AggregateStock,
    AggregateWebsitesView,
    SkuStock,
    StockResetResult,
    WebsiteStock,
    WebsiteStockItem,
    WebsiteStockPage,
)
from app.settings import Settings

MAX_BULK_SKUS = 500  # GET /stock?skus=…
MAX_PAGE = 1000  # GET /stock listing
RESET_PAGE_SKUS = 5000  # SKUs per reset message, as a FULL snapshot page
RESET_QUANTITY = 100  # the seed's oms:stock:reset quantity


@dataclass(frozen=True)
class Salable:
    quantity: Decimal | None  # None: not managed (unlimited)
    is_salable: bool


def salable(stock: Any | None) -> Salable:
    """What a website fed by an aggregate can sell of a SKU, given its stock row (None: the OMS sent none):
    unlimited ⇒ always; otherwise the OMS's quantity, if any."""
    if stock is not None and stock.unlimited:
        return Salable(None, True)
    amount = stock.quantity if stock is not None else Decimal(0)
    return Salable(amount, amount > 0)


def reset_refusal(settings: Settings) -> str | None:
    """Why `stock reset` may not run here, or None: the seed allows oms:stock:reset in developer mode only."""
    if settings.app_env == "development":
        return None
    return (
        "stock reset is allowed only when APP_ENV=development (the OMS owns stock; the seed allows "
        f"oms:stock:reset in developer mode only); APP_ENV is {settings.app_env}"
    )


class StockService:
    def __init__(self, db: Database, clock: Clock, settings: Settings) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings

    # --- aggregates ↔ websites -------------------------------------------------------------------------------
    async def seed_aggregates(self) -> None:
        """Add the aggregates of OMS_AGGREGATE_WEBSITES that the database does not know yet. Known ones keep what
        an operator set (PUT /stock/aggregates), so a restart never undoes it."""
        mapping = self.settings.oms_aggregate_websites
        if not mapping:
            return
        async with self.db.connect() as connection:
            rows = [
                {"aggregate_id": aggregate, "websites": websites, "updated_at": self.clock.now()}
                for aggregate, websites in mapping.items()
            ]
            await connection.execute(insert(StockAggregate).values(rows).on_conflict_do_nothing())

    async def aggregate_websites(self) -> AggregateWebsitesView:
        async with self.db.connect() as connection:
            return await self._aggregate_view(connection)

    async def replace_aggregate_websites(self, mapping: dict[str, list[str]]) -> AggregateWebsitesView:
        """Replace the whole map. Aggregates left out keep a row with no website (unassigned)."""
        now = self.clock.now()
        async with self.db.connect() as connection:
            # One writer at a time, so two concurrent PUTs cannot each give the same website to another aggregate.
            await connection.execute(text("LOCK TABLE stock_aggregate IN SHARE ROW EXCLUSIVE MODE"))
            await connection.execute(
                StockAggregate.__table__.update()
                .where(StockAggregate.aggregate_id.not_in(list(mapping)))
                .values(websites=[], updated_at=now)
            )
            if mapping:
                statement = insert(StockAggregate).values(
                    [{"aggregate_id": a, "websites": w, "updated_at": now} for a, w in mapping.items()]
                )
                await connection.execute(
                    statement.on_conflict_do_update(
                        index_elements=[StockAggregate.aggregate_id],
                        set_={"websites": statement.excluded.websites, "updated_at": now},
                    )
                )
            return await self._aggregate_view(connection)

    async def _aggregate_view(self, connection: AsyncConnection) -> AggregateWebsitesView:
        configured = await self._websites_by_aggregate(connection)
        with_stock = (await connection.execute(_AGGREGATES_WITH_STOCK)).scalars().all()
        return AggregateWebsitesView(
            aggregates={a: w for a, w in configured.items() if w},
            unassigned=sorted({a for a, w in configured.items() if not w} | set(with_stock) - set(configured)),
        )

    @staticmethod
    async def _websites_by_aggregate(connection: AsyncConnection) -> dict[str, list[str]]:
        rows = await connection.execute(
            select(StockAggregate.aggregate_id, StockAggregate.websites).order_by(StockAggregate.aggregate_id)
        )
        return {row.aggregate_id: list(row.websites) for row in rows}

    # --- reads -----------------------------------------------------------------------------------------------
    async def sku_stock(self, sku: str) -> SkuStock:
        async with self.db.connect() as connection:
            rows = (await connection.execute(select(Stock).where(Stock.sku == sku).order_by(Stock.aggregate_id))).all()
            if not rows:
                raise NotFound(f"the OMS has sent no stock for SKU {sku!r}")
            websites_of = await self._websites_by_aggregate(connection)
        by_aggregate = {row.aggregate_id: row for row in rows}
        aggregates = [
            AggregateStock(
                aggregate_id=stock.aggregate_id,
                quantity=stock.quantity,
                unlimited=stock.unlimited,
                manage_stock=not stock.unlimited,
                source_timestamp=stock.source_ts,
                message_id=stock.message_id,
                updated_at=stock.updated_at,
                websites=websites_of.get(stock.aggregate_id, []),
            )
            for stock in by_aggregate.values()
        ]
        websites: list[WebsiteStock] = []
        for aggregate_id, codes in websites_of.items():
            stock = by_aggregate.get(aggregate_id)
            sale = salable(stock)
            websites.extend(
                WebsiteStock(
                    website=code,
                    aggregate_id=aggregate_id,
                    salable_quantity=sale.quantity,
                    is_salable=sale.is_salable,
                    stock_received=stock is not None,
                )
                for code in codes
            )
        websites.sort(key=lambda w: w.website)
        return SkuStock(
            sku=sku,
            aggregates=aggregates,
            websites=websites,
            unassigned_aggregates=[a.aggregate_id for a in aggregates if not a.websites],
        )

    async def website_stock(
        self, website: str, *, skus: Sequence[str] | None, limit: int, cursor: str | None
    ) -> WebsiteStockPage:
        """Salable stock of one website: for the given SKUs (each answered, with or without stock), or a page of
        every SKU its aggregate has, in SKU order."""
        async with self.db.connect() as connection:
            aggregate_id = (
                await connection.execute(
                    select(StockAggregate.aggregate_id).where(StockAggregate.websites.any_() == website)
                )
            ).scalar_one_or_none()
            if aggregate_id is None:
                raise NotFound(f"website {website!r} is fed by no aggregate (see GET /stock/aggregates)")
            query = select(Stock).where(Stock.aggregate_id == aggregate_id)
            if skus is not None:
                query = query.where(Stock.sku.in_(list(skus)))
            else:
                if cursor is not None:
                    query = query.where(Stock.sku > cursor)
                query = query.order_by(Stock.sku).limit(limit + 1)
            found = {row.sku: row for row in (await connection.execute(query)).all()}
        next_cursor = None
        if skus is None:
            ordered = list(found)
            if len(ordered) > limit:
                ordered = ordered[:limit]
                next_cursor = ordered[-1]
            wanted = ordered
        else:
            wanted = list(dict.fromkeys(skus))
        items = []
        for sku in wanted:
            stock = found.get(sku)
            sale = salable(stock)
            items.append(
                WebsiteStockItem(
                    sku=sku,
                    quantity=stock.quantity if stock else None,
                    unlimited=stock.unlimited if stock else False,
                    salable_quantity=sale.quantity,
                    is_salable=sale.is_salable,
                    source_timestamp=stock.source_ts if stock else None,
                    message_id=stock.message_id if stock else None,
                )
            )
        return WebsiteStockPage(website=website, aggregate_id=aggregate_id, items=items, next_cursor=next_cursor)

    # --- reset (development only) ----------------------------------------------------------------------------
    async def reset(self) -> StockResetResult:
        """The seed's oms:stock:reset: clear stock, then queue through the inbox a FULL update of quantity 100
        for every SKU the connector knows — with stock, or a product of its catalog (not deleted, not a shipping
        method) — in every known aggregate (configured, in OMS_AGGREGATE_WEBSITES, or with stock). All in one
        transaction; the SKUs are read and queued a page at a time (keyset), so memory stays flat however many."""
        refusal = reset_refusal(self.settings)
        if refusal is not None:
            raise OperatorActionRefused(refusal)
        now = self.clock.now()
        run = uuid.uuid4().hex[:12]
        async with self.db.connect() as connection:
            # No stock message may apply between reading the SKUs and clearing them.
            await connection.execute(text("LOCK TABLE stock IN EXCLUSIVE MODE"))
            configured = (await connection.execute(select(StockAggregate.aggregate_id))).scalars().all()
            with_stock = (await connection.execute(_AGGREGATES_WITH_STOCK)).scalars().all()
            aggregates = sorted(set(configured) | set(self.settings.oms_aggregate_websites) | set(with_stock))
            after, skus, messages = "", 0, 0
            while aggregates:
                known = await connection.execute(STOCK_RESET_SKUS, {"after": after, "limit": RESET_PAGE_SKUS})
                page = list(known.scalars())
                if not page:
                    break
                rows = [
                    _reset_message(f"stock-reset-{run}-{messages + n}", aggregate, page, now.isoformat())
                    for n, aggregate in enumerate(aggregates)
                ]
                await insert_messages(connection, rows, now)
                after, skus, messages = page[-1], skus + len(page), messages + len(rows)
            # Cleared once every page is queued (the pages read the SKUs with stock); the messages apply after the
            # commit, by the stock handler, like the OMS's.
            await connection.execute(delete(Stock))
        return StockResetResult(skus=skus, aggregates=aggregates, messages=messages)


# The aggregates that have stock: a loose index scan over ix_stock_aggregate_id_sku (one probe per aggregate, not a
# scan of every SKU).
_AGGREGATES_WITH_STOCK = text(
    """
    WITH RECURSIVE found AS (
        (SELECT aggregate_id FROM stock ORDER BY aggregate_id LIMIT 1)
        UNION ALL
        SELECT (SELECT s.aggregate_id FROM stock s WHERE s.aggregate_id > found.aggregate_id
                 ORDER BY s.aggregate_id LIMIT 1)
          FROM found WHERE found.aggregate_id IS NOT NULL
    )
    SELECT aggregate_id FROM found WHERE aggregate_id IS NOT NULL
    """
)


def _reset_message(external_id: str, aggregate_id: str, skus: list[str], created_on: str) -> NewMessage:
    params = {
        "snapshot": {
            "aggregate_id": aggregate_id,
            "mode": "FULL",
            "created_on": created_on,
            "stock": [{"sku": sku, "quantity": RESET_QUANTITY, "unlimited": False} for sku in skus],
        }
    }
    return NewMessage(
        direction=Direction.IN,
        channel=OMS_CHANNEL,
        topic=STOCK_UPDATED,
        external_id=external_id,
        lane=lane_for(STOCK_UPDATED, params),
        document=json.dumps(request_envelope(external_id, STOCK_UPDATED, params)),
        headers={"origin": "oms-connector stock reset", **header_marks(params)},
        refs=extract_references(params),
    )
