"""The console's orders page: the order grid with the seed's "exported and loaded" column (the export status) and
the OMS status, one order's detail (unit lines, status trail, shipments with tracking, returns, refunds, the
messages that name it), Cancel, and "sync orders not exported" (the seed's orders:sync).

A thin adapter over the services behind GET /orders and GET /orders/{id} (app/services/orders.py,
app/services/order_actions.py). The grid walks the primary key newest first (keyset paging, never a count); every
filter is a bounded GET query parameter, so a filtered grid is a link to paste into a ticket.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.console.web import Changer, ConsoleRefusal, ConsoleRuntime, Viewer, redirect, render
from app.errors import InputRejected, LifecycleConflict, NotFound
from app.protocol.commerce_order import IDENTIFIER_MAX
from app.routers.params import IncrementId
from app.schemas import ExportStatus, OrderSummary, OrderView
from app.services.journal import JournalQuery
from app.settings import Settings

router = APIRouter()

PAGE_SIZES = (25, 50, 100, 200)
MESSAGES_SHOWN = 20  # the newest messages naming an order, on its detail (the journal link shows them all)
MAX_SYNC_LIMIT = 1_000_000  # as POST /orders/sync (OrderSyncRequest)
MAX_REASON = 500  # CancelRequest.reason's max_length (POST /orders/{id}/cancel)
SYNC_NAMED = 10  # order numbers named in the notice after a sync


@router.get("/orders")
async def order_grid(
    request: Request,
    session: Viewer,
    runtime: ConsoleRuntime,
    number: Annotated[str, Query(max_length=IDENTIFIER_MAX, description="One order number")] = "",
    export_status: Annotated[str, Query(max_length=20)] = "",
    since: Annotated[str, Query(max_length=40, description="Received at or after (UTC unless a zone is given)")] = "",
    limit: Annotated[int, Query(ge=1, le=max(PAGE_SIZES))] = 50,
    cursor: Annotated[str, Query(max_length=20, pattern=r"^[0-9]*$")] = "",
) -> Response:
    """Newest first. ``number`` finds one order by its number (the unique index); the other filters narrow the
    keyset walk. Empty parameters (what a blank form field sends) mean "no filter"."""
    status = _export_status(export_status)
    received_since = _since(since)
    shown_since = received_since.replace(tzinfo=None).isoformat(timespec="seconds") if received_since else ""
    number = number.strip()
    filters: dict[str, object] = {
        "number": number, "export_status": export_status, "since": shown_since, "limit": limit,
    }  # fmt: skip
    next_url = None
    if number:
        orders = await _one_order(runtime, number, status, received_since)
    else:
        page = await runtime.orders.page(
            export_status=status, since=received_since, cursor=cursor or None, limit=limit, newest_first=True
        )
        orders = page.items
        if page.next_cursor is not None:
            next_url = _grid_url({**filters, "cursor": page.next_cursor})
    return render(
        request,
        "orders.html",
        {
            "title": "Orders",
            "orders": orders,
            "filters": filters,
            "statuses": [s.value for s in ExportStatus],
            "page_sizes": PAGE_SIZES,
            "first_page": bool(cursor),
            "first_url": _grid_url(filters),
            "next_url": next_url,
            "sync_limit_max": MAX_SYNC_LIMIT,
        },
    )


@router.post("/orders/sync")
async def sync_orders(request: Request, form: Changer, runtime: ConsoleRuntime) -> Response:
    """Queue again the orders not exported (exportable status but no export; export failed, discarded or dead),
    oldest first, all or ``limit`` of them — POST /orders/sync, the seed's orders:sync."""
    limit = _sync_limit(form.get("limit"))
    result = await runtime.orders.sync(limit)
    if result.queued == 0 and not result.skipped:
        return redirect(request, "/admin/orders", "Sync: no order needed queueing again.", kind="ok")
    named = ", ".join(result.increment_ids[:SYNC_NAMED]) + (" …" if result.queued > SYNC_NAMED else "")
    text = f"Sync: {result.queued:,} order(s) queued for export again" + (f" ({named})." if named else ".")
    if result.skipped:
        first = result.skipped[0]
        text += (
            f" {len(result.skipped):,} skipped (cannot be mapped any more), e.g. {first['increment_id']}: "
            f"{first['reason']}"
        )
    return redirect(request, "/admin/orders", text, kind="warn" if result.skipped else "ok")


