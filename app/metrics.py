"""Prometheus metrics (``GET /metrics``): what this process did, and the cluster's backlog read from PostgreSQL.

* **Per process** (counters and histograms; Prometheus sums them over the replicas): messages by direction,
  channel, topic and status as the bus records them (and the OMS calls the webhook accepts or rejects), how long
  an attempt took and how long a message took from arrival to success, outbound calls by peer and outcome, OAuth
  token fetches, HTTP requests by method, route template and status.
* **Cluster-wide gauges**, read at scrape time with one statement (``METRIC_GAUGES`` in app/data/monitoring.py,
  every part bounded by the pending messages or a limit, never by the size of the journal): the backlog and the age
  of its oldest message per direction and channel, blocked lanes, failed and dead messages, the latest catalog
  export. A database that cannot be read gives ``oms_connector_database_up 0`` and no such gauge; the scrape still
  succeeds.

Each ``Runtime`` owns a ``Metrics`` with its own registry rather than prometheus_client's global one: a process
runs one runtime, and tests build many in one process (the global registry refuses a name twice). Label values
are bounded, whatever callers send: topics are the protocol's methods (an OMS call refused before it was
understood counts under ``OTHER``), routes are templates (``UNMATCHED`` for a path no route matches) and HTTP
methods the standard ones (else ``OTHER``). Hot paths reach a labelled child through a dict, not ``labels()``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, disable_created_metrics
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from starlette.types import Message, Scope, Send

from app.data.monitoring import METRIC_GAUGES
from app.db import Database
from app.errors import PeerRejected, PeerUnavailable
from app.models import Status
from app.protocol.methods import NOT_SERVED, OMS_TO_CONNECTOR

log = logging.getLogger(__name__)

# The text format Prometheus has always read (what `generate_latest` writes for names like ours).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "oms_connector"
OTHER = "(other)"  # a topic or HTTP method outside the known ones
UNMATCHED = "(unmatched)"  # the route of a path no route matches
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
KNOWN_INBOUND_TOPICS = frozenset(OMS_TO_CONNECTOR) | frozenset(NOT_SERVED)
# Peers and outcomes of outbound calls.
OMS_PEER, COMMERCE_PEER = "oms", "commerce"
OK, UNAVAILABLE, REJECTED = "ok", "unavailable", "rejected"

# Buckets in seconds: an attempt (a handler, a call) takes milliseconds to a timeout; a message may wait for days
# (an outbound message is retried for OMS_RETRY_WINDOW_HOURS, 48 h by default).
ATTEMPT_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
END_TO_END_BUCKETS_S = (0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 14_400, 43_200, 86_400, 172_800, 604_800)
CALL_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
HTTP_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

# Scrape-time gauges.
DATABASE_READ_TIMEOUT_S = 5.0  # below Prometheus' default scrape timeout (10 s)
BLOCKED_LANES_COUNTED = 10_000  # retrying messages examined, oldest first (as GET /integration does)
FAILED_COUNTED = 10_000  # failed and dead messages counted among the newest this many of each status (idem)
# (direction, channel) pairs whose gauges are always exposed (0 when empty), so that a graph does not vanish.
DIRECTION_CHANNELS = (("in", "oms"), ("out", "oms"), ("out", "commerce"))
BACKLOG_STATUSES = (Status.QUEUED, Status.WAITING, Status.PROCESSING, Status.RETRYING)
PENDING = frozenset(status.value for status in (Status.QUEUED, Status.PROCESSING, Status.RETRYING))
EXPORT_STATUSES = ("pending", "running", "done", "canceled", "failed")
EXPORT_NUMBERS = {  # catalog_export column (METRIC_GAUGES) → gauge name after the prefix, and its help
    "products_read": ("catalog_export_products_read", "Products the latest full catalog export has read"),
    "products_sent": ("catalog_export_products_sent", "Products the latest full catalog export has sent"),
    "batches_sent": ("catalog_export_batches_sent", "Batches the latest full catalog export has started"),
    "batches_acknowledged": (
        "catalog_export_batches_acknowledged",
        "Batches of the latest full catalog export the OMS acknowledged (the unit of progress)",
    ),
    "error_count": ("catalog_export_errors", "Products of the latest full catalog export the OMS refused"),
    "started_at_s": ("catalog_export_started_timestamp_seconds", "When the latest full catalog export started"),
}

# A counter's `_created` series doubles the output and nobody here reads it (process-wide: nothing else in the
# connector uses prometheus_client).
disable_created_metrics()


@dataclass(frozen=True)
class DatabaseGauges:
    """What METRIC_GAUGES read: rows as dicts (see the statement), ages in seconds."""

    pending: list[dict[str, Any]] = field(default_factory=list)
    settled: list[dict[str, Any]] = field(default_factory=list)
    blocked: list[dict[str, Any]] = field(default_factory=list)
    catalog_export: dict[str, Any] | None = None
    read_s: float = 0.0


class Metrics:
    """Every metric of one runtime, in its own registry. ``render`` writes them in the Prometheus text format."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self._messages = Counter(
            f"{PREFIX}_messages",
            "Messages that reached a status in this process: inbound OMS calls accepted (queued) or rejected, and "
            "each attempt the bus recorded (succeeded, retrying, failed, dead)",
            ["direction", "channel", "topic", "status"],
            registry=registry,
        )
        self._attempt_seconds = Histogram(
            f"{PREFIX}_message_attempt_duration_seconds",
            "How long an attempt took: an inbound message's handler and its commit, the call delivering an outbound "
            "one (each message of an rpc-batch call observes the whole call)",
            ["direction", "channel", "topic"],
            buckets=ATTEMPT_BUCKETS_S,
            registry=registry,
        )
        self._end_to_end_seconds = Histogram(
            f"{PREFIX}_message_end_to_end_duration_seconds",
            "From a message's arrival in the inbox or outbox to its success (retries and waiting included)",
            ["direction", "channel", "topic"],
            buckets=END_TO_END_BUCKETS_S,
            registry=registry,
        )
        self._peer_calls = Counter(
            f"{PREFIX}_peer_calls",
            "Outbound calls by peer (oms, commerce) and outcome (ok, unavailable: retried later, rejected)",
            ["peer", "outcome"],
            registry=registry,
        )
        self._peer_seconds = Histogram(
            f"{PREFIX}_peer_call_duration_seconds",
            "How long an outbound call took (an OMS call includes the token fetch it needed)",
            ["peer", "outcome"],
            buckets=CALL_BUCKETS_S,
            registry=registry,
        )
        self._token_fetches = Counter(
            f"{PREFIX}_oauth_token_fetches", "OAuth2 token requests to OMS_OAUTH_SERVER_URL", registry=registry
        )
        self._token_failures = Counter(
            f"{PREFIX}_oauth_token_fetch_failures",
            "OAuth2 token requests that failed (endpoint unreachable or token refused)",
            registry=registry,
        )
        self._http_requests = Counter(
            f"{PREFIX}_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self._http_seconds = Histogram(
            f"{PREFIX}_http_request_duration_seconds",
            "How long an HTTP request took, until its last byte was handed to the server",
            ["method", "route"],
            buckets=HTTP_BUCKETS_S,
            registry=registry,
        )
        ProcessCollector(registry=registry)  # process_cpu_seconds_total, process_resident_memory_bytes, …
        # Labelled children bound once, per label values: one dict lookup on the hot paths instead of a labels()
        # call per metric (a lock and a str() of every value each time).
        self._received: dict[tuple[str, str], Any] = {}
        self._attempts: dict[tuple[str, str, str, str], tuple[Any, Any, Any]] = {}
        self._calls: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._requests: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    # --- messages -------------------------------------------------------------------------------------------
    def message_received(self, topic: str, status: Status) -> None:
        """An OMS call the webhook stored (queued) or refused (rejected; ``topic`` is whatever the caller said)."""
        key = (topic if topic in KNOWN_INBOUND_TOPICS else OTHER, status.value)
        counter = self._received.get(key)
        if counter is None:
            counter = self._received[key] = self._messages.labels("in", OMS_PEER, *key)
        counter.inc()

    def message_attempted(
        self,
        direction: str,
        channel: str,
        topic: str,
        status: str,
        duration_s: float,
        created_at: datetime | None = None,
        finished_at: datetime | None = None,
    ) -> None:
        """An attempt the bus recorded with ``status``; a success given its message's arrival (``created_at``)
        is also an end-to-end duration."""
        key = (direction, channel, topic, status)
        children = self._attempts.get(key)
        if children is None:
            children = self._attempts[key] = (
                self._messages.labels(*key),
                self._attempt_seconds.labels(direction, channel, topic),
                self._end_to_end_seconds.labels(direction, channel, topic),
            )
        counter, attempt, end_to_end = children
        counter.inc()
        attempt.observe(duration_s)
        if status == Status.SUCCEEDED and created_at is not None and finished_at is not None:
            end_to_end.observe(max((finished_at - created_at).total_seconds(), 0.0))

    # --- peers ----------------------------------------------------------------------------------------------
    @contextmanager
    def peer_call(self, peer: str) -> Iterator[None]:
        """Time the call in the block and count its outcome: it returns (ok) or raises PeerUnavailable or
        PeerRejected; anything else (a cancelled task) is not a call's outcome and is not counted."""
        started = time.perf_counter()
        try:
            yield
        except PeerUnavailable:
            self._peer_call_done(peer, UNAVAILABLE, started)
            raise
        except PeerRejected:
            self._peer_call_done(peer, REJECTED, started)
            raise
        self._peer_call_done(peer, OK, started)

    def _peer_call_done(self, peer: str, outcome: str, started: float) -> None:
        key = (peer, outcome)
        children = self._calls.get(key)
        if children is None:
            children = self._calls[key] = (self._peer_calls.labels(*key), self._peer_seconds.labels(*key))
        children[0].inc()
        children[1].observe(time.perf_counter() - started)

    def token_fetched(self, *, ok: bool) -> None:
        self._token_fetches.inc()
        if not ok:
            self._token_failures.inc()

    # --- HTTP -----------------------------------------------------------------------------------------------
    def measure_http(self, scope: Scope, send: Send) -> Send:
        """``send`` that counts the request when its answer's last byte is sent, under the route template the
        router put in ``scope["route"]`` (never the raw path)."""
        started = time.perf_counter()
        status = ""

        async def send_and_count(message: Message) -> None:
            nonlocal status
            await send(message)
            if message["type"] == "http.response.start":
                status = str(message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                self._http_answered(scope, status, started)

        return send_and_count

    def _http_answered(self, scope: Scope, status: str, started: float) -> None:
        method = scope["method"]
        key = (
            method if method in HTTP_METHODS else OTHER,
            getattr(scope.get("route"), "path_format", None) or UNMATCHED,
            status,
        )
        children = self._requests.get(key)
        if children is None:
            children = self._requests[key] = (self._http_requests.labels(*key), self._http_seconds.labels(*key[:2]))
        children[0].inc()
        children[1].observe(time.perf_counter() - started)

    # --- exposition -----------------------------------------------------------------------------------------
    def render(self, gauges: DatabaseGauges | None) -> bytes:
        """Everything in the Prometheus text format: this process's metrics, then the database gauges (``None``:
        the database could not be read, so only ``oms_connector_database_up 0``)."""
        return generate_latest(_Scrape(self.registry, list(database_families(gauges))))


class _Scrape:
    """The registry's metrics plus one scrape's database gauges, as one collector for ``generate_latest``."""

    def __init__(self, registry: CollectorRegistry, extra: list[Metric]) -> None:
        self.registry = registry
        self.extra = extra

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()
        yield from self.extra


async def read_database_gauges(db: Database, now: datetime) -> DatabaseGauges | None:
    """Run METRIC_GAUGES (bounded by DATABASE_READ_TIMEOUT_S); None when the database cannot be read."""
    started = time.perf_counter()
    parameters = {"now": now, "blocked_limit": BLOCKED_LANES_COUNTED, "failed_limit": FAILED_COUNTED}
    try:
        async with asyncio.timeout(DATABASE_READ_TIMEOUT_S), db.connect() as connection:
            row = (await connection.execute(METRIC_GAUGES, parameters)).one()
    except Exception as exc:  # down, too slow, not migrated: the scrape says so with database_up 0
        log.warning(
            "metrics: the database gauges cannot be read: %s: %s",
            exc.__class__.__name__,
            str(exc)[:300],
            extra={"action": "metrics_database_unreadable"},
        )
        return None
    return DatabaseGauges(
        pending=row.pending,
        settled=row.settled,
        blocked=row.blocked,
        catalog_export=row.catalog_export,
        read_s=time.perf_counter() - started,
    )


def database_families(gauges: DatabaseGauges | None) -> Iterator[Metric]:
    """The cluster-wide gauges of one scrape."""
    up = GaugeMetricFamily(f"{PREFIX}_database_up", "1 if PostgreSQL answered this scrape's query, else 0")
    up.add_metric([], 0 if gauges is None else 1)
    yield up
    if gauges is None:
        return
    yield _gauge("database_read_duration_seconds", "How long this scrape's database query took", gauges.read_s)

    pairs = list(DIRECTION_CHANNELS)
    pairs += sorted({(row["direction"], row["channel"]) for row in gauges.pending + gauges.settled} - set(pairs))
    backlog = {(pair, status.value): 0 for pair in pairs for status in BACKLOG_STATUSES}
    oldest = dict.fromkeys(pairs, 0.0)
    for row in gauges.pending:
        pair = (row["direction"], row["channel"])
        backlog[pair, row["status"]] = row["messages"]
        if row["status"] in PENDING:
            oldest[pair] = max(oldest[pair], float(row["oldest_age_s"]))  # ≥ 0: another replica's clock may be ahead
    family = GaugeMetricFamily(
        f"{PREFIX}_backlog_messages",
        "Messages still to go: queued, waiting (held until their order's create reached the OMS), processing, retrying",
        labels=["direction", "channel", "status"],
    )
    for (pair, status), count in backlog.items():
        family.add_metric([*pair, status], count)
    yield family
    family = GaugeMetricFamily(
        f"{PREFIX}_backlog_oldest_age_seconds",
        "Age of the oldest pending (queued, processing or retrying) message; 0 when there is none",
        labels=["direction", "channel"],
    )
    for pair, age in oldest.items():
        family.add_metric(list(pair), age)
    yield family

    for status in (Status.FAILED, Status.DEAD):
        counts = dict.fromkeys(pairs, 0)
        for row in gauges.settled:
            if row["status"] == status.value:
                counts[row["direction"], row["channel"]] = row["messages"]
        family = GaugeMetricFamily(
            f"{PREFIX}_{status.value}_messages",
            f"{status.value.capitalize()} messages waiting for an operator (retry or discard), counted among the "
            f"newest {FAILED_COUNTED} {status.value} messages",
            labels=["direction", "channel"],
        )
        for pair, count in counts.items():
            family.add_metric(list(pair), count)
        yield family

    lanes = dict.fromkeys(pairs, 0)
    blocked_age = dict.fromkeys(pairs, 0.0)
    for row in gauges.blocked:
        pair = (row["direction"], row["channel"])
        lanes[pair] = row["lanes"]
        blocked_age[pair] = max(0.0, float(row["oldest_age_s"]))
    family = GaugeMetricFamily(
        f"{PREFIX}_blocked_lanes",
        f"Lanes whose head is retrying (nothing behind it moves), among the oldest {BLOCKED_LANES_COUNTED} "
        "retrying messages",
        labels=["direction", "channel"],
    )
    for pair, count in lanes.items():
        family.add_metric(list(pair), count)
    yield family
    family = GaugeMetricFamily(
        f"{PREFIX}_blocked_lane_oldest_age_seconds",
        "How long the longest-blocked lane has been blocked (since its head's first attempt); 0 when none is",
        labels=["direction", "channel"],
    )
    for pair, age in blocked_age.items():
        family.add_metric(list(pair), age)
    yield family

    export = gauges.catalog_export
    family = GaugeMetricFamily(
        f"{PREFIX}_catalog_export_status",
        "1 for the status of the latest full catalog export (none: all 0)",
        labels=["status"],
    )
    for status_name in EXPORT_STATUSES:
        family.add_metric([status_name], 1 if export is not None and export["status"] == status_name else 0)
    yield family
    if export is not None:
        for column, (name, documentation) in EXPORT_NUMBERS.items():
            if export.get(column) is not None:
                yield _gauge(name, documentation, float(export[column]))


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", documentation, value=value)
