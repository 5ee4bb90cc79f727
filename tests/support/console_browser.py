"""What the browser tests of the console (tests/browser/) share: the running service they drive, a watch on every
page (JavaScript errors, server errors, requests that leave 127.0.0.1), signing in through the form, and the
screenshots kept as test artifacts."""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from playwright.async_api import ConsoleMessage, Dialog, Error, Locator, Page, Request, Response, Route, expect

from app.db import DatabaseUrl
from tests.support.orders import commerce_order, order_body
from tests.support.processes import ConnectorProcess, new_call
from tests.support.signing import COMMERCE_TOKEN, OPERATOR_TOKEN, operator_headers
from tests.support.steerable_oms import SteerableOms

ARTIFACTS = Path(__file__).resolve().parents[1] / "browser" / "artifacts"
WIDE = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
LOOPBACK = "127.0.0.1"
_order_numbers = itertools.count(random.randrange(100, 900) * 1_000_000)


def new_order_number() -> str:
    """An order number no other test of the session uses (one `serve` and one database serve them all)."""
    return str(next(_order_numbers) + 1)


@dataclass
class Console:
    """The `serve` process the browser drives, its stub OMS and its database."""

    service: ConnectorProcess
    oms: SteerableOms
    database_url: DatabaseUrl
    products: int

    @property
    def base_url(self) -> str:
        return self.service.base_url

    def api(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=15)

    async def post_order(self, number: str, **overrides: Any) -> dict[str, Any]:
        """The store exports an order (POST /orders); answers the connector's JSON."""
        async with self.api() as http:
            answer = await http.post(
                "/orders",
                content=order_body(commerce_order(increment_id=number, **overrides)),
                headers={"Authorization": f"Bearer {COMMERCE_TOKEN}", "Content-Type": "application/json"},
            )
        assert answer.status_code in (200, 202), answer.text
        result: dict[str, Any] = answer.json()
        return result

    async def oms_calls(self, method: str, params: dict[str, Any]) -> httpx.Response:
        """The OMS calls the connector's webhook (signed with the connector's secret)."""
        _call_id, body, headers = new_call(method, params)
        async with self.api() as http:
            return await http.post("/oms/rpc", content=body, headers=headers)

    async def operator_get(self, path: str, **params: Any) -> Any:
        """GET on the JSON API with the operator token (what a page should agree with)."""
        async with self.api() as http:
            answer = await http.get(path, params=params, headers=operator_headers())
        assert answer.status_code == 200, answer.text
        return answer.json()


@dataclass
class PageWatch:
    """What went wrong on a test's pages: JavaScript errors, 5xx answers, requests to another host (blocked). It
    also accepts every confirmation a page asks for (forms with data-confirm), keeping the questions."""

    errors: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    off_box: list[str] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)  # the confirmations asked (data-confirm), all accepted
    expected_statuses: set[int] = field(default_factory=set)

    def expect_status(self, status: int) -> None:
        """A test that provokes an error page: Chromium logs "Failed to load resource … status of <status>"."""
        self.expected_statuses.add(status)

    async def route(self, route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname == LOOPBACK:
            self.requested.append(url)
            await route.continue_()
        else:
            self.off_box.append(url)
            await route.abort("blockedbyclient")

    def attach(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", self._page_error)
        page.on("response", self._response)
        page.on("requestfailed", self._failed)
        page.on("dialog", self._confirm)

    async def _confirm(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        await dialog.accept()

    def _console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        text = message.text
        expected = any(f"status of {status} " in text for status in self.expected_statuses)
        if not expected:
            self.errors.append(f"console error at {message.location.get('url', '?')}: {text}")

    def _page_error(self, error: Error) -> None:
        self.errors.append(f"uncaught JavaScript error: {error.message}")

    def _response(self, response: Response) -> None:
        if response.status >= 500:
            self.server_errors.append(f"{response.status} {response.request.method} {response.url}")

    def _failed(self, request: Request) -> None:
        if urlsplit(request.url).hostname == LOOPBACK and request.failure != "net::ERR_ABORTED":
            self.errors.append(f"request failed: {request.method} {request.url}: {request.failure}")

    def problems(self) -> list[str]:
        return [
            *self.errors,
            *(f"server error: {line}" for line in self.server_errors),
            *(f"requested from another host (blocked): {url}" for url in self.off_box),
        ]


async def sign_in(page: Page, token: str = OPERATOR_TOKEN, next_path: str = "/admin") -> None:
    """Sign in through the form, as an operator does; lands on ``next_path``."""
    await page.goto(f"/admin/login?next={quote(next_path, safe='')}")
    await page.get_by_label("Token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("status")).to_contain_text("Signed in")
    await expect(page).to_have_url(re.compile(re.escape(next_path) + r"(\?.*)?$"))


# Elements reaching past the right edge of the viewport (a table's cells inside its scrolling .table-wrap excepted).
# An element past the right edge, unless it sits in a box that scrolls sideways by design (a table, a chart, the
# phone's navigation row): those scroll inside themselves and the page does not.
_OVERFLOWING = """() => {
  const edge = document.documentElement.clientWidth + 0.5;
  const scrolls = (element) => {
    for (let e = element; e && e !== document.body; e = e.parentElement) {
      const overflow = getComputedStyle(e).overflowX;
      if (overflow === "auto" || overflow === "scroll" || e.tagName.toLowerCase() === "svg") return true;
    }
    return false;
  };
  return [...document.querySelectorAll("body *")]
    .filter((e) => e.getBoundingClientRect().right > edge)
    .filter((e) => !scrolls(e.parentElement))
    .slice(0, 5)
    .map((e) => `<${e.tagName.toLowerCase()} class="${e.getAttribute("class") || ""}">`
      + ` to ${Math.round(e.getBoundingClientRect().right)} px`);
}"""


async def screenshots(page: Page, name: str) -> dict[str, list[str]]:
    """Full-page screenshots of the current page at 1280 px and at a phone's 390 px (then back to 1280 px); answers,
    per width, the elements that stick out past the right edge (the page then scrolls sideways: none expected)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    overflowing: dict[str, list[str]] = {}
    for label, size in (("1280", WIDE), ("phone", PHONE)):
        await page.set_viewport_size(size)
        await page.screenshot(path=str(ARTIFACTS / f"{name}-{label}.png"), full_page=True)
        overflowing[label] = await page.evaluate(_OVERFLOWING)
    await page.set_viewport_size(WIDE)
    return overflowing


async def reload_until(page: Page, locator: Locator, what: str, timeout_s: float = 20.0) -> None:
    """Reload ``page`` until ``locator`` shows (the workers behind the page move at their own pace)."""
    deadline = time.monotonic() + timeout_s
    while not await locator.count() or not await locator.first.is_visible():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not shown on {page.url} after {timeout_s:g} s")
        await asyncio.sleep(0.25)
        await page.reload()


async def column(table: Locator, header: str) -> int:
    """The index of the column headed ``header`` in ``table`` (cells are then found by index in a row)."""
    headers = [text.strip() for text in await table.locator("thead th").all_inner_texts()]
    assert header in headers, f"no column {header!r} in {headers}"
    return headers.index(header)


def hourly_buckets(report: dict[str, object]) -> int:
    """The hours of a report's range, those without a message too (`since` is aligned to the hour)."""
    since = datetime.fromisoformat(str(report["since"]))
    until = datetime.fromisoformat(str(report["until"]))
    count, moment = 0, since
    while moment < until:
        count, moment = count + 1, moment + timedelta(hours=1)
    return count
