"""CSV import (the seed: a catalog created by CSV upload is exported in batches of 5000): a Magento product-import
CSV, streamed to a temporary file (never held in memory whole), read in batches of OMS_CATALOG_BATCH_SIZE rows; each
batch is one transaction: the rows applied in file order over the products as the catalog has them (an empty cell
changes nothing; a store-view row changes only its locale's name: app/protocol/catalog_csv.py), upserted
set-based, and the new or changed products (same fingerprint rule as product events) queued for export. Bad rows
and values not applied (skipped) are reported by row number, in the answer and in the journal; good rows still go
through. A shipping method's code is not a product's SKU: such rows are bad rows.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import tempfile
from collections.abc import AsyncIterator
from typing import IO, Any

from app.clock import Clock
from app.data.catalog import CATALOG_SETTING
from app.data.catalog_import import LOCK_CATALOG_ROWS, SET_PRODUCTS_EXPORTED, UPSERT_CATALOG_ROWS
from app.data.journal import SET_JOURNAL_RESULT
from app.data.outbox import OMS_CHANNEL, NewMessage, insert_messages
from app.db import Database
from app.errors import InputRejected, PayloadTooLarge
from app.mappers.product_to_mcom import PRODUCT_UPDATED, CatalogEntry, fingerprint, product_params, product_references
from app.models import Direction, Status
from app.protocol.catalog_csv import (
    RowError,
    RowSkipped,
    row_entry,
    row_sku,
    row_store_view,
    store_view_row,
    unreadable_row,
)
from app.protocol.jsonrpc import request_envelope
from app.schemas import CatalogImportAnswer
from app.services.catalog import ATTRIBUTES_KEY, catalog_entry, method_holds_sku, product_lane
from app.settings import Settings

IMPORT_TOPIC = "commerce.catalog.import"
MAX_ERRORS_SHOWN = 1000
csv.field_size_limit(16 * 1024 * 1024)  # bundle_values of a large bundle can be long


class CatalogImport:
    def __init__(self, db: Database, clock: Clock, settings: Settings) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings

    async def run(self, chunks: AsyncIterator[bytes], *, limit: int, name: str = "") -> CatalogImportAnswer:
        with tempfile.TemporaryFile() as spool:
            size = 0
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"the CSV is over the limit of {limit} bytes (CATALOG_IMPORT_MAX_BYTES)")
                await asyncio.to_thread(spool.write, chunk)
            spool.seek(0)
            return await self._import(spool, name)

    async def _import(self, spool: IO[bytes], name: str) -> CatalogImportAnswer:
        text = io.TextIOWrapper(spool, encoding="utf-8-sig", errors="surrogateescape", newline="")
        try:
            return await self._read(csv.DictReader(text), name)
        finally:
            text.detach()  # the spool is closed by its owner

    async def _read(self, reader: csv.DictReader[str], name: str) -> CatalogImportAnswer:
        header = await asyncio.to_thread(lambda: reader.fieldnames)
        if not header or "sku" not in [column.strip() for column in header]:
            raise InputRejected([{"field": "header", "message": "the first line must name the columns, with sku"}])
        async with self.db.connect() as connection:
            stored = await connection.execute(CATALOG_SETTING, {"key": ATTRIBUTES_KEY})
            value = stored.scalar_one_or_none()
        attributes = list(value if value is not None else self.settings.oms_product_attributes)
        batch_size = self.settings.oms_catalog_batch_size
        totals = {"rows": 0, "stored": 0, "exported": 0, "unchanged": 0, "batches": 0}
        errors: list[RowError] = []
        skipped: list[RowSkipped] = []
        while True:
            rows = await asyncio.to_thread(_next_rows, reader, batch_size, totals["rows"])
            if not rows:
                break
            totals["rows"] += len(rows)
            totals["batches"] += 1
            exported, stored_count, bad, not_applied = await self._batch(rows, attributes)
            totals["exported"] += exported
            totals["stored"] += stored_count
            totals["unchanged"] += stored_count - exported
            errors += bad
            skipped += not_applied
        error_rows = [{"row": e.row, "field": e.field, "message": e.message} for e in errors]
        skipped_rows = [{"row": s.row, "field": s.field, "message": s.message} for s in skipped]
        journal_id = await self._journal(name, totals, error_rows, skipped_rows)
        return CatalogImportAnswer(
            **totals,
            error_count=len(errors),
            errors=error_rows[:MAX_ERRORS_SHOWN],
            skipped_count=len(skipped),
            skipped=skipped_rows[:MAX_ERRORS_SHOWN],
            journal_message_id=journal_id,
        )

    async def _batch(
        self, rows: list[tuple[int, dict[str, str]]], attributes: list[str]
    ) -> tuple[int, int, list[RowError], list[RowSkipped]]:
        now = self.clock.now()
        errors: list[RowError] = []
        readable: list[tuple[int, dict[str, str]]] = []
        for number, row in rows:  # nothing of an unreadable row may reach the database, not even its SKU
            problem = unreadable_row(number, row)
            if problem is None:
                readable.append((number, row))
            else:
                errors.append(problem)
        rows = readable
        skus = sorted({row_sku(row) for _, row in rows} - {""})
        locales, locale = self.settings.oms_store_view_locales, self.settings.oms_product_locale
        async with self.db.connect() as connection:
            known = {
                r.sku: r
                for r in (await connection.execute(LOCK_CATALOG_ROWS, {"skus": skus})).all()
            }  # fmt: skip
            # Each product as the rows so far left it, applied in file order over the catalog's.
            entries: dict[str, CatalogEntry] = {}
            last_row: dict[str, int] = {}
            skipped: list[RowSkipped] = []
            for number, row in rows:
                sku = row_sku(row)
                stored = known.get(sku)
                if stored is not None and stored.shipping_method:
                    errors.append(RowError(number, "sku", method_holds_sku(sku, stored.name)))
                    continue
                current = entries.get(sku) or (catalog_entry(stored) if stored is not None else None)
                if row_store_view(row):
                    outcome = store_view_row(number, row, attributes, current, locales, locale)
                    if isinstance(outcome, RowError):
                        errors.append(outcome)
                        continue
                    result, not_applied = outcome
                    skipped += not_applied
                    if result is None:
                        continue
                else:
                    applied = row_entry(number, row, attributes, current)
                    if isinstance(applied, RowError):
                        errors.append(applied)
                        continue
                    result = applied
                entries[sku] = result
                last_row[sku] = number
            ordered = [entries[sku] for sku in sorted(entries)]
            if not ordered:
                return 0, 0, errors, skipped
            upserted = await connection.execute(
                UPSERT_CATALOG_ROWS,
                {
                    "skus": [e.sku for e in ordered],
                    "types": [e.type for e in ordered],
                    "names": [e.name for e in ordered],
                    "enabled": [e.enabled for e in ordered],
                    "deleted": [e.deleted for e in ordered],
                    "children": [json.dumps(list(e.children_skus)) for e in ordered],
                    "attributes": [json.dumps(dict(e.custom_attributes)) for e in ordered],
                    "localized_names": [json.dumps(dict(e.localized_names)) for e in ordered],
                    "now": now,
                },
            )
            stored_skus = set(upserted.scalars())
            for entry in ordered:  # a shipping method took the SKU since the rows were locked (a concurrent PUT)
                if entry.sku not in stored_skus:
                    errors.append(RowError(last_row[entry.sku], "sku", method_holds_sku(entry.sku, None)))
            ordered = [entry for entry in ordered if entry.sku in stored_skus]
            changed: list[tuple[CatalogEntry, dict[str, Any], str, int]] = []
            for entry in ordered:
                params = product_params(entry, attributes, locale)
                digest = fingerprint(params)
                previous = known.get(entry.sku)
                if previous is None or previous.exported_fingerprint != digest:
                    changed.append((entry, params, digest, (previous.exports if previous else 0) + 1))
            if changed:
                app = self.settings.oms_application_id
                messages = [
                    NewMessage(
                        direction=Direction.OUT,
                        channel=OMS_CHANNEL,
                        topic=PRODUCT_UPDATED,
                        external_id=f"{app}-product-{entry.sku}-{n}",
                        lane=product_lane(entry.sku),
                        document=json.dumps(
                            request_envelope(f"{app}-product-{entry.sku}-{n}", PRODUCT_UPDATED, params)
                        ),
                        refs=product_references(params),
                    )
                    for entry, params, _, n in changed
                ]
                ids = await insert_messages(connection, messages, now)
                await connection.execute(
                    SET_PRODUCTS_EXPORTED,
                    {
                        "skus": [entry.sku for entry, _, _, _ in changed],
                        "fingerprints": [digest for _, _, digest, _ in changed],
                        "message_ids": [ids.get((m.external_id, Status.QUEUED.value)) for m in messages],
                        "now": now,
                    },
                )
        errors.sort(key=lambda error: error.row)
        return len(changed), len(ordered), errors, skipped

    async def _journal(
        self, name: str, totals: dict[str, int], errors: list[dict[str, Any]], skipped: list[dict[str, Any]]
    ) -> int | None:
        """One journal entry per import: what it did, every bad row and every value not applied (the first
        MAX_ERRORS_SHOWN of each)."""
        now = self.clock.now()
        external_id = f"{self.settings.oms_application_id}-catalog-import-{now.timestamp():.6f}"
        params = {"file": name, **totals, "error_count": len(errors), "skipped_count": len(skipped)}
        row = NewMessage(
            direction=Direction.IN,
            channel="commerce",
            topic=IMPORT_TOPIC,
            external_id=external_id,
            lane=IMPORT_TOPIC,
            document=json.dumps({"params": params}),
            status=Status.SUCCEEDED,
        )
        async with self.db.connect() as connection:
            stored = await insert_messages(connection, [row], now)
            message_id = stored.get((external_id, Status.SUCCEEDED.value))
            if message_id is not None:
                summary = {**params, "errors": errors[:MAX_ERRORS_SHOWN], "skipped": skipped[:MAX_ERRORS_SHOWN]}
                await connection.execute(
                    SET_JOURNAL_RESULT, {"id": message_id, "result": json.dumps(summary), "now": now}
                )
        return message_id


def _next_rows(reader: csv.DictReader[str], count: int, before: int) -> list[tuple[int, dict[str, str]]]:
    """Up to ``count`` data rows, numbered from 1 after the header; short rows get empty values."""
    rows: list[tuple[int, dict[str, str]]] = []
    for number, row in enumerate(reader, start=before + 1):
        rows.append((number, {(k or "").strip(): (v or "") for k, v in row.items() if isinstance(v, str)}))
        if len(rows) >= count:
            break
    return rows
