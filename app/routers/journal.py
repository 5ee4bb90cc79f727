"""/journal — every message in and out: search, inspect, retry, discard (operator token)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Body, Query
from pydantic import AfterValidator

from app.deps import OperatorAuth, RuntimeDep
from app.models import Direction, Status
from app.routers.params import MessageId
from app.routers.route import api_router
from app.schemas import DiscardRequest, JournalDetail, JournalEntry, JournalPage, OperatorActionResult
from app.services.journal import MAX_PAGE, JournalQuery

router = api_router(prefix="/journal", tags=["journal"], dependencies=[OperatorAuth])


def _representable(value: datetime) -> datetime:
    """A time the database can compare with (e.g. 0001-01-01T00:00+14:00 is before year 1 in UTC): 422, not 500."""
    if value.tzinfo is not None:
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValueError("date out of range") from None
    return value


JournalTime = Annotated[datetime, AfterValidator(_representable)]


@router.get("", response_model=JournalPage)
async def search_journal(
    runtime: RuntimeDep,
    direction: Direction | None = None,
    topic: str | None = None,
    status: Status | None = None,
    external_id: Annotated[str | None, Query(description="The JSON-RPC id")] = None,
    reference: Annotated[str | None, Query(description="An order number or SKU the message concerns")] = None,
    since: JournalTime | None = None,
    until: JournalTime | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,19}$")] = None,
) -> JournalPage:
    """Messages newest first, filtered; follow `next_cursor` for older ones."""
    query = JournalQuery(
        direction=direction,
        topic=topic,
        status=status,
        external_id=external_id,
        reference=reference,
        since=since,
        until=until,
        limit=limit,
        cursor=int(cursor) if cursor else None,
    )
    items, next_cursor = await runtime.journal.search(query)
    return JournalPage(
        items=[JournalEntry.model_validate(item) for item in items],
        next_cursor=str(next_cursor) if next_cursor is not None else None,
    )


@router.get("/{message_id}", response_model=JournalDetail)
async def get_journal_entry(runtime: RuntimeDep, message_id: MessageId) -> JournalDetail:
    """One message: payload, headers (no secrets), attempts, last error, timings, next attempt."""
    return JournalDetail.model_validate(await runtime.journal.get(message_id))


@router.post("/{message_id}/retry", response_model=OperatorActionResult)
async def retry_message(runtime: RuntimeDep, message_id: MessageId) -> OperatorActionResult:
    """Queue a failed, dead or retrying message again now (409 otherwise)."""
    message = await runtime.journal.retry(message_id)
    return OperatorActionResult(id=message.id, status=message.status)


@router.post("/{message_id}/discard", response_model=OperatorActionResult)
async def discard_message(
    runtime: RuntimeDep, message_id: MessageId, request: Annotated[DiscardRequest | None, Body()] = None
) -> OperatorActionResult:
    """Drop a message that has not succeeded, so its lane moves on (409 for succeeded or in-flight ones)."""
    message = await runtime.journal.discard(message_id, request.reason if request else None)
    return OperatorActionResult(id=message.id, status=message.status)
