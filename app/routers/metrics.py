"""GET /metrics — Prometheus' scrape endpoint (operator token, or METRICS_TOKEN which opens nothing else)."""

from __future__ import annotations

from fastapi import Response

from app.deps import MetricsAuth, RuntimeDep
from app.metrics import CONTENT_TYPE, read_database_gauges
from app.routers.route import api_router

router = api_router(tags=["operations"], dependencies=[MetricsAuth])

_TEXT = {200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}, "description": "Prometheus text format"}}


@router.get("/metrics", response_class=Response, responses=_TEXT)
async def metrics(runtime: RuntimeDep) -> Response:
    """This process's counters and histograms (messages, attempts, peer calls, OAuth tokens, HTTP requests) and the
    cluster-wide gauges read from PostgreSQL now (backlog, oldest pending age, blocked lanes, failed and dead
    messages, catalog export progress). A database that cannot be read gives `oms_connector_database_up 0`, still
    200. Prometheus: `authorization: {credentials_file: …}` holding the token."""
    gauges = await read_database_gauges(runtime.db, runtime.clock.now())
    return Response(runtime.metrics.render(gauges), media_type=CONTENT_TYPE)
