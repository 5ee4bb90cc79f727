"""The journal in a browser: an order the OMS refused shows up as a failed message under the page's filters; its
detail says why; once the OMS takes orders again, the operator's Retry brings it to `succeeded`."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from tests.support.console_browser import Console, PageWatch, new_order_number, reload_until

CREATE = "magento.sales.order_management.create"


async def test_a_failed_message_found_in_the_journal_is_retried_until_it_shows_succeeded(
    operator: Page, console: Console, watch: PageWatch
) -> None:
    number = new_order_number()
    console.oms.refuse_orders.add(number)
    await console.post_order(number)

    await operator.goto("/admin/journal")
    filters = operator.get_by_role("form", name="Filters")
    await filters.get_by_label("Status").select_option("failed")
    await filters.get_by_label("Reference").fill(number)
    await filters.get_by_role("button", name="Filter").click()
    await expect(operator).to_have_url(re.compile(rf"status=failed.*reference={number}"))
    row = operator.get_by_role("row").filter(has_text=CREATE).filter(has_text=number)
    await reload_until(operator, row, f"the failed create of order {number}")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("failed")

    await row.get_by_role("link").first.click()
    await expect(operator).to_have_url(re.compile(r"/admin/journal/\d+$"))
    heading = operator.get_by_role("heading", level=1)
    await expect(heading).to_contain_text("failed")
    await expect(operator.locator("#last-error")).to_contain_text("order refused by the stub OMS")

    console.oms.refuse_orders.discard(number)  # the OMS takes the order now
    await operator.get_by_role("button", name="Retry now").click()
    message_id = operator.url.rsplit("/", 1)[1]
    assert len(watch.dialogs) == 1 and f"message {message_id}" in watch.dialogs[0]  # asked first, accepted
    await expect(operator.get_by_role("status")).to_contain_text("retried")
    await reload_until(operator, heading.filter(has_text="succeeded"), f"the retried create of order {number}")
    await expect(operator.get_by_role("button", name="Retry now")).to_be_disabled()
    assert console.oms.refusals.count(number) == 1  # refused once; the retry was accepted
    accepted = [call for call in console.oms.calls_of(CREATE) if call.params["order"]["id"] == number]
    assert len(accepted) == 1
