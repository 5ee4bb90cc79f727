"""/journal — every message in and out: search, inspect, retry, discard — one message or every message a filter
matches — and prune (operator token)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import Body, Query

from app.deps import OperatorAuth, RuntimeDep
from app.models import Direction, Status
from app.protocol.references import MAX_REFERENCE_LENGTH
from app.routers.params import MessageId
from app.routers.route import api_router
from app.schemas import (
    BulkActionResult,
    BulkDiscardRequest,
    BulkRetryRequest,
    DiscardRequest,
    JournalDetail,
    JournalEntry,
    JournalFilterBody,
    JournalPage,
    JournalTime,
    OperatorActionResult,
    PruneAnswer,
    PruneRequest,
)
from app.services.journal import MAX_PAGE, JournalFilter, JournalQuery

router = api_router(prefix="/journal", tags=["journal"], dependencies=[OperatorAuth])


@router.get("", response_model=JournalPage)
async def search_journal(
    runtime: RuntimeDep,
    direction: Direction | None = None,
    topic: str | None = None,
    status: Status | None = None,
    external_id: Annotated[str | None, Query(description="The JSON-RPC id")] = None,
    reference: Annotated[
        str | None,
        Query(
            description="An order number or SKU the message names, however many it names",
            max_length=MAX_REFERENCE_LENGTH,
        ),
    ] = None,
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


def _filter(request: JournalFilterBody) -> JournalFilter:
    return JournalFilter(
        direction=request.direction,
        topic=request.topic,
        status=request.status,
        external_id=request.external_id,
        reference=request.reference,
        since=request.since,
        until=request.until,
    )


@router.post("/retry", response_model=BulkActionResult)
async def retry_matching(runtime: RuntimeDep, request: BulkRetryRequest) -> BulkActionResult:
    """Retry every failed, dead or retrying message the filters match (those of GET /journal; at least one),
    oldest first, each as `POST /journal/{id}/retry` would: a call about an order the OMS lacks waits again, a
    waiting call and a superseded create are reported, not retried. At most 100,000 messages (more: 422, narrow
    the filter); `dry_run` only counts them."""
    result = await runtime.journal.retry_matching(_filter(request), dry_run=request.dry_run)
    return BulkActionResult.model_validate(result)


@router.post("/discard", response_model=BulkActionResult)
async def discard_matching(runtime: RuntimeDep, request: BulkDiscardRequest) -> BulkActionResult:
    """Discard every queued, waiting, retrying, failed or dead message the filters match (never a succeeded one,
    nor one in flight), oldest first; their lanes move on. At most 100,000 (more: 422); `dry_run` only counts."""
    result = await runtime.journal.discard_matching(_filter(request), request.reason, dry_run=request.dry_run)
    return BulkActionResult.model_validate(result)


@router.post("/prune", response_model=PruneAnswer)
async def prune_journal(runtime: RuntimeDep, request: PruneRequest) -> PruneAnswer:
    """Delete the finished messages older than `older_than_days` (default OMS_JOURNAL_RETENTION_DAYS, at least 3),
    in batches; pending messages never. `dry_run` only counts them. The workers do this once a day by themselves."""
    result = await runtime.journal_prune.prune(request.older_than_days, dry_run=request.dry_run)
    return PruneAnswer(**asdict(result), rows_per_second=round(result.rows_per_second, 1))


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
