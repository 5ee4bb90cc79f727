"""app/metrics.py without a database: each runtime's registry is its own, outbound calls are counted by peer and
outcome (the Adobe Commerce client here; the OMS client in tests/integration/test_metrics.py), and only a peer's
answer is an outcome."""

from __future__ import annotations

import httpx
import pytest
import respx
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr, ValidationError

from app.clients.commerce import CommerceClient
from app.errors import PeerRejected, PeerUnavailable
from app.metrics import Metrics
from app.settings import Settings

BASE_URL = "http://127.0.0.1:9/rest/all/V1"


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    found = [
        sample.value
        for family in text_string_to_metric_families(metrics.render(None).decode())
        for sample in family.samples
        if sample.name == name and sample.labels == labels
    ]
    return found[0] if found else None


def test_two_runtimes_count_apart_and_their_registries_accept_the_same_names():
    first, second = Metrics(), Metrics()  # the global registry would refuse the second set of names
    first.token_fetched(ok=False)
    assert value(first, "oms_connector_oauth_token_fetch_failures_total") == 1
    assert value(second, "oms_connector_oauth_token_fetch_failures_total") == 0


async def test_adobe_commerce_calls_are_counted_by_outcome_with_their_duration():
    router = respx.Router(assert_all_called=False)
    router.get(f"{BASE_URL}/orders/1").mock(return_value=httpx.Response(200, json={"entity_id": 1}))
    router.get(f"{BASE_URL}/orders/2").mock(return_value=httpx.Response(503, text="maintenance"))
    router.get(f"{BASE_URL}/orders/3").mock(return_value=httpx.Response(200, text="<html>not JSON</html>"))
    router.get(f"{BASE_URL}/orders/4").mock(return_value=httpx.Response(404, json={"message": "no such order"}))
    metrics = Metrics()
    client = CommerceClient(
        base_url=BASE_URL,
        token=SecretStr("integration-token"),
        transport=httpx.MockTransport(router.async_handler),
        metrics=metrics,
    )
    await client.get_order("1")
    for entity_id in ("2", "3"):
        with pytest.raises(PeerUnavailable):
            await client.get_order(entity_id)
    with pytest.raises(PeerRejected):
        await client.get_order("4")
    await client.aclose()

    for outcome, count in (("ok", 1), ("unavailable", 2), ("rejected", 1)):
        labels = {"peer": "commerce", "outcome": outcome}
        assert value(metrics, "oms_connector_peer_calls_total", **labels) == count, outcome
        assert value(metrics, "oms_connector_peer_call_duration_seconds_count", **labels) == count, outcome
    assert value(metrics, "oms_connector_peer_calls_total", peer="oms", outcome="ok") is None


def test_an_error_that_is_not_a_peers_answer_is_not_counted_as_a_call():
    metrics = Metrics()
    with pytest.raises(RuntimeError), metrics.peer_call("oms"):
        raise RuntimeError("a bug, or a cancelled task: not something the peer said")
    assert value(metrics, "oms_connector_peer_calls_total", peer="oms", outcome="ok") is None
    assert value(metrics, "oms_connector_peer_calls_total", peer="oms", outcome="unavailable") is None


def test_a_metrics_token_shorter_than_16_characters_is_refused_and_a_blank_one_is_unset():
    with pytest.raises(ValidationError, match="metrics_token"):
        Settings(_env_file=None, metrics_token="too-short")  # type: ignore[call-arg]
    assert Settings(_env_file=None, metrics_token="  ").metrics_token is None  # type: ignore[call-arg]
    configured = Settings(_env_file=None, metrics_token="m" * 16)  # type: ignore[call-arg]
    assert configured.metrics_token is not None and configured.metrics_token.get_secret_value() == "m" * 16
