"""The console's catalog page: the full export's progress (refreshing by itself while it runs) with Run, Schedule and
Cancel; the exported attributes, the shipping methods and each bundle's sourcing rule, edited through forms; a CSV
import upload and its result. A thin adapter over app/services, as app/routers/catalog.py is.

The upload is the one console form that is not urlencoded: a multipart form (the CSRF token and one file), bounded by
CATALOG_IMPORT_MAX_BYTES before and while it is read, parsed by python-multipart into starlette's temporary file (on
disk past 1 MiB), then streamed into the import (which spools it and reads it in batches): never held in memory
whole."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request as StarletteRequest
from starlette.types import Message

from app.console.session import ConsoleSession
from app.console.web import PREFIX, Changer, ConsoleRefusal, ConsoleRuntime, Viewer, redirect, render
from app.errors import InputRejected, NotConfigured, NotFound
from app.protocol.commerce_product import MAX_SKU
from app.protocol.sourcing_rules import SOURCING_RULES, normalize_sourcing_rule
from app.routers.params import MessageId
from app.runtime import Runtime
from app.schemas import AttributesBody, CatalogExportView, CatalogImportAnswer, ShippingMethodsBody
from app.services.catalog_export import SIZE_COUNTED
from app.services.catalog_import import IMPORT_TOPIC

router = APIRouter()

PAGE = f"{PREFIX}/catalog"
ACTIVE = ("pending", "running")  # an export in these statuses refreshes itself on the page, and can be canceled
REFRESH_S = 2
UPLOAD_ENVELOPE = 64 * 1024  # the multipart form around the CSV: boundaries, part headers, the CSRF token
UPLOAD_FIELD_BYTES = 4096  # a form field of the upload (the CSRF token) is short
UPLOAD_CHUNK = 1024 * 1024  # bytes handed to the import at a time


# --- the page -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExportProgress:
    """How far an export is and when it should end, beyond what its view says."""

    expected: int | None  # products the export should send (the connector's catalog; what it sent, if more)
    estimated: bool  # `expected` is approximate: PostgreSQL's estimate, or an export from Adobe Commerce
    percent: float | None  # None: nothing to measure against (an empty catalog, its size unknown)
    eta_s: float | None  # None: not running, no rate yet, nothing left or its size unknown


def export_progress(view: CatalogExportView, expected: int | None, estimated: bool) -> ExportProgress:
    """Progress against the connector's catalog size (``expected``, None when unknown). An export from Adobe
    Commerce sends what the store has, which the catalog only mirrors: an estimate then. A finished export is at
    100 %; the ETA is the products left at the export's rate so far."""
    if expected is not None:
        expected = max(expected, view.products_sent)
    estimated = estimated or view.source == "commerce"
    percent: float | None = None
    if view.status == "done":
        percent = 100.0
    elif expected:
        percent = min(100.0, 100.0 * view.products_sent / expected)
    eta_s = None
    left = (expected or 0) - view.products_sent
    if view.status == "running" and view.products_per_second and left > 0:
        eta_s = left / view.products_per_second
    return ExportProgress(expected=expected, estimated=estimated, percent=percent, eta_s=eta_s)


@router.get("/catalog")
async def catalog_page(
    request: Request,
    _session: Viewer,
    runtime: ConsoleRuntime,
    bundle: Annotated[str | None, Query(max_length=MAX_SKU, description="A bundle SKU: show its sourcing rule")] = None,
) -> Response:
    return await _page(request, runtime, bundle=_sku(bundle or ""))


