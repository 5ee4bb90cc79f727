"""OmsClient against a respx router behind httpx.MockTransport: what counts as success, how failures are
classified, and the OAuth client-credentials token (fetched once, renewed on expiry, refetched once after 401).
Nothing goes on the network."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr

from app.clients.oms import OmsClient, RpcCall
from app.errors import PeerRejected, PeerUnavailable

OMS_URL = "http://oms.test/api/"
TOKEN_URL = "http://auth.test/oauth/token"
METHOD = "magento.sales.order_management.create"


@pytest.fixture
def router() -> respx.Router:
    return respx.Router(assert_all_called=False)


@pytest.fixture
async def make_client(router: respx.Router) -> AsyncIterator[Callable[..., OmsClient]]:
    clients: list[OmsClient] = []

    def make(*, oauth: bool = False, **kwargs: Any) -> OmsClient:
        if oauth:
            kwargs.setdefault("oauth_token_url", TOKEN_URL)
            kwargs.setdefault("client_id", "mom")
            kwargs.setdefault("client_secret", SecretStr("mom-secret"))
        client = OmsClient(url=OMS_URL, transport=httpx.MockTransport(router.async_handler), **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def client(make_client: Callable[..., OmsClient]) -> OmsClient:
    return make_client()


@pytest.fixture
def oauth_client(make_client: Callable[..., OmsClient]) -> OmsClient:
    return make_client(oauth=True)


def ok(result: Any = None, request_id: str = "r-1") -> httpx.Response:
    return httpx.Response(200, json={"jsonrpc": "2.0", "id": request_id, "result": result})


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)


# --- what counts as success ------------------------------------------------------------------------------------


async def test_a_2xx_json_object_with_a_result_is_a_success(router, client):
    router.post(OMS_URL).mock(return_value=ok({"order": "000000042"}))
    assert await client.call(METHOD, {"order": {}}, "r-1") == {"order": "000000042"}


@pytest.mark.parametrize("result", [None, [], 0, ""], ids=["null", "empty-list", "zero", "empty-string"])
async def test_a_falsy_result_is_still_a_success(router, client, result):
    router.post(OMS_URL).mock(return_value=ok(result))
    assert await client.call(METHOD, {}, "r-1") == result


async def test_a_go_style_empty_error_string_with_a_result_is_a_success(router, client):
    router.post(OMS_URL).mock(
        return_value=httpx.Response(200, json={"jsonrpc": "2.0", "result": [{"ID": "mdc"}], "error": "", "id": "r-1"})
    )
    assert await client.call(METHOD, {}, "r-1") == [{"ID": "mdc"}]


async def test_the_request_is_a_json_rpc_2_envelope_with_the_given_id_method_and_params(router, client):
    route = router.post(OMS_URL).mock(return_value=ok())
    params = {"order": {"increment_id": "000000042", "lines": [{"sku": "MUG", "qty": "1"}]}}

    await client.call(METHOD, params, "mdc-1234")

    request = route.calls.last.request
    assert body_of(request) == {"jsonrpc": "2.0", "id": "mdc-1234", "method": METHOD, "params": params}
    assert request.headers["content-type"] == "application/json"


async def test_a_2xx_without_a_result_member_is_rejected(router, client):
    router.post(OMS_URL).mock(return_value=httpx.Response(200, json={"jsonrpc": "2.0", "id": 1}))
    with pytest.raises(PeerRejected, match="no result"):
        await client.call(METHOD, {}, "r-1")


async def test_a_2xx_whose_body_is_not_an_object_is_rejected(router, client):
    router.post(OMS_URL).mock(return_value=httpx.Response(200, json=[1, 2]))
    with pytest.raises(PeerRejected, match="not a JSON object"):
        await client.call(METHOD, {}, "r-1")


async def test_a_2xx_whose_body_is_not_json_is_rejected(router, client):
    router.post(OMS_URL).mock(return_value=httpx.Response(200, text="<html>oops</html>"))
    with pytest.raises(PeerRejected, match="not JSON"):
        await client.call(METHOD, {}, "r-1")


# --- errors the OMS answers ----------------------------------------------------------------------------------------


async def test_a_go_style_error_string_is_rejected_with_the_oms_message(router, client):
    router.post(OMS_URL).mock(
        return_value=httpx.Response(
            200, json={"jsonrpc": "2.0", "result": None, "error": "Handler not found for method foo.bar.", "id": "r"}
        )
    )
    with pytest.raises(PeerRejected) as caught:
        await client.call("foo.bar", {}, "r")
    assert "Handler not found for method foo.bar." in caught.value.message


async def test_a_json_rpc_error_object_is_rejected_with_its_code_and_message(router, client):
    router.post(OMS_URL).mock(
        return_value=httpx.Response(
            200, json={"jsonrpc": "2.0", "id": "r", "error": {"code": -32602, "message": "Invalid params: sku"}}
        )
    )
    with pytest.raises(PeerRejected) as caught:
        await client.call(METHOD, {}, "r")
    assert "-32602" in caught.value.message
    assert "Invalid params: sku" in caught.value.message


async def test_an_error_beside_a_result_still_counts_as_an_error(router, client):
    router.post(OMS_URL).mock(return_value=httpx.Response(200, json={"result": [], "error": "duplicate entry"}))
    with pytest.raises(PeerRejected, match="duplicate entry"):
        await client.call(METHOD, {}, "r")


async def test_an_empty_200_body_is_rejected(router, client):
    router.post(OMS_URL).mock(return_value=httpx.Response(200, content=b""))
    with pytest.raises(PeerRejected, match="empty body"):
        await client.call(METHOD, {}, "r")


async def test_a_404_with_a_json_string_body_is_rejected_with_the_oms_text(router, client):
    # The PHP peer JSON-encodes its error object twice: the body is a JSON *string*.
    inner = json.dumps({"code": 404, "message": "Order 000000042 not found"})
    router.post(OMS_URL).mock(return_value=httpx.Response(404, json=inner))
    with pytest.raises(PeerRejected) as caught:
        await client.call(METHOD, {}, "r")
    assert "404" in caught.value.message
    assert "Order 000000042 not found" in caught.value.message


async def test_a_400_is_rejected_not_retried(router, client):
    route = router.post(OMS_URL).mock(return_value=httpx.Response(400, text="bad params"))
    with pytest.raises(PeerRejected, match="bad params"):
        await client.call(METHOD, {}, "r")
    assert route.call_count == 1


# --- the OMS cannot be reached -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_5xx_means_the_oms_is_unavailable(router, client, status):
    router.post(OMS_URL).mock(return_value=httpx.Response(status, text="<h1>Server Error</h1>"))
    with pytest.raises(PeerUnavailable) as caught:
        await client.call(METHOD, {}, "r")
    assert f"HTTP {status}" in caught.value.message
    assert caught.value.retry_after_s is None
    assert client.last_error == caught.value.message


@pytest.mark.parametrize("error", [httpx.ReadTimeout, httpx.ConnectTimeout, httpx.ConnectError])
async def test_a_timeout_or_connection_error_means_the_oms_is_unavailable(router, client, error):
    router.post(OMS_URL).mock(side_effect=error)
    with pytest.raises(PeerUnavailable) as caught:
        await client.call(METHOD, {}, "r")
    assert error.__name__ in caught.value.message


async def test_a_429_carries_retry_after_in_seconds(router, client):
    router.post(OMS_URL).mock(return_value=httpx.Response(429, headers={"Retry-After": "7"}, text="slow down"))
    with pytest.raises(PeerUnavailable) as caught:
        await client.call(METHOD, {}, "r")
    assert caught.value.retry_after_s == 7


async def test_a_429_with_an_http_date_retry_after_is_read_as_seconds_from_now(router, client):
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=300), usegmt=True)
    router.post(OMS_URL).mock(return_value=httpx.Response(429, headers={"Retry-After": when}))
    with pytest.raises(PeerUnavailable) as caught:
        await client.call(METHOD, {}, "r")
    assert caught.value.retry_after_s is not None
    assert 200 < caught.value.retry_after_s <= 300


async def test_a_503_with_retry_after_carries_it_too(router, client):
    router.post(OMS_URL).mock(return_value=httpx.Response(503, headers={"Retry-After": "30"}))
    with pytest.raises(PeerUnavailable) as caught:
        await client.call(METHOD, {}, "r")
    assert caught.value.retry_after_s == 30


async def test_an_answer_after_a_failure_clears_last_error(router, client):
    router.post(OMS_URL).mock(side_effect=[httpx.Response(500), ok()])
    with pytest.raises(PeerUnavailable):
        await client.call(METHOD, {}, "r")
    assert client.last_error is not None
    await client.call(METHOD, {}, "r")
    assert client.last_error is None
    assert client.last_success_at is not None


# --- OAuth ------------------------------------------------------------------------------------------------------


async def test_without_an_oauth_url_no_authorization_header_is_sent(router, client):
    route = router.post(OMS_URL).mock(return_value=ok())
    await client.call(METHOD, {}, "r")
    assert "authorization" not in route.calls.last.request.headers
    assert client.token_state() == {"oauth": False}


async def test_a_php_style_201_token_without_type_or_expiry_is_used_as_a_bearer_token(router, oauth_client):
    token_route = router.post(TOKEN_URL).mock(return_value=httpx.Response(201, json={"access_token": "token"}))
    route = router.post(OMS_URL).mock(return_value=ok())

    await oauth_client.call(METHOD, {}, "r")

    assert token_route.call_count == 1
    form = dict(httpx.QueryParams(token_route.calls.last.request.content.decode()))
    assert form["grant_type"] == "client_credentials"
    assert form["client_id"] == "mom"
    assert form["client_secret"] == "mom-secret"
    assert route.calls.last.request.headers["authorization"] == "Bearer token"
    state = oauth_client.token_state()
    assert state["has_token"] is True
    assert state["error"] is None


async def test_the_token_is_fetched_once_and_reused(router, oauth_client):
    token_route = router.post(TOKEN_URL).mock(return_value=httpx.Response(201, json={"access_token": "s3cr3t-at"}))
    route = router.post(OMS_URL).mock(return_value=ok())

    for n in range(3):
        await oauth_client.call(METHOD, {}, f"r-{n}")

    assert token_route.call_count == 1
    assert route.call_count == 3
    assert all(call.request.headers["authorization"] == "Bearer s3cr3t-at" for call in route.calls)
    assert "s3cr3t-at" not in json.dumps(oauth_client.token_state())  # /integration never shows the token


async def test_a_401_fetches_one_new_token_and_retries_once(router, oauth_client):
    token_route = router.post(TOKEN_URL).mock(
        side_effect=[
            httpx.Response(201, json={"access_token": "old"}),
            httpx.Response(201, json={"access_token": "new"}),
        ]
    )
    route = router.post(OMS_URL).mock(side_effect=[httpx.Response(401), ok("done")])

    assert await oauth_client.call(METHOD, {"n": 1}, "r-1") == "done"

    assert token_route.call_count == 2
    assert route.call_count == 2
    first, second = (call.request for call in route.calls)
    assert first.headers["authorization"] == "Bearer old"
    assert second.headers["authorization"] == "Bearer new"
    assert first.content == second.content  # the same call, with the same id


async def test_a_second_401_is_not_retried_again(router, oauth_client):
    token_route = router.post(TOKEN_URL).mock(return_value=httpx.Response(201, json={"access_token": "t"}))
    route = router.post(OMS_URL).mock(return_value=httpx.Response(401))

    with pytest.raises(PeerUnavailable, match="401"):
        await oauth_client.call(METHOD, {}, "r")

    assert token_route.call_count == 2
    assert route.call_count == 2


async def test_a_401_without_oauth_is_not_retried(router, client):
    route = router.post(OMS_URL).mock(return_value=httpx.Response(401))
    with pytest.raises(PeerUnavailable, match="401"):
        await client.call(METHOD, {}, "r")
    assert route.call_count == 1


async def test_an_expired_token_is_renewed_before_the_call(router, oauth_client):
    token_route = router.post(TOKEN_URL).mock(
        side_effect=[
            httpx.Response(200, json={"access_token": "first", "token_type": "Bearer", "expires_in": 3600}),
            httpx.Response(200, json={"access_token": "second", "token_type": "Bearer", "expires_in": 3600}),
        ]
    )
    route = router.post(OMS_URL).mock(return_value=ok())
    await oauth_client.call(METHOD, {}, "r-1")
    assert route.calls.last.request.headers["authorization"] == "Bearer first"

    oauth_client._http.token["expires_at"] = int(time.time()) - 10  # type: ignore[attr-defined]
    await oauth_client.call(METHOD, {}, "r-2")

    assert token_route.call_count == 2
    assert route.call_count == 2  # renewed before the call, not after a 401
    assert route.calls.last.request.headers["authorization"] == "Bearer second"


async def test_a_token_within_the_leeway_of_its_expiry_is_renewed(router, oauth_client):
    token_route = router.post(TOKEN_URL).mock(
        side_effect=[
            httpx.Response(200, json={"access_token": "short", "token_type": "Bearer", "expires_in": 1}),
            httpx.Response(200, json={"access_token": "long", "token_type": "Bearer", "expires_in": 3600}),
        ]
    )
    route = router.post(OMS_URL).mock(return_value=ok())

    await oauth_client.call(METHOD, {}, "r-1")
    await oauth_client.call(METHOD, {}, "r-2")

    assert token_route.call_count == 2
    assert route.calls.last.request.headers["authorization"] == "Bearer long"


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(httpx.ConnectError("refused"), id="unreachable"),
        pytest.param(httpx.Response(503, text="down"), id="503"),
        pytest.param(httpx.Response(404, text="404 page not found"), id="404-go-peer"),
        pytest.param(httpx.Response(400, json={"error": "invalid_client"}), id="oauth-error"),
    ],
)
async def test_a_token_endpoint_that_does_not_give_a_token_means_unavailable(router, oauth_client, answer):
    if isinstance(answer, Exception):
        router.post(TOKEN_URL).mock(side_effect=answer)
    else:
        router.post(TOKEN_URL).mock(return_value=answer)
    route = router.post(OMS_URL).mock(return_value=ok())

    with pytest.raises(PeerUnavailable):
        await oauth_client.call(METHOD, {}, "r")

    assert route.call_count == 0
    assert oauth_client.token_state()["error"]


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(httpx.ConnectError("refused"), id="unreachable"),
        pytest.param(httpx.Response(503, text="down"), id="503"),
    ],
)
async def test_a_token_endpoint_down_when_the_token_must_be_renewed_means_unavailable(router, oauth_client, answer):
    token_route = router.post(TOKEN_URL).mock(
        return_value=httpx.Response(200, json={"access_token": "t", "token_type": "Bearer", "expires_in": 3600})
    )
    route = router.post(OMS_URL).mock(return_value=ok())
    await oauth_client.call(METHOD, {}, "r-1")
    oauth_client._http.token["expires_at"] = int(time.time()) - 10  # type: ignore[attr-defined]
    if isinstance(answer, Exception):
        token_route.mock(side_effect=answer)
    else:
        token_route.mock(return_value=answer)

    with pytest.raises(PeerUnavailable):
        await oauth_client.call(METHOD, {}, "r-2")

    assert route.call_count == 1  # the expired token was not sent
    assert oauth_client.token_state()["error"]


# --- batches ---------------------------------------------------------------------------------------------------


async def test_call_batch_posts_one_json_array_and_maps_results_and_errors_by_id(router, client):
    route = router.post(OMS_URL).mock(
        return_value=httpx.Response(
            200,
            json=[
                {"jsonrpc": "2.0", "id": "b", "result": None, "error": "Order exists"},
                {"jsonrpc": "2.0", "id": "a", "result": {"ok": 1}},
                {"jsonrpc": "2.0", "id": "d", "error": {"code": -32602, "message": "bad sku"}},
            ],
        )
    )
    calls = [
        RpcCall(id="a", method=METHOD, params={"n": 1}),
        RpcCall(id="b", method=METHOD, params={"n": 2}),
        RpcCall(id="c", method="magento.inventory.source_stock_management.update", params={"n": 3}),
        RpcCall(id="d", method=METHOD, params={"n": 4}),
    ]

    outcomes = await client.call_batch(calls)

    assert route.call_count == 1
    sent = body_of(route.calls.last.request)
    assert sent == [{"jsonrpc": "2.0", "id": c.id, "method": c.method, "params": c.params} for c in calls]
    assert outcomes["a"] == {"ok": 1}
    assert isinstance(outcomes["b"], PeerRejected)
    assert "Order exists" in outcomes["b"].message
    assert isinstance(outcomes["c"], PeerUnavailable)  # not in the answer: may be sent again with its id
    assert isinstance(outcomes["d"], PeerRejected)
    assert "bad sku" in outcomes["d"].message


async def test_a_batch_answered_with_a_5xx_raises_unavailable(router, client):
    router.post(OMS_URL).mock(return_value=httpx.Response(503))
    with pytest.raises(PeerUnavailable):
        await client.call_batch([RpcCall(id="a", method=METHOD, params={})])


async def test_a_batch_answered_with_a_single_error_object_is_rejected(router, client):
    router.post(OMS_URL).mock(
        return_value=httpx.Response(
            200, json={"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "no"}}
        )
    )
    with pytest.raises(PeerRejected, match="no"):
        await client.call_batch([RpcCall(id="a", method=METHOD, params={})])


async def test_a_batch_with_numeric_ids_in_the_answer_is_matched_as_text(router, client):
    router.post(OMS_URL).mock(return_value=httpx.Response(200, json=[{"id": 7, "result": "x"}]))
    outcomes = await client.call_batch([RpcCall(id="7", method=METHOD, params={})])
    assert outcomes == {"7": "x"}


async def test_an_encoded_batch_is_sent_as_is_and_only_the_failed_calls_come_back(router, client):
    route = router.post(OMS_URL).mock(
        return_value=httpx.Response(
            200,
            json=[
                {"jsonrpc": "2.0", "id": "a", "result": []},
                {"jsonrpc": "2.0", "id": "b", "result": None, "error": "unknown attribute"},
                {"jsonrpc": "2.0", "id": "b", "result": []},  # answered twice: the first answer counts
                {"jsonrpc": "2.0", "id": "z", "result": []},  # not ours: ignored
                {"jsonrpc": "2.0", "id": "d", "error": ""},  # the Go peer's success: no result member
                "junk",
                {"jsonrpc": "2.0", "id": "e", "result": {}, "error": ""},
            ],
        )
    )
    body = '[{"jsonrpc":"2.0","id":"a","method":"m","params":{"p":1}},{"jsonrpc":"2.0","id":"b","method":"m"}]'

    failures = await client.call_batch_encoded(body, ["a", "b", "c", "d", "e"])

    assert route.calls.last.request.content == body.encode()  # byte for byte
    assert set(failures) == {"b", "c", "d"}
    assert isinstance(failures["b"], PeerRejected) and "unknown attribute" in failures["b"].message
    assert isinstance(failures["c"], PeerUnavailable)  # not in the answer: may be sent again with its id
    assert isinstance(failures["d"], PeerRejected) and "no result" in failures["d"].message


async def test_an_encoded_batch_answered_with_a_5xx_or_a_single_object_raises(router, client):
    router.post(OMS_URL).mock(
        side_effect=[
            httpx.Response(503),
            httpx.Response(200, json={"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "no"}}),
        ]
    )
    with pytest.raises(PeerUnavailable):
        await client.call_batch_encoded("[]", ["a"])
    assert client.last_error is not None
    with pytest.raises(PeerRejected, match="no"):
        await client.call_batch_encoded("[]", ["a"])


@pytest.mark.parametrize(
    ("answer", "failed"),
    [
        ([{"id": "a", "result": []}, {"id": "b", "result": []}], set()),  # the usual answer
        ([{"id": "b", "result": []}, {"id": "a", "result": []}], set()),  # out of order: still all succeeded
        ([{"id": "a", "result": []}, {"id": "a", "result": []}], {"b"}),  # as many answers, one id twice
        ([{"id": "a", "result": []}, {"id": "b", "result": [], "error": "no"}], {"b"}),  # in order, one error
        ([{"id": "a", "result": []}, {"id": "b"}], {"b"}),  # in order, one without a result
    ],
)
async def test_an_encoded_batch_answer_in_the_usual_shape_or_not_gives_the_same_failures(
    router, client, answer: list[dict[str, Any]], failed: set[str]
):
    router.post(OMS_URL).mock(return_value=httpx.Response(200, json=answer))
    assert set(await client.call_batch_encoded("[]", ["a", "b"])) == failed
