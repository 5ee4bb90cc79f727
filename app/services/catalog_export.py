"""Full catalog export (the seed's oms:catalog-export:*): every product of the connector's catalog, in SKU order,
sent to the OMS in batches of OMS_CATALOG_BATCH_SIZE. The shipping methods are in every export: they are rows of the
catalog (kept in step with the methods in force as the export starts), sent in SKU order with the rest from the
catalog, and after the store's products in batches of their own when the products come from Adobe Commerce.

A batch is the unit of progress: ``cursor`` (the last SKU of the last acknowledged batch) moves only when the OMS
acknowledged every product of it. Within the batch under way, acknowledged SKUs are recorded as they come
(``batch_acked``, flushed every FLUSH_EVERY products), so a resumed export neither restarts at zero nor sends a
product twice; a product whose acknowledgement was not recorded yet when the process died is sent again with the
same JSON-RPC id (``<app>-catalog-<export>-<sku>``), which lets the OMS de-duplicate it.

One export at a time (a unique index on pending/running rows). The process running it holds a lease it renews at
each flush; a worker takes over an export whose lease expired (its process died) and one scheduled for it. Memory
stays flat: at most three batches at a time, one on the wire, the next being read (keyset pagination, never OFFSET)
and the last one being recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import uuid
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from app.clients.commerce import CommerceClient
from app.clients.oms import OmsClient
from app.clock import Clock
from app.data.catalog import CATALOG_SETTING
from app.data.catalog_export import (
    ACTIVE_CATALOG_EXPORT,
    CANCEL_CATALOG_EXPORT,
    CATALOG_BATCH_ACKNOWLEDGED,
    CATALOG_BATCH_ENCODED,
    CATALOG_BATCH_STARTED,
    CATALOG_EXPORT_ERROR,
    CATALOG_EXPORT_PROGRESS,
    CATALOG_EXPORT_STATE,
    CATALOG_SIZE,
    CLAIM_CATALOG_EXPORT,
    CREATE_CATALOG_EXPORT,
    FINISH_CATALOG_EXPORT,
    LATEST_CATALOG_EXPORT,
    LOCK_CATALOG_EXPORTS,
    SHIPPING_METHOD_BATCH_ENCODED,
)
from app.db import Database
from app.errors import NotConfigured, NotFound, PeerError, PeerRejected, PeerUnavailable
from app.mappers.product_to_mcom import PRODUCT_UPDATED, encode, fingerprint, product_params
from app.protocol.commerce_product import CommerceProduct
from app.protocol.jsonrpc import encoded_request
from app.schemas import CatalogExportView
from app.services.catalog import ATTRIBUTES_KEY, CatalogService
from app.settings import Settings

log = logging.getLogger(__name__)

FLUSH_EVERY = 500  # acknowledged products recorded per statement (single mode)
RPC_BATCH_MAX = 5000  # calls per JSON-RPC batch request
COMMERCE_PAGE_SIZE = 500  # products per GET /products page
# A full export from Adobe Commerce: the cursor is the next page number, then this prefix and the last shipping
# method's SKU sent (the methods' batches come after the store's last page).
SHIPPING_METHODS_CURSOR = "shipping-methods:"
MAX_ERRORS_KEPT = 100
POLL_S = 2.0
SIZE_COUNTED = 50_000  # catalog rows counted for the expected size; past that, PostgreSQL's estimate
BACKOFF_MAX_S = 60.0


def owner_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class ExportStopped(Exception):
    """The export was canceled, or another process took it over: stop quietly."""


class CatalogExports:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: Settings,
        client: OmsClient | None,
        catalog: CatalogService,
        commerce: CommerceClient | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.client = client
        self.catalog = catalog
        self.commerce = commerce
        self.owner = owner_name()
        self.wakeup = asyncio.Event()

    def _lease_end(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.settings.oms_catalog_export_lease_s)

    # --- requests (HTTP, CLI) --------------------------------------------------------------------------------
    async def request(self, *, schedule_only: bool) -> tuple[CatalogExportView, bool]:
        """Create an export (pending if ``schedule_only``, else running under this process's lease). A request
        while one is pending or running answers that one (False)."""
        if self.client is None:
            raise NotConfigured("OMS_URL is not configured: a catalog export has nowhere to go")
        now = self.clock.now()
        async with self.db.connect() as connection:
            await connection.execute(LOCK_CATALOG_EXPORTS)
            active = (await connection.execute(ACTIVE_CATALOG_EXPORT)).first()
            if active is not None:
                return _view(active, now), False
            row = (
                await connection.execute(
                    CREATE_CATALOG_EXPORT,
                    {
                        "status": "pending" if schedule_only else "running",
                        "source": "commerce" if self.commerce is not None else "catalog",
                        "send_mode": self.settings.oms_catalog_send_mode,
                        "batch_size": self.settings.oms_catalog_batch_size,
                        "owner": None if schedule_only else self.owner,
                        "lease_until": None if schedule_only else self._lease_end(now),
                        "now": now,
                    },
                )
            ).one()
        if schedule_only:
            self.wakeup.set()
        return _view(row, now), True

    async def current(self) -> CatalogExportView:
        async with self.db.connect() as connection:
            row = (await connection.execute(LATEST_CATALOG_EXPORT)).first()
        if row is None:
            raise NotFound("no catalog export was ever requested")
        return _view(row, self.clock.now())

    async def expected_products(self) -> tuple[int | None, bool]:
        """How many products a full export of the connector's catalog sends (its progress and ETA on the console),
        and whether that is an estimate: counted up to SIZE_COUNTED rows, past that PostgreSQL's row estimate; None
        when the table has more rows and no estimate yet (never analyzed). An export from Adobe Commerce sends what
        the store has, which the connector's catalog only mirrors."""
        async with self.db.connect() as connection:
            row = (await connection.execute(CATALOG_SIZE, {"cap": SIZE_COUNTED})).one()
        if row.counted < SIZE_COUNTED:
            return row.counted, False
        if row.estimated is None or row.estimated < SIZE_COUNTED:
            return None, True
        return row.estimated, True

    async def cancel(self) -> CatalogExportView:
        now = self.clock.now()
        async with self.db.connect() as connection:
            row = (await connection.execute(CANCEL_CATALOG_EXPORT, {"now": now})).first()
        if row is None:
            raise NotFound("no catalog export is pending or running")
        return _view(row, now)

    # --- the workers' side -----------------------------------------------------------------------------------
    async def claim(self) -> int | None:
        """Take a scheduled export, or one whose process died (its lease expired)."""
        if self.client is None:
            return None
        now = self.clock.now()
        async with self.db.connect() as connection:
            return (
                await connection.execute(
                    CLAIM_CATALOG_EXPORT,
                    {"owner": self.owner, "lease_until": self._lease_end(now), "now": now},
                )
            ).scalar_one_or_none()

    async def keep_running(self) -> None:
        """Background task of a process with workers: run what it can claim, look again every POLL_S."""
        while True:
            try:
                export_id = await self.claim()
                if export_id is not None:
                    await self.run(export_id)
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is down, say: try again later, never die
                log.warning("catalog export loop: %s", exc, extra={"action": "catalog_export_error"})
            self.wakeup.clear()
            try:
                await asyncio.wait_for(self.wakeup.wait(), POLL_S)
            except TimeoutError:
                pass

    async def run(self, export_id: int) -> None:
        """Send the export's remaining batches while this process holds its lease."""
        if self.client is None:  # a worker without OMS_URL never takes one (claim), but be safe
            await self._finish(export_id, "failed", "the OMS is not configured (OMS_URL)")
            return
        runner = _Run(self, export_id)
        try:
            await runner.loop()
        except ExportStopped:
            log.info("catalog export %s stopped (canceled or taken over)", export_id)

    async def _finish(self, export_id: int, status: str, error: str | None) -> None:
        async with self.db.connect() as connection:
            await connection.execute(
                FINISH_CATALOG_EXPORT,
                {"id": export_id, "owner": self.owner, "status": status, "error": error, "now": self.clock.now()},
            )


@dataclass(frozen=True)
class Batch:
    """A batch ready for the wire, in SKU order: each product's JSON-RPC request as text, and the fingerprint to
    record once the OMS acknowledged it (None where the OMS already has these params)."""

    skus: list[str]
    calls: list[str]
    fingerprints: list[str | None]
    next_cursor: str
    unreadable: list[dict[str, str]] = field(default_factory=list)  # products the source gave that cannot be sent


class _Run:
    """One process running one export."""

    def __init__(self, exports: CatalogExports, export_id: int) -> None:
        self.exports = exports
        self.id = export_id
        self.settings = exports.settings
        assert exports.client is not None
        self.client: OmsClient = exports.client
        self.acked: list[str] = []  # sent and answered, not yet recorded
        self.errors: list[dict[str, str]] = []
        self.recording: asyncio.Task[None] | None = None  # the last batch's record, written in the background

    async def loop(self) -> None:
        await self.exports.catalog.sync_shipping_methods()  # every method in force has its row: the export sends it
        async with self.exports.db.connect() as connection:
            state = (await connection.execute(CATALOG_EXPORT_STATE, {"id": self.id})).one()
            attributes = (await connection.execute(CATALOG_SETTING, {"key": ATTRIBUTES_KEY})).scalar()
        attributes = list(attributes if attributes is not None else self.settings.oms_product_attributes)
        batch_size, mode = state.batch_size, state.send_mode
        read = self._read_commerce if state.source == "commerce" else self._read_catalog
        batch = await read(state.cursor, batch_size, attributes)
        if batch is not None:
            await self._update(CATALOG_BATCH_STARTED, {})  # counted once, even when resumed
        done = set(state.batch_acked)  # of a batch a stopped process left half-recorded
        try:
            while batch is not None:
                # The next batch is read while this one is on the wire (reading changes nothing the OMS has), and
                # this one is recorded while the next is on the wire (below).
                upcoming = asyncio.create_task(read(batch.next_cursor, batch_size, attributes))
                try:
                    delivered = await self._alongside_record(self._deliver(batch, mode, done))
                    following = await upcoming if delivered else None
                finally:
                    upcoming.cancel()
                if not delivered:
                    return
                await self._settle()
                self._record(batch, opens_next=following is not None)
                batch, done = following, set()
            await self._settle()
        finally:
            await self._settle_quietly()
        await self.exports._finish(self.id, "done", None)

    async def _deliver(self, batch: Batch, mode: str, done: set[str]) -> bool:
        """Send what of ``batch`` the OMS has not acknowledged yet (``done``: recorded by a process that stopped)
        until it is all acknowledged. False: the export failed (the OMS was unreachable for the retry window, or
        refused a batch request as a whole)."""
        unavailable_since: datetime | None = None
        backoff = 1.0
        while True:
            calls = [(sku, call) for sku, call in zip(batch.skus, batch.calls, strict=True) if sku not in done]
            try:
                if mode == "rpc-batch":
                    await self._send_batch(calls)
                else:
                    await self._send_single(calls)
            except PeerUnavailable as exc:
                await self._flush()
                now = self.exports.clock.now()
                unavailable_since = unavailable_since or now
                window = timedelta(hours=self.settings.oms_retry_window_hours)
                if now - unavailable_since > window:
                    await self.exports._finish(self.id, "failed", f"the OMS was unreachable for {window}: {exc}")
                    return False
                await self._update(CATALOG_EXPORT_ERROR, {"error": exc.message})
                await asyncio.sleep(min(backoff, BACKOFF_MAX_S))
                backoff *= 2
                async with self.exports.db.connect() as connection:
                    state = (await connection.execute(CATALOG_EXPORT_STATE, {"id": self.id})).one()
                done = set(state.batch_acked)
                continue
            except PeerRejected as exc:  # the batch request itself (single mode records a product's refusal)
                await self._flush()
                await self.exports._finish(
                    self.id, "failed", f"the OMS refused the batch request: {exc.message} (OMS_CATALOG_SEND_MODE)"
                )
                return False
            return True

    def _record(self, batch: Batch, *, opens_next: bool) -> None:
        """Record the acknowledged batch in one statement (cursor, the products sent since the last flush, errors,
        the fingerprints that changed; the next batch opened) in the background: the next batch goes on the wire
        meanwhile. Every other write waits for it (``_settle``), so records stay in order; a process that dies
        before it commits sends the batch again, under the same ids, as any unrecorded product."""
        sent, errors = len(self.acked), [*batch.unreadable, *self.errors]
        self.acked, self.errors = [], []
        changed = [(sku, fp) for sku, fp in zip(batch.skus, batch.fingerprints, strict=True) if fp is not None]
        params = {
            "cursor": batch.next_cursor,
            "opens_next": opens_next,
            "read": len(batch.skus),
            "sent": sent,
            "errors": json.dumps(errors),
            "error_count": len(errors),
            "max_errors": MAX_ERRORS_KEPT,
            "skus": [sku for sku, _ in changed],
            "fingerprints": [fp for _, fp in changed],
        }
        self.recording = asyncio.create_task(self._execute(CATALOG_BATCH_ACKNOWLEDGED, params))

    async def _alongside_record(self, sending: Coroutine[Any, Any, bool]) -> bool:
        """Run ``sending`` while the previous batch is recorded; stop it if the record fails (the export was
        canceled or taken over meanwhile: not a batch more is sent)."""
        task, recording = asyncio.create_task(sending), self.recording
        if recording is not None:  # (``sending`` may settle it itself: it flushes on failures)
            try:
                await asyncio.wait({task, recording}, return_when=asyncio.FIRST_EXCEPTION)
            except BaseException:  # this run is canceled (shutdown): so is its sending
                task.cancel()
                raise
            if recording.done() and recording.exception() is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                await recording  # raises the record's failure
        return await task

    async def _settle(self) -> None:
        """Wait for the batch being recorded in the background; its failure (canceled, taken over, database) is
        this run's."""
        recording, self.recording = self.recording, None
        if recording is not None:
            await recording

    async def _settle_quietly(self) -> None:
        """On the way out after another failure: let a record under way finish, without masking that failure."""
        with contextlib.suppress(Exception):
            await self._settle()

    async def _read_catalog(self, cursor: str | None, batch_size: int, attributes: list[str]) -> Batch | None:
        """The next batch of the connector's catalog table in SKU order, as the catalog keeps it encoded (or encoded
        by PostgreSQL as it is read; the same text as the Python mapper's); None once the catalog is exhausted."""
        return await self._read_encoded(CATALOG_BATCH_ENCODED, cursor or "", batch_size, attributes, "")

    async def _read_shipping_methods(self, after: str, batch_size: int, attributes: list[str]) -> Batch | None:
        """The next batch of the shipping methods' rows in SKU order, encoded as ``_read_catalog`` encodes any row;
        the cursor is SHIPPING_METHODS_CURSOR and the last SKU. None once they are all sent."""
        statement = SHIPPING_METHOD_BATCH_ENCODED
        return await self._read_encoded(statement, after, batch_size, attributes, SHIPPING_METHODS_CURSOR)

    async def _read_encoded(
        self, statement: Any, after: str, batch_size: int, attributes: list[str], cursor_prefix: str
    ) -> Batch | None:
        async with self.exports.db.connect() as connection:
            row = (
                await connection.execute(
                    statement,
                    {
                        "after": after,
                        "limit": batch_size,
                        "attributes": attributes,
                        "locale": self.settings.oms_product_locale,
                        "id_prefix": self._call_id(""),
                        "method": PRODUCT_UPDATED,
                    },
                )
            ).one()
        if not row.skus:
            return None
        return Batch(row.skus, row.calls, row.fingerprints, cursor_prefix + row.skus[-1])

    async def _read_commerce(self, cursor: str | None, batch_size: int, attributes: list[str]) -> Batch | None:
        """The next batch from Adobe Commerce (GET /products by entity id, pages of COMMERCE_PAGE_SIZE), kept in the
        connector's catalog as it goes; the cursor is the next page number. Past the last page, the shipping
        methods (``_read_shipping_methods``). A product Adobe Commerce returns that cannot be read, or whose SKU is
        a shipping method's code, is listed as an error, not sent."""
        if cursor is not None and cursor.startswith(SHIPPING_METHODS_CURSOR):
            return await self._read_shipping_methods(
                cursor.removeprefix(SHIPPING_METHODS_CURSOR), batch_size, attributes
            )
        commerce = self.exports.commerce
        assert commerce is not None
        page_size = min(COMMERCE_PAGE_SIZE, batch_size)
        page = int(cursor or "1")
        products: list[CommerceProduct] = []
        unreadable: list[dict[str, str]] = []
        exhausted = False
        while len(products) < batch_size:
            found = await commerce.products_page(page, page_size)
            if not found.items or (page - 1) * page_size >= found.total_count:
                exhausted = True  # past the last page (Adobe Commerce would repeat the last one)
                break
            for item in found.items:
                try:
                    products.append(CommerceProduct.model_validate(item))
                except ValidationError as exc:
                    sku = str(item.get("sku", "?"))
                    unreadable.append(_error(sku, f"unreadable in Adobe Commerce's answer: {exc}"))
            page += 1
            if (page - 1) * page_size >= found.total_count:
                exhausted = True
                break
        if not products and not unreadable and exhausted:
            return await self._read_shipping_methods("", batch_size, attributes)
        async with self.exports.db.connect() as connection:
            entries, refused = await self.exports.catalog.store_for_export(
                connection, products, attributes, self.exports.clock.now()
            )
        unreadable += [_error(sku, reason) for sku, reason in refused.items()]
        locale = self.settings.oms_product_locale
        texts = [(entry.sku, encode(product_params(entry, attributes, locale))) for entry in entries]
        return Batch(
            [sku for sku, _ in texts],
            [encoded_request(self._call_id(sku), PRODUCT_UPDATED, text) for sku, text in texts],
            [fingerprint(text) for _, text in texts],
            SHIPPING_METHODS_CURSOR if exhausted else str(page),
            unreadable,
        )

    async def _send_single(self, calls: Sequence[tuple[str, str]]) -> None:
        """One call per product, OMS_CATALOG_CONCURRENCY at a time; the first unavailability stops the batch (the
        calls in flight finish and are recorded)."""
        pending = iter(calls)
        failure: list[PeerUnavailable | ExportStopped] = []

        async def sender() -> None:
            for sku, request in pending:
                if failure:
                    return
                try:
                    await self.client.call(PRODUCT_UPDATED, None, self._call_id(sku), encoded_call=request)
                except PeerRejected as exc:
                    self._error(sku, exc.message)
                except PeerUnavailable as exc:
                    failure.append(exc)
                    return
                try:
                    await self._acked(sku)
                except ExportStopped as exc:
                    failure.append(exc)
                    return

        await asyncio.gather(*(sender() for _ in range(self.settings.oms_catalog_concurrency)))
        if failure:
            raise next((f for f in failure if isinstance(f, ExportStopped)), failure[0])

    async def _send_batch(self, calls: Sequence[tuple[str, str]]) -> None:
        """One JSON-RPC batch request for the batch (chunks of at most RPC_BATCH_MAX calls). A complete answer is
        recorded with the batch (one statement); a partial one is flushed, so only the missing calls are sent again."""
        for start in range(0, len(calls), RPC_BATCH_MAX):
            chunk = calls[start : start + RPC_BATCH_MAX]
            ids = [self._call_id(sku) for sku, _ in chunk]
            failures = await self.client.call_batch_encoded("[" + ",".join(call for _, call in chunk) + "]", ids)
            if failures:
                self._record_failures(chunk, ids, failures)
            else:  # the usual answer: every call succeeded
                self.acked.extend(sku for sku, _ in chunk)
            if start + RPC_BATCH_MAX < len(calls):
                await self._flush()  # more chunks to go: what this one acknowledged must not be sent again

    def _record_failures(
        self, chunk: Sequence[tuple[str, str]], ids: Sequence[str], failures: dict[str, PeerError]
    ) -> None:
        """A batch answer with failures: refusals are listed (and count as answered); calls the OMS could not
        answer are not recorded, so they are sent again (same ids) once what was answered is flushed."""
        unavailable = None
        for (sku, _), call_id in zip(chunk, ids, strict=True):
            failure = failures.get(call_id)
            if isinstance(failure, PeerUnavailable):
                unavailable = failure
                continue
            if failure is not None:
                self._error(sku, failure.message)
            self.acked.append(sku)
        if unavailable is not None:
            raise unavailable

    def _call_id(self, sku: str) -> str:
        return f"{self.settings.oms_application_id}-catalog-{self.id}-{sku}"

    def _error(self, sku: str, message: str) -> None:
        self.errors.append(_error(sku, message))

    async def _acked(self, sku: str) -> None:
        self.acked.append(sku)
        if len(self.acked) >= FLUSH_EVERY:
            await self._flush()

    async def _flush(self) -> None:
        """Record the acknowledged SKUs and errors, renew the lease; stop if canceled or taken over."""
        skus, errors = self.acked, self.errors
        self.acked, self.errors = [], []
        await self._update(
            CATALOG_EXPORT_PROGRESS,
            {"skus": skus, "errors": json.dumps(errors), "error_count": len(errors), "max_errors": MAX_ERRORS_KEPT},
        )

    async def _update(self, statement: Any, params: dict[str, Any]) -> None:
        await self._settle()
        await self._execute(statement, params)

    async def _execute(self, statement: Any, params: dict[str, Any]) -> None:
        now = self.exports.clock.now()
        async with self.exports.db.connect() as connection:
            row = (
                await connection.execute(
                    statement,
                    {
                        **params,
                        "id": self.id,
                        "owner": self.exports.owner,
                        "now": now,
                        "lease_until": self.exports._lease_end(now),
                    },
                )
            ).first()
        if row is None:
            raise ExportStopped


def _error(sku: str, message: str) -> dict[str, str]:
    return {"sku": sku, "error": message[:500]}


def _view(row: Any, now: datetime) -> CatalogExportView:
    end = row.finished_at or now
    seconds = (end - row.started_at).total_seconds() if row.started_at else 0.0
    return CatalogExportView(
        id=row.id,
        status=row.status,
        source=row.source,
        send_mode=row.send_mode,
        batch_size=row.batch_size,
        products_read=row.products_read,
        products_sent=row.products_sent,
        batches_sent=row.batches_sent,
        batches_acknowledged=row.batches_acknowledged,
        error_count=row.error_count,
        errors=row.errors,
        last_error=row.last_error,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        products_per_second=round(row.products_sent / seconds, 1) if seconds > 0 else None,
    )
