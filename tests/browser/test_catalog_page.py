"""The catalog page in a browser: a full export started from the page shows its progress advancing while the page
refreshes its export card by itself (console.js, no reload), and the operator cancels it half-way."""

from __future__ import annotations

import asyncio
import time

from playwright.async_api import Locator, Page, expect

from tests.support.console_browser import Console, PageWatch


async def percent_of(bar: Locator) -> float:
    return float(await bar.get_attribute("aria-valuenow") or "nan")


async def progress_above(bar: Locator, floor: float, timeout_s: float = 12.0) -> float:
    """The progress bar's value once it is above ``floor`` (the card is replaced as it refreshes)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if await bar.count():
            value = await percent_of(bar)
            if value > floor:
                return value
        if time.monotonic() > deadline:
            raise AssertionError(f"the export's progress never went above {floor} % on the page")
        await asyncio.sleep(0.2)


async def test_a_catalog_exports_progress_advances_by_itself_on_the_page_and_the_export_is_canceled(
    operator: Page, console: Console, watch: PageWatch
) -> None:
    await operator.goto("/admin/catalog")
    card = operator.locator("#export")
    await card.get_by_role("button", name="Run now").click()
    await expect(operator.get_by_role("status").filter(has_text="started")).to_be_visible()
    await expect(card).to_have_attribute("data-refresh", "2")
    await operator.evaluate("window.sameDocument = true")  # gone if the page were reloaded

    bar = card.get_by_role("progressbar", name="products sent")
    first = await progress_above(bar, 0.0)
    second = await progress_above(bar, first)
    assert 0 < first < second < 100
    assert await operator.evaluate("window.sameDocument === true")  # the card refreshed, not the page
    await expect(card).to_contain_text("running")

    await card.get_by_role("button", name="Cancel export").click()
    await expect(operator.get_by_role("status").filter(has_text="canceled")).to_be_visible()
    export_id = (await console.operator_get("/catalog/exports/current"))["id"]
    run, cancel = watch.dialogs  # each action asked first (data-confirm), and was accepted
    assert "export the whole catalog" in run.lower() and f"Cancel export #{export_id}?" in cancel
    await expect(card).to_contain_text("canceled")
    await expect(card).not_to_have_attribute("data-refresh", "2")  # a finished export stops refreshing
    view = await console.operator_get("/catalog/exports/current")
    assert view["status"] == "canceled"
    assert 0 < view["products_sent"] < console.products
    await expect(card.get_by_role("button", name="Run now")).to_be_enabled()  # another may start