async def _page(
    request: Request,
    runtime: Runtime,
    *,
    bundle: str = "",
    drafts: Mapping[str, str] | None = None,
    problems: tuple[str, list[str]] | None = None,
    status: int = 200,
) -> Response:
    """The whole page; after a refused edit, with what was typed (``drafts``) and why it was refused (``problems``:
    the section and its messages)."""
    try:
        export: CatalogExportView | None = await runtime.catalog_exports.current()
    except NotFound:
        export = None
    expected, estimated = await runtime.catalog_exports.expected_products()
    attributes = await runtime.catalog.attributes()
    methods = await runtime.catalog.shipping_methods()
    texts = {
        "attributes": "\n".join(attributes),
        "methods": "\n".join(f"{method.code} {method.name}" for method in methods),
        **(drafts or {}),
    }
    context: dict[str, Any] = {
        "title": "Catalog",
        "export": export,
        "active": export is not None and export.status in ACTIVE,
        "progress": export_progress(export, expected, estimated) if export is not None else None,
        "catalog_size": expected,
        "catalog_size_estimated": estimated,
        "size_counted": SIZE_COUNTED,
        "refresh_s": REFRESH_S,
        "oms_configured": runtime.client is not None,
        "attributes": attributes,
        "methods": methods,
        "texts": texts,
        "problems": problems,
        "bundle": bundle,
        "rule": await runtime.orders.sourcing_rule(bundle) if bundle else None,
        "rules": SOURCING_RULES,
        "default_rule": runtime.settings.oms_bundle_sourcing_rule,
        "import_limit": _size(runtime.settings.catalog_import_max_bytes),
    }
    return render(request, "catalog.html", context, status=status)


def _sku(value: str) -> str:
    """A SKU typed into a form, trimmed. (No NUL gets here: app/routers/guard.py refuses it in a query string,
    read_form in a form.)"""
    return value.strip()


