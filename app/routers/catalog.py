"""/catalog — products from the store (exported to the OMS when something it receives changed), the custom
attributes sent with them, shipping methods, and each bundle's sourcing rule."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from app.deps import CommerceAuth, CommerceOrOperatorAuth, OperatorAuth, RuntimeDep
from app.errors import PayloadTooLarge, ProductRejected
from app.protocol import strict_json
from app.routers.body import read_limited_body
from app.routers.params import ProductSku
from app.routers.route import api_router
from app.schemas import (
    AttributesBody,
    CatalogExportRequest,
    CatalogExportView,
    CatalogImportAnswer,
    ProductOutcome,
    ProductsAnswer,
    ShippingMethodsAnswer,
    ShippingMethodsBody,
    SourcingRuleUpdate,
    SourcingRuleView,
)
from app.settings import ShippingMethod

router = api_router(prefix="/catalog", tags=["catalog"])

_PRODUCT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"description": "One Adobe Commerce product (GET /V1/products/{sku}) or a list of them"},
                "example": {
                    "id": 2041,
                    "sku": "TEE-ORG",
                    "name": "Organic Tee",
                    "type_id": "configurable",
                    "status": 1,
                    "custom_attributes": [{"attribute_code": "color", "value": "49"}],
                    "extension_attributes": {"website_ids": [1], "configurable_product_links": [2042, 2043]},
                },
            }
        },
    }
}


@router.post(
    "/products",
    response_model=ProductsAnswer,
    dependencies=[CommerceAuth],
    openapi_extra=_PRODUCT_BODY,
    responses={
        409: {"description": "A SKU is a shipping method's code (`errors` names each); nothing is stored"},
        422: {"description": "`errors` names each field at fault; nothing is stored"},
    },
)
async def post_products(runtime: RuntimeDep, request: Request) -> ProductsAnswer:
    """Store one product or a list (upsert by SKU) and export each to the OMS when it is new or something the OMS
    receives changed: type, name, enabled, children SKUs, a configured custom attribute. A configurable's children
    are its links' SKUs the connector knows or the same post holds (it is exported once, with them); a child posted
    later exports its parent again. A SKU that is a shipping method's code refuses the post (409)."""
    body = await read_limited_body(request, runtime.settings.commerce_max_body_bytes)
    try:
        document: Any = strict_json.loads(body)
    except strict_json.UnacceptableJson as exc:
        raise ProductRejected([{"field": "body", "message": str(exc)}]) from None
    return await runtime.catalog.accept(document)


@router.post(
    "/import",
    response_model=CatalogImportAnswer,
    dependencies=[CommerceOrOperatorAuth],
    openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}},
    responses={413: {"description": "Over CATALOG_IMPORT_MAX_BYTES"}, 422: {"description": "No header with sku"}},
)
async def import_catalog_csv(runtime: RuntimeDep, request: Request) -> CatalogImportAnswer:
    """A Magento product-import CSV (sku, store_view_code, name, product_type, product_online, attribute columns or
    additional_attributes, configurable_variations, bundle_values), streamed: upserted in batches of
    OMS_CATALOG_BATCH_SIZE rows, new or changed products queued for export. As in Magento, an empty cell changes
    nothing and a store-view row overrides its view only: its name goes out in the view's locale
    (OMS_STORE_VIEW_LOCALES), nothing else of it changes what the OMS receives. Bad rows (missing SKU, unknown type,
    bad encoding, a shipping method's code) and values not applied (`skipped`) are listed by row number, here and
    in the journal; the good rows still go through."""
    limit = runtime.settings.catalog_import_max_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the CSV is over the limit of {limit} bytes (CATALOG_IMPORT_MAX_BYTES)")
    name = request.headers.get("x-file-name", "")[:200]
    return await runtime.catalog_import.run(request.stream(), limit=limit, name=name)


@router.get("/products/{sku:path}", dependencies=[CommerceOrOperatorAuth])
async def get_product(runtime: RuntimeDep, sku: ProductSku) -> dict[str, Any]:
    """The product as the connector keeps it, with its last export (journal id and status)."""
    return await runtime.catalog.get(sku)


@router.delete(
    "/products/{sku:path}",
    response_model=ProductOutcome,
    dependencies=[CommerceAuth],
    responses={409: {"description": "A shipping method's row: PUT /catalog/shipping-methods removes it"}},
)
async def delete_product(runtime: RuntimeDep, sku: ProductSku) -> ProductOutcome:
    """The store deleted the product: it is kept, marked deleted and exported disabled (orders holding it still
    export)."""
    return await runtime.catalog.delete(sku)


