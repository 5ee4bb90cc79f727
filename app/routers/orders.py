"""/orders — order export from the commerce platform, each order's export status, and `orders sync`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import JSONResponse

from app.deps import CommerceAuth, CommerceOrOperatorAuth, OperatorAuth, RuntimeDep
from app.routers.body import read_limited_body
from app.routers.params import IncrementId
from app.routers.route import api_router
from app.schemas import (
    CancelAnswer,
    CancelRequest,
    ExportStatus,
    OrderExportAnswer,
    OrderPage,
    OrderSyncRequest,
    OrderSyncResult,
    OrderView,
    ReturnAnswer,
    ReturnRequest,
)
from app.services.orders import MAX_PAGE

router = api_router(prefix="/orders", tags=["orders"])

_EXPORT_RESPONSES = {
    200: {"model": OrderExportAnswer, "description": "Sync mode: delivered to the OMS inline"},
    202: {"model": OrderExportAnswer, "description": "Stored: queued for export, held, or exported before"},
    413: {"description": "Body larger than COMMERCE_MAX_BODY_BYTES"},
    422: {"description": "The order cannot be exported as it is: `errors` names each field"},
}


_ORDER_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "description": "An Adobe Commerce order (GET /V1/orders/{id})"},
                "example": {
                    "entity_id": 101,
                    "increment_id": "000000101",
                    "status": "pending",
                    "store_id": 1,
                    "created_at": "2025-02-10 17:42:05",
                    "order_currency_code": "EUR",
                    "grand_total": 17.5,
                    "shipping_amount": 5.0,
                    "billing_address": {
                        "firstname": "Lena",
                        "lastname": "Vogel",
                        "street": ["Hauptstraße 5"],
                        "city": "Berlin",
                        "postcode": "10115",
                        "country_id": "DE",
                    },
                    "payment": {"method": "checkmo"},
                    "items": [
                        {
                            "item_id": 1001,
                            "product_type": "simple",
                            "sku": "MUG-STONE-350",
                            "name": "Mug",
                            "qty_ordered": 1,
                            "price": 12.5,
                            "row_total": 12.5,
                            "row_total_incl_tax": 12.5,
                        }
                    ],
                    "extension_attributes": {
                        "shipping_assignments": [
                            {
                                "shipping": {
                                    "method": "flatrate_flatrate",
                                    "address": {
                                        "firstname": "Lena",
                                        "lastname": "Vogel",
                                        "street": ["Torstraße 1"],
                                        "city": "Berlin",
                                        "postcode": "10119",
                                        "country_id": "DE",
                                    },
                                }
                            }
                        ]
                    },
                },
            }
        },
    }
}


@router.post("", dependencies=[CommerceAuth], responses=_EXPORT_RESPONSES, status_code=202, openapi_extra=_ORDER_BODY)
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
async def get_order(runtime: RuntimeDep, increment_id: IncrementId) -> OrderView:
    """One order: as the store posted it, its export status (and why), the create params sent to the OMS, the
    journal ids of its export and of the OMS's acknowledgement, and its `lifecycle`: OMS status history, shipments
    with tracking, returns, credit memos, cancel and store credit, each effect with its delivery to Adobe
    Commerce."""
    view = await runtime.orders.get(increment_id)
    view.lifecycle = await runtime.order_actions.lifecycle(increment_id)
    return view


@router.post(
    "/{increment_id}/cancel",
    response_model=CancelAnswer,
    status_code=202,
    dependencies=[CommerceOrOperatorAuth],
    responses={
        404: {"description": "No such order"},
        409: {"description": "The OMS has the order in a logistics or completed status, or it was never exported"},
    },
)
async def cancel_order(
    runtime: RuntimeDep, increment_id: IncrementId, body: CancelRequest | None = None
) -> CancelAnswer:
    """Cancel the entire order (the seed's O8): sends OMS_CANCEL_METHOD to the OMS through the outbox and records
    "cancel requested"; the OMS's CANCELED update completes it (and cancels it in Adobe Commerce). Refused (409)
    once the OMS status is in OMS_CANCEL_BLOCKED_STATUSES. Asking twice is the same request."""
    return await runtime.order_actions.cancel(increment_id, (body or CancelRequest()).reason)


@router.post(
    "/{increment_id}/returns",
    response_model=ReturnAnswer,
    status_code=202,
    dependencies=[CommerceOrOperatorAuth],
    responses={
        404: {"description": "No such order"},
        409: {"description": "The order was never exported"},
        422: {"description": "`errors` names each item not on the order or not shipped in that quantity"},
    },
)
async def request_return(runtime: RuntimeDep, increment_id: IncrementId, body: ReturnRequest) -> ReturnAnswer:
    """Ask the OMS to authorize a return of shipped items (Adobe Commerce item ids and quantities): picks shipped,
    not yet returned unit lines of each item and sends `magento.postsales.return_management.authorize` with their
    line numbers and SKUs. The OMS answers with a return update (RMA id), shown in the order's `lifecycle`."""
    return await runtime.order_actions.request_return(increment_id, body)
