"""Signing in to the console in a real browser: a wrong token is refused on the form, the operator lands on the
page asked for with a session cookie the page's JavaScript cannot read, signing out ends the session, and the
read-only token sees the pages with every action disabled."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from tests.support.console import READONLY_TOKEN
from tests.support.console_browser import PageWatch, sign_in
from tests.support.signing import OPERATOR_TOKEN


async def test_a_wrong_token_is_refused_on_the_sign_in_form_and_opens_nothing(page: Page, watch: PageWatch) -> None:
    watch.expect_status(401)
    await page.goto("/admin/login")
    await page.get_by_label("Token").fill("not-the-operator-token")
    async with page.expect_response(lambda r: r.request.method == "POST") as posted:
        await page.get_by_role("button", name="Sign in").click()
    assert (await posted.value).status == 401
    await expect(page.get_by_role("alert")).to_have_text("That token opens nothing here.")
    assert not [cookie for cookie in await page.context.cookies() if cookie["name"] == "oms_console"]
    await page.goto("/admin/journal")
    await expect(page).to_have_url(re.compile(r"/admin/login\?next=%2Fadmin%2Fjournal$"))


async def test_an_operator_signs_in_to_the_page_asked_for_and_signs_out_again(page: Page) -> None:
    await page.goto("/admin/journal?status=failed")
    await expect(page).to_have_url(re.compile(r"/admin/login\?next="))
    await page.get_by_label("Token").fill(f"  {OPERATOR_TOKEN} ")  # pasted with blanks around it
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(r"/admin/journal\?status=failed$"))
    await expect(page.get_by_role("status")).to_have_text("Signed in (operator).")
    nav = page.get_by_role("navigation", name="Console")
    await expect(nav.get_by_role("link", name="Journal")).to_have_attribute("aria-current", "page")
    cookie = next(cookie for cookie in await page.context.cookies() if cookie["name"] == "oms_console")
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Strict", "/admin")
    assert await page.evaluate("document.cookie") == ""  # HttpOnly: no script of the page reads it

    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(re.compile(r"/admin/login$"))
    await expect(page.get_by_role("status")).to_have_text("Signed out.")
    await page.goto("/admin/settings")
    await expect(page).to_have_url(re.compile(r"/admin/login\?next=%2Fadmin%2Fsettings$"))


async def test_the_read_only_token_sees_the_pages_with_every_action_disabled(page: Page) -> None:
    await sign_in(page, READONLY_TOKEN)
    await expect(page.get_by_title("signed-in role")).to_have_text("readonly")
    for path in ("/admin", "/admin/journal", "/admin/orders", "/admin/catalog", "/admin/stock"):
        await page.goto(path)
        buttons = page.locator("main form[method=post] button[type=submit]")
        assert await buttons.count() > 0, f"{path} shows no action at all"
        for index in range(await buttons.count()):
            await expect(buttons.nth(index)).to_be_disabled()
