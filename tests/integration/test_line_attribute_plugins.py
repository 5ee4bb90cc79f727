"""The seed's LineMapper extension point: packages add custom attributes to each unit line through the entry-point
group `oms_connector.line_attributes`. The plugins are installed here as a real distribution (a dist-info with
entry_points.txt on sys.path) so discovery goes through importlib.metadata like any installed package."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.clock import FrozenClock
from app.db import DatabaseUrl
from app.main import create_app
from app.plugins import LINE_ATTRIBUTES_GROUP, load_line_attribute_plugins
from app.runtime import Runtime
from app.settings import ConfigurationError
from tests.conftest import make_settings
from tests.support.orders import commerce_order, item, order_body
from tests.support.signing import COMMERCE_TOKEN

COMMERCE = {"Authorization": f"Bearer {COMMERCE_TOKEN}", "Content-Type": "application/json"}


@pytest.fixture
def install_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Install a distribution declaring ``name = target`` entry points in the line-attributes group."""

    def install(**entries: str) -> None:
        dist = tmp_path / "merchant_extensions-1.0.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: merchant-extensions\nVersion: 1.0\n")
        lines = "\n".join(f"{name} = {target}" for name, target in entries.items())
        (dist / "entry_points.txt").write_text(f"[{LINE_ATTRIBUTES_GROUP}]\n{lines}\n")
        monkeypatch.syspath_prepend(str(tmp_path))

    return install


@pytest.fixture
async def started(
    database_url: DatabaseUrl, clock: FrozenClock
) -> AsyncIterator[Callable[[], Awaitable[httpx.AsyncClient]]]:
    runtimes: list[Runtime] = []
    clients: list[httpx.AsyncClient] = []

    async def start() -> httpx.AsyncClient:
        runtime = Runtime.build(make_settings(database_url), url=database_url, clock=clock)
        await runtime.start(workers=False, register=False)
        runtimes.append(runtime)
        app = create_app(runtime, start_workers=False, register=False)
        clients.append(httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver"))
        return clients[-1]

    yield start
    for client in clients:
        await client.aclose()
    for runtime in runtimes:
        await runtime.stop()


async def test_an_installed_plugin_adds_its_attributes_to_every_unit_line(
    install_plugins: Callable[..., None], started: Callable[[], Awaitable[httpx.AsyncClient]], raw: asyncpg.Connection
) -> None:
    install_plugins(gift_wrap="tests.support.line_attribute_plugins:gift_wrap")
    assert [name for name, _ in load_line_attribute_plugins()] == ["gift_wrap"]
    client = await started()
    mug = item(1001, "MUG-STONE-350", qty=2, extension_attributes={"gift_wrap": "yes"})
    response = await client.post("/orders", content=order_body(commerce_order(items=[mug])), headers=COMMERCE)
    assert response.status_code == 202, response.text
    payload = json.loads(await raw.fetchval("SELECT payload FROM message WHERE direction = 'out'"))
    lines = payload["order"]["lines"]
    assert [line["custom_attributes"] for line in lines if line["id"] != "SHIPPING"] == [
        [
            {"attribute_code": "gift_wrap", "value": "yes"},
            {"attribute_code": "customer_group", "value": "1"},
            {"attribute_code": "unit_of", "value": "1001"},
        ]
    ] * 2
    assert next(line for line in lines if line["id"] == "SHIPPING")["custom_attributes"] == []


@pytest.mark.parametrize("plugin", ["broken", "sloppy"])
async def test_a_failing_plugin_refuses_the_order_with_500_naming_it_and_stores_nothing(
    install_plugins: Callable[..., None],
    started: Callable[[], Awaitable[httpx.AsyncClient]],
    raw: asyncpg.Connection,
    plugin: str,
) -> None:
    install_plugins(**{f"{plugin}_plugin": f"tests.support.line_attribute_plugins:{plugin}"})
    client = await started()
    response = await client.post("/orders", content=order_body(commerce_order()), headers=COMMERCE)
    assert response.status_code == 500
    assert response.json()["error"] == "PluginFailed" and f"{plugin}_plugin" in response.json()["detail"]
    assert await raw.fetchval("SELECT count(*) FROM sales_order") == 0
    assert await raw.fetchval("SELECT count(*) FROM message") == 0


def test_a_plugin_that_cannot_be_loaded_stops_start_up_naming_it(install_plugins: Callable[..., None]) -> None:
    install_plugins(erp="tests.support.no_such_module:attributes")
    with pytest.raises(ConfigurationError, match=r"'erp'.*cannot be loaded"):
        load_line_attribute_plugins()
