"""Browser tests of the console (/admin): headless Chromium — the system's, launched by Playwright through its
executable path (tests/support/chromium.py) — against one real `oms-connector serve` on 127.0.0.1 shared by every
browser test, its workers running, with a steerable stub OMS on loopback (tests/support/steerable_oms.py).

Without Chromium: under CI=true every browser test fails (they are mandatory there; `.ci/run` installs Chromium);
elsewhere they are skipped, and the end of the run says loudly which ones and how to install Chromium.

Every test's page is watched (tests/support/console_browser.py): a JavaScript error (a console error or an uncaught
exception), a 5xx answer or a request to any host but 127.0.0.1 (blocked) fails the test. A failing test leaves a
screenshot in tests/browser/artifacts/failures/ and the tail of the service's log in its report.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from app.db import DatabaseUrl
from tests.conftest import create_database, drop_database
from tests.support.chromium import INSTALL_HINT, find_chromium, launch_args
from tests.support.console import READONLY_TOKEN
from tests.support.console_browser import ARTIFACTS, WIDE, Console, PageWatch, sign_in
from tests.support.processes import Processes, free_port
from tests.support.signing import SECRET
from tests.support.steerable_oms import SteerableOms

HERE = Path(__file__).parent
PRODUCTS = 600  # catalog products: 30 batches of 20, sent one by one to a slow OMS (test_catalog_page.py)
CATALOG_BATCH = 20
PRODUCT_UPDATED = "magento.catalog.product_management.updated"
PRODUCT_DELAY_S = 0.05  # the stub OMS answers a product call after this long: ~1 s a batch
TIMEOUT_MS = 10_000
_CHROMIUM, _WHERE = find_chromium()
_NOT_RUN: list[str] = []
_CONSOLE: list[Console] = []  # the service of the browser tests, for the reports of those that fail


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _is_browser_test(item: pytest.Item) -> bool:
    return HERE in Path(str(item.path)).parents


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _CHROMIUM is None:
        _NOT_RUN.extend(item.nodeid for item in items if _is_browser_test(item))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _NOT_RUN:
        return
    verdict = "FAILED (mandatory under CI=true)" if _in_ci() else "NOT RUN (skipped)"
    terminalreporter.write_sep("!", f"{len(_NOT_RUN)} BROWSER TESTS {verdict}: {_WHERE}", red=True, bold=True)
    for nodeid in _NOT_RUN:
        terminalreporter.write_line(f"  not run: {nodeid}", red=True)
    terminalreporter.write_line(f"To run them, {INSTALL_HINT}.", red=True, bold=True)
    terminalreporter.write_sep("!", red=True, bold=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    setattr(item, f"report_{report.when}", report)
    if report.failed and _CONSOLE and _is_browser_test(item):
        report.sections.append(("serve log (tail)", _CONSOLE[0].service.log()[-4000:]))
    return report


@pytest.fixture(scope="session", autouse=True)
def chromium_executable() -> str:
    """The Chromium to drive; without one the browser tests fail under CI and are skipped elsewhere."""
    if _CHROMIUM is None:
        message = f"Chromium is needed for the browser tests and was not found: {_WHERE}; {INSTALL_HINT}"
        if _in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return _CHROMIUM


@pytest.fixture(scope="package")
async def browser(chromium_executable: str) -> AsyncIterator[Browser]:
    expect.set_options(timeout=TIMEOUT_MS)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium_executable, headless=True, args=launch_args()
        )
        try:
            yield launched
        finally:
            await launched.close()


async def _fill_catalog(database_url: DatabaseUrl, products: int) -> None:
    connection = await asyncpg.connect(database_url.libpq)
    try:
        await connection.execute(
            """
            INSERT INTO catalog_product (sku, type, name, enabled, custom_attributes, created_at, updated_at)
            SELECT 'SKU-' || lpad(n::text, 5, '0'), 'simple', 'Product ' || n, true, '{}'::jsonb, now(), now()
              FROM generate_series(1, $1) AS n
            """,
            products,
        )
    finally:
        await connection.close()


@pytest.fixture(scope="package")
async def console(
    chromium_executable: str,
    pg_server: DatabaseUrl,
    template_url: DatabaseUrl,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Console]:
    """One `serve` (workers on) on 127.0.0.1 with its own database and a stub OMS, for every browser test; stopped
    once they are done (the rest of the suite does not share the machine with it)."""
    database_url = await create_database(pg_server)
    await _fill_catalog(database_url, PRODUCTS)
    oms = SteerableOms()
    oms.delays[PRODUCT_UPDATED] = PRODUCT_DELAY_S  # a slow OMS: a catalog export takes ~30 s
    oms.start()
    workdir = tmp_path_factory.mktemp("console")
    try:
        with Processes(workdir, database_url) as procs:
            port = free_port()
            service = procs.serve(
                "serve",
                port=port,
                OMS_URL=oms.rpc_url,
                OMS_OAUTH_SERVER_URL=oms.token_url,
                OMS_OAUTH_CLIENT_ID="mom",
                OMS_OAUTH_CLIENT_SECRET="mom-client-secret",
                OMS_APPLICATION_BASE_URL=f"http://127.0.0.1:{port}",
                OMS_SECRET=SECRET,
                OMS_REGISTER_AT_STARTUP="false",  # the Integration page's Register button does it (a test)
                HANDLER_PLUGINS="[]",  # the release's handlers: `created` acknowledges an order
                OPERATOR_READONLY_TOKEN=READONLY_TOKEN,
                OMS_CATALOG_BATCH_SIZE=str(CATALOG_BATCH),
                OMS_CATALOG_CONCURRENCY="1",
                OMS_AGGREGATE_WEBSITES='{"EU-WEB": ["base", "de"], "US-WEB": ["us"]}',
            )
            await service.wait_ready()
            found = Console(service=service, oms=oms, database_url=database_url, products=PRODUCTS)
            _CONSOLE.append(found)
            yield found
            _CONSOLE.clear()
    finally:
        oms.stop()
        await drop_database(pg_server, database_url)


@pytest.fixture
def watch() -> PageWatch:
    return PageWatch()


@pytest.fixture
async def page(
    browser: Browser, console: Console, watch: PageWatch, request: pytest.FixtureRequest
) -> AsyncIterator[Page]:
    """A fresh browser context (no cookie) on the service, watched; fails the test if anything went wrong on it."""
    context = await browser.new_context(viewport=WIDE, base_url=console.base_url)
    context.set_default_timeout(TIMEOUT_MS)
    await context.route("**/*", watch.route)
    opened = await context.new_page()
    watch.attach(opened)
    try:
        yield opened
        await asyncio.sleep(0.1)  # late console messages of the last page
    finally:
        call = getattr(request.node, "report_call", None)
        if call is not None and call.failed:
            failures = ARTIFACTS / "failures"
            failures.mkdir(parents=True, exist_ok=True)
            await opened.screenshot(path=str(failures / f"{request.node.name}.png"), full_page=True)
        await context.close()
    problems = watch.problems()
    assert not problems, "the pages of this test went wrong:\n" + "\n".join(problems)


@pytest.fixture
async def operator(page: Page) -> Page:
    """The page, signed in with the operator token (through the sign-in form)."""
    await sign_in(page)
    return page
