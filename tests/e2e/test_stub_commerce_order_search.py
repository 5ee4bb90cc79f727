"""The stub Adobe Commerce's order search (``GET /orders?searchCriteria…``) over loopback, as Magento answers it:
the order pull's tests mean something only if it does. Filter groups AND-ed of filters OR-ed, sort orders, numbered
pages (a page past the last answers the last one), total_count, and searchCriteria required."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.pulled_orders import at, store_order
from tests.support.stub_commerce import StubCommerce


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with StubCommerce() as stub:
        for entity_id, seconds in [(1, 0), (2, 5), (3, 5), (4, 9), (5, 9), (6, 20)]:
            stub.put_order(
                store_order(entity_id, updated_at=at(seconds), status="holded" if entity_id == 4 else "pending")
            )
        headers = {"Authorization": f"Bearer {stub.token}"}
        with httpx.Client(base_url=stub.base_url, headers=headers, timeout=10) as client:
            yield client


def search(http: httpx.Client, **params: str | int) -> tuple[list[int], int]:
    query = {f"searchCriteria{key}": value for key, value in params.items()}
    answer = http.get("/orders", params=query)
    assert answer.status_code == 200, answer.text
    return [order["entity_id"] for order in answer.json()["items"]], answer.json()["total_count"]


SORTED = {
    "[sortOrders][0][field]": "updated_at",
    "[sortOrders][0][direction]": "ASC",
    "[sortOrders][1][field]": "entity_id",
    "[sortOrders][1][direction]": "ASC",
}


def test_filters_in_a_group_are_ored_and_groups_are_anded(http):
    found = search(
        http,
        **{
            "[filter_groups][0][filters][0][field]": "updated_at",
            "[filter_groups][0][filters][0][value]": at(5),
            "[filter_groups][0][filters][0][condition_type]": "gteq",
            "[filter_groups][1][filters][0][field]": "updated_at",
            "[filter_groups][1][filters][0][value]": at(5),
            "[filter_groups][1][filters][0][condition_type]": "gt",
            "[filter_groups][1][filters][1][field]": "entity_id",
            "[filter_groups][1][filters][1][value]": "2",
            "[filter_groups][1][filters][1][condition_type]": "gt",
        },
        **SORTED,
    )
    assert found == ([3, 4, 5, 6], 4)  # after (at(5), #2) in (updated_at, entity_id) order


def test_entity_ids_compare_as_numbers_and_in_takes_a_list(http):
    assert search(
        http,
        **{
            "[filter_groups][0][filters][0][field]": "entity_id",
            "[filter_groups][0][filters][0][value]": "10",
            "[filter_groups][0][filters][0][condition_type]": "lt",
            "[filter_groups][1][filters][0][field]": "status",
            "[filter_groups][1][filters][0][value]": "holded,canceled",
            "[filter_groups][1][filters][0][condition_type]": "in",
        },
    ) == ([4], 1)


def test_sort_orders_apply_in_turn_and_descending(http):
    descending = {key: "DESC" if key.endswith("[direction]") else value for key, value in SORTED.items()}
    assert search(http, **descending, **{"[pageSize]": 3, "[currentPage]": 1}) == ([6, 5, 4], 6)


def test_pages_are_numbered_from_1_and_a_page_past_the_last_answers_the_last(http):
    pages = [search(http, **SORTED, **{"[pageSize]": 4, "[currentPage]": page})[0] for page in (1, 2, 3)]
    assert pages == [[1, 2, 3, 4], [5, 6], [5, 6]]


def test_search_criteria_are_required(http):
    answer = http.get("/orders")
    assert answer.status_code == 400
    assert answer.json()["parameters"] == {"fieldName": "searchCriteria"}
