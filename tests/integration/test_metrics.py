"""GET /metrics: who may read it, the text Prometheus parses, the per-process counters and histograms moving with the
right labels, bounded label values, and the cluster-wide gauges read from a real PostgreSQL (or their absence when
it cannot be read)."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from app.clock import FrozenClock
from app.db import DatabaseUrl
from app.main import create_app
from app.metrics import OTHER, UNMATCHED
from app.runtime import Runtime
from tests.conftest import make_settings
from tests.integration.test_integration_api import insert_messages
from tests.support.handlers import TEST_TOPICS
from tests.support.signing import COMMERCE_TOKEN, OPERATOR_TOKEN, operator_headers, rpc_body, signed_headers

OMS_URL = "http://oms.test/api/"
TOKEN_URL = "http://oms.test/oauth/token"
METRICS_TOKEN = "metrics-token-for-tests-0123456789"
TOPIC = TEST_TOPICS[0]
CREATE = "magento.sales.order_management.create"
AUTH = operator_headers()


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "oms_url": OMS_URL,
        "oms_oauth_server_url": TOKEN_URL,
        "oms_oauth_client_id": "connector",
        "metrics_token": METRICS_TOKEN,
    }


async def scrape(client: httpx.AsyncClient, token: str = METRICS_TOKEN) -> dict[str, Any]:
    """The families of one scrape by name, as Prometheus parses them."""
    response = await client.get("/metrics", headers=operator_headers(token))
    assert response.status_code == 200, response.text
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def samples(families: dict[str, Any], name: str) -> list[Sample]:
    return [sample for family in families.values() for sample in family.samples if sample.name == name]


def value(families: dict[str, Any], name: str, **labels: str) -> float | None:
    """The value of the one sample ``name`` with exactly ``labels`` (None when there is none)."""
    found = [sample.value for sample in samples(families, name) if sample.labels == labels]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else None


def rpc_answer(request: httpx.Request) -> httpx.Response:
    document = json.loads(request.content)
    return httpx.Response(200, json={"jsonrpc": "2.0", "id": document["id"], "result": {"ok": True}})


# --- access ------------------------------------------------------------------------------------------------------


async def test_metrics_without_a_valid_token_answer_401_in_the_usual_shape(client):
    for headers in ({}, operator_headers("not-the-token-at-all-000"), operator_headers(COMMERCE_TOKEN)):
        response = await client.get("/metrics", headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["error"] == "Unauthorized"
        assert "METRICS_TOKEN" in response.json()["detail"]
        assert response.headers["www-authenticate"] == "Bearer"


async def test_the_operator_token_and_the_metrics_token_both_read_metrics(client):
    for token in (OPERATOR_TOKEN, METRICS_TOKEN):
        response = await client.get("/metrics", headers=operator_headers(token))
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"


async def test_the_metrics_token_opens_no_other_operation_of_the_api(client):
    openapi = (await client.get("/openapi.json")).json()
    anonymous_or_signed = {"/metrics", "/oms/rpc", "/health/live", "/health/ready"}
    swept = 0
    for path, item in openapi["paths"].items():
        if path in anonymous_or_signed:
            continue
        for method in item:
            url = path.replace("{", "").replace("}", "")  # every path parameter gets its own name as value
            response = await client.request(method.upper(), url, headers=operator_headers(METRICS_TOKEN))
            assert response.status_code == 401, f"{method.upper()} {path}: {response.status_code}"
            swept += 1
    assert swept > 30  # the sweep really covers the API


# --- the text --------------------------------------------------------------------------------------------------


async def test_the_text_parses_and_every_name_follows_prometheus_conventions(client, runtime):
    await client.get("/health/live")  # at least one HTTP request counted
    families = await scrape(client)
    assert "oms_connector_database_up" in families
    for name, family in families.items():
        assert name.startswith(("oms_connector_", "process_")), name
        sample_names = {sample.name for sample in family.samples}
        if family.type == "counter":
            assert not name.endswith("_total"), name  # the family; its samples carry the suffix
            assert sample_names <= {f"{name}_total"}, (name, sample_names)
        elif family.type == "histogram":
            assert name.endswith("_seconds"), name  # every duration in seconds, the base unit
            assert sample_names <= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}, (name, sample_names)
        else:
            assert family.type == "gauge", (name, family.type)
            assert not name.endswith("_total"), name
        assert "_ms" not in name and "milliseconds" not in name, name


# --- per-process counters and histograms ------------------------------------------------------------------------


async def test_a_processed_and_a_sent_message_move_the_counters_and_histograms_with_their_labels(
    client, runtime, clock, oms
):
    oms.post(TOKEN_URL).mock(return_value=httpx.Response(200, json={"access_token": "t", "expires_in": 3600}))
    oms.post(OMS_URL).mock(side_effect=rpc_answer)
    body = rpc_body(method=TOPIC, params={"seq": 1})
    assert (await client.post("/oms/rpc", content=body, headers=signed_headers(body))).status_code == 200
    clock.advance(seconds=2)  # received two seconds before it is processed
    assert await runtime.bus.process_next_inbound() is True
    async with runtime.db.connect() as connection:
        await runtime.bus.outbox.enqueue(connection, method=CREATE, params={"n": 1}, now=clock.now())
    clock.advance(seconds=30)  # queued thirty seconds before it is sent
    assert await runtime.bus.send_next_outbound("oms") == 1

    families = await scrape(client)
    inbound = {"direction": "in", "channel": "oms", "topic": TOPIC}
    outbound = {"direction": "out", "channel": "oms", "topic": CREATE}
    assert value(families, "oms_connector_messages_total", **inbound, status="queued") == 1
    assert value(families, "oms_connector_messages_total", **inbound, status="succeeded") == 1
    assert value(families, "oms_connector_messages_total", **outbound, status="succeeded") == 1
    assert value(families, "oms_connector_messages_total", **outbound, status="queued") is None  # not inbound
    assert value(families, "oms_connector_message_attempt_duration_seconds_count", **inbound) == 1
    assert value(families, "oms_connector_message_attempt_duration_seconds_count", **outbound) == 1
    assert value(families, "oms_connector_message_end_to_end_duration_seconds_count", **inbound) == 1
    assert value(families, "oms_connector_message_end_to_end_duration_seconds_sum", **inbound) == 2.0
    assert value(families, "oms_connector_message_end_to_end_duration_seconds_sum", **outbound) == 30.0
    assert value(families, "oms_connector_message_end_to_end_duration_seconds_bucket", **outbound, le="15.0") == 0
    assert value(families, "oms_connector_message_end_to_end_duration_seconds_bucket", **outbound, le="60.0") == 1
    assert value(families, "oms_connector_peer_calls_total", peer="oms", outcome="ok") == 1
    assert value(families, "oms_connector_peer_call_duration_seconds_count", peer="oms", outcome="ok") == 1
    assert value(families, "oms_connector_oauth_token_fetches_total") == 1
    assert value(families, "oms_connector_oauth_token_fetch_failures_total") == 0
    rpc = {"method": "POST", "route": "/oms/rpc"}
    assert value(families, "oms_connector_http_requests_total", **rpc, status="200") == 1
    assert value(families, "oms_connector_http_request_duration_seconds_count", **rpc) == 1


async def test_failed_retried_and_refused_outcomes_are_counted_under_their_status_and_outcome(
    client, runtime, clock, oms
):
    oms.post(TOKEN_URL).mock(side_effect=[httpx.Response(500), httpx.Response(200, json={"access_token": "t"})])
    oms.post(OMS_URL).mock(
        side_effect=[
            httpx.Response(503, text="busy"),
            httpx.Response(200, json={"jsonrpc": "2.0", "id": "x", "error": {"code": -32602, "message": "no"}}),
        ]
    )
    for params in ({"fail": "permanent"}, {"fail_attempts": 5}):
        body = rpc_body(method=TOPIC, params=params)
        assert (await client.post("/oms/rpc", content=body, headers=signed_headers(body))).status_code == 200
        assert await runtime.bus.process_next_inbound() is True
    async with runtime.db.connect() as connection:
        for n in (1, 2, 3):  # three lanes: each is its lane's head
            await runtime.bus.outbox.enqueue(connection, method=CREATE, params={"n": n}, lane=f"l{n}", now=clock.now())
    runtime.bus.senders["oms"].batch_size = 1  # one claim per message, so the answers below go in this order
    for _ in range(3):  # the token endpoint fails, then the OMS is busy, then it refuses
        assert await runtime.bus.send_next_outbound("oms") == 1

    families = await scrape(client)
    inbound = {"direction": "in", "channel": "oms", "topic": TOPIC}
    outbound = {"direction": "out", "channel": "oms", "topic": CREATE}
    assert value(families, "oms_connector_messages_total", **inbound, status="failed") == 1
    assert value(families, "oms_connector_messages_total", **inbound, status="retrying") == 1
    assert value(families, "oms_connector_messages_total", **outbound, status="retrying") == 2
    assert value(families, "oms_connector_messages_total", **outbound, status="failed") == 1
    assert value(families, "oms_connector_message_end_to_end_duration_seconds_count", **inbound) == 0  # no success
    assert value(families, "oms_connector_peer_calls_total", peer="oms", outcome="unavailable") == 2
    assert value(families, "oms_connector_peer_calls_total", peer="oms", outcome="rejected") == 1
    assert value(families, "oms_connector_oauth_token_fetches_total") == 2
    assert value(families, "oms_connector_oauth_token_fetch_failures_total") == 1


async def test_routes_are_counted_by_template_and_unknown_paths_and_methods_under_one_fixed_label(client):
    for number in ("000000001", "000000002"):
        assert (await client.get(f"/orders/{number}", headers=AUTH)).status_code == 404
    for _ in range(100):
        assert (await client.get(f"/{uuid.uuid4().hex}/{uuid.uuid4().hex}")).status_code == 404
    assert (await client.request("BREW", "/health/live")).status_code == 405
    unknown = rpc_body(method=f"evil.{uuid.uuid4().hex}")
    assert (await client.post("/oms/rpc", content=unknown, headers=signed_headers(unknown))).status_code == 404

    families = await scrape(client)
    requests = samples(families, "oms_connector_http_requests_total")
    order = {"method": "GET", "route": "/orders/{increment_id}", "status": "404"}
    assert value(families, "oms_connector_http_requests_total", **order) == 2
    assert value(families, "oms_connector_http_requests_total", method="GET", route=UNMATCHED, status="404") == 100
    assert value(families, "oms_connector_http_requests_total", method=OTHER, route="/health/live", status="405") == 1
    assert len(requests) == 4  # orders, unmatched, BREW, the webhook's 404 (this scrape is counted once answered)
    assert all(
        sample.labels["route"] in {UNMATCHED, "/orders/{increment_id}", "/health/live", "/oms/rpc"}
        for sample in requests
    )
    durations = samples(families, "oms_connector_http_request_duration_seconds_count")
    assert {(s.labels["method"], s.labels["route"]) for s in durations} == {
        ("GET", "/orders/{increment_id}"),
        ("GET", UNMATCHED),
        (OTHER, "/health/live"),
        ("POST", "/oms/rpc"),
    }
    rejected = [s for s in samples(families, "oms_connector_messages_total") if s.labels["status"] == "rejected"]
    assert [(s.labels["topic"], s.value) for s in rejected] == [(OTHER, 1)]  # never the method the caller made up


# --- cluster-wide gauges -----------------------------------------------------------------------------------------


async def insert_export(raw: asyncpg.Connection, clock: FrozenClock) -> datetime:
    started = clock.now() - timedelta(minutes=5)
    await raw.execute(
        """
        INSERT INTO catalog_export (status, source, send_mode, batch_size, products_read, products_sent, batches_sent,
                                    batches_acknowledged, error_count, created_at, started_at, updated_at)
        VALUES ('done', 'catalog', 'single', 5000, 20000, 20000, 4, 4, 0, $1, $1, $1),
               ('running', 'catalog', 'single', 5000, 12000, 11000, 3, 2, 7, $2, $2, $2)
        """,
        started - timedelta(days=1),
        started,
    )
    return started


async def test_the_database_gauges_match_a_known_backlog_and_the_latest_catalog_export(client, raw, clock):
    now = clock.now()
    hour, minute = timedelta(hours=1), timedelta(minutes=1)
    # Outbound to the OMS: a lane blocked for an hour (its head retrying, two queued behind), two more lanes queued.
    await insert_messages(raw, lanes=["order/1"], status="retrying", attempts=3, created_at=now - 2 * hour)
    await insert_messages(raw, lanes=["order/1", "order/1"], created_at=now - 90 * minute)
    await insert_messages(raw, lanes=["order/2", "order/3"], created_at=now - 10 * minute)
    await insert_messages(raw, lanes=["order/4"], status="waiting", created_at=now - 3 * hour)  # not pending
    await insert_messages(raw, lanes=["order/5"], status="processing", created_at=now - minute)
    await insert_messages(raw, lanes=["order/6", "order/7", "order/8"], status="failed", created_at=now - hour)
    await insert_messages(raw, lanes=["order/9", "order/10"], status="dead", created_at=now - 50 * hour)
    await insert_messages(raw, lanes=["order/11"], status="succeeded", created_at=now - 5 * hour)
    # Inbound from the OMS: one queued, one failed; to Adobe Commerce: one blocked lane, one dead.
    await insert_messages(raw, lanes=["in"], direction="in", topic=TOPIC, created_at=now - 30 * minute)
    await insert_messages(raw, lanes=["in-f"], direction="in", topic=TOPIC, status="failed", created_at=now - hour)
    await insert_messages(
        raw, lanes=["c/1"], channel="commerce", status="retrying", attempts=1, created_at=now - 20 * minute
    )
    await insert_messages(raw, lanes=["c/2"], channel="commerce", status="dead", created_at=now - 60 * hour)
    export_started = await insert_export(raw, clock)

    families = await scrape(client)
    assert value(families, "oms_connector_database_up") == 1

    def backlog(direction: str, channel: str) -> dict[str, float | None]:
        labels = {"direction": direction, "channel": channel}
        statuses = ("queued", "waiting", "processing", "retrying")
        found = {s: value(families, "oms_connector_backlog_messages", **labels, status=s) for s in statuses}
        for name in (
            "backlog_oldest_age_seconds",
            "failed_messages",
            "dead_messages",
            "blocked_lanes",
            "blocked_lane_oldest_age_seconds",
        ):
            found[name] = value(families, f"oms_connector_{name}", **labels)
        return found

    # insert_messages sets first_attempt_at = created_at + n seconds (n = the lane's position) on retried messages
    assert backlog("out", "oms") == {
        "queued": 4,
        "waiting": 1,
        "processing": 1,
        "retrying": 1,
        "backlog_oldest_age_seconds": 2 * 3600,  # the retrying head; the older waiting message is not pending
        "failed_messages": 3,
        "dead_messages": 2,
        "blocked_lanes": 1,
        "blocked_lane_oldest_age_seconds": 2 * 3600 - 1,
    }
    assert backlog("in", "oms") == {
        "queued": 1,
        "waiting": 0,
        "processing": 0,
        "retrying": 0,
        "backlog_oldest_age_seconds": 30 * 60,
        "failed_messages": 1,
        "dead_messages": 0,
        "blocked_lanes": 0,
        "blocked_lane_oldest_age_seconds": 0,
    }
    assert backlog("out", "commerce") == {
        "queued": 0,
        "waiting": 0,
        "processing": 0,
        "retrying": 1,
        "backlog_oldest_age_seconds": 20 * 60,
        "failed_messages": 0,
        "dead_messages": 1,
        "blocked_lanes": 1,
        "blocked_lane_oldest_age_seconds": 20 * 60 - 1,
    }
    statuses = {s.labels["status"]: s.value for s in samples(families, "oms_connector_catalog_export_status")}
    assert statuses == {"pending": 0, "running": 1, "done": 0, "canceled": 0, "failed": 0}
    assert value(families, "oms_connector_catalog_export_products_read") == 12000
    assert value(families, "oms_connector_catalog_export_products_sent") == 11000
    assert value(families, "oms_connector_catalog_export_batches_sent") == 3
    assert value(families, "oms_connector_catalog_export_batches_acknowledged") == 2
    assert value(families, "oms_connector_catalog_export_errors") == 7
    assert value(families, "oms_connector_catalog_export_started_timestamp_seconds") == export_started.timestamp()


async def test_an_empty_database_gives_zero_gauges_and_no_catalog_export(client):
    families = await scrape(client)
    assert value(families, "oms_connector_database_up") == 1
    backlog = samples(families, "oms_connector_backlog_messages")
    assert len(backlog) == 3 * 4 and all(sample.value == 0 for sample in backlog)
    assert all(s.value == 0 for s in samples(families, "oms_connector_blocked_lanes"))
    assert all(s.value == 0 for s in samples(families, "oms_connector_catalog_export_status"))
    assert "oms_connector_catalog_export_products_sent" not in families


# --- a database that cannot be read --------------------------------------------------------------------------------


def closed_port() -> int:
    """A loopback port nothing listens on (taken from the system, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def client_without_database(clock: FrozenClock) -> AsyncIterator[httpx.AsyncClient]:
    url = DatabaseUrl.parse(f"postgresql://nobody@127.0.0.1:{closed_port()}/nothing")
    runtime = Runtime.build(make_settings(url, metrics_token=METRICS_TOKEN), url=url, clock=clock)
    await runtime.start(workers=False, register=False)  # the seed fails and says so; start-up goes on
    app = create_app(runtime, start_workers=False, register=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        yield http
    await runtime.stop()


async def test_a_database_that_cannot_be_read_gives_database_up_0_and_still_answers_200(client_without_database):
    await client_without_database.get("/health/live")
    families = await scrape(client_without_database)
    assert value(families, "oms_connector_database_up") == 0
    assert "oms_connector_backlog_messages" not in families
    assert "oms_connector_catalog_export_status" not in families
    live = {"method": "GET", "route": "/health/live", "status": "200"}
    assert value(families, "oms_connector_http_requests_total", **live) == 1  # this process's metrics still come
