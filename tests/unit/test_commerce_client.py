"""CommerceClient against a respx router behind httpx.MockTransport: the bearer token, the routes the connector
uses, what counts as success, and how Adobe Commerce's failures are classified and worded (PeerUnavailable is
retried, PeerRejected is not). Nothing goes on the network."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr

from app.clients.commerce import CommerceClient, magento_error_text, render_magento_message
from app.clients.http_answers import MAX_ERROR_TEXT
from app.errors import PeerRejected, PeerUnavailable

BASE_URL = "http://127.0.0.1:9/rest/all/V1"
TOKEN = "integration-token-s3cr3t"


@pytest.fixture
def router() -> respx.Router:
    return respx.Router(assert_all_called=False)


@pytest.fixture
async def client(router: respx.Router) -> AsyncIterator[CommerceClient]:
    commerce = CommerceClient(
        base_url=BASE_URL + "/", token=SecretStr(TOKEN), transport=httpx.MockTransport(router.async_handler)
    )
    yield commerce
    await commerce.aclose()


def answer(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, json=body)


# --- rendering Magento's messages -------------------------------------------------------------------------------


def test_numbered_placeholders_are_filled_from_the_list_counting_from_one():
    assert render_magento_message("%1 of %2", ["first", "second"]) == "first of second"


def test_named_placeholders_are_filled_from_the_dict():
    rendered = render_magento_message(
        "The consumer isn't authorized to access %resources.", {"resources": "Magento_Sales::ship"}
    )
    assert rendered == "The consumer isn't authorized to access Magento_Sales::ship."


def test_placeholders_without_a_value_are_left_as_they_are():
    assert render_magento_message("%1 and %2 and %name", ["only"]) == "only and %2 and %name"
    assert render_magento_message("no value for %1", None) == "no value for %1"


def test_error_text_of_an_empty_body_says_so():
    assert magento_error_text(httpx.Response(500, content=b"")) == "(empty body)"


# --- the token and the routes -----------------------------------------------------------------------------------


async def test_every_call_carries_the_integration_token_as_a_bearer(router, client):
    route = router.get(f"{BASE_URL}/orders/7").mock(return_value=answer(200, {"entity_id": 7}))
    await client.get_order("7")
    request = route.calls.last.request
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["accept"] == "application/json"


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(httpx.Response(401, json={"message": "The consumer isn't authorized"}), id="401"),
        pytest.param(httpx.Response(500, text="<html>oops</html>"), id="500"),
        pytest.param(httpx.Response(400, json={"message": "no"}), id="400"),
    ],
)
async def test_the_token_never_appears_in_an_error_message(router, client, response):
    router.get(f"{BASE_URL}/orders/7").mock(return_value=response)
    with pytest.raises((PeerUnavailable, PeerRejected)) as caught:
        await client.get_order("7")
    assert TOKEN not in caught.value.message
    assert TOKEN not in repr(caught.value)


@pytest.mark.parametrize(
    "error", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow")], ids=["refused", "timeout"]
)
async def test_the_token_never_appears_in_a_connection_error_message(router, client, error):
    router.get(f"{BASE_URL}/orders/7").mock(side_effect=error)
    with pytest.raises(PeerUnavailable) as caught:
        await client.get_order("7")
    assert TOKEN not in caught.value.message


async def test_get_order_returns_the_order_document(router, client):
    order = {"entity_id": 7, "increment_id": "000000101", "state": "processing"}
    route = router.get(f"{BASE_URL}/orders/7").mock(return_value=answer(200, order))
    assert await client.get_order("7") == order
    assert route.call_count == 1
    assert route.calls.last.request.content == b""


async def test_get_order_answered_with_something_not_an_order_is_rejected(router, client):
    router.get(f"{BASE_URL}/orders/7").mock(return_value=answer(200, [1, 2]))
    with pytest.raises(PeerRejected, match="not an order"):
        await client.get_order("7")


async def test_documents_of_order_filter_on_order_id_and_return_the_items(router, client):
    shipments = [{"entity_id": 31, "order_id": 7}, {"entity_id": 32, "order_id": 7}]
    route = router.get(f"{BASE_URL}/shipments").mock(
        return_value=answer(200, {"items": shipments, "total_count": 2, "search_criteria": {}})
    )
    assert await client.documents_of_order("shipments", "7") == shipments
    params = route.calls.last.request.url.params
    assert params["searchCriteria[filter_groups][0][filters][0][field]"] == "order_id"
    assert params["searchCriteria[filter_groups][0][filters][0][value]"] == "7"
    assert params["searchCriteria[filter_groups][0][filters][0][condition_type]"] == "eq"
    assert int(params["searchCriteria[pageSize]"]) > 0


@pytest.mark.parametrize(
    "body", [{"items": [], "total_count": 0}, {"total_count": 0}, {"items": None}], ids=["empty", "absent", "null"]
)
async def test_documents_of_order_without_items_is_an_empty_list(router, client, body):
    router.get(f"{BASE_URL}/creditmemos").mock(return_value=answer(200, body))
    assert await client.documents_of_order("creditmemos", "7") == []


async def test_documents_of_order_skips_items_that_are_not_objects(router, client):
    router.get(f"{BASE_URL}/invoices").mock(return_value=answer(200, {"items": [{"entity_id": 5}, "junk", 3]}))
    assert await client.documents_of_order("invoices", "7") == [{"entity_id": 5}]


async def test_post_sends_the_body_as_json_and_returns_the_answer(router, client):
    route = router.post(f"{BASE_URL}/order/7/ship").mock(return_value=answer(200, "31"))
    body = {"items": [{"order_item_id": 11, "qty": 2}], "notify": False}
    assert await client.post("/order/7/ship", body) == "31"
    request = route.calls.last.request
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == body


async def test_post_without_a_body_sends_none(router, client):
    route = router.post(f"{BASE_URL}/orders/7/cancel").mock(return_value=answer(200, True))
    assert await client.post("/orders/7/cancel", None) is True
    request = route.calls.last.request
    assert request.content == b""
    assert "content-type" not in request.headers


@pytest.mark.parametrize("content", [b"", b"  \n"], ids=["empty", "blank"])
async def test_a_2xx_with_an_empty_body_is_none(router, client, content):
    router.post(f"{BASE_URL}/orders/7/comments").mock(return_value=httpx.Response(200, content=content))
    assert await client.post("/orders/7/comments", {"statusHistory": {}}) is None


async def test_a_2xx_whose_body_is_not_json_means_unavailable(router, client):
    router.get(f"{BASE_URL}/orders/7").mock(return_value=httpx.Response(200, text="<html>maintenance</html>"))
    with pytest.raises(PeerUnavailable, match="not JSON"):
        await client.get_order("7")


# --- failures that are retried ----------------------------------------------------------------------------------


async def test_a_429_is_unavailable_with_its_retry_after(router, client):
    router.post(f"{BASE_URL}/orders/7/comments").mock(
        return_value=httpx.Response(429, headers={"Retry-After": "12"}, json={"message": "Too many requests"})
    )
    with pytest.raises(PeerUnavailable) as caught:
        await client.post("/orders/7/comments", {})
    assert caught.value.retry_after_s == 12
    assert "HTTP 429" in caught.value.message
    assert "Too many requests" in caught.value.message
    assert "POST /orders/7/comments" in caught.value.message


async def test_a_503_is_unavailable_with_its_retry_after(router, client):
    router.get(f"{BASE_URL}/orders/7").mock(return_value=httpx.Response(503, headers={"Retry-After": "30"}))
    with pytest.raises(PeerUnavailable) as caught:
        await client.get_order("7")
    assert caught.value.retry_after_s == 30
    assert "HTTP 503" in caught.value.message


async def test_a_500_without_retry_after_is_unavailable_without_a_delay(router, client):
    router.get(f"{BASE_URL}/orders/7").mock(return_value=answer(500, {"message": "Internal Error."}))
    with pytest.raises(PeerUnavailable) as caught:
        await client.get_order("7")
    assert caught.value.retry_after_s is None
    assert "Internal Error." in caught.value.message


@pytest.mark.parametrize("error", [httpx.ReadTimeout, httpx.ConnectTimeout, httpx.WriteTimeout, httpx.PoolTimeout])
async def test_a_timeout_is_unavailable(router, client, error):
    router.get(f"{BASE_URL}/orders/7").mock(side_effect=error)
    with pytest.raises(PeerUnavailable) as caught:
        await client.get_order("7")
    assert caught.value.message.startswith("timeout calling Adobe Commerce (GET /orders/7)")
    assert error.__name__ in caught.value.message


@pytest.mark.parametrize("error", [httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError])
async def test_a_connection_error_is_unavailable(router, client, error):
    router.post(f"{BASE_URL}/order/7/ship").mock(side_effect=error)
    with pytest.raises(PeerUnavailable) as caught:
        await client.post("/order/7/ship", {})
    assert caught.value.message.startswith("cannot reach Adobe Commerce (POST /order/7/ship)")
    assert error.__name__ in caught.value.message


@pytest.mark.parametrize("status", [401, 403])
async def test_an_authorization_failure_is_unavailable_and_points_at_the_token(router, client, status):
    router.get(f"{BASE_URL}/orders/7").mock(
        return_value=answer(
            status,
            {"message": "The consumer isn't authorized to access %resources.", "parameters": {"resources": "X::y"}},
        )
    )
    with pytest.raises(PeerUnavailable) as caught:
        await client.get_order("7")
    assert not isinstance(caught.value, PeerRejected)
    assert f"HTTP {status}" in caught.value.message
    assert "ADOBE_COMMERCE_TOKEN" in caught.value.message
    assert "The consumer isn't authorized to access X::y." in caught.value.message


# --- failures that are not retried ------------------------------------------------------------------------------


async def test_a_400_is_rejected_with_the_rendered_message(router, client):
    router.post(f"{BASE_URL}/order/7/invoice").mock(
        return_value=answer(
            400, {"message": "The order %1 does not allow an invoice to be created.", "parameters": ["x"]}
        )
    )
    with pytest.raises(PeerRejected) as caught:
        await client.post("/order/7/invoice", {})
    assert caught.value.message == (
        "Adobe Commerce answered POST /order/7/invoice with HTTP 400: "
        "The order x does not allow an invoice to be created."
    )
    assert not caught.value.retryable


async def test_a_404_is_rejected_with_the_rendered_message(router, client):
    router.get(f"{BASE_URL}/orders/7").mock(
        return_value=answer(
            404, {"message": "The entity that was requested doesn't exist. Verify the entity and try again."}
        )
    )
    with pytest.raises(PeerRejected) as caught:
        await client.get_order("7")
    assert "HTTP 404" in caught.value.message
    assert "The entity that was requested doesn't exist." in caught.value.message


async def test_named_parameters_are_rendered_in_a_rejection(router, client):
    router.post(f"{BASE_URL}/order/7/refund").mock(
        return_value=answer(
            422, {"message": "Cannot refund %what on %order.", "parameters": {"what": "shipping", "order": "101"}}
        )
    )
    with pytest.raises(PeerRejected) as caught:
        await client.post("/order/7/refund", {})
    assert caught.value.message.endswith("HTTP 422: Cannot refund shipping on 101.")


async def test_the_fatal_error_shape_is_read(router, client):
    router.post(f"{BASE_URL}/order/7/ship").mock(
        return_value=answer(400, {"messages": {"error": [{"code": 500, "message": "boom"}]}})
    )
    with pytest.raises(PeerRejected) as caught:
        await client.post("/order/7/ship", {})
    assert caught.value.message.endswith("HTTP 400: boom")


async def test_the_fatal_error_shape_of_a_500_is_read(router, client):
    router.post(f"{BASE_URL}/order/7/ship").mock(
        return_value=answer(500, {"messages": {"error": [{"code": 500, "message": "boom"}, {"message": "bang"}]}})
    )
    with pytest.raises(PeerUnavailable) as caught:
        await client.post("/order/7/ship", {})
    assert caught.value.message.endswith("HTTP 500: boom; bang")


async def test_each_of_the_errors_list_is_rendered_after_the_message(router, client):
    router.post(f"{BASE_URL}/order/7/ship").mock(
        return_value=answer(
            400,
            {
                "message": "Validation failed.",
                "errors": [
                    {"message": "Item %1 is wrong.", "parameters": ["11"]},
                    {"message": "Field %field is required.", "parameters": {"field": "qty"}},
                    "not an object",
                ],
            },
        )
    )
    with pytest.raises(PeerRejected) as caught:
        await client.post("/order/7/ship", {})
    assert caught.value.message.endswith("HTTP 400: Validation failed.; Item 11 is wrong.; Field qty is required.")


async def test_an_html_error_page_is_shortened_to_one_line(router, client):
    page = "<html>\n<body>\n" + "<p>Service   temporarily unavailable</p>\n" * 200 + "</body></html>"
    router.get(f"{BASE_URL}/orders/7").mock(return_value=httpx.Response(404, text=page))
    with pytest.raises(PeerRejected) as caught:
        await client.get_order("7")
    said = caught.value.message.split("HTTP 404: ", 1)[1]
    assert said.startswith("<html> <body> <p>Service temporarily unavailable</p>")
    assert "\n" not in said
    assert len(said) == MAX_ERROR_TEXT + 1  # the cut text and its ellipsis
    assert said.endswith("\u2026")
    assert len(page) > 5 * MAX_ERROR_TEXT


async def test_a_json_body_without_a_known_shape_is_quoted(router, client):
    router.get(f"{BASE_URL}/orders/7").mock(return_value=answer(400, {"trace": "x"}))
    with pytest.raises(PeerRejected) as caught:
        await client.get_order("7")
    assert caught.value.message.endswith('HTTP 400: {"trace":"x"}')


async def test_a_long_json_body_without_a_known_shape_is_shortened(router, client):
    router.get(f"{BASE_URL}/orders/7").mock(return_value=answer(400, {"trace": "x" * 5000}))
    with pytest.raises(PeerRejected) as caught:
        await client.get_order("7")
    said = caught.value.message.split("HTTP 400: ", 1)[1]
    assert said.startswith('{"trace":"xxx')
    assert len(said) == MAX_ERROR_TEXT + 1