@router.get("/attributes", response_model=AttributesBody, dependencies=[OperatorAuth])
async def get_attributes(runtime: RuntimeDep) -> AttributesBody:
    """The custom attributes sent with each product (seeded from OMS_PRODUCT_ATTRIBUTES)."""
    return AttributesBody(attributes=await runtime.catalog.attributes())


@router.put("/attributes", response_model=AttributesBody, dependencies=[OperatorAuth])
async def put_attributes(runtime: RuntimeDep, body: AttributesBody) -> AttributesBody:
    """Replace them. Products go out with the new set at their next change, and all of them with a full export."""
    return AttributesBody(attributes=await runtime.catalog.set_attributes(body.attributes))


@router.get("/shipping-methods", response_model=list[ShippingMethod], dependencies=[CommerceOrOperatorAuth])
async def get_shipping_methods(runtime: RuntimeDep) -> list[ShippingMethod]:
    """The enabled shipping methods, exported to the OMS catalog as products whose SKU is the method code."""
    return await runtime.catalog.shipping_methods()


@router.put(
    "/shipping-methods",
    response_model=ShippingMethodsAnswer,
    dependencies=[OperatorAuth],
    responses={409: {"description": "A code is a product's SKU (`errors` names each); nothing is changed"}},
)
async def put_shipping_methods(runtime: RuntimeDep, body: ShippingMethodsBody) -> ShippingMethodsAnswer:
    """Replace them (Adobe Commerce has no REST route that lists carriers): new or renamed methods are exported,
    removed ones exported disabled. A code that is a store product's SKU refuses the change (409): a product is
    never overwritten by a method, nor a method by a product."""
    return await runtime.catalog.set_shipping_methods(body.methods)


@router.post(
    "/exports",
    response_model=CatalogExportView,
    status_code=202,
    dependencies=[CommerceOrOperatorAuth],
    responses={200: {"model": CatalogExportView, "description": "An export is already pending or running: that one"}},
)
async def request_catalog_export(
    runtime: RuntimeDep, response: Response, body: CatalogExportRequest | None = None
) -> CatalogExportView:
    """Export the whole catalog to the OMS in batches of OMS_CATALOG_BATCH_SIZE (the seed's oms:catalog-export:run),
    the shipping methods included: started now in this process, or with `schedule_only` left to the workers. One
    export at a time."""
    schedule_only = (body or CatalogExportRequest()).schedule_only
    view, created = await runtime.catalog_exports.request(schedule_only=schedule_only)
    if not created:
        response.status_code = 200
    elif not schedule_only:
        runtime.run_in_background(runtime.catalog_exports.run(view.id), f"catalog-export-{view.id}")
    return view


@router.get("/exports/current", response_model=CatalogExportView, dependencies=[CommerceOrOperatorAuth])
async def current_catalog_export(runtime: RuntimeDep) -> CatalogExportView:
    """The latest export: status, products read and sent, batches sent and acknowledged, errors, throughput."""
    return await runtime.catalog_exports.current()


@router.delete("/exports/current", response_model=CatalogExportView, dependencies=[CommerceOrOperatorAuth])
async def cancel_catalog_export(runtime: RuntimeDep) -> CatalogExportView:
    """Cancel the pending or running export (404 if none): it stops after the products in flight."""
    return await runtime.catalog_exports.cancel()


@router.get("/bundles/{sku:path}/sourcing-rule", response_model=SourcingRuleView, dependencies=[CommerceOrOperatorAuth])
async def get_bundle_sourcing_rule(runtime: RuntimeDep, sku: ProductSku) -> SourcingRuleView:
    """How the OMS must source this bundle's items: its own rule, or OMS_BUNDLE_SOURCING_RULE."""
    return await runtime.orders.sourcing_rule(sku)


@router.put("/bundles/{sku:path}/sourcing-rule", response_model=SourcingRuleView, dependencies=[OperatorAuth])
async def put_bundle_sourcing_rule(runtime: RuntimeDep, sku: ProductSku, body: SourcingRuleUpdate) -> SourcingRuleView:
    """Set this bundle's rule (ship together | ship simultaneously | ship separately). Sent on the bundle's lines
    of orders exported from now on, overriding the OMS's generic sourcing rule."""
    return await runtime.orders.set_sourcing_rule(sku, body.rule)
