"""Nothing the console or the API docs show comes from another host: every request of the browser is routed, and
one to any host but 127.0.0.1 is blocked and recorded (the `page` fixture fails any test that made one)."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.async_api import Page, expect

from tests.support.console_browser import PageWatch


async def test_the_api_docs_render_swagger_ui_with_every_request_on_127_0_0_1(page: Page, watch: PageWatch) -> None:
    await page.goto("/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("OMS Connector")
    await expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    assert watch.off_box == []
    paths = {urlsplit(url).path for url in watch.requested}
    assert "/openapi.json" in paths
    assert any(path.startswith("/docs/static/") and path.endswith(".js") for path in paths), paths
    assert any(path.startswith("/docs/static/") and path.endswith(".css") for path in paths), paths
