"""The app factory: routers, error handlers, and the lifespan that starts the runtime (and its workers)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from app import __version__
from app.console import install_console
from app.console.web import PREFIX as CONSOLE_PREFIX
from app.routers import catalog, health, integration, journal, metrics, oms_rpc, orders, reports, stock
from app.routers.errors import install_error_handlers
from app.routers.guard import RequestGuard
from app.runtime import Runtime

log = logging.getLogger(__name__)

DESCRIPTION = """
Links an Adobe Commerce / Magento 2 store with an Order Management System speaking the MCOM service-bus protocol.

* **OMS webhook** — `POST /oms/rpc`, signed with `X-Signature` (HMAC of the raw body).
* **Operators** — `/journal`, `/integration`, `/reports`, `/stock/aggregates`: `Authorization: Bearer <OPERATOR_TOKEN>`.
* **Commerce platform** — `POST /orders` (order export): `Authorization: Bearer <COMMERCE_TOKEN>`.
* **Commerce platform or operators** — `/stock`, `GET /orders`: `Bearer <COMMERCE_TOKEN or OPERATOR_TOKEN>`.
* **Prometheus** — `GET /metrics`: `Bearer <METRICS_TOKEN or OPERATOR_TOKEN>` (METRICS_TOKEN opens nothing else).
* **Operators' console** — `/admin`: sign in with the operator token (or `OPERATOR_READONLY_TOKEN`, read-only).
* **Anonymous** — `/health/*` and these docs only.

Errors come in one shape: `{"detail", "error", "errors": [{"field", "message"}], "request_id"}` (see `ErrorAnswer`).
Every JSON body follows the same rules: UTF-8, nested at most 32 levels, integers within 64 bits, finite numbers,
no NUL and no lone surrogate in strings.
"""


def create_app(runtime: Runtime, *, start_workers: bool | None = None, register: bool = True) -> FastAPI:
    """Build the HTTP app around ``runtime``; the lifespan starts it (migrations, writer, workers)."""
    workers = runtime.settings.run_workers if start_workers is None else start_workers

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await runtime.start(workers=workers, register=register and runtime.settings.oms_register_at_startup)
        try:
            yield
        finally:
            await runtime.stop()

    # fastapi-offline serves Swagger UI's files itself: /docs renders on a closed network (no CDN). No ReDoc.
    app: FastAPI = FastAPIOffline(
        title="OMS Connector",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        redoc_url=None,
        static_url="/docs/static",
    )
    app.state.runtime = runtime
    app.include_router(oms_rpc.router)
    app.include_router(journal.router)
    app.include_router(integration.router)
    app.include_router(stock.router)
    app.include_router(orders.router)
    app.include_router(catalog.router)
    app.include_router(reports.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    install_error_handlers(app)
    install_console(app)  # after the JSON error handlers: below /admin refusals are HTML pages
    app.add_middleware(
        RequestGuard,
        jsonrpc_paths=frozenset({oms_rpc.WEBHOOK_PATH}),
        metrics=runtime.metrics,
        html_prefix=CONSOLE_PREFIX + "/",
    )
    return app
