"""The console's journal: every message in and out, filtered as GET /journal filters it (keyset paging, newest
first, never a count of the table), one message in full, its Retry and Discard, and the bulk Retry / Discard of
every message the current filter matches — a dry-run count first, then a confirmation. A thin adapter over
app/services/journal.py, as app/routers/journal.py is; every page is a URL with its filters (paste it into a ticket).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.console.web import PREFIX, Changer, ConsoleForm, ConsoleRefusal, ConsoleRuntime, Viewer, redirect, render
from app.errors import InputRejected, OperatorActionRefused
from app.models import Direction, Status
from app.routers.params import MessageId
from app.schemas import JournalTime
from app.services.journal import DISCARDABLE, MAX_BULK, MAX_PAGE, RETRYABLE, JournalFilter, JournalQuery

router = APIRouter()

PAGE_SIZES = (25, 50, 100, 200)  # offered by the form; any limit of GET /journal is taken
DEFAULT_LIMIT = 50
MAX_TEXT = 200  # topic, external id, reference: as long as the columns they are compared with (app/models.py)
MAX_REASON = 1000  # as DiscardRequest's reason (app/schemas.py)
_FORM_FIELDS = {"csrf_token", "dry_run", "reason"}  # a bulk form's fields besides the filters


def _as_utc(value: datetime) -> datetime:
    """The console shows every time in UTC, so a time typed without an offset is UTC too."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


ConsoleTime = Annotated[JournalTime, AfterValidator(_as_utc)]


class JournalFilters(BaseModel):
    """The filters of GET /journal, as the page's query parameters and the bulk forms' fields. A blank field is no
    filter (an HTML form sends every field, filled or not)."""

    model_config = ConfigDict(extra="ignore")

    direction: Direction | None = None
    topic: str | None = Field(default=None, max_length=MAX_TEXT)
    status: Status | None = None
    external_id: str | None = Field(default=None, max_length=MAX_TEXT)
    reference: str | None = Field(default=None, max_length=MAX_TEXT)
    since: ConsoleTime | None = None
    until: ConsoleTime | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return value

    def journal_filter(self) -> JournalFilter:
        return JournalFilter(**{name: getattr(self, name) for name in JournalFilters.model_fields})

    def params(self) -> dict[str, str]:
        """The filters given, as text: for links, hidden fields and the filter form's values."""
        found: dict[str, str] = {}
        for name in JournalFilters.model_fields:
            value = getattr(self, name)
            if value is None:
                continue
            found[name] = value.isoformat() if isinstance(value, datetime) else str(getattr(value, "value", value))
        return found


class JournalPageQuery(JournalFilters):
    """The list page's query: the filters, the page size (as GET /journal's ``limit``) and the cursor (the last id
    of the previous page: older messages follow, none repeated)."""

    limit: int | None = Field(default=None, ge=1, le=MAX_PAGE)
    cursor: str | None = Field(default=None, pattern=r"^\d{1,19}$")


def journal_url(params: dict[str, str] | None = None) -> str:
    """The journal list with these query parameters."""
    return f"{PREFIX}/journal" + (f"?{urlencode(params)}" if params else "")


@router.get("/journal")
async def journal_list(
    request: Request, session: Viewer, runtime: ConsoleRuntime, query: Annotated[JournalPageQuery, Query()]
) -> Response:
    filters = query.params()
    limit = query.limit or DEFAULT_LIMIT
    items, next_cursor = await runtime.journal.search(
        JournalQuery(
            **{name: getattr(query, name) for name in JournalFilters.model_fields},
            limit=limit,
            cursor=int(query.cursor) if query.cursor else None,
        )
    )
    kept = {**filters, **({"limit": str(limit)} if limit != DEFAULT_LIMIT else {})}
    return render(
        request,
        "journal.html",
        {
            "title": "Journal",
            "filters": filters,
            "limit": limit,
            "page_sizes": sorted({*PAGE_SIZES, limit}),
            "directions": list(Direction),
            "statuses": list(Status),
            "items": items,
            "first_page": query.cursor is None,
            "older_url": journal_url({**kept, "cursor": str(next_cursor)}) if next_cursor is not None else None,
            "newest_url": journal_url(kept),
            "max_bulk": MAX_BULK,
        },
    )


