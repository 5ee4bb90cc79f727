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
async def get_order(runtime: RuntimeDep, increment_id: str) -> OrderView:
    """One order: as the store posted it, its export status (and why), the create params sent to the OMS, and
    the journal ids of its export and of the OMS's acknowledgement."""
    return await runtime.orders.get(increment_id)
