"""The app factory: routers, error handlers, and the lifespan that starts the runtime (and its workers)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from app import __version__
from app.errors import ConnectorError, InputRejected, PeerError, StorageUnavailable
from app.routers import catalog, health, integration, journal, oms_rpc, orders, stock
from app.runtime import Runtime

log = logging.getLogger(__name__)

DESCRIPTION = """
Links an Adobe Commerce / Magento 2 store with an Order Management System speaking the MCOM service-bus protocol.

* **OMS webhook** — `POST /oms/rpc`, signed with `X-Signature` (HMAC of the raw body).
* **Operators** — `/journal`, `/integration`, `/stock/aggregates`: `Authorization: Bearer <OPERATOR_TOKEN>`.
* **Commerce platform** — `POST /orders` (order export): `Authorization: Bearer <COMMERCE_TOKEN>`.
* **Commerce platform or operators** — `/stock`, `GET /orders`: `Bearer <COMMERCE_TOKEN or OPERATOR_TOKEN>`.
* **Anonymous** — `/health/*` and these docs only.
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

    app = FastAPI(title="OMS Connector", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.runtime = runtime
    app.include_router(oms_rpc.router)
    app.include_router(journal.router)
    app.include_router(integration.router)
    app.include_router(stock.router)
    app.include_router(orders.router)
    app.include_router(catalog.router)
    app.include_router(health.router)

    @app.exception_handler(ConnectorError)
    async def connector_error(_request: Request, exc: ConnectorError) -> JSONResponse:
        status = getattr(exc, "http_status", None)
        if status is None:
            status = 502 if isinstance(exc, PeerError) else 400
        headers = {"Retry-After": "30"} if isinstance(exc, StorageUnavailable) else None
        content: dict[str, Any] = {"detail": exc.message, "error": exc.__class__.__name__}
        if isinstance(exc, InputRejected):
            content["errors"] = exc.errors
        return JSONResponse(content, status_code=status, headers=headers)

    return app