@router.get("/orders/{increment_id}")
async def order_detail(
    request: Request, session: Viewer, runtime: ConsoleRuntime, increment_id: IncrementId
) -> Response:
    """One order: what the store posted and its export, its OMS lifecycle, Cancel, and the newest messages that
    name it (the journal, filtered on its number, has them all)."""
    view = await runtime.orders.get(increment_id)
    view.lifecycle = await runtime.order_actions.lifecycle(increment_id)
    messages, more = await runtime.journal.search(JournalQuery(reference=increment_id, limit=MESSAGES_SHOWN))
    return render(
        request,
        "orders_detail.html",
        {
            "title": f"Order {increment_id}",
            "order": view,
            "life": view.lifecycle,
            "cancel_refusal": cancel_refusal(view, runtime.settings),
            "messages": messages,
            "more_messages": more is not None,
            "journal_url": f"/admin/journal?{urlencode({'reference': increment_id})}",
            "quoted": quote(increment_id, safe=""),
            "max_reason": MAX_REASON,
        },
    )


@router.post("/orders/{increment_id}/cancel")
async def cancel_order(request: Request, form: Changer, runtime: ConsoleRuntime, increment_id: IncrementId) -> Response:
    """Cancel the entire order (POST /orders/{id}/cancel): refused, with the reason, once the OMS has it in a
    status of OMS_CANCEL_BLOCKED_STATUSES or when it was never exported."""
    here = f"/admin/orders/{quote(increment_id, safe='')}"
    reason = form.get("reason").strip()
    if len(reason) > MAX_REASON:
        raise InputRejected([{"field": "reason", "message": f"at most {MAX_REASON} characters"}])
    try:
        answer = await runtime.order_actions.cancel(increment_id, reason)
    except LifecycleConflict as exc:
        return redirect(request, here, f"Not canceled: {exc.message}", kind="bad")
    if answer.outcome == "already_canceled":
        return redirect(request, here, f"Order {increment_id} is canceled already.", kind="warn")
    if answer.outcome == "already_requested":
        text = f"Cancel of {increment_id} was requested before (journal #{answer.message_id}): nothing new sent."
        return redirect(request, here, text + (f" {answer.note}" if answer.note else ""), kind="warn")
    text = f"Cancel of {increment_id} requested: {answer.method} queued for the OMS (journal #{answer.message_id})."
    return redirect(request, here, text + (f" {answer.note}" if answer.note else ""), kind="ok")


# --- pure helpers --------------------------------------------------------------------------------------------------
def cancel_refusal(view: OrderView, settings: Settings) -> str | None:
    """Why Cancel is disabled for this order, or None when it may be asked. The same rules as
    OrderActions.cancel, which stays the authority (a post is refused there too)."""
    if view.message_id is None:
        return "never exported to the OMS: there is nothing to cancel there (see the export status)"
    life = view.lifecycle
    if life is not None and life.cancel is not None and life.cancel.canceled_at is not None:
        return "canceled already (the OMS confirmed it)"
    status = ((life.oms_status if life else None) or "").upper()
    if status in settings.oms_cancel_blocked_statuses:
        blocked = ", ".join(sorted(settings.oms_cancel_blocked_statuses))
        return f"the OMS has it in status {status}: cancel is refused in {blocked} (OMS_CANCEL_BLOCKED_STATUSES)"
    if life is not None and life.cancel is not None and life.cancel.requested_at is not None:
        return "cancel requested already: asking again sends nothing new"
    return None


def _export_status(value: str) -> ExportStatus | None:
    if not value:
        return None
    try:
        return ExportStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in ExportStatus)
        raise ConsoleRefusal(422, "Invalid input", f"export_status: one of {allowed}") from None


def _since(value: str) -> datetime | None:
    """An ISO time (a form's datetime-local field sends one without a zone: UTC, as the console shows times)."""
    value = value.strip()
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
        moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ConsoleRefusal(422, "Invalid input", "since: an ISO time, e.g. 2026-03-02T08:00") from None


def _sync_limit(value: str) -> int | None:
    value = value.strip().replace(",", "").replace("_", "")
    if not value:
        return None
    if len(value) > 7 or not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_SYNC_LIMIT:
        raise InputRejected([{"field": "limit", "message": f"blank (all) or 1 to {MAX_SYNC_LIMIT:,}"}])
    return int(value)


async def _one_order(
    runtime: ConsoleRuntime, number: str, status: ExportStatus | None, since: datetime | None
) -> list[OrderSummary]:
    try:
        order = await runtime.orders.get(number, with_documents=False)
    except NotFound:
        return []
    if (status is not None and order.export_status is not status) or (since is not None and order.received_at < since):
        return []
    return [order]


def _grid_url(filters: dict[str, object]) -> str:
    kept = {name: value for name, value in filters.items() if value not in ("", None) and name != "number"}
    if kept.get("limit") == 50:
        kept.pop("limit")
    return "/admin/orders" + (f"?{urlencode(kept)}" if kept else "")
