"""The console's home: the integration with the OMS and Adobe Commerce at a glance — registration, switch, signature
mode, reachability, the backlog per topic with its blocked lanes, failed and dead counts (linking to the journal
filtered on them) and the last 24 hours' throughput; Register, Disable and Enable.

What it shows is what GET /integration computes (app/services/integration_status.py), plus a bounded live check of
Adobe Commerce (app/services/commerce_probe.py) and the hourly processing-time report (app/services/reports.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.console.charts import Series, line_chart
from app.console.pages.report import breakable, bucket_labels, bucket_starts
from app.console.web import PREFIX, Changer, ConsoleRuntime, Viewer, redirect, render
from app.errors import ConnectorError
from app.models import Direction
from app.runtime import Runtime
from app.services.commerce_probe import CommerceProbe
from app.services.effective_settings import mask_url
from app.services.integration_status import IntegrationStatus, integration_status
from app.services.reports import ProcessingReport

router = APIRouter()

THROUGHPUT_SINCE = "24h"  # the home page's chart: the last 24 hours, by hour


@router.get("")
async def integration_page(request: Request, _session: Viewer, runtime: ConsoleRuntime) -> Response:
    status, commerce, throughput = await asyncio.gather(  # the store's check need not wait for the database
        integration_status(
            db=runtime.db,
            settings=runtime.settings,
            switch=runtime.switch,
            registrar=runtime.registrar,
            client=runtime.client,
        ),
        _probe(request, runtime).status(),
        runtime.reports.processing(runtime.reports.query(since=THROUGHPUT_SINCE, bucket="hour")),
    )
    labels, incoming, outgoing = throughput_series(throughput)
    chart = line_chart(
        "Messages finished per hour, last 24 h",
        labels,
        [Series("in (from the OMS and the store)", incoming), Series("out (to the OMS and Adobe Commerce)", outgoing)],
        y_title="messages per hour",
    )
    topics = status.backlog.topics
    return render(
        request,
        "integration.html",
        {
            "title": "Integration",
            "status": status,
            "commerce": commerce,
            "oms_token": _token_state(status),
            "totals": {
                "pending": sum(t.queued + t.waiting + t.processing + t.retrying for t in topics),
                "failed": sum(t.failed for t in topics),
                "dead": sum(t.dead for t in topics),
                "oldest": min((t.oldest_pending_at for t in topics if t.oldest_pending_at), default=None),
            },
            "chart": chart,
            "throughput": {"in": sum(v for v in incoming if v), "out": sum(v for v in outgoing if v)},
            "journal": journal_link,
            "breakable": breakable,
            "now": runtime.clock.now(),
        },
    )


@router.post("/integration/register")
async def register(request: Request, _form: Changer, runtime: ConsoleRuntime) -> Response:
    try:
        answer = await runtime.registrar.register()
    except ConnectorError as exc:
        return redirect(request, PREFIX, f"Registration failed: {exc.message}", kind="bad")
    return redirect(request, PREFIX, f"Registered {answer['url']} (version {answer['version']}) with the OMS.")


@router.post("/integration/disable")
async def disable(request: Request, _form: Changer, runtime: ConsoleRuntime) -> Response:
    await runtime.switch.set_enabled(False)
    return redirect(
        request, PREFIX, "Integration disabled: OMS calls are answered 503 and outbound messages are held.", "warn"
    )


@router.post("/integration/enable")
async def enable(request: Request, _form: Changer, runtime: ConsoleRuntime) -> Response:
    await runtime.switch.set_enabled(True)
    return redirect(request, PREFIX, "Integration enabled: OMS calls are accepted and held messages go out.")


def throughput_series(report: ProcessingReport) -> tuple[list[str], list[float | None], list[float | None]]:
    """An x label per bucket of the report's range (empty hours too) and the messages finished in each, inbound and
    outbound, every topic and channel added up."""
    starts = bucket_starts(report)
    position = {start: index for index, start in enumerate(starts)}
    counts: dict[Direction, list[float | None]] = {d: [0] * len(starts) for d in Direction}
    for row in report.rows:
        index = position.get(row.bucket.astimezone(UTC))
        if index is not None:
            values = counts[row.direction]
            values[index] = (values[index] or 0) + row.count
    return bucket_labels(starts, report.bucket), counts[Direction.IN], counts[Direction.OUT]


def journal_link(**filters: Any) -> str:
    """A link to the console's journal filtered as GET /journal is (direction, topic, status, …)."""
    given = {name: value.value if hasattr(value, "value") else value for name, value in filters.items() if value}
    return f"{PREFIX}/journal" + (f"?{urlencode(given)}" if given else "")


def _probe(request: Request, runtime: Runtime) -> CommerceProbe:
    """The Adobe Commerce check of this app (its answer is cached between pages)."""
    probe: CommerceProbe | None = getattr(request.app.state, "console_commerce_probe", None)
    if probe is None:
        url = runtime.settings.adobe_commerce_url
        probe = CommerceProbe(runtime.commerce, mask_url(str(url)) if url else None, runtime.clock)
        request.app.state.console_commerce_probe = probe
    return probe


def _token_state(status: IntegrationStatus) -> dict[str, Any]:
    """The OMS token state with its epoch times as datetimes (never the token)."""
    token = dict(status.oms.token)
    for name in ("fetched_at", "expires_at"):
        value = token.get(name)
        if isinstance(value, int | float):
            token[name] = datetime.fromtimestamp(value, UTC)
    return token
