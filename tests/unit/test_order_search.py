"""The order pull's side of Adobe Commerce's REST API, against a respx router (nothing on the network): the
searchCriteria query of each kind of page (first page of a poll, keyset page after an order, the newest order),
how a page answer is read (items, total_count, a NUL in one order, an answer too large), and an order's place."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
import respx
from pydantic import SecretStr

from app.clients.commerce import CommerceClient
from app.errors import AnswerTooLarge, PeerRejected, PeerUnavailable
from app.protocol.order_search import OrderKey, UnplacedOrder, order_key, overlapped

BASE_URL = "http://127.0.0.1:9/rest/all/V1"
ORDERS = f"{BASE_URL}/orders"
TOKEN = "integration-token-s3cr3t"
ANY_SIZE = 1024 * 1024


@pytest.fixture
def router() -> respx.Router:
    return respx.Router(assert_all_called=False)


@pytest.fixture
async def client(router: respx.Router) -> AsyncIterator[CommerceClient]:
    commerce = CommerceClient(
        base_url=BASE_URL, token=SecretStr(TOKEN), transport=httpx.MockTransport(router.async_handler)
    )
    yield commerce
    await commerce.aclose()


def page(items: list[object], total: int | None = None) -> httpx.Response:
    return httpx.Response(200, json={"items": items, "search_criteria": {}, "total_count": total or len(items)})


def query(route: respx.Route) -> dict[str, str]:
    return dict(route.calls.last.request.url.params.multi_items())


# --- the query of each page -------------------------------------------------------------------------------------


async def test_the_first_page_of_a_poll_asks_for_the_orders_updated_at_or_after_a_time_oldest_first(router, client):
    route = router.get(ORDERS).mock(return_value=page([]))
    await client.orders_page(
        since=datetime(2026, 1, 31, 23, 59, 58, tzinfo=UTC), after=None, page_size=100, max_bytes=ANY_SIZE
    )
    assert query(route) == {
        "searchCriteria[filter_groups][0][filters][0][field]": "updated_at",
        "searchCriteria[filter_groups][0][filters][0][value]": "2026-01-31 23:59:58",
        "searchCriteria[filter_groups][0][filters][0][condition_type]": "gteq",
        "searchCriteria[sortOrders][0][field]": "updated_at",
        "searchCriteria[sortOrders][0][direction]": "ASC",
        "searchCriteria[sortOrders][1][field]": "entity_id",
        "searchCriteria[sortOrders][1][direction]": "ASC",
        "searchCriteria[pageSize]": "100",
        "searchCriteria[currentPage]": "1",
    }
    assert route.calls.last.request.headers["authorization"] == f"Bearer {TOKEN}"


async def test_a_next_page_asks_for_the_orders_after_the_last_one_read_as_a_keyset(router, client):
    route = router.get(ORDERS).mock(return_value=page([]))
    after = OrderKey(datetime(2026, 2, 1, 8, 0, 5, tzinfo=UTC), 1042)
    await client.orders_page(since=datetime(2020, 1, 1, tzinfo=UTC), after=after, page_size=84, max_bytes=ANY_SIZE)
    sent = query(route)
    # updated_at >= t AND (updated_at > t OR entity_id > id): the orders after (t, id) in (updated_at, entity_id)
    # order; `since` no longer matters; always page 1 (no numbered pages that shift when an order is saved again).
    assert {key: value for key, value in sent.items() if "filter_groups" in key} == {
        "searchCriteria[filter_groups][0][filters][0][field]": "updated_at",
        "searchCriteria[filter_groups][0][filters][0][value]": "2026-02-01 08:00:05",
        "searchCriteria[filter_groups][0][filters][0][condition_type]": "gteq",
        "searchCriteria[filter_groups][1][filters][0][field]": "updated_at",
        "searchCriteria[filter_groups][1][filters][0][value]": "2026-02-01 08:00:05",
        "searchCriteria[filter_groups][1][filters][0][condition_type]": "gt",
        "searchCriteria[filter_groups][1][filters][1][field]": "entity_id",
        "searchCriteria[filter_groups][1][filters][1][value]": "1042",
        "searchCriteria[filter_groups][1][filters][1][condition_type]": "gt",
    }
    assert sent["searchCriteria[pageSize]"] == "84" and sent["searchCriteria[currentPage]"] == "1"
    assert sent["searchCriteria[sortOrders][0][field]"] == "updated_at"
    assert sent["searchCriteria[sortOrders][1][field]"] == "entity_id"


async def test_times_in_the_query_are_utc_whole_seconds_without_a_zone(router, client):
    route = router.get(ORDERS).mock(return_value=page([]))
    berlin = timezone(timedelta(hours=2))
    await client.orders_page(
        since=datetime(2026, 6, 1, 10, 0, 7, 900_000, tzinfo=berlin), after=None, page_size=1, max_bytes=ANY_SIZE
    )
    assert query(route)["searchCriteria[filter_groups][0][filters][0][value]"] == "2026-06-01 08:00:07"


async def test_the_newest_order_is_asked_for_newest_first_one_order_without_a_filter(router, client):
    newest = {"entity_id": 9, "increment_id": "000000009", "updated_at": "2026-03-01 12:00:00"}
    route = router.get(ORDERS).mock(return_value=page([newest], total=9))
    assert await client.newest_order(max_bytes=ANY_SIZE) == newest
    sent = query(route)
    assert not any("filter_groups" in key for key in sent)
    assert sent["searchCriteria[sortOrders][0][field]"] == "updated_at"
    assert sent["searchCriteria[sortOrders][0][direction]"] == "DESC"
    assert sent["searchCriteria[sortOrders][1][field]"] == "entity_id"
    assert sent["searchCriteria[sortOrders][1][direction]"] == "DESC"
    assert sent["searchCriteria[pageSize]"] == "1"


async def test_a_store_without_orders_has_no_newest_order(router, client):
    router.get(ORDERS).mock(return_value=page([]))
    assert await client.newest_order(max_bytes=ANY_SIZE) is None


# --- reading a page ---------------------------------------------------------------------------------------------


async def test_a_page_gives_its_items_as_sent_and_the_total_count(router, client):
    items = [{"entity_id": 1, "increment_id": "1"}, "not an order"]
    answer = page(items, total=250)
    router.get(ORDERS).mock(return_value=answer)
    found = await client.orders_page(since=datetime.now(UTC), after=None, page_size=2, max_bytes=ANY_SIZE)
    assert found.items == items  # what is not an order is the pull's to refuse, one by one
    assert found.total_count == 250
    assert found.size_bytes == len(answer.content) and json.loads(answer.content)["total_count"] == 250


async def test_a_page_with_a_nul_in_one_order_is_still_read(router, client):
    body = b'{"items": [{"entity_id": 1, "customer_note": "a\\u0000b"}, {"entity_id": 2}], "total_count": 2}'
    router.get(ORDERS).mock(return_value=httpx.Response(200, content=body))
    found = await client.orders_page(since=datetime.now(UTC), after=None, page_size=2, max_bytes=ANY_SIZE)
    assert [item["entity_id"] for item in found.items] == [1, 2]


@pytest.mark.parametrize("body", [{"items": None, "total_count": 0}, {"total_count": 0}], ids=["null", "absent"])
async def test_a_page_without_items_is_empty(router, client, body):
    router.get(ORDERS).mock(return_value=httpx.Response(200, json=body))
    found = await client.orders_page(since=datetime.now(UTC), after=None, page_size=2, max_bytes=ANY_SIZE)
    assert found.items == [] and found.total_count == 0


@pytest.mark.parametrize("body", [[1, 2], {"items": "x"}, "orders"], ids=["list", "items-text", "text"])
async def test_an_answer_that_is_not_an_order_list_is_rejected(router, client, body):
    router.get(ORDERS).mock(return_value=httpx.Response(200, json=body))
    with pytest.raises(PeerRejected, match="not an order list"):
        await client.orders_page(since=datetime.now(UTC), after=None, page_size=2, max_bytes=ANY_SIZE)


async def test_an_answer_larger_than_max_bytes_is_not_read_beyond_it(router, client):
    items = [{"entity_id": i, "note": "x" * 1000} for i in range(50)]
    router.get(ORDERS).mock(return_value=page(items))
    with pytest.raises(AnswerTooLarge, match="more than 10000 bytes"):
        await client.orders_page(since=datetime.now(UTC), after=None, page_size=50, max_bytes=10_000)


async def test_a_streamed_answer_without_a_length_is_cut_at_max_bytes_too(router, client):
    async def chunks():
        for _ in range(100):
            yield b" " * 1000  # an endless-looking answer: never read whole

    router.get(ORDERS).mock(return_value=httpx.Response(200, content=chunks()))
    with pytest.raises(AnswerTooLarge):
        await client.orders_page(since=datetime.now(UTC), after=None, page_size=50, max_bytes=10_000)


async def test_an_error_answer_read_with_a_bound_keeps_its_status_and_retry_after(router, client):
    router.get(ORDERS).mock(return_value=httpx.Response(503, headers={"Retry-After": "7"}, text="<html>down</html>"))
    with pytest.raises(PeerUnavailable) as caught:
        await client.orders_page(since=datetime.now(UTC), after=None, page_size=50, max_bytes=ANY_SIZE)
    assert caught.value.retry_after_s == 7 and "HTTP 503" in caught.value.message


async def test_a_401_on_the_order_list_is_unavailable_naming_the_token_setting(router, client):
    router.get(ORDERS).mock(return_value=httpx.Response(401, json={"message": "The consumer isn't authorized"}))
    with pytest.raises(PeerUnavailable, match="ADOBE_COMMERCE_TOKEN") as caught:
        await client.orders_page(since=datetime.now(UTC), after=None, page_size=50, max_bytes=ANY_SIZE)
    assert TOKEN not in caught.value.message


async def test_a_timeout_on_the_order_list_is_unavailable(router, client):
    router.get(ORDERS).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(PeerUnavailable, match="timeout"):
        await client.orders_page(since=datetime.now(UTC), after=None, page_size=50, max_bytes=ANY_SIZE)


# --- an order's place -------------------------------------------------------------------------------------------


def test_an_orders_place_is_its_updated_at_read_as_utc_then_its_entity_id():
    key = order_key({"entity_id": "1042", "updated_at": "2026-01-31 23:59:59"})
    assert key == OrderKey(datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC), 1042)
    assert key < OrderKey(datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC), 1043)
    assert key < OrderKey(datetime(2026, 2, 1, tzinfo=UTC), 1)


@pytest.mark.parametrize(
    ("order", "field"),
    [
        ({"entity_id": 1}, "updated_at"),
        ({"entity_id": 1, "updated_at": "yesterday"}, "updated_at"),
        ({"updated_at": "2026-01-01 00:00:00"}, "entity_id"),
        ({"entity_id": -3, "updated_at": "2026-01-01 00:00:00"}, "entity_id"),
        ({"entity_id": True, "updated_at": "2026-01-01 00:00:00"}, "entity_id"),
        ([1, 2], "object"),
    ],
)
def test_an_order_without_a_readable_place_is_named_for_its_field(order, field):
    with pytest.raises(UnplacedOrder, match=field):
        order_key(order)


def test_a_poll_reads_from_the_overlap_before_its_cursor_to_the_whole_second():
    cursor = OrderKey(datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC), 7)
    assert overlapped(cursor, 10) == datetime(2025, 12, 31, 23, 59, 55, tzinfo=UTC)
    assert overlapped(cursor, 0.5) == datetime(2026, 1, 1, 0, 0, 4, tzinfo=UTC)
