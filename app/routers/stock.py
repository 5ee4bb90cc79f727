"""/stock — salable stock as the OMS set it, per SKU and per website; the aggregate → website map.

Reads take the commerce or operator token; the map is changed by operators. The OMS owns stock: every write to
stock through this API answers 409 (seed I3).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import HTTPException, Query, status

from app.deps import CommerceOrOperatorAuth, OperatorAuth, RuntimeDep
from app.errors import InputRejected
from app.protocol.stock import MAX_SKU_CHARS
from app.routers.params import StockSku
from app.routers.route import api_router
from app.schemas import AggregateWebsites, AggregateWebsitesView, SkuStock, WebsiteStockPage
from app.services.stock import MAX_BULK_SKUS, MAX_PAGE

router = api_router(prefix="/stock", tags=["stock"])

OMS_OWNS_STOCK = (
    "stock is owned by the OMS: it changes only through the OMS's stock messages "
    "(magento.inventory.aggregate_stock_management.updated). Change it in the OMS; manual edits are disabled."
)
_REFUSED = {409: {"description": OMS_OWNS_STOCK}}


@router.get("/aggregates", response_model=AggregateWebsitesView, dependencies=[OperatorAuth])
async def get_aggregate_websites(runtime: RuntimeDep) -> AggregateWebsitesView:
    """Which websites each OMS aggregate feeds, and the aggregates with stock that feed none (unassigned)."""
    return await runtime.stock.aggregate_websites()


@router.put("/aggregates", response_model=AggregateWebsitesView, dependencies=[OperatorAuth])
async def put_aggregate_websites(runtime: RuntimeDep, body: AggregateWebsites) -> AggregateWebsitesView:
    """Replace the whole map. A website may be fed by one aggregate only (422 otherwise); aggregates left out feed
    no website from now on. Salable stock per website follows at once (nothing is re-sent by the OMS)."""
    return await runtime.stock.replace_aggregate_websites(body.aggregates)


@router.get("", response_model=WebsiteStockPage, dependencies=[CommerceOrOperatorAuth])
async def get_website_stock(
    runtime: RuntimeDep,
    website: Annotated[str, Query(min_length=1, max_length=200, description="Website code")],
    skus: Annotated[
        str | None,
        Query(
            max_length=MAX_BULK_SKUS * (MAX_SKU_CHARS + 1),
            description=f"Comma-separated SKUs (at most {MAX_BULK_SKUS}); omit to list every SKU",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size when listing")] = 100,
    cursor: Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page")] = None,
) -> WebsiteStockPage:
    """Salable quantity and `is_salable` of SKUs in one website (what the website can sell and displays)."""
    wanted = None
    if skus is not None:
        wanted = [sku.strip() for sku in skus.split(",") if sku.strip()]
        if not wanted or len(wanted) > MAX_BULK_SKUS:
            raise InputRejected([{"field": "skus", "message": f"give 1 to {MAX_BULK_SKUS} comma-separated SKUs"}])
    return await runtime.stock.website_stock(website, skus=wanted, limit=limit, cursor=cursor)


@router.get("/{sku:path}", response_model=SkuStock, dependencies=[CommerceOrOperatorAuth])
async def get_sku_stock(runtime: RuntimeDep, sku: StockSku) -> SkuStock:
    """One SKU: per aggregate the quantity, unlimited flag, timestamp and message that set it; per website the
    salable quantity and `is_salable`. 404 when the OMS never sent stock for it."""
    return await runtime.stock.sku_stock(sku)


async def refuse_stock_write() -> None:
    """The OMS owns stock: writes are refused with 409 and the reason."""
    raise HTTPException(status.HTTP_409_CONFLICT, OMS_OWNS_STOCK)


async def refuse_sku_stock_write(sku: StockSku) -> None:
    """The OMS owns stock: writes are refused with 409 and the reason (the SKU is declared for the API docs)."""
    await refuse_stock_write()


for _path, _name, _refuse in (("", "stock", refuse_stock_write), ("/{sku:path}", "sku_stock", refuse_sku_stock_write)):
    for _method in ("POST", "PUT", "PATCH", "DELETE"):
        router.add_api_route(
            _path,
            _refuse,
            methods=[_method],
            dependencies=[CommerceOrOperatorAuth],
            responses=_REFUSED,
            status_code=status.HTTP_409_CONFLICT,
            operation_id=f"refuse_{_method.lower()}_{_name}",
            summary="Manual stock edits are disabled (409: the OMS owns stock)",
        )
