"""Every console page in a browser, with some data on it: it answers, loads nothing from another host, logs no
JavaScript error (the `page` fixture checks both), fits the width of the screen at 1280 px and at a phone's 390 px
(tables scroll inside their frame; the page itself never scrolls sideways), and is saved as a screenshot at both
widths (tests/browser/artifacts/, git-ignored) for people to look at."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from playwright.async_api import Page, expect

from tests.support.console_browser import Console, PageWatch, new_order_number, screenshots, sign_in
from tests.support.processes import wait_until

STOCK = "magento.inventory.aggregate_stock_management.updated"
CREATE = "magento.sales.order_management.create"
CREATED = "magento.sales.order_management.created"


@pytest.fixture(scope="module")
async def seeded(console: Console) -> dict[str, str]:
    """Orders acknowledged, held and refused by the OMS, a stock snapshot: something to show on every page."""
    acknowledged, held, refused = new_order_number(), new_order_number(), new_order_number()
    console.oms.refuse_orders.add(refused)
    await console.post_order(acknowledged)
    await console.post_order(held, status="payment_review")
    await console.post_order(refused)
    snapshot = {
        "aggregate_id": "EU-WEB",
        "mode": "FULL",
        "created_on": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "stock": [{"sku": "MUG-STONE-350", "quantity": "42"}, {"sku": "TEE-ORG-BLU-M", "quantity": "0"}],
    }
    assert (await console.oms_calls(STOCK, {"snapshot": snapshot})).status_code == 200

    async def exported() -> bool:
        sent = [await console.operator_get(f"/orders/{number}") for number in (acknowledged, refused)]
        return [view["export_status"] for view in sent] == ["sent", "failed"]

    await wait_until(exported, 20, "the seeded orders were never exported", console.service)
    create = next(call for call in console.oms.calls_of(CREATE) if call.params["order"]["id"] == acknowledged)
    assert (await console.oms_calls(CREATED, {"order": create.params["order"]})).status_code == 200
    failed = await console.operator_get("/journal", status="failed", reference=refused)
    return {"order": acknowledged, "failed_message": str(failed["items"][0]["id"])}


PAGES = {
    "integration": ("/admin", "Integration"),
    "journal": ("/admin/journal", "Journal"),
    "journal-failed": ("/admin/journal?status=failed", "Journal"),
    "journal-message": ("/admin/journal/{failed_message}", "order_management.create"),
    "orders": ("/admin/orders", "Orders"),
    "order": ("/admin/orders/{order}", "{order}"),
    "catalog": ("/admin/catalog", "Catalog"),
    "stock": ("/admin/stock?sku=MUG-STONE-350&website=base", "Stock"),
    "report": ("/admin/report", "Processing-time report"),
    "settings": ("/admin/settings", "Settings"),
}


@pytest.mark.parametrize("name", list(PAGES))
async def test_every_console_page_loads_from_127_0_0_1_only_without_errors_and_fits_the_screen(
    name: str, page: Page, watch: PageWatch, seeded: dict[str, str]
) -> None:
    path, heading = (text.format(**seeded) for text in PAGES[name])
    await sign_in(page)
    answer = await page.goto(path)
    assert answer is not None and answer.status == 200, f"{path} answered {answer and answer.status}"
    await expect(page.get_by_role("heading", level=1)).to_contain_text(heading)
    await expect(page.locator("link[rel=stylesheet]")).to_have_attribute("href", "/admin/static/console.css")
    assert await page.evaluate("getComputedStyle(document.body).display") == "flex"  # console.css applied
    assert any(url.endswith("/admin/static/console.js") for url in watch.requested)
    overflowing = await screenshots(page, name)
    assert overflowing == {"1280": [], "phone": []}, f"{path} is wider than the screen (it scrolls sideways)"


async def test_the_sign_in_and_error_pages_load_from_127_0_0_1_only_without_errors_and_fit_the_screen(
    page: Page, watch: PageWatch
) -> None:
    answer = await page.goto("/admin/login")
    assert answer is not None and answer.status == 200
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    assert await screenshots(page, "sign-in") == {"1280": [], "phone": []}
    watch.expect_status(404)
    await sign_in(page)
    answer = await page.goto("/admin/journal/999999999")
    assert answer is not None and answer.status == 404
    await expect(page.get_by_role("alert")).to_be_visible()
    assert await screenshots(page, "error-404") == {"1280": [], "phone": []}
