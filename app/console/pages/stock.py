"""The console's stock page: look a SKU up (per aggregate what the OMS last set, per website what it can sell), list
one website's salable stock, and edit the aggregates → websites map.

A thin adapter over app/services/stock.py, as GET /stock/{sku}, GET /stock and GET/PUT /stock/aggregates are. The
OMS owns stock: nothing here changes a quantity, only which websites each aggregate feeds.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.console.web import Changer, ConsoleRuntime, Viewer, redirect, render, templates
from app.errors import InputRejected, NotFound
from app.protocol.stock import MAX_SKU_CHARS
from app.schemas import SkuStock, WebsiteStockPage
from app.settings import validate_aggregate_websites

router = APIRouter()

MAX_CODE = 200  # a website code, as GET /stock?website= takes it
PAGE_SIZES = (25, 50, 100, 200)


@router.get("/stock")
async def stock_page(
    request: Request,
    session: Viewer,
    runtime: ConsoleRuntime,
    sku: Annotated[str, Query(max_length=MAX_SKU_CHARS, description="One SKU, as the OMS sends it")] = "",
    website: Annotated[str, Query(max_length=MAX_CODE, description="List this website's stock")] = "",
    cursor: Annotated[str, Query(max_length=MAX_SKU_CHARS, description="The page's last SKU")] = "",
    limit: Annotated[int, Query(ge=1, le=max(PAGE_SIZES))] = 50,
) -> Response:
    """The lookup form, the SKU's stock when one is asked (a SKU the OMS never sent says so: no error page), a
    page of one website's stock when one is chosen, and the map with its edit form."""
    sku, website = sku.strip(), website.strip()
    found: SkuStock | None = None
    never_received = None
    if sku:
        try:
            found = await runtime.stock.sku_stock(sku)
        except NotFound:
            never_received = sku
    listing: WebsiteStockPage | None = None
    unknown_website = None
    next_url = None
    if website:
        try:
            listing = await runtime.stock.website_stock(website, skus=None, limit=limit, cursor=cursor or None)
        except NotFound as exc:
            unknown_website = exc.message
        if listing is not None and listing.next_cursor is not None:
            next_url = _url({"website": website, "limit": limit, "cursor": listing.next_cursor})
    mapping = await runtime.stock.aggregate_websites()
    return render(
        request,
        "stock.html",
        {
            "title": f"Stock of {sku}" if sku else "Stock",
            "sku": sku,
            "found": found,
            "never_received": never_received,
            "website": website,
            "listing": listing,
            "unknown_website": unknown_website,
            "first_url": _url({"website": website, "limit": limit}) if cursor else None,
            "next_url": next_url,
            "limit": limit,
            "page_sizes": PAGE_SIZES,
            "mapping": mapping,
            "websites": sorted({code for codes in mapping.aggregates.values() for code in codes}),
            "max_sku": MAX_SKU_CHARS,
            "max_code": MAX_CODE,
        },
    )


@router.post("/stock/aggregates")
async def save_aggregate_websites(request: Request, form: Changer, runtime: ConsoleRuntime) -> Response:
    """Replace the whole map (PUT /stock/aggregates): one row per aggregate with its website codes comma-separated;
    rows with no aggregate and no website are ignored (the empty row to add one), an aggregate with no website feeds
    none. A website fed by two aggregates, an empty code or a repeated aggregate is refused, nothing changed."""
    try:
        mapping = map_from_rows(form.get_all("aggregate"), form.get_all("websites"))
        view = await runtime.stock.replace_aggregate_websites(mapping)
    except InputRejected as exc:
        return redirect(request, "/admin/stock", f"Map not saved: {exc.message}", kind="bad")
    fed = "; ".join(f"{aggregate} → {', '.join(codes)}" for aggregate, codes in view.aggregates.items())
    text = f"Map saved: {fed or 'no aggregate feeds a website'}."
    if view.unassigned:
        text += f" Feeding no website: {', '.join(view.unassigned)}."
    return redirect(request, "/admin/stock", text, kind="ok" if view.aggregates else "warn")


def map_from_rows(aggregates: list[str], websites: list[str]) -> dict[str, list[str]]:
    """The posted rows as the map PUT /stock/aggregates takes; InputRejected names each row at fault."""
    if len(aggregates) != len(websites):
        raise InputRejected([{"field": "aggregate", "message": "every row needs an aggregate and a websites field"}])
    mapping: dict[str, list[str]] = {}
    errors: list[dict[str, str]] = []
    for row, (raw_aggregate, raw_websites) in enumerate(zip(aggregates, websites, strict=True), start=1):
        aggregate = raw_aggregate.strip()
        codes = [code.strip() for code in raw_websites.split(",") if code.strip()]
        if not aggregate and not codes:
            continue  # the empty row
        if not aggregate:
            errors.append({"field": f"row {row}", "message": "websites given without an aggregate id"})
        elif len(aggregate) > MAX_SKU_CHARS or any(len(code) > MAX_CODE for code in codes):
            errors.append({"field": f"row {row}", "message": f"an aggregate id or website code over {MAX_CODE} chars"})
        elif aggregate in mapping:
            errors.append({"field": f"row {row}", "message": f"aggregate {aggregate!r} is in two rows"})
        else:
            mapping[aggregate] = codes
    if errors:
        raise InputRejected(errors)
    try:
        return validate_aggregate_websites(mapping)
    except ValueError as exc:
        raise InputRejected([{"field": "aggregates", "message": str(exc)}]) from None


def fmt_quantity(value: Decimal | None) -> str:
    """A stock quantity (numeric(20, 4)) as people read it: 1,250 or 2.5, not 1250.0000; ∞ for None (unlimited)."""
    if value is None:
        return "∞"
    if value == value.to_integral_value():
        return f"{int(value):,}"
    return f"{value.normalize():,f}"


templates.env.filters["quantity"] = fmt_quantity


def _url(params: dict[str, object]) -> str:
    kept = {name: value for name, value in params.items() if value not in ("", None)}
    if kept.get("limit") == 50:
        kept.pop("limit")
    return "/admin/stock" + (f"?{urlencode(kept)}" if kept else "")
