"""The parts of a running connector, built once from the settings and shared by HTTP, workers and CLI."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx

from app.clients.commerce import CommerceClient
from app.clients.oms import OmsClient
from app.clock import Clock, SystemClock
from app.db import Database, DatabaseUrl, head_revision, migrate, resolve_database_url
from app.metrics import Metrics
from app.plugins import load_line_attribute_plugins
from app.services.catalog import CatalogService
from app.services.catalog_export import CatalogExports
from app.services.catalog_import import CatalogImport
from app.services.commerce_effects import COMMERCE_CHANNEL
from app.services.inbox import InboxWriter, OmsInbox
from app.services.integration import IntegrationSwitch, Registrar
from app.services.journal import Journal
from app.services.journal_prune import JournalPrune
from app.services.order_actions import OrderActions
from app.services.order_gate import GATE_TOPICS
from app.services.order_pull import OrderPull
from app.services.orders import OrderService
from app.services.reports import ProcessingReports
from app.services.stock import StockService
from app.settings import Settings
from app.workers.bus import Bus, Sender
from app.workers.commerce_sender import CommerceSender
from app.workers.oms_sender import OmsSender
from app.workers.references import ReferenceIndexer
from app.workers.registry import HandlerRegistry, build_registry
from app.workers.runner import WorkerPool
from app.workers.stats import StatsRollup

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    clock: Clock
    registry: HandlerRegistry
    bus: Bus
    writer: InboxWriter
    inbox: OmsInbox
    switch: IntegrationSwitch
    registrar: Registrar
    journal: Journal
    journal_prune: JournalPrune
    stock: StockService
    orders: OrderService
    order_pull: OrderPull  # orders pulled from Adobe Commerce (polled by processes with workers)
    order_actions: OrderActions
    catalog: CatalogService
    catalog_exports: CatalogExports
    catalog_import: CatalogImport
    stats: StatsRollup  # the processing-time report's rollup (run by processes with workers)
    references: ReferenceIndexer  # the journal's full references of large messages (run by processes with workers)
    reports: ProcessingReports
    client: OmsClient | None
    commerce: CommerceClient | None
    head_revision: str | None
    metrics: Metrics  # this process's Prometheus metrics (GET /metrics)
    workers: WorkerPool | None = None
    background: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        url: DatabaseUrl | None = None,
        clock: Clock | None = None,
        registry: HandlerRegistry | None = None,
        oms_transport: httpx.AsyncBaseTransport | None = None,
        commerce_transport: httpx.AsyncBaseTransport | None = None,
    ) -> Runtime:
        url = url or resolve_database_url(
            settings.database_url.get_secret_value() if settings.database_url else None, settings.data_dir
        )
        clock = clock or SystemClock()
        db = Database(url)
        registry = registry or build_registry(settings)
        metrics = Metrics()
        client = OmsClient.from_settings(settings, oms_transport, metrics) if settings.oms_configured else None
        switch = IntegrationSwitch(db, clock)
        senders: dict[str, Sender] = {}
        if client is not None:
            senders["oms"] = OmsSender(client, mode=settings.oms_send_mode, batch_size=settings.oms_rpc_batch_size)
        commerce: CommerceClient | None = None
        if settings.commerce_configured:
            commerce = CommerceClient.from_settings(settings, commerce_transport, metrics)
        if commerce is not None:
            senders[COMMERCE_CHANNEL] = CommerceSender(commerce)
        bus = Bus(
            db=db,
            registry=registry,
            settings=settings,
            clock=clock,
            senders=senders,
            is_enabled=switch.is_enabled,
            gate_topics=GATE_TOPICS,
            metrics=metrics,
        )
        writer = InboxWriter(db, clock)
        catalog = CatalogService(db, clock, settings, bus.outbox)
        plugins = load_line_attribute_plugins()
        orders = OrderService(db, clock, settings, bus, plugins)
        # The pull queues its exports to the outbox whatever OMS_ORDER_EXPORT_MODE says: a poll of a hundred orders
        # must not wait for a hundred OMS round trips (sync mode is an answer to the store's POST, which it has not).
        pulled = orders
        if settings.oms_order_export_mode != "async":
            pulled = OrderService(
                db, clock, settings.model_copy(update={"oms_order_export_mode": "async"}), bus, plugins
            )
        return cls(
            settings=settings,
            db=db,
            clock=clock,
            registry=registry,
            bus=bus,
            writer=writer,
            inbox=OmsInbox(writer, metrics),
            switch=switch,
            registrar=Registrar(db, settings, clock, client),
            journal=Journal(db, clock),
            journal_prune=JournalPrune(db, clock, settings),
            stock=StockService(db, clock, settings),
            orders=orders,
            order_pull=OrderPull(db, clock, settings, pulled, commerce),
            order_actions=OrderActions(db, clock, settings, bus.outbox),
            catalog=catalog,
            catalog_exports=CatalogExports(db, clock, settings, client, catalog, commerce),
            catalog_import=CatalogImport(db, clock, settings),
            stats=StatsRollup(db, clock, settings),
            references=ReferenceIndexer(db, clock),
            reports=ProcessingReports(db, clock),
            client=client,
            commerce=commerce,
            head_revision=head_revision(url),
            metrics=metrics,
        )

    async def migrate(self) -> None:
        await asyncio.to_thread(migrate, self.db.url)

    async def seed(self) -> None:
        """Configuration that seeds the database (OMS_AGGREGATE_WEBSITES, OMS_PRODUCT_ATTRIBUTES,
        OMS_SHIPPING_METHODS). Best effort: a database that is down or not migrated yet must not stop start-up
        (health/ready says so); `oms-connector migrate` seeds too."""
        try:
            await self.stock.seed_aggregates()
            await self.catalog.seed()
        except Exception as exc:
            log.warning("configuration not seeded: %s", exc, extra={"action": "seed_failed"})

    async def start(self, *, workers: bool, register: bool) -> None:
        if self.settings.run_migrations:
            await self.migrate()
        await self.seed()
        await self.writer.start()
        if workers:
            self.workers = WorkerPool(
                self.bus, self.db, inbound=self.settings.inbound_workers, outbound=self.settings.outbound_workers
            )
            await self.workers.start()
            self.run_in_background(self.catalog_exports.keep_running(), "catalog-exports")
            self.run_in_background(self.stats.keep_rolling_up(), "stats-rollup")  # one replica at a time
            self.run_in_background(self.references.keep_indexing(), "journal-references")
            self.run_in_background(self.journal_prune.keep_pruning(), "journal-prune")  # daily, one replica
            if self.settings.order_pull_enabled:  # every ADOBE_COMMERCE_ORDER_POLL_S, one replica
                self.run_in_background(self.order_pull.keep_pulling(), "order-pull")
        if register and self.client is not None and self.settings.callback_url:
            self.background.append(asyncio.create_task(self.registrar.keep_registered(), name="oms-register"))
        # Everything built so far lives as long as the process: keep it out of the garbage collector's full
        # passes, which otherwise cost a measurable share of each webhook call (bench/ingest.py).
        gc.freeze()

    def run_in_background(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """A task that lives as long as the runtime (stopped with it)."""
        self.background.append(asyncio.create_task(work, name=name))

    async def stop(self) -> None:
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        if self.workers is not None:
            await self.workers.stop()
        await self.writer.stop()
        if self.client is not None:
            await self.client.aclose()
        if self.commerce is not None:
            await self.commerce.aclose()
        await self.db.dispose()
