"""/orders — order export from the commerce platform, each order's export status, and `orders sync`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from app.deps import CommerceAuth, CommerceOrOperatorAuth, OperatorAuth, RuntimeDep
from app.routers.body import read_limited_body
from app.schemas import ExportStatus, OrderExportAnswer, OrderPage, OrderSyncRequest, OrderSyncResult, OrderView
from app.services.orders import MAX_PAGE

router = APIRouter(prefix="/orders", tags=["orders"])

_EXPORT_RESPONSES = {
    200: {"model": OrderExportAnswer, "description": "Sync mode: delivered to the OMS inline"},
    202: {"model": OrderExportAnswer, "description": "Stored: queued for export, held, or exported before"},
    413: {"description": "Body larger than COMMERCE_MAX_BODY_BYTES"},
    422: {"description": "The order cannot be exported as it is: `errors` names each field"},
}


@router.post("", dependencies=[CommerceAuth], responses=_EXPORT_RESPONSES, status_code=202)
async def export_order(runtime: RuntimeDep, request: Request) -> JSONResponse:
    """Export an Adobe Commerce order (as `GET /V1/orders/{id}` returns it, or wrapped as an Adobe I/O event in
    `data.value`). Its `status` in OMS_EXPORT_STATUSES ⇒ exported once; otherwise held until a later post of the
    same order has an exportable status. Re-posting an exported order exports nothing and answers its status."""
    body = await read_limited_body(request, runtime.settings.commerce_max_body_bytes)
    answer, status = await runtime.orders.accept(body)
    return JSONResponse(answer.model_dump(mode="json"), status_code=status)


@router.get("", response_model=OrderPage, dependencies=[CommerceOrOperatorAuth])
async def list_orders(
    runtime: RuntimeDep,
    export_status: Annotated[ExportStatus | None, Query(description="Only orders in this export status")] = None,
    since: Annotated[datetime | None, Query(description="Only orders received at or after this time")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(max_length=30, description="`next_cursor` of the previous page")] = None,
) -> OrderPage:
    """Orders in arrival order with their export status (the seed's order-grid column)."""
    return await runtime.orders.page(export_status=export_status, since=since, cursor=cursor, limit=limit)


@router.post("/sync", response_model=OrderSyncResult, dependencies=[OperatorAuth])
async def sync_orders(runtime: RuntimeDep, body: OrderSyncRequest | None = None) -> OrderSyncResult:
    """Queue again the orders not exported (exportable status but no export; export failed, discarded or dead),
    oldest first, all or `limit` (the seed's `oms:orders:sync [N]`)."""
    return await runtime.orders.sync((body or OrderSyncRequest()).limit)


@router.get("/{increment_id}", response_model=OrderView, dependencies=[CommerceOrOperatorAuth])
async def get_order(runtime: RuntimeDep, increment_id: str) -> OrderView:
    """One order: as the store posted it, its export status (and why), the create params sent to the OMS, and
    the journal ids of its export and of the OMS's acknowledgement."""
    return await runtime.orders.get(increment_id)
