"""/reports — the processing-time report (operator token): JSON, or CSV with `Accept: text/csv`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request, Response

from app.deps import OperatorAuth, RuntimeDep
from app.models import Direction
from app.routers.route import api_router
from app.services.reports import MAX_BUCKETS, MAX_CHANNEL_CHARS, BucketSize, ProcessingReport, to_csv

router = api_router(prefix="/reports", tags=["reports"], dependencies=[OperatorAuth])

TIME = "A duration back from now (`90m`, `24h`, `7d`) or an ISO 8601 time (UTC without an offset)"


@router.get(
    "/processing",
    response_model=ProcessingReport,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "JSON, or CSV"}},
)
async def processing_report(
    request: Request,
    runtime: RuntimeDep,
    since: Annotated[str | None, Query(max_length=64, description=f"{TIME}; default 24h")] = None,
    until: Annotated[str | None, Query(max_length=64, description=f"{TIME}; default now")] = None,
    bucket: Annotated[BucketSize, Query(description=f"At most {MAX_BUCKETS} buckets per report")] = "hour",
    direction: Direction | None = None,
    channel: Annotated[str | None, Query(max_length=MAX_CHANNEL_CHARS, description="oms or commerce")] = None,
    topic: Annotated[list[str] | None, Query(description="Only these topics (repeat the parameter)")] = None,
) -> ProcessingReport | Response:
    """Per topic and time bucket: messages finished (succeeded, failed or dead, discarded, rejected) and their
    processing and end-to-end times (average, p50, p95, p99, max). Which topic got slow, and since when."""
    query = runtime.reports.query(
        since=since,
        until=until,
        bucket=bucket,
        direction=direction.value if direction else None,
        channel=channel,
        topics=topic or (),
    )
    report = await runtime.reports.processing(query)
    if "text/csv" in request.headers.get("accept", "").lower():
        return Response(to_csv(report), media_type="text/csv; charset=utf-8")
    return report
