"""The watch every browser test relies on (tests/support/console_browser.py) does catch what it is there for: a
console error, an uncaught exception, a 5xx answer and a request to another host — which it blocks."""

from __future__ import annotations

from playwright.async_api import Browser

from tests.support.console_browser import WIDE, Console, PageWatch

BROKEN = """<!doctype html><title>broken</title>
<img src="http://192.0.2.1/tracker.png" alt="">
<script>console.error("a console error"); window.setTimeout(() => { throw new Error("an uncaught one"); }, 0);</script>
"""


async def test_the_page_watch_catches_errors_and_blocks_and_records_requests_to_another_host(
    browser: Browser, console: Console
) -> None:
    watch = PageWatch()
    context = await browser.new_context(viewport=WIDE, base_url=console.base_url)
    try:
        await context.route("**/*", watch.route)
        page = await context.new_page()
        watch.attach(page)
        await page.goto("/health/ready")
        await page.set_content(BROKEN)
        await page.wait_for_timeout(300)
        await page.route("**/answers-500", lambda route: route.fulfill(status=500, body="boom"))
        await page.goto("/answers-500")
    finally:
        await context.close()
    assert watch.off_box == ["http://192.0.2.1/tracker.png"]
    assert any("a console error" in error for error in watch.errors)
    assert any("an uncaught one" in error for error in watch.errors)
    assert any(url.endswith("/health/ready") for url in watch.requested)
    assert watch.server_errors == [f"500 GET {console.base_url}/answers-500"]
    problems = watch.problems()
    assert any("requested from another host (blocked): http://192.0.2.1/tracker.png" in p for p in problems)
