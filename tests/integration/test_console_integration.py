"""The console's home (/admin): registration, switch, signature, reachability of the OMS and Adobe Commerce, the
backlog with its blocked lanes and failed/dead links, the 24-hour throughput chart; Register, Disable, Enable."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import respx

from app import __version__
from app.clock import FrozenClock
from app.protocol.methods import REGISTER
from app.runtime import Runtime
from tests.integration.test_integration_api import insert_messages
from tests.integration.test_processing_stats import add_finished
from tests.support.charts import chart, legend, points
from tests.support.console import READONLY_TOKEN, sign_in
from tests.support.stub_commerce import StubCommerce

OMS_URL = "http://oms.test/api/"
BASE_URL = "https://connector.example"
CALLBACK_URL = f"{BASE_URL}/oms/rpc"
NOW = datetime(2026, 12, 8, 12, 3, 20, tzinfo=UTC)
CREATE = "magento.sales.order_management.create"
CREATED = "magento.sales.order_management.created"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"oms_url": OMS_URL, "oms_application_base_url": BASE_URL, "operator_readonly_token": READONLY_TOKEN}


def go_peer(request: httpx.Request) -> httpx.Response:
    document = json.loads(request.content)
    return httpx.Response(200, json={"jsonrpc": "2.0", "id": document["id"], "result": [], "error": ""})


async def home(client: httpx.AsyncClient) -> str:
    response = await client.get("/admin")
    assert response.status_code == 200, response.text
    return html.unescape(response.text).replace("<wbr>", "")  # where a long topic may wrap


async def enabled(raw: asyncpg.Connection) -> bool:
    return bool(await raw.fetchval("SELECT enabled FROM integration_state WHERE id = 1"))


def button(page: str, action: str) -> str:
    """The one-button form posting to ``action`` (its <button> tag)."""
    found = re.search(rf'<form method="post" action="{re.escape(action)}".*?(<button[^>]*>)', page, re.S)
    assert found is not None, f"no form posting to {action}"
    return found.group(1)


async def test_the_home_page_needs_a_sign_in(client: httpx.AsyncClient) -> None:
    response = await client.get("/admin")

    assert response.status_code == 303
    assert response.headers["location"].startswith("/admin/login?next=")


async def test_a_fresh_connector_shows_enabled_not_registered_signature_required_and_nothing_pending(
    client: httpx.AsyncClient,
) -> None:
    await sign_in(client)

    page = await home(client)

    assert "✓ On" in page and "integration enabled" in page
    assert "! No</div>" in page and "registered with the OMS" in page
    assert "✓ required" in page
    assert OMS_URL in page
    assert CALLBACK_URL in page
    assert "? Unknown" in page  # nothing said to the OMS yet
    assert "Not configured: ADOBE_COMMERCE_URL" in page
    assert "Nothing pending, failed or dead" in page
    assert "No lane is blocked." in page


async def test_register_sends_the_callback_url_and_the_page_shows_url_version_and_when(
    client: httpx.AsyncClient, oms: respx.Router, raw: asyncpg.Connection
) -> None:
    route = oms.post(OMS_URL).mock(side_effect=go_peer)
    csrf = await sign_in(client)

    answer = await client.post("/admin/integration/register", data={"csrf_token": csrf})

    assert answer.status_code == 303 and answer.headers["location"] == "/admin"
    [call] = [json.loads(c.request.content) for c in route.calls]
    assert call["method"] == REGISTER and call["params"]["url"] == CALLBACK_URL
    assert await raw.fetchval("SELECT registered_url FROM integration_state WHERE id = 1") == CALLBACK_URL
    page = await home(client)
    assert f"Registered {CALLBACK_URL} (version {__version__}) with the OMS." in page  # the notice
    assert '✓ Yes</div>\n    <div class="label">registered with the OMS, 0 s ago' in page
    assert f"<dd>{__version__}</dd>" in page
    assert f"{NOW:%Y-%m-%d %H:%M:%S} UTC" in page
    assert '✓ Yes</div>\n    <div class="label">OMS reachable' in page  # this process has just talked to it


async def test_a_register_the_oms_refuses_is_a_notice_and_the_error_is_shown_not_a_500(
    client: httpx.AsyncClient, oms: respx.Router, raw: asyncpg.Connection
) -> None:
    oms.post(OMS_URL).mock(return_value=httpx.Response(500, text="database on fire"))
    csrf = await sign_in(client)

    answer = await client.post("/admin/integration/register", data={"csrf_token": csrf})

    assert answer.status_code == 303
    assert await raw.fetchval("SELECT registered_at FROM integration_state WHERE id = 1") is None
    page = await home(client)
    assert "Registration failed: OMS answered HTTP 500: database on fire" in page
    assert "✕ failed" in page and '✕ No</div>\n    <div class="label">OMS reachable' in page


async def test_disable_then_enable_flip_the_switch_and_the_page_offers_the_other_button(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    csrf = await sign_in(client)
    page = await home(client)
    assert "data-confirm=" in re.search(r'<form[^>]*action="/admin/integration/disable"[^>]*>', page).group(0)

    assert (await client.post("/admin/integration/disable", data={"csrf_token": csrf})).status_code == 303
    assert await enabled(raw) is False
    page = await home(client)
    assert "✕ Off" in page and "Integration disabled" in page and "✕ disabled" in page
    assert "/admin/integration/enable" in page and "/admin/integration/disable" not in page

    assert (await client.post("/admin/integration/enable", data={"csrf_token": csrf})).status_code == 303
    assert await enabled(raw) is True
    assert "✓ On" in await home(client)


@pytest.mark.parametrize("action", ["register", "disable"])
async def test_a_read_only_session_sees_the_buttons_disabled_and_its_post_is_refused_changing_nothing(
    client: httpx.AsyncClient, oms: respx.Router, raw: asyncpg.Connection, action: str
) -> None:
    route = oms.post(OMS_URL).mock(side_effect=go_peer)
    csrf = await sign_in(client, READONLY_TOKEN)
    page = await home(client)
    assert " disabled" in button(page, f"/admin/integration/{action}")

    answer = await client.post(f"/admin/integration/{action}", data={"csrf_token": csrf})

    assert answer.status_code == 403
    assert "Read-only" in answer.text and "text/html" in answer.headers["content-type"]
    assert await enabled(raw) is True
    assert await raw.fetchval("SELECT registered_at FROM integration_state WHERE id = 1") is None
    assert not route.called


@pytest.mark.parametrize("form", [{}, {"csrf_token": "forged"}])
async def test_a_post_without_the_session_csrf_token_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, raw: asyncpg.Connection, form: dict[str, str]
) -> None:
    await sign_in(client)

    answer = await client.post("/admin/integration/disable", data=form)

    assert answer.status_code == 403
    assert "CSRF" in answer.text
    assert await enabled(raw) is True


async def test_an_oversized_post_is_refused_with_an_html_page_and_changes_nothing(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    csrf = await sign_in(client)

    answer = await client.post("/admin/integration/disable", data={"csrf_token": csrf, "pad": "x" * 70_000})

    assert answer.status_code == 413
    assert "text/html" in answer.headers["content-type"]
    assert await enabled(raw) is True


async def test_the_backlog_shows_each_topic_its_oldest_pending_and_links_failed_and_dead_to_the_journal(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    await insert_messages(raw, lanes=["order-1", "order-2"], created_at=NOW - timedelta(hours=3))
    await insert_messages(raw, lanes=["order-3"], status="failed", created_at=NOW - timedelta(hours=5))
    await insert_messages(raw, lanes=["order-4", "order-5"], status="dead", created_at=NOW - timedelta(days=3))
    [head] = await insert_messages(
        raw, lanes=["order-6"], status="retrying", attempts=4, last_error="OMS answered HTTP 503: busy",
        created_at=NOW - timedelta(minutes=40),
    )  # fmt: skip
    await sign_in(client)

    page = await home(client)

    row = re.search(rf"<tr>\s*<td[^>]*>→ out <span[^>]*>oms</span></td>\s*<td><code>{re.escape(CREATE)}</code>.*?</tr>",
                    page, re.S).group(0)  # fmt: skip
    cells = re.findall(r'<td class="num">(.*?)</td>', row, re.S)
    assert [re.sub(r"<[^>]+>", "", c).strip() for c in cells] == ["2", "0", "0", "1", "✕ 1", "☠ 2"]
    assert "3 h ago" in row  # the oldest pending (queued 3 h ago; the retrying head came 40 min ago)
    assert f'href="/admin/journal?status=dead&topic={CREATE}&direction=out"' in row
    assert f'href="/admin/journal?status=failed&topic={CREATE}&direction=out"' in row
    assert 'href="/admin/journal?status=dead"' in page  # the total, to every dead message
    blocked = page[page.index('id="blocked-heading"') :]
    assert "<code>order-6</code>" in blocked
    assert f'href="/admin/journal/{head}"' in blocked
    assert "OMS answered HTTP 503: busy" in blocked
    assert "40 min ago" in blocked


async def test_the_throughput_chart_has_a_point_per_hour_of_the_last_24_hours_for_messages_in_and_out(
    client: httpx.AsyncClient, raw: asyncpg.Connection
) -> None:
    await add_finished(
        raw,
        [{"finished": NOW - timedelta(minutes=30), "direction": "in", "topic": CREATED}] * 3
        + [{"finished": NOW - timedelta(hours=5, minutes=10), "direction": "out", "topic": CREATE}] * 2
        + [{"finished": NOW - timedelta(hours=5, minutes=20), "direction": "out", "channel": "commerce",
            "topic": "commerce.order.comment"}]
        + [{"finished": NOW - timedelta(hours=30), "direction": "in", "topic": CREATED}],  # before the range
    )  # fmt: skip
    await sign_in(client)

    svg = chart(await home(client), "throughput")

    series = points(svg)
    hours = [(NOW - timedelta(hours=24)).replace(minute=0, second=0) + timedelta(hours=n) for n in range(25)]
    assert [len(series[0]), len(series[1])] == [25, 25]  # 12:00 yesterday … 12:00 today, empty hours too
    incoming = {text.split(" · ")[1] for text in series[0] if not text.endswith(": 0")}
    outgoing = {text.split(" · ")[1] for text in series[1] if not text.endswith(": 0")}
    assert incoming == {f"{hours[23]:%H:%M}: 3"}  # 11:00 today
    assert outgoing == {f"{hours[18]:%H:%M}: 3"}  # 06:00 today: both channels added up
    assert [name.split(" (")[0] for name in legend(svg)] == ["in", "out"]


@pytest.fixture
def store() -> Iterator[StubCommerce]:
    with StubCommerce() as stub:
        yield stub


class TestAdobeCommerce:
    @pytest.fixture
    def settings_overrides(self, store: StubCommerce) -> dict[str, Any]:
        return {"adobe_commerce_url": store.base_url, "adobe_commerce_token": store.token}

    async def test_a_store_that_accepts_the_token_is_shown_reachable_after_one_bounded_search(
        self, client: httpx.AsyncClient, store: StubCommerce
    ) -> None:
        await sign_in(client)

        page = await home(client)
        await home(client)  # within the cache time: not asked again

        assert "✓ yes, token accepted" in page
        assert store.base_url in page
        [probe] = store.requests
        assert (probe.method, probe.path, probe.status) == ("GET", "/invoices", 200)

    async def test_a_store_that_refuses_the_token_is_shown_unreachable_with_its_answer(
        self, client: httpx.AsyncClient, store: StubCommerce
    ) -> None:
        given = store.token
        store.token = "the-store-now-wants-another-token-0123456789"
        await sign_in(client)

        page = await home(client)

        assert '✕ No</div>\n    <div class="label">Adobe Commerce reachable' in page
        assert "HTTP 401" in page and "check ADOBE_COMMERCE_TOKEN" in page
        assert given not in page


async def test_the_home_page_shows_no_secret(client: httpx.AsyncClient, runtime: Runtime) -> None:
    await sign_in(client)

    page = await home(client)

    for secret in (runtime.settings.oms_secret, runtime.settings.oms_secret_previous, runtime.settings.operator_token):
        assert secret is not None and secret.get_secret_value() not in page