@router.get("/journal/{message_id}")
async def journal_detail(request: Request, session: Viewer, runtime: ConsoleRuntime, message_id: MessageId) -> Response:
    message = await runtime.journal.get(message_id)
    status = message.status.value
    return render(
        request,
        "journal_detail.html",
        {
            "title": f"Message {message.id}",
            "message": message,
            "url": _detail_url(message.id),
            "journal_url": journal_url,
            "retry_refusal": None if status in RETRYABLE else f"{status}: only failed, dead or retrying messages",
            "discard_refusal": None
            if status in DISCARDABLE
            else f"{status}: only queued, waiting, retrying, failed or dead messages",
            "max_reason": MAX_REASON,
        },
    )


@router.post("/journal/{message_id}/retry")
async def journal_retry(request: Request, form: Changer, runtime: ConsoleRuntime, message_id: MessageId) -> Response:
    try:
        message = await runtime.journal.retry(message_id)
    except OperatorActionRefused as refused:
        return redirect(request, _detail_url(message_id), f"Not retried: {refused.message}", kind="bad")
    waits = message.status is Status.WAITING
    return redirect(
        request,
        _detail_url(message_id),
        f"Message {message_id} retried: {message.status.value}"
        + (" (it waits for its order's create to reach the OMS)" if waits else ""),
        kind="warn" if waits else "ok",
    )


@router.post("/journal/{message_id}/discard")
async def journal_discard(request: Request, form: Changer, runtime: ConsoleRuntime, message_id: MessageId) -> Response:
    reason = _reason(form)
    try:
        await runtime.journal.discard(message_id, reason)
    except OperatorActionRefused as refused:
        return redirect(request, _detail_url(message_id), f"Not discarded: {refused.message}", kind="bad")
    return redirect(request, _detail_url(message_id), f"Message {message_id} discarded: its lane moves on.")


@router.post("/journal/{action}")
async def journal_bulk(
    request: Request, form: Changer, runtime: ConsoleRuntime, action: Literal["retry", "discard"]
) -> Response:
    """Every message the posted filter matches: without ``dry_run=0`` only counted (the confirmation page), with
    it changed (the outcomes). A refusal of the service (no filter, a status the action does not apply to, too many
    messages) goes back to the list with the notice."""
    filters = _posted_filters(form)
    dry_run = form.get("dry_run", "1") != "0"
    reason = _reason(form) if action == "discard" else None
    back = journal_url(filters.params())
    try:
        if action == "retry":
            result = await runtime.journal.retry_matching(filters.journal_filter(), dry_run=dry_run)
        else:
            result = await runtime.journal.discard_matching(filters.journal_filter(), reason, dry_run=dry_run)
    except InputRejected as rejected:
        return redirect(request, back, f"Bulk {action} refused: {_problems(rejected)}", kind="bad")
    return render(
        request,
        "journal_bulk.html",
        {
            "title": f"Bulk {action}" + (": confirm" if dry_run else ""),
            "action": action,
            "result": result,
            "filters": filters.params(),
            "reason": reason or "",
            "back": back,
            "max_bulk": MAX_BULK,
            "max_reason": MAX_REASON,
        },
    )


def _detail_url(message_id: int) -> str:
    return f"{PREFIX}/journal/{message_id}"


def _reason(form: ConsoleForm) -> str | None:
    reason = form.get("reason").strip()
    if len(reason) > MAX_REASON:
        raise ConsoleRefusal(422, "Invalid input", f"reason: at most {MAX_REASON} characters")
    return reason or None


def _posted_filters(form: ConsoleForm) -> JournalFilters:
    """The filter of a bulk form, validated as the list's query is; an unknown field is refused (a misspelt filter
    must never widen the action), as POST /journal/retry refuses one."""
    unknown = sorted(set(form.fields) - _FORM_FIELDS - set(JournalFilters.model_fields))
    if unknown:
        raise ConsoleRefusal(422, "Invalid input", f"unknown field {unknown[0][:40]!r}: not a filter of the journal")
    try:
        return JournalFilters.model_validate({name: form.get(name) for name in JournalFilters.model_fields})
    except ValidationError as invalid:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'input'}: {error['msg']}"
            for error in invalid.errors()[:10]
        )
        raise ConsoleRefusal(422, "Invalid input", problems) from None


def _problems(rejected: InputRejected) -> str:
    """The service's refusal for an operator: a field's name where it names a filter ("(body)" names none)."""
    return "; ".join(
        error["message"] if error["field"].startswith("(") else f"{error['field']}: {error['message']}"
        for error in rejected.errors
    )
