"""A console form whose CSRF token was removed (as a forged cross-site post would lack it) is refused with 403 and
changes nothing: an action form (Disable, checked by the shared Changer dependency) and the sign-out form (checked
on its own)."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from tests.support.console_browser import Console, PageWatch

DROP_CSRF = "form => form.querySelector('input[name=csrf_token]').remove()"


async def test_disabling_the_integration_without_the_csrf_token_is_refused_and_it_stays_enabled(
    operator: Page, console: Console, watch: PageWatch
) -> None:
    watch.expect_status(403)
    assert (await console.operator_get("/integration"))["enabled"] is True
    await operator.goto("/admin")
    form = operator.locator("main form[method=post]").filter(has=operator.get_by_role("button", name="Disable"))
    await form.evaluate(DROP_CSRF)
    async with operator.expect_response(lambda r: r.request.method == "POST") as posted:
        await form.get_by_role("button", name="Disable").click()
    assert (await posted.value).status == 403
    await expect(operator.get_by_role("heading", level=1)).to_have_text("Form expired or forged")
    assert (await console.operator_get("/integration"))["enabled"] is True


async def test_signing_out_without_the_csrf_token_is_refused_and_the_session_goes_on(
    operator: Page, watch: PageWatch
) -> None:
    watch.expect_status(403)
    await operator.goto("/admin/settings")
    form = operator.locator("header form[action$='/logout']")
    await form.evaluate(DROP_CSRF)
    async with operator.expect_response(lambda r: r.request.method == "POST") as posted:
        await form.get_by_role("button", name="Sign out").click()
    assert (await posted.value).status == 403
    await expect(operator.get_by_role("heading", level=1)).to_have_text("Form expired or forged")
    await operator.goto("/admin/settings")
    await expect(operator).to_have_url(re.compile(r"/admin/settings$"))  # still signed in
