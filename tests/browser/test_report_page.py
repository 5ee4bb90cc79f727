"""The processing-time report in a browser: its charts are inline SVG with the expected number of points — a point
per hour of the range in the volume chart, and in the p50/p95 chart one per hour in which the topic's messages
finished (none where it had none) — and its table agrees with GET /reports/processing."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.support.console_browser import Console, column, hourly_buckets, new_order_number
from tests.support.processes import wait_until

CREATE = "magento.sales.order_management.create"


async def test_the_report_charts_have_a_point_per_hour_and_one_per_hour_with_messages_of_the_topic(
    operator: Page, console: Console
) -> None:
    numbers = [new_order_number(), new_order_number()]
    for number in numbers:
        await console.post_order(number)

    async def sent() -> bool:
        views = [await console.operator_get(f"/orders/{number}") for number in numbers]
        return all(view["export_status"] == "sent" for view in views)

    await wait_until(sent, 20, "the orders never reached the stub OMS", console.service)

    await operator.goto(f"/admin/report?range=24h&direction=out&topic={CREATE}&focus={CREATE}")
    report = await console.operator_get(
        "/reports/processing", since="24h", bucket="hour", direction="out", topic=CREATE
    )
    hours = hourly_buckets(report)
    with_messages = [row for row in report["rows"] if row["processing"] and row["processing"]["count"]]
    assert 1 <= len(with_messages) <= 2  # this session's creates: this hour (and the last one, near the hour)

    await expect(operator.get_by_role("img", name="Messages finished per hour")).to_be_visible()
    await expect(operator.locator("#volume .serie-0 circle.dot")).to_have_count(hours)
    await expect(operator.locator("#processing svg")).to_have_attribute(
        "aria-label", f"Processing time p50 and p95 of {CREATE}"
    )
    for serie in ("serie-0", "serie-1"):  # p50, p95
        await expect(operator.locator(f"#processing .{serie} circle.dot")).to_have_count(len(with_messages))
        await expect(operator.locator(f"#end-to-end .{serie} circle.dot")).to_have_count(len(with_messages))

    table = operator.get_by_role("region", name="Per topic")
    row = table.get_by_role("row").filter(has_text=CREATE)
    count = row.locator("td").nth(await column(table.locator("table"), "Count"))
    await expect(count).to_have_text(f"{sum(r['count'] for r in report['rows']):,}")
