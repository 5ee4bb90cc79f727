"""The order grid in a browser: the seed's "exported and loaded" column follows an order from the store's post to
the OMS's acknowledgement."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.support.console_browser import Console, column, new_order_number, reload_until

CREATE = "magento.sales.order_management.create"
CREATED = "magento.sales.order_management.created"


async def test_an_orders_export_status_moves_from_sent_to_acknowledged_in_the_grid(
    operator: Page, console: Console
) -> None:
    number = new_order_number()
    await console.post_order(number)

    await operator.goto("/admin/orders")
    await operator.get_by_label("Order number").fill(number)
    await operator.get_by_role("button", name="Filter").click()
    table = operator.locator("main table")
    row = operator.get_by_role("row").filter(has=operator.get_by_role("link", name=number, exact=True))
    exported = row.locator("td").nth(await column(table, "Exported & loaded"))
    await reload_until(operator, row.filter(has_text="sent"), f"order {number} sent to the OMS")
    await expect(exported).to_contain_text("sent")

    create = next(call for call in console.oms.calls_of(CREATE) if call.params["order"]["id"] == number)
    acknowledged = await console.oms_calls(CREATED, {"order": create.params["order"]})
    assert acknowledged.status_code == 200, acknowledged.text
    await reload_until(operator, row.filter(has_text="acknowledged"), f"order {number} acknowledged")
    await expect(exported).to_contain_text("acknowledged")
    await expect(exported).not_to_contain_text("sent")
