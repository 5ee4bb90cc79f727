"""Orders pulled from Adobe Commerce over real sockets: a stub Adobe Commerce holding 1,000 orders (12 pages of 84),
a `serve` process that polls it every second (3 pages a poll, so a backlog takes several polls back to back) and is
restarted in the middle of the backlog, orders changing status between polls, and the store posting orders while
the pull reads them too. The stub OMS receives each exportable order exactly once, and nothing else."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import asyncpg
import httpx

from app.db import DatabaseUrl
from tests.support.processes import ConnectorProcess, Processes, free_port, wait_until
from tests.support.pulled_orders import at, number, store_order
from tests.support.signing import COMMERCE_TOKEN, operator_headers
from tests.support.stub_commerce import StubCommerce
from tests.support.stub_oms import StubOms

CREATE = "magento.sales.order_management.create"
COMMERCE = {"Authorization": f"Bearer {COMMERCE_TOKEN}", "Content-Type": "application/json"}
ORDERS = 1000
PAGE = 84  # 1,000 orders: 12 pages


def _status(entity_id: int) -> str:
    """Most orders are pending (exported); every tenth is on hold (held until released); some are processing
    (never exportable: OMS_EXPORT_STATUSES is ["pending"])."""
    if entity_id % 10 == 0:
        return "holded"
    return "processing" if entity_id % 10 == 5 else "pending"


def _env(commerce: StubCommerce, oms: StubOms) -> dict[str, str]:
    return {
        "OMS_URL": oms.rpc_url,
        "ADOBE_COMMERCE_URL": commerce.base_url,
        "ADOBE_COMMERCE_TOKEN": commerce.token,
        "ADOBE_COMMERCE_ORDER_POLL_S": "1",
        "ADOBE_COMMERCE_ORDER_PAGE_SIZE": str(PAGE),
        "ADOBE_COMMERCE_ORDER_MAX_PAGES": "3",
        "HANDLER_PLUGINS": "[]",
    }


def _created(oms: StubOms) -> Counter[str]:
    """Create calls received per order number."""
    return Counter(str(call.params["order"]["id"]) for call in oms.calls_of(CREATE))


async def _pull_state(service: ConnectorProcess) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as http:
        answer = await http.get("/integration", headers=operator_headers())
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["order_pull"])


async def test_a_store_that_never_posts_gets_every_exportable_order_exported_exactly_once_across_a_restart(
    tmp_path: Path, database_url: DatabaseUrl, raw: asyncpg.Connection
):
    with StubCommerce() as commerce, StubOms() as oms, Processes(tmp_path, database_url) as procs:
        env = _env(commerce, oms)
        first = procs.serve("serve-1", port=free_port(), **env)
        await first.wait_ready()

        async def anchored() -> bool:  # the first poll found an empty store: everything from now on is read
            return (await _pull_state(first))["cursor"] is not None

        await wait_until(anchored, 30, "the first poll never ran", first)
        documents = [store_order(n, updated_at=at(n // 4), status=_status(n)) for n in range(1, ORDERS + 1)]
        commerce.requests.clear()
        for document in documents:
            commerce.put_order(document)

        # A restart in the middle of the backlog: after the fifth page (of twelve) was answered.
        def pages_answered() -> int:
            return len(commerce.requests_to("GET", "/orders"))

        async def fifth_page() -> bool:
            return pages_answered() >= 5

        await wait_until(fifth_page, 30, "the pull never read five pages", first, interval_s=0.02)
        first.stop_cleanly()
        midway = await raw.fetchval("SELECT cursor_entity_id FROM order_pull")
        assert midway is not None and 0 < midway < ORDERS, "the restart did not happen in the middle of the backlog"

        second = procs.serve("serve-2", port=free_port(), **env)
        await second.wait_ready()
        exportable = {number(n) for n in range(1, ORDERS + 1) if _status(n) == "pending"}

        async def all_exported() -> bool:
            return set(_created(oms)) >= exportable

        await wait_until(all_exported, 60, lambda: f"{len(exportable - set(_created(oms)))} orders missing", second)
        assert pages_answered() >= 12

        # Between polls: 50 held orders are released, 20 exported ones move on, and 20 new orders are posted by
        # the store while the pull reads them too.
        released = list(range(10, 510, 10))  # 50 of the 100 on hold
        for offset, entity_id in enumerate(released):
            commerce.update_order(entity_id, updated_at=at(300 + offset // 10), status="pending")
        for entity_id in range(1, 80, 4):
            if _status(entity_id) == "pending":
                commerce.update_order(entity_id, updated_at=at(310), status="processing")
        posted = [store_order(n, updated_at=at(320)) for n in range(ORDERS + 1, ORDERS + 21)]
        async with httpx.AsyncClient(base_url=second.base_url, timeout=30) as http:
            for document in posted:
                commerce.put_order(document)
            answers = await asyncio.gather(
                *(http.post("/orders", content=json.dumps(document), headers=COMMERCE) for document in posted)
            )
        assert all(answer.status_code == 202 for answer in answers), [a.text for a in answers if a.status_code != 202]
        expected = exportable | {number(n) for n in released} | {document["increment_id"] for document in posted}

        async def caught_up() -> bool:
            return set(_created(oms)) >= expected

        await wait_until(caught_up, 30, lambda: f"{len(expected - set(_created(oms)))} orders missing", second)
        polls_before = pages_answered()

        async def another_poll() -> bool:  # it reads the overlap again: nothing more is exported
            return pages_answered() > polls_before

        await wait_until(another_poll, 15, "the pull stopped polling", second)
        second.stop_cleanly()

    created = _created(oms)
    assert set(created) == expected  # the held orders never released and the processing ones: never sent
    assert [order for order, calls in created.items() if calls != 1] == []  # each exactly once
    exports = await raw.fetchval(
        "SELECT count(*) FROM message WHERE direction = 'out' AND topic = $1 AND status = 'succeeded'", CREATE
    )
    assert exports == len(expected)
    assert await raw.fetchval("SELECT count(*) FROM sales_order") == ORDERS + len(posted)
