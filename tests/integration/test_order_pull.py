"""Orders pulled from Adobe Commerce (app/services/order_pull.py) on a real database, against the stub Adobe
Commerce served in-process (its ASGI app as the client's transport) or a respx router: where a pull starts, keyset
pages, the cursor surviving a restart, failures never moving it past an unread order, refused orders, what a known
order does, POST /orders and the pull racing on one order, one replica at a time, and GET /integration."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import asyncpg
import httpx
import pytest
import respx

from app.clock import FrozenClock
from app.db import DatabaseUrl
from app.errors import NotConfigured
from app.main import create_app
from app.protocol.order_search import BEGINNING
from app.runtime import Runtime
from app.services.order_feed import PULLED_ORDER_TOPIC
from app.services.order_pull import PULL_TOPIC, OrderPull
from app.workers.registry import HandlerRegistry
from tests.conftest import make_settings
from tests.support.pulled_orders import START, at, number, store_order
from tests.support.signing import COMMERCE_TOKEN, operator_headers
from tests.support.stub_commerce import StubCommerce

COMMERCE_URL = "http://commerce.test/rest/all/V1"
STUB_TOKEN = "commerce-integration-token-0123456789"  # the stub's default
COMMERCE = {"Authorization": f"Bearer {COMMERCE_TOKEN}", "Content-Type": "application/json"}


@pytest.fixture
def stub() -> StubCommerce:
    return StubCommerce()  # not started: served in-process through httpx's ASGI transport


@pytest.fixture
async def runtimes(
    database_url: DatabaseUrl,
    clock: FrozenClock,
    registry: HandlerRegistry,
    stub: StubCommerce,
    oms_transport: httpx.AsyncBaseTransport,
) -> AsyncIterator[Callable[..., Any]]:
    """Builds started runtimes (no background workers: tests poll by hand) wired to the stub; stops them all."""
    started: list[Runtime] = []

    async def start(transport: httpx.AsyncBaseTransport | None = None, **overrides: Any) -> Runtime:
        values = {
            "adobe_commerce_url": COMMERCE_URL,
            "adobe_commerce_token": STUB_TOKEN,
            "adobe_commerce_order_page_size": 10,
            "adobe_commerce_order_poll_s": 60,
            **overrides,
        }
        settings = make_settings(database_url, **values)
        runtime = Runtime.build(
            settings,
            url=database_url,
            clock=clock,
            registry=registry,
            oms_transport=oms_transport,
            commerce_transport=transport or httpx.ASGITransport(app=stub.app),
        )
        runtime.order_pull.rng = random.Random(7)
        await runtime.start(workers=False, register=False)
        started.append(runtime)
        return runtime

    yield start
    for runtime in started:
        await runtime.stop()


def stock(stub: StubCommerce, first: int, count: int, *, status: str = "pending", spacing_s: float = 1.0) -> None:
    """Orders ``first`` … ``first + count - 1`` in the stub store, updated ``spacing_s`` apart from START."""
    for entity_id in range(first, first + count):
        stub.put_order(store_order(entity_id, updated_at=at((entity_id - 1) * spacing_s), status=status))


async def exports(raw: asyncpg.Connection) -> dict[str, int]:
    """Export (create) messages per order number."""
    rows = await raw.fetch(
        "SELECT substr(lane, 7) AS number, count(*) AS n FROM message "
        "WHERE direction = 'out' AND topic = 'magento.sales.order_management.create' GROUP BY 1"
    )
    return {row["number"]: row["n"] for row in rows}


async def stored(raw: asyncpg.Connection) -> set[str]:
    return {row["increment_id"] for row in await raw.fetch("SELECT increment_id FROM sales_order")}


async def cursor(raw: asyncpg.Connection) -> tuple[datetime | None, int | None]:
    row = await raw.fetchrow("SELECT cursor_updated_at, cursor_entity_id FROM order_pull WHERE id = 1")
    return row["cursor_updated_at"], row["cursor_entity_id"]


def order_gets(stub: StubCommerce) -> list[dict[str, str]]:
    """The query of each GET /orders the stub answered, in order."""
    return [dict(parse_qsl(r.query)) for r in stub.requests if r.method == "GET" and r.path == "/orders"]


# --- where a pull starts, and its pages -------------------------------------------------------------------------


async def test_a_store_without_orders_at_the_first_poll_has_every_later_order_read(runtimes, stub, raw):
    runtime = await runtimes()
    first = await runtime.order_pull.pull_if_due()
    assert first is not None and first.error is None and first.read == 0
    assert await cursor(raw) == (BEGINNING, 0)

    stock(stub, 1, 5)
    stub.put_order(store_order(6, updated_at=at(5), status="holded"))
    runtime.clock.advance(seconds=60)
    result = await runtime.order_pull.pull_if_due()
    assert result is not None and result.error is None
    assert (result.new, result.exported, result.held) == (6, 5, 1)
    assert await exports(raw) == {number(n): 1 for n in range(1, 6)}
    assert await stored(raw) == {number(n) for n in range(1, 7)}
    assert await cursor(raw) == (START + timedelta(seconds=5), 6)


async def test_a_first_poll_starts_at_the_newest_order_and_a_backfill_reads_the_older_ones(runtimes, stub, raw):
    stock(stub, 1, 30, spacing_s=60)  # an order a minute: only the newest is within the overlap (10 s)
    runtime = await runtimes()
    result = await runtime.order_pull.pull_if_due()
    assert result is not None and (result.read, result.new) == (1, 1)
    assert await stored(raw) == {number(30)}

    backfill = await runtime.order_pull.pull(since=START)
    assert backfill.error is None and (backfill.new, backfill.unchanged) == (29, 1)
    assert await exports(raw) == {number(n): 1 for n in range(1, 31)}
    assert await cursor(raw) == (START + timedelta(minutes=29), 30)


async def test_pages_are_read_by_keyset_after_the_last_order_of_each_until_one_is_not_full(runtimes, stub, raw):
    runtime = await runtimes()
    await runtime.order_pull.pull_if_due()  # anchors at the beginning (no orders yet)
    stock(stub, 1, 25, spacing_s=0.5)  # two orders a second: the same updated_at twice, told apart by entity_id
    runtime.clock.advance(seconds=60)
    stub.requests.clear()
    result = await runtime.order_pull.pull_if_due()
    assert result is not None and (result.pages, result.read, result.new) == (3, 25, 25)
    gets = order_gets(stub)
    assert [get.get("searchCriteria[filter_groups][1][filters][1][value]") for get in gets] == [None, "10", "20"]
    assert [get["searchCriteria[filter_groups][0][filters][0][value]"] for get in gets] == [
        "1999-12-31 23:59:50",  # the cursor (the beginning) less the overlap
        at(4),  # order 10 was updated at START + 4.5 s: 4 s in whole seconds
        at(9),
    ]
    assert all(get["searchCriteria[currentPage]"] == "1" and get["searchCriteria[pageSize]"] == "10" for get in gets)
    assert len(await exports(raw)) == 25


async def test_pages_follow_the_keyset_of_a_respx_store_and_stop_at_a_page_that_is_not_full(runtimes, raw):
    router = respx.Router(assert_all_called=False)
    orders = [store_order(n, updated_at=at(n // 3)) for n in range(1, 8)]  # 7 orders, three a second
    pages = [orders[0:3], orders[3:6], orders[6:7]]
    answers = iter([{"items": p, "total_count": 7 - 3 * i} for i, p in enumerate(pages)])
    route = router.get(f"{COMMERCE_URL}/orders").mock(side_effect=lambda _r: httpx.Response(200, json=next(answers)))
    runtime = await runtimes(httpx.MockTransport(router.async_handler), adobe_commerce_order_page_size=3)
    await raw.execute(
        "UPDATE order_pull SET cursor_updated_at = $1, cursor_entity_id = 0", START - timedelta(hours=1)
    )  # a cursor before every order
    result = await runtime.order_pull.pull_if_due()
    assert result is not None and result.error is None and (result.pages, result.new) == (3, 7)
    keysets = [
        (
            q.get("searchCriteria[filter_groups][1][filters][0][value]"),
            q.get("searchCriteria[filter_groups][1][filters][1][value]"),
        )
        for q in (dict(call.request.url.params.multi_items()) for call in route.calls)
    ]
    assert keysets == [(None, None), (at(1), "3"), (at(2), "6")]


async def test_a_poll_reads_at_most_the_page_cap_and_says_there_is_more(runtimes, stub, raw):
    runtime = await runtimes(adobe_commerce_order_max_pages=2)
    await runtime.order_pull.pull_if_due()
    stock(stub, 1, 35)
    runtime.clock.advance(seconds=60)
    first = await runtime.order_pull.pull_if_due()
    assert first is not None and (first.pages, first.read, first.more) == (2, 20, True)
    second = await runtime.order_pull.pull_if_due()  # due at once: no waiting for the interval
    assert second is not None and second.more is False and second.new == 15
    assert len(await exports(raw)) == 35


# --- the cursor: restarts and failures ---------------------------------------------------------------------------


async def test_the_cursor_survives_a_restart_and_the_next_poll_goes_on_from_it(runtimes, stub, raw):
    first = await runtimes(adobe_commerce_order_max_pages=1)
    await first.order_pull.pull_if_due()
    stock(stub, 1, 30)
    first.clock.advance(seconds=60)
    await first.order_pull.pull_if_due()
    assert await cursor(raw) == (START + timedelta(seconds=9), 10)
    await first.stop()

    stub.requests.clear()
    second = await runtimes(adobe_commerce_order_max_pages=5)  # a new process on the same database
    result = await second.order_pull.pull_if_due()
    assert result is not None and (result.unchanged, result.new) == (0, 20)
    first_get = order_gets(stub)[0]  # the last poll was cut by the page cap: on from right after the cursor
    assert first_get["searchCriteria[filter_groups][1][filters][1][value]"] == "10"
    assert await exports(raw) == {number(n): 1 for n in range(1, 31)}
    assert await cursor(raw) == (START + timedelta(seconds=29), 30)

    third = await runtimes()  # caught up: the next poll reads its overlap again (left alone), and nothing new
    third.clock.advance(seconds=60)
    again = await third.order_pull.pull_if_due()
    assert again is not None and (again.unchanged, again.new) == (11, 0)  # updated at 19 s … 29 s


class Flaky(httpx.AsyncBaseTransport):
    """The stub behind a transport that fails the calls a test names (by their number, from 1)."""

    def __init__(self, stub: StubCommerce) -> None:
        self.inner = httpx.ASGITransport(app=stub.app)
        self.calls = 0
        self.fail: dict[int, Callable[[httpx.Request], httpx.Response]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if (failure := self.fail.pop(self.calls, None)) is not None:
            return failure(request)
        return await self.inner.handle_async_request(request)


def timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("the store did not answer in time", request=request)


@pytest.mark.parametrize(
    ("failure", "said"),
    [
        (lambda _r: httpx.Response(503, text="<html>maintenance</html>"), "HTTP 503"),
        (lambda _r: httpx.Response(401, json={"message": "The consumer isn't authorized"}), "ADOBE_COMMERCE_TOKEN"),
        (timeout, "timeout"),
    ],
    ids=["5xx", "401", "timeout"],
)
async def test_a_failure_is_journaled_retried_with_backoff_and_never_moves_the_cursor_past_an_unread_order(
    runtimes, stub, raw, failure, said
):
    flaky = Flaky(stub)
    runtime = await runtimes(flaky)
    await runtime.order_pull.pull_if_due()  # call 1: the anchor (no orders yet)
    stock(stub, 1, 25)
    flaky.fail[4] = failure  # the second page of the next poll (calls 1 and 2: the first poll)
    now = runtime.clock.advance(seconds=60)
    failed = await runtime.order_pull.pull_if_due()
    assert failed is not None and failed.error is not None and said in failed.error
    assert await cursor(raw) == (START + timedelta(seconds=9), 10)  # page 1 handled; page 2 never read
    entry = await raw.fetchrow(
        "SELECT status::text, attempts, last_error, next_attempt_at FROM message WHERE topic = $1", PULL_TOPIC
    )
    assert entry["status"] == "retrying" and entry["attempts"] == 1 and said in entry["last_error"]
    state = await raw.fetchrow("SELECT failures, next_poll_at, last_outcome FROM order_pull")
    assert state["failures"] == 1 and state["last_outcome"] == "failed"
    assert now + timedelta(seconds=2.5) <= state["next_poll_at"] <= now + timedelta(seconds=5)  # 5 s, jittered
    assert entry["next_attempt_at"] == state["next_poll_at"]

    assert await runtime.order_pull.pull_if_due() is None  # not before the backoff
    runtime.clock.advance(seconds=5)
    flaky.fail[flaky.calls + 1] = failure  # fails again: the same entry, one more attempt, a longer wait
    again = await runtime.order_pull.pull_if_due()
    assert again is not None and again.error is not None
    entry = await raw.fetchrow("SELECT status::text, attempts FROM message WHERE topic = $1", PULL_TOPIC)
    assert (entry["status"], entry["attempts"]) == ("retrying", 2)
    state = await raw.fetchrow("SELECT failures, next_poll_at FROM order_pull")
    assert state["failures"] == 2 and state["next_poll_at"] >= runtime.clock.now() + timedelta(seconds=5)

    runtime.clock.advance(seconds=10)
    recovered = await runtime.order_pull.pull_if_due()
    assert recovered is not None and recovered.error is None and recovered.new == 15
    assert await exports(raw) == {number(n): 1 for n in range(1, 26)}
    entry = await raw.fetchrow("SELECT status::text, attempts, result FROM message WHERE topic = $1", PULL_TOPIC)
    assert (entry["status"], entry["attempts"]) == ("succeeded", 2)  # the failure is over: its entry says so
    assert json.loads(entry["result"])["new"] == 15
    assert await raw.fetchval("SELECT failures FROM order_pull") == 0


async def test_a_failure_in_the_middle_of_a_page_leaves_the_cursor_on_the_order_before_it(runtimes, stub, raw):
    runtime = await runtimes()
    await runtime.order_pull.pull_if_due()
    stock(stub, 1, 10)
    accept = runtime.order_pull.orders.accept

    async def failing_on_the_sixth(body: bytes) -> Any:
        if json.loads(body)["entity_id"] == 6:
            raise RuntimeError("a line-attribute plugin broke")
        return await accept(body)

    runtime.order_pull.orders.accept = failing_on_the_sixth  # type: ignore[method-assign]
    runtime.clock.advance(seconds=60)
    result = await runtime.order_pull.pull_if_due()
    assert result is not None and result.error == "RuntimeError: a line-attribute plugin broke"
    assert await cursor(raw) == (START + timedelta(seconds=4), 5)

    runtime.order_pull.orders.accept = accept  # type: ignore[method-assign]
    runtime.clock.advance(seconds=60)
    await runtime.order_pull.pull_if_due()
    assert await exports(raw) == {number(n): 1 for n in range(1, 11)}


async def test_a_page_too_large_is_asked_again_in_smaller_pages(runtimes, stub, raw):
    runtime = await runtimes()
    await runtime.order_pull.pull_if_due()
    stock(stub, 1, 8)
    one_order = len(json.dumps(stub.order(1), separators=(",", ":"), ensure_ascii=False))  # as the stub sends it
    pull = OrderPull(
        runtime.db, runtime.clock, runtime.settings, runtime.orders, runtime.commerce, max_page_bytes=one_order * 3
    )
    stub.requests.clear()
    runtime.clock.advance(seconds=60)
    result = await pull.pull_if_due()
    assert result is not None and result.error is None and result.new == 8
    sizes = [get["searchCriteria[pageSize]"] for get in order_gets(stub)]
    assert sizes[:3] == ["10", "5", "2"]  # 10 and 5 orders are too large; pages of 2 from then on
    assert set(sizes[2:]) == {"2"}


# --- what each order does ----------------------------------------------------------------------------------------


async def test_a_malformed_order_is_journaled_rejected_and_neither_blocks_the_others_nor_the_cursor(
    runtimes, stub, raw
):
    runtime = await runtimes()
    await runtime.order_pull.pull_if_due()
    stock(stub, 1, 4)
    stub.put_order(store_order(2, updated_at=at(1), grand_total=999))  # its lines do not add up to it
    stub.put_order(store_order(3, updated_at=at(2) + " o'clock"))  # unreadable: no place in the pull's order
    runtime.clock.advance(seconds=60)
    result = await runtime.order_pull.pull_if_due()
    assert result is not None and result.error is None
    assert (result.new, result.rejected) == (2, 2)
    assert await exports(raw) == {number(1): 1, number(4): 1}
    assert await cursor(raw) == (START + timedelta(seconds=3), 4)
    refused = await raw.fetch(
        "SELECT status::text, refs, last_error FROM message WHERE topic = $1 ORDER BY id", PULLED_ORDER_TOPIC
    )
    assert {row["status"] for row in refused} == {"rejected"}
    reasons = {row["refs"][0]: row["last_error"] for row in refused}
    assert reasons.keys() == {number(2), number(3)}
    assert "grand_total" in reasons[number(2)] and "updated_at" in reasons[number(3)]
    assert {refused["increment_id"] for refused in result.refused} == {number(2), number(3)}

    runtime.clock.advance(seconds=60)  # the next poll reads them again (the overlap): journaled once only
    again = await runtime.order_pull.pull_if_due()
    assert again is not None and again.rejected == 2
    assert await raw.fetchval("SELECT count(*) FROM message WHERE topic = $1", PULLED_ORDER_TOPIC) == 2


async def test_an_order_with_a_nul_in_a_comment_is_refused_alone_and_journaled(runtimes, stub, raw):
    runtime = await runtimes()
    await runtime.order_pull.pull_if_due()
    stock(stub, 1, 3)
    stub.put_order(store_order(2, updated_at=at(1), customer_note="wrap it\x00please"))
    runtime.clock.advance(seconds=60)
    result = await runtime.order_pull.pull_if_due()
    assert result is not None and result.error is None and (result.new, result.rejected) == (2, 1)
    payload = await raw.fetchval("SELECT payload ->> 'customer_note' FROM message WHERE topic = $1", PULLED_ORDER_TOPIC)
    assert payload == "wrap it\ufffdplease"


async def test_an_order_the_store_posted_already_is_left_alone_by_the_pull(runtimes, client_for, stub, raw):
    runtime = await runtimes()
    await runtime.order_pull.pull_if_due()
    document = store_order(1, updated_at=at(0))
    stub.put_order(document)
    async with client_for(runtime) as http:
        posted = await http.post("/orders", content=json.dumps(document), headers=COMMERCE)
    assert posted.status_code == 202, posted.text
    before = await raw.fetchval("SELECT updated_at FROM sales_order")
    runtime.clock.advance(seconds=60)
    result = await runtime.order_pull.pull_if_due()
    assert result is not None and (result.unchanged, result.new, result.changed) == (1, 0, 0)
    assert await raw.fetchval("SELECT updated_at FROM sales_order") == before  # not even stored again
    assert await exports(raw) == {number(1): 1}


async def test_a_held_order_that_became_pending_is_exported_once(runtimes, stub, raw):
    runtime = await runtimes()
    await runtime.order_pull.pull_if_due()
    stub.put_order(store_order(1, updated_at=at(0), status="holded"))
    runtime.clock.advance(seconds=60)
    held = await runtime.order_pull.pull_if_due()
    assert held is not None and (held.new, held.held, held.exported) == (1, 1, 0)
    assert await exports(raw) == {}

    stub.update_order(1, updated_at=at(30), status="pending")
    runtime.clock.advance(seconds=60)
    released = await runtime.order_pull.pull_if_due()
    assert released is not None and (released.changed, released.exported) == (1, 1)

    stub.update_order(1, updated_at=at(31), status="processing")  # the store moves on: nothing more to export
    for _ in range(2):  # and a poll that reads it again (the overlap) does nothing either
        runtime.clock.advance(seconds=60)
        await runtime.order_pull.pull_if_due()
    assert await exports(raw) == {number(1): 1}
    assert await raw.fetchval("SELECT commerce_status FROM sales_order") == "processing"


async def test_post_and_pull_racing_on_the_same_orders_export_each_once(runtimes, client_for, stub, raw):
    runtime = await runtimes(adobe_commerce_order_page_size=50)
    await runtime.order_pull.pull_if_due()
    async with client_for(runtime) as http:
        for round_number in range(5):
            first = 1 + round_number * 20
            stock(stub, first, 20)
            posts = [
                http.post("/orders", content=json.dumps(stub.order(n)), headers=COMMERCE)
                for n in range(first, first + 20)
            ]
            answers = await asyncio.gather(runtime.order_pull.pull(), *posts)
            assert answers[0].error is None
            assert all(answer.status_code == 202 for answer in answers[1:]), [a.text for a in answers[1:]]
    assert await exports(raw) == {number(n): 1 for n in range(1, 101)}


async def test_in_sync_export_mode_the_pull_queues_its_exports_and_sends_nothing_inline(runtimes, stub, raw, oms):
    calls = oms.post("https://oms.test/api/").mock(return_value=httpx.Response(200, json={"result": []}))
    runtime = await runtimes(oms_url="https://oms.test/api/", oms_order_export_mode="sync")
    await runtime.order_pull.pull_if_due()
    stock(stub, 1, 3)
    runtime.clock.advance(seconds=60)
    result = await runtime.order_pull.pull_if_due()
    assert result is not None and result.exported == 3
    assert calls.call_count == 0  # the workers deliver them
    statuses = await raw.fetch("SELECT status::text AS status, lease_until FROM message WHERE direction = 'out'")
    assert [(row["status"], row["lease_until"]) for row in statuses] == [("queued", None)] * 3


# --- one replica at a time, and what operators see ---------------------------------------------------------------


async def test_only_one_replica_polls_at_a_time(runtimes, stub, raw):
    replicas = [await runtimes(), await runtimes()]
    await replicas[0].order_pull.pull_if_due()
    stock(stub, 1, 40)
    replicas[0].clock.advance(seconds=60)  # one clock for both
    stub.requests.clear()
    results = await asyncio.gather(*(replica.order_pull.pull_if_due() for replica in replicas))
    assert sum(result is not None for result in results) == 1
    assert len(order_gets(stub)) == 4  # one poll's pages (the last one's total_count says it is the last)
    assert len(await exports(raw)) == 40


async def test_get_integration_shows_the_cursor_and_the_last_pull_with_its_result(runtimes, client_for, stub, raw):
    runtime = await runtimes()
    await runtime.order_pull.pull_if_due()
    stock(stub, 1, 3)
    stub.put_order(store_order(4, updated_at=at(3), status="holded"))
    runtime.clock.advance(seconds=60)
    result = await runtime.order_pull.pull_if_due()
    assert result is not None
    async with client_for(runtime) as http:
        answer = await http.get("/integration", headers=operator_headers())
    assert answer.status_code == 200, answer.text
    pull = answer.json()["order_pull"]
    assert pull["enabled"] is True and pull["poll_interval_s"] == 60 and pull["page_size"] == 10
    assert pull["cursor"]["entity_id"] == 4
    assert datetime.fromisoformat(pull["cursor"]["updated_at"]) == START + timedelta(seconds=3)
    assert pull["last_outcome"] == "succeeded" and pull["last_error"] is None and pull["failures"] == 0
    assert {key: pull["last_result"][key] for key in ("read", "new", "exported", "held", "rejected")} == {
        "read": 4,
        "new": 4,
        "exported": 3,
        "held": 1,
        "rejected": 0,
    }
    assert pull["last_message_id"] == result.journal_id
    assert datetime.fromisoformat(pull["next_poll_at"]) == runtime.clock.now() + timedelta(seconds=60)


async def test_a_backfill_from_an_earlier_time_never_moves_the_cursor_back(runtimes, stub, raw):
    runtime = await runtimes()
    await runtime.order_pull.pull_if_due()
    stock(stub, 1, 5)
    runtime.clock.advance(seconds=60)
    await runtime.order_pull.pull_if_due()
    assert await cursor(raw) == (START + timedelta(seconds=4), 5)
    backfill = await runtime.order_pull.pull(since=START)
    assert backfill.error is None and backfill.unchanged == 5
    assert await cursor(raw) == (START + timedelta(seconds=4), 5)


async def test_without_adobe_commerce_the_pull_is_off_and_says_what_to_set(runtime, client):
    with pytest.raises(NotConfigured, match="ADOBE_COMMERCE_URL"):
        await runtime.order_pull.pull()
    pull = (await client.get("/integration", headers=operator_headers())).json()["order_pull"]
    assert pull["enabled"] is False and pull["cursor"] is None


@pytest.fixture
def client_for() -> Callable[[Runtime], httpx.AsyncClient]:
    def build(runtime: Runtime) -> httpx.AsyncClient:
        app = create_app(runtime, start_workers=False, register=False)
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")

    return build
