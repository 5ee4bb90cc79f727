"""The console's home in a browser: the operator registers the connector with a stub OMS from the Integration page
and sees the registration; the throughput chart has a point per hour of the last 24 hours for each direction."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.support.console_browser import Console, PageWatch, hourly_buckets

REGISTER = "magento.service_bus.remote.register"


async def test_registering_with_the_stub_oms_from_the_integration_page_shows_the_registration(
    operator: Page, console: Console, watch: PageWatch
) -> None:
    callback = f"{console.base_url}/oms/rpc"
    await operator.goto("/admin")
    facts = operator.get_by_role("region", name="OMS", exact=True)
    registered_url = facts.locator("dt", has_text="Registered URL").locator("xpath=following-sibling::dd[1]")
    version = facts.locator("dt", has_text="Registered version").locator("xpath=following-sibling::dd[1]")
    await expect(registered_url).to_have_text("—")  # nothing registered yet
    assert console.oms.registration() is None

    await facts.get_by_role("button", name="Register").click()
    assert watch.dialogs == [f"Register {callback} with the OMS now?"]  # asked first (data-confirm), accepted
    await expect(operator.get_by_role("status")).to_contain_text(f"Registered {callback}")
    registration = console.oms.registration()
    assert registration is not None and registration.params["url"] == callback
    await expect(registered_url).to_have_text(callback)
    await expect(version).to_have_text(str(registration.params["version"]))


async def test_the_throughput_chart_has_a_point_per_hour_of_the_last_24_hours_for_each_direction(
    operator: Page, console: Console
) -> None:
    await operator.goto("/admin")
    chart = operator.get_by_role("img", name="Messages finished per hour, last 24 h")
    await expect(chart).to_be_visible()
    report = await console.operator_get("/reports/processing", since="24h", bucket="hour")
    expected = hourly_buckets(report)
    assert expected in (24, 25)  # 24 h back from now, the first hour whole
    for serie in ("serie-0", "serie-1"):  # in, out
        await expect(operator.locator(f"#throughput .{serie} circle.dot")).to_have_count(expected)
    await expect(operator.locator("#throughput svg")).to_contain_text("in (from the OMS and the store)")