def _size(count: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if count >= size:
            return f"{count / size:.3g} {unit}"
    return f"{count} bytes"


# --- the full export ----------------------------------------------------------------------------------------------
@router.post("/catalog/export/run")
async def run_export(request: Request, _form: Changer, runtime: ConsoleRuntime) -> Response:
    """As POST /catalog/exports: started now in this process (a worker takes it over if this process stops)."""
    return await _request_export(request, runtime, schedule_only=False)


@router.post("/catalog/export/schedule")
async def schedule_export(request: Request, _form: Changer, runtime: ConsoleRuntime) -> Response:
    """As POST /catalog/exports with schedule_only: left pending for a process with workers."""
    return await _request_export(request, runtime, schedule_only=True)


async def _request_export(request: Request, runtime: Runtime, *, schedule_only: bool) -> Response:
    try:
        view, created = await runtime.catalog_exports.request(schedule_only=schedule_only)
    except NotConfigured as exc:
        return redirect(request, f"{PAGE}#export", exc.message, "bad")
    if not created:
        return redirect(request, f"{PAGE}#export", f"Export {view.id} is already {view.status}: one at a time.", "warn")
    if schedule_only:
        return redirect(request, f"{PAGE}#export", f"Export {view.id} scheduled: a worker process starts it.")
    runtime.run_in_background(runtime.catalog_exports.run(view.id), f"catalog-export-{view.id}")
    return redirect(request, f"{PAGE}#export", f"Export {view.id} started.")


@router.post("/catalog/export/cancel")
async def cancel_export(request: Request, _form: Changer, runtime: ConsoleRuntime) -> Response:
    try:
        view = await runtime.catalog_exports.cancel()
    except NotFound:
        return redirect(request, f"{PAGE}#export", "No export is pending or running.", "warn")
    return redirect(request, f"{PAGE}#export", f"Export {view.id} canceled: it stops after the products in flight.")


# --- attributes, shipping methods, sourcing rules -----------------------------------------------------------------
@router.post("/catalog/attributes")
async def edit_attributes(request: Request, form: Changer, runtime: ConsoleRuntime) -> Response:
    """Replace the exported attributes (as PUT /catalog/attributes): codes separated by lines, spaces or commas."""
    text = form.get("attributes")
    try:
        body = AttributesBody(attributes=[code for code in re.split(r"[\s,]+", text) if code])
        saved = await runtime.catalog.set_attributes(body.attributes)
    except ValidationError as exc:
        return await _refused(request, runtime, "attributes", text, _validation_problems(exc, "code"))
    except InputRejected as exc:
        return await _refused(request, runtime, "attributes", text, _rejection_problems(exc), exc.http_status)
    listed = ", ".join(saved) or "none"
    return redirect(
        request,
        f"{PAGE}#attributes",
        f"Exported attributes: {listed}. Products go out with them at their next change, all of them with a full "
        "export.",
    )


@router.post("/catalog/shipping-methods")
async def edit_shipping_methods(request: Request, form: Changer, runtime: ConsoleRuntime) -> Response:
    """Replace the shipping methods (as PUT /catalog/shipping-methods): one a line, the code, a space, the name."""
    text = form.get("methods")
    numbered = [(n, line.split(maxsplit=1)) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    lines = [number for number, _ in numbered]  # a method's index → its line in the text
    methods = [{"code": parts[0], "name": parts[1].strip() if len(parts) > 1 else ""} for _, parts in numbered]
    try:
        body = ShippingMethodsBody.model_validate({"methods": methods})
        answer = await runtime.catalog.set_shipping_methods(body.methods)
    except ValidationError as exc:
        return await _refused(request, runtime, "methods", text, _validation_problems(exc, "line", lines))
    except InputRejected as exc:  # a code listed twice (422), a product's SKU (409)
        return await _refused(request, runtime, "methods", text, _rejection_problems(exc, lines), exc.http_status)
    exported = sum(outcome.exported for outcome in answer.outcomes)
    return redirect(
        request, f"{PAGE}#methods", f"{len(answer.methods)} shipping methods saved; {exported} exported to the OMS."
    )


@router.post("/catalog/sourcing-rule")
async def edit_sourcing_rule(request: Request, form: Changer, runtime: ConsoleRuntime) -> Response:
    """Set a bundle's sourcing rule (as PUT /catalog/bundles/{sku}/sourcing-rule)."""
    sku = _sku(form.get("sku"))
    if not 0 < len(sku) <= MAX_SKU:
        problem = f"a SKU has 1 to {MAX_SKU} characters"
        return await _refused(request, runtime, "sourcing", None, [problem], bundle="")
    try:
        rule = normalize_sourcing_rule(form.get("rule"))
    except ValueError as exc:
        return await _refused(request, runtime, "sourcing", None, [str(exc)], bundle=sku)
    view = await runtime.orders.set_sourcing_rule(sku, rule)
    return redirect(
        request,
        f"{PAGE}?bundle={quote(sku, safe='')}#sourcing",
        f"Bundle {sku}: {view.rule} on its lines of orders exported from now on.",
    )


async def _refused(
    request: Request,
    runtime: Runtime,
    section: str,
    text: str | None,
    problems: list[str],
    status: int = 422,
    bundle: str = "",
) -> Response:
    """The page again, the refused section showing why and what was typed (nothing changed)."""
    drafts = {section: text} if text is not None else None
    return await _page(request, runtime, bundle=bundle, drafts=drafts, problems=(section, problems), status=status)


def _validation_problems(exc: ValidationError, item: str, lines: list[int] | None = None) -> list[str]:
    """Pydantic's errors (the first ten), each named by its ``item`` and number: the line of the text where
    ``lines`` maps an entry's index to it, else the entry's position."""
    problems = []
    for error in exc.errors()[:10]:
        location = [part for part in error["loc"] if part not in ("methods", "attributes")]
        where = f"{item} {_number(location[0], lines)}" if location and isinstance(location[0], int) else ""
        field = " ".join(str(part) for part in location[1:])
        problems.append(" ".join(filter(None, [where, field, error["msg"]])))
    return problems


def _rejection_problems(exc: InputRejected, lines: list[int] | None = None) -> list[str]:
    """The service's errors (the first ten); ``methods[2].code`` reads as the line of the third method."""
    problems = []
    for error in exc.errors[:10]:
        field = re.sub(
            r"methods\[(\d+)\]\.?", lambda found: f"line {_number(int(found.group(1)), lines)} ", error["field"]
        )
        problems.append(f"{field.strip()}: {error['message']}")
    return problems


def _number(index: int, lines: list[int] | None) -> int:
    return lines[index] if lines is not None and 0 <= index < len(lines) else index + 1


# --- CSV import ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConsoleUpload:
    """A posted upload of an operator who may change things, its CSRF token checked: the file, still on disk."""

    session: ConsoleSession
    file: UploadFile


async def uploader(request: Request, session: Viewer, runtime: ConsoleRuntime) -> AsyncIterator[ConsoleUpload]:
    """The multipart equivalent of ``Changer``: the operator role (checked before the body is read), a body bounded
    by CATALOG_IMPORT_MAX_BYTES (the declared length first, then what arrives), one file and the session's CSRF
    token in ``csrf_token``. The form's spooled file is closed once the request is done."""
    if not session.can_change:
        raise ConsoleRefusal(403, "Read-only", "signed in with the read-only token: this console changes nothing")
    content_type = request.headers.get("content-type", "").lower()
    if not content_type.startswith("multipart/form-data"):
        raise ConsoleRefusal(415, "Not an upload", "the CSV comes as a multipart/form-data form (the page's form)")
    limit = runtime.settings.catalog_import_max_bytes
    cap = limit + UPLOAD_ENVELOPE
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > cap):
        raise _too_large(limit)
    form: FormData | None = None
    try:
        form = await _bounded(request, cap, limit).form(max_files=1, max_fields=5, max_part_size=UPLOAD_FIELD_BYTES)
        token = form.get("csrf_token")
        if not session.csrf_matches(token if isinstance(token, str) else None):
            raise ConsoleRefusal(
                403, "Form expired or forged", "the form's CSRF token is missing or wrong: reload the page"
            )
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ConsoleRefusal(422, "No file", "choose a CSV file to import")
        yield ConsoleUpload(session=session, file=upload)
    finally:
        if form is not None:
            await form.close()


Uploader = Annotated[ConsoleUpload, Depends(uploader)]


def _bounded(request: Request, cap: int, limit: int) -> StarletteRequest:
    """The request, its body cut off past ``cap`` bytes (a body sent without a length is bounded too)."""
    received = 0

    async def receive() -> Message:
        nonlocal received
        message = await request.receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > cap:
                raise _too_large(limit)
        return message

    return StarletteRequest(request.scope, receive)


def _too_large(limit: int) -> ConsoleRefusal:
    return ConsoleRefusal(
        413, "File too large", f"the CSV is over the limit of {_size(limit)} ({limit} bytes, CATALOG_IMPORT_MAX_BYTES)"
    )


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(UPLOAD_CHUNK):
        yield chunk


@router.post("/catalog/import")
async def import_csv(request: Request, upload: Uploader, runtime: ConsoleRuntime) -> Response:
    """As POST /catalog/import; then the import's result (kept in its journal entry, so the page has a link)."""
    name = (upload.file.filename or "")[:200]
    limit = runtime.settings.catalog_import_max_bytes
    answer = await runtime.catalog_import.run(_chunks(upload.file), limit=limit, name=name)
    summary = (
        f"Imported {name or 'the CSV'}: {answer.rows} rows, {answer.stored} products stored, {answer.exported} "
        f"queued for export, {answer.error_count} bad rows."
    )
    kind = "warn" if answer.error_count else "ok"
    if answer.journal_message_id is None:  # its journal entry could not be written: the answer, here and now
        return render(request, "catalog_import.html", {"title": "Catalog import", "answer": answer, "file": name})
    return redirect(request, f"{PAGE}/imports/{answer.journal_message_id}", summary, kind)


@router.get("/catalog/imports/{message_id}")
async def import_result(request: Request, _session: Viewer, runtime: ConsoleRuntime, message_id: MessageId) -> Response:
    """An import's result, from its journal entry (the counts, every bad row and value not applied, first 1,000)."""
    message = await runtime.journal.get(message_id)
    if message.topic != IMPORT_TOPIC:
        raise NotFound(f"message {message_id} is not a catalog import")
    result = message.result or {}
    try:
        answer = CatalogImportAnswer.model_validate({**result, "journal_message_id": message.id})
    except ValidationError:
        raise NotFound(f"message {message_id} holds no import result") from None
    context = {
        "title": f"Catalog import {message.id}",
        "answer": answer,
        "file": str(result.get("file") or ""),
        "imported_at": message.created_at,
    }
    return render(request, "catalog_import.html", context)
