"""Order-export benchmark of the OMS Connector against the webhook-ingest baseline, on 127.0.0.1 only, in one run.

  1. mapper    in this process, for a fixed time each, over V realistic 10-item Adobe Commerce orders built with
               tests/support/orders.py (a discounted simple, a second simple, a configurable, a fixed-price and a
               dynamic-price bundle; 19 % and 7 % tax, a coupon, taxed shipping; 10 to 22 MCOM lines):
               map only (`order_to_mcom` on orders parsed beforehand), then parse + validate (`parse_order_body`)
               + map + `jsonable`, as POST /orders does; against `json.loads` + `json.dumps` of the same bodies
               (the bare cost of reading a body and writing the params, no validation and no mapping).
  2. export    `oms-connector serve` WITH its workers (OMS_ORDER_EXPORT_MODE=async) receives the orders as
               POST /orders (bearer COMMERCE_TOKEN, a unique increment_id each) at a fixed open-loop arrival rate
               R for D seconds. A stub OMS subprocess (tests/support/stub_oms.py: an OAuth token endpoint that
               checks the client credentials, a JSON-RPC endpoint that answers 401 to a token it did not issue)
               records, per order id, when each `magento.sales.order_management.create` call arrived.
               Latency = stub arrival - POST start (both CLOCK_MONOTONIC). Checked: every order arrived exactly
               once (a loud warning otherwise), every POST answered 202 with exported_now, every export message
               `succeeded`.
  3. ingest    the #2 ingest baseline (bench/ingest.py): `oms-connector serve --no-workers` receiving signed
               JSON-RPC calls (`magento.sales.order_management.created`) at the same rate for the same time, POST
               round-trip latency; then ingest.py's bare FastAPI app (one autocommit INSERT per request) the same
               way. The closing table gives order-export latency / ingest latency at p50 and p99.

Open loop: the k-th POST starts at t0 + k/R whether or not earlier ones were answered (each is its own task on a
keep-alive connection pool), so a slow server shows up as latency, not as a lower offered rate. W untimed warm-up
requests at the same rate precede each timed phase (and are waited for). Figures and ratios are printed, never
asserted; the exit status is 1 when a request failed or an order was not received exactly once. Everything lives
in a throw-away embedded PostgreSQL that is deleted at the end (also on error or SIGTERM).

    .venv/bin/python bench/orders.py [--rate R] [--duration D] [--warmup W] [--variants V] [--mapper-seconds S]
                                     [--log-level L] [--drain-timeout SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import asyncpg  # noqa: E402

from bench.ingest import (  # noqa: E402  (after the sys.path insert; it also quiets authlib's notice)
    BASELINE_TABLE,
    COMMERCE_TOKEN,
    HOST,
    OPERATOR_TOKEN,
    SECRET,
    CpuMeter,
    LoadResult,
    Service,
    clean_env,
    create_database,
    execute,
    free_port,
    signed_calls,
    start_postgres,
)
from bench.stock import ingest_baseline_service, print_log_findings, run_bench  # noqa: E402

CREATE_ORDER = "magento.sales.order_management.create"
OAUTH_CLIENT_ID = "bench-oms-client"
OAUTH_CLIENT_SECRET = "bench-oms-client-secret-0123456789"
INCREMENT_PLACEHOLDER = "@@INCREMENT_ID@@"
WARMUP_FIRST_ID = 800_000_001  # increment ids: 9 digits, as Adobe Commerce numbers orders
TIMED_FIRST_ID = 900_000_001
POLL_INTERVAL_S = 0.05
DUPLICATE_GRACE_S = 1.5  # after the last order arrived: time for a duplicate to show up (and statistics to settle)
STATS_SETTLE_S = 1.1  # PostgreSQL flushes a backend's statistics (transaction counts) at most once a second
MAX_CONNECTIONS = 256  # the bench client's keep-alive pool (open loop: more in flight means the server is behind)
COMMERCE_HEADERS = {"Authorization": f"Bearer {COMMERCE_TOKEN}", "Content-Type": "application/json"}
Request = tuple[str, bytes, dict[str, str]]  # (key: increment id or JSON-RPC id, body, headers)


class BenchFailure(Exception):
    """The run cannot go on (a service did not start, the warm-up orders never arrived)."""


# --------------------------------------------------------------------------------------------------------------
# The stub OMS (run in a subprocess: `bench/orders.py --serve-stub-oms --port P`)
# --------------------------------------------------------------------------------------------------------------
def serve_stub_oms(port: int) -> None:
    """tests/support/stub_oms.py's StubOms on uvicorn's default (fastest) loop and HTTP parser, in a process of its
    own so that it neither shares a GIL with the bench client nor slows down with the calls it keeps: it records
    when each create call arrived per order id, not the calls themselves. ``GET /bench/received`` reports."""
    import uvicorn
    from starlette.requests import Request as StarletteRequest
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from tests.support.stub_oms import StubOms

    class TimingStubOms(StubOms):
        def __init__(self) -> None:
            super().__init__()
            self.received: dict[str, list[float]] = {}  # order id → CLOCK_MONOTONIC of each create call
            self.other_calls: dict[str, int] = {}
            self.unauthorized = 0  # RPC calls refused: no token, or one this stub did not issue
            self.bad_credentials = 0  # token requests refused: wrong client id / secret
            self.app.router.routes.extend(
                [
                    Route("/health", self._health, methods=["GET"]),
                    Route("/bench/count", self._count, methods=["GET"]),
                    Route("/bench/received", self._report, methods=["GET"]),
                ]
            )

        async def _token(self, request: StarletteRequest) -> JSONResponse:
            form = {key: values[-1] for key, values in parse_qs((await request.body()).decode()).items()}
            if (form.get("client_id"), form.get("client_secret")) != (OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET):
                with self._lock:
                    self.bad_credentials += 1
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            return await super()._token(request)  # the body is cached on the request

        async def _rpc(self, request: StarletteRequest) -> JSONResponse:
            arrived = time.monotonic()
            token = (request.headers.get("authorization") or "").removeprefix("Bearer ")
            with self._lock:
                if not token or token not in self.issued_tokens:
                    self.unauthorized += 1
                    return JSONResponse({"error_message": "bad token"}, status_code=401)
            document = json.loads(await request.body())
            calls = document if isinstance(document, list) else [document]
            answers = []
            with self._lock:
                for call in calls:
                    method = str(call.get("method"))
                    if method == CREATE_ORDER:
                        order_id = str(((call.get("params") or {}).get("order") or {}).get("id"))
                        self.received.setdefault(order_id, []).append(arrived)
                    else:
                        self.other_calls[method] = self.other_calls.get(method, 0) + 1
                    answers.append({"jsonrpc": "2.0", "id": call.get("id"), "result": [], "error": ""})
            return JSONResponse(answers if isinstance(document, list) else answers[0])

        async def _health(self, _request: StarletteRequest) -> JSONResponse:
            return JSONResponse({"status": "ok"})

        async def _count(self, _request: StarletteRequest) -> JSONResponse:
            with self._lock:
                return JSONResponse({"orders": len(self.received)})

        async def _report(self, _request: StarletteRequest) -> JSONResponse:
            with self._lock:
                return JSONResponse(
                    {
                        "received": self.received,
                        "other_calls": self.other_calls,
                        "tokens_issued": len(self.issued_tokens),
                        "unauthorized": self.unauthorized,
                        "bad_credentials": self.bad_credentials,
                    }
                )

    stub = TimingStubOms()
    uvicorn.run(stub.app, host=HOST, port=port, log_level="warning", access_log=False, lifespan="off")


# --------------------------------------------------------------------------------------------------------------
# Orders, all built (and checked against the mapper) before any timer starts
# --------------------------------------------------------------------------------------------------------------
def order_document(variant: int) -> dict[str, Any]:
    """A 10-item order (``items[]`` entries) as ``GET /V1/orders/{id}`` returns it; quantities vary by variant."""
    from tests.support.orders import Selection, bundle, commerce_order, configurable, item

    v = variant
    items = [
        item(1, "MUG-STONE-350", qty=1 + v % 4, price="12.99", tax_percent=19, discount_percent=15),
        item(2, "SOCKS-WOOL-43", qty=1 + v % 3, price="8.49", tax_percent=19),
        *configurable(3, 4, "TEE-ORG-BLU-M", qty=1 + v % 2, price="29.90", tax_percent=19, discount_percent=10),
        *bundle(  # fixed price: the parent carries the money, shared over the children by their catalog prices
            5,
            "KIT-YOGA",
            [Selection(6, "MAT-01", "90.00"), Selection(7, "STRAP-02", "30.00", option_qty=2)],
            price="129.00",
            tax_percent=19,
            discount_percent=5,
        ),
        *bundle(  # dynamic price: the children carry their own amounts
            8,
            "KIT-TEA",
            [Selection(9, "TEA-GREEN", "6.50", option_qty=2), Selection(10, "POT-CLAY", "24.00")],
            qty=1 + (v // 2) % 2,
            dynamic=True,
            name="Tea Set",
            tax_percent=7,
            discount_percent=10,
        ),
    ]
    return commerce_order(
        increment_id=INCREMENT_PLACEHOLDER,
        items=items,
        shipping_amount="5.90",
        shipping_tax_percent=19,
        coupon_code="SPRING10",
        discount_description="SPRING10",
    )


@dataclass
class OrderCatalogue:
    """V order bodies with a placeholder for the increment id; ``requests`` makes numbered copies."""

    templates: list[bytes]
    lines: list[int]  # MCOM lines of each variant's create call
    params_bytes: list[int]  # their size as JSON

    @classmethod
    def build(cls, variants: int) -> OrderCatalogue:
        from app.mappers.order_to_mcom import OrderMappingOptions, order_to_mcom
        from app.protocol.commerce_order import parse_order_body
        from app.protocol.json_numbers import jsonable
        from tests.support.orders import order_body

        templates = [order_body(order_document(v)) for v in range(variants)]
        # each variant must map (the mapper refuses an order whose lines do not add up), or the run would time
        # refusals
        mapped = [
            jsonable(order_to_mcom(parsed.order, OrderMappingOptions(), parsed.document))
            for parsed in map(parse_order_body, templates)
        ]
        return cls(
            templates,
            [len(params["order"]["lines"]) for params in mapped],
            [len(json.dumps(params, separators=(",", ":"))) for params in mapped],
        )

    def body(self, increment_id: str, index: int) -> bytes:
        return self.templates[index % len(self.templates)].replace(
            INCREMENT_PLACEHOLDER.encode(), increment_id.encode()
        )

    def requests(self, first_id: int, count: int) -> list[Request]:
        return [(str(first_id + i), self.body(str(first_id + i), i), COMMERCE_HEADERS) for i in range(count)]


def signed_requests(prefix: str, count: int) -> list[Request]:
    """bench/ingest.py's signed `created` calls (~420-byte bodies, unique ids), keyed by their JSON-RPC id."""
    return [(f"{prefix}-{i}", body, headers) for i, (body, headers) in enumerate(signed_calls(prefix, count))]


# --------------------------------------------------------------------------------------------------------------
# Phase 1: the mapper, in this process
# --------------------------------------------------------------------------------------------------------------
@dataclass
class MapperResult:
    name: str
    orders: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.orders / self.seconds if self.seconds > 0 else 0.0

    @property
    def us_per_order(self) -> float:
        return self.seconds * 1e6 / self.orders if self.orders else float("nan")


def time_loop(name: str, step: Callable[[Any], object], inputs: Sequence[Any], seconds: float) -> MapperResult:
    """Run ``step`` over ``inputs`` again and again for about ``seconds`` (after one untimed pass)."""
    for value in inputs:
        step(value)
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        for value in inputs:
            step(value)
        count += len(inputs)
        now = time.perf_counter()
        if now >= deadline:
            return MapperResult(name, count, now - started)


def mapper_phase(catalogue: OrderCatalogue, seconds: float) -> list[MapperResult]:
    from app.mappers.order_to_mcom import OrderMappingOptions, order_to_mcom
    from app.protocol.commerce_order import parse_order_body
    from app.protocol.json_numbers import jsonable

    options = OrderMappingOptions()  # what the service passes with default settings and no sourcing rules stored
    bodies = [catalogue.body(str(TIMED_FIRST_ID + i), i) for i in range(len(catalogue.templates))]
    parsed = [parse_order_body(body) for body in bodies]
    params = [jsonable(order_to_mcom(p.order, options, p.document)) for p in parsed]

    def map_only(p: Any) -> object:
        return order_to_mcom(p.order, options, p.document)

    def parse_map_jsonable(body: bytes) -> object:
        p = parse_order_body(body)
        return jsonable(order_to_mcom(p.order, options, p.document))

    def bare_json(pair: tuple[bytes, dict[str, Any]]) -> object:
        json.loads(pair[0], parse_float=Decimal)
        return json.dumps(pair[1])

    return [
        time_loop("map only: order_to_mcom", map_only, parsed, seconds),
        time_loop("parse + map + jsonable", parse_map_jsonable, bodies, seconds),
        time_loop("baseline: json.loads + json.dumps", bare_json, list(zip(bodies, params, strict=True)), seconds),
    ]


def print_mapper(results: list[MapperResult]) -> None:
    bare = results[-1]
    for result in results:
        ratio = f"{result.us_per_order / bare.us_per_order:6.1f}x the bare JSON time" if result is not bare else ""
        print(
            f"  {result.name:<36} {result.rate:8.0f} orders/s  {result.us_per_order:8.0f} µs/order   {ratio}"
            f"  ({result.orders} in {result.seconds:.2f} s)"
        )


# --------------------------------------------------------------------------------------------------------------
# Open-loop load at a fixed arrival rate
# --------------------------------------------------------------------------------------------------------------
@dataclass
class Post:
    key: str
    due: float  # CLOCK_MONOTONIC the schedule gave it
    started: float = 0.0  # just before the POST
    answered: float = 0.0  # the answer read
    status: int = 0
    body: bytes = b""
    error: str | None = None


@dataclass
class OpenLoop:
    name: str
    rate: float
    posts: list[Post]
    peak_in_flight: int = 0
    cpu: dict[str, float] = field(default_factory=dict)  # ms per request: server, postgres, client (and stub)
    transactions: float | None = None  # PostgreSQL transactions per request in the server's database

    def failed(self, expected_status: int) -> list[Post]:
        return [p for p in self.posts if p.error is not None or p.status != expected_status]

    def first_problem(self, expected_status: int) -> str | None:
        for post in self.failed(expected_status):
            return post.error or f"{post.key}: HTTP {post.status}: {post.body[:200]!r}"
        return None

    @property
    def sent_rate(self) -> float:
        """The POST start rate achieved: (n - 1) / (last start - first start)."""
        span = self.posts[-1].started - self.posts[0].started
        return (len(self.posts) - 1) / span if span > 0 and len(self.posts) > 1 else 0.0

    @property
    def lag_ms(self) -> float:
        """The longest a POST started after its due time (the bench client falling behind its schedule)."""
        return max(p.started - p.due for p in self.posts) * 1000.0

    def round_trips(self, expected_status: int) -> LoadResult:
        """The POSTs as bench/ingest.py's LoadResult (its percentiles): round-trip latency, errors."""
        failed = self.failed(expected_status)
        seconds = max(p.answered for p in self.posts) - self.posts[0].started
        latencies = [p.answered - p.started for p in self.posts]
        return LoadResult(
            self.name, len(self.posts), seconds, latencies, len(failed), self.first_problem(expected_status)
        )


async def open_loop(
    name: str, session: aiohttp.ClientSession, url: str, requests: list[Request], rate: float
) -> OpenLoop:
    """POST ``requests`` at ``rate`` per second, each on its own task, without waiting for earlier answers."""
    in_flight = 0
    result = OpenLoop(name, rate, [])

    async def post(record: Post, body: bytes, headers: dict[str, str]) -> None:
        nonlocal in_flight
        in_flight += 1
        result.peak_in_flight = max(result.peak_in_flight, in_flight)
        record.started = time.monotonic()
        try:
            async with session.post(url, data=body, headers=headers) as response:
                record.body = await response.read()
                record.status = response.status
        except Exception as exc:
            record.error = f"{record.key}: {exc.__class__.__name__}: {exc}"
        record.answered = time.monotonic()
        in_flight -= 1

    tasks = []
    start = time.monotonic() + 0.01
    for index, (key, body, headers) in enumerate(requests):
        due = start + index / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        record = Post(key, due)
        result.posts.append(record)
        tasks.append(asyncio.create_task(post(record, body, headers)))
    await asyncio.gather(*tasks)
    return result


# --------------------------------------------------------------------------------------------------------------
# Phase 2: order export end to end
# --------------------------------------------------------------------------------------------------------------
@dataclass
class Export:
    load: OpenLoop  # the POSTs /orders
    arrivals: dict[str, list[float]]  # order id → stub arrival times (CLOCK_MONOTONIC), whole run
    stub: dict[str, Any]  # the stub's other counters
    messages: dict[str, int]  # outbound export messages by status
    retried: int  # export messages that took more than one attempt
    not_exported: int  # 202 answers without exported_now
    warmup_ids: set[str]
    drain_s: float  # last POST start → last order arrived (or the drain timeout)

    @property
    def timed_ids(self) -> list[str]:
        return [p.key for p in self.load.posts]

    def once(self) -> int:
        return sum(1 for key in self.timed_ids if len(self.arrivals.get(key, ())) == 1)

    def missing(self) -> list[str]:
        return [key for key in self.timed_ids if key not in self.arrivals]

    def duplicated(self) -> dict[str, int]:
        everything = [*self.timed_ids, *self.warmup_ids]
        return {key: len(self.arrivals[key]) for key in everything if len(self.arrivals.get(key, ())) > 1}

    def unexpected(self) -> list[str]:
        known = set(self.timed_ids) | self.warmup_ids
        return sorted(key for key in self.arrivals if key not in known)

    def latencies(self) -> LoadResult:
        """POST start → first arrival at the stub, for every timed order that arrived (percentiles of LoadResult)."""
        posts = [p for p in self.load.posts if p.key in self.arrivals]
        latencies = [self.arrivals[p.key][0] - p.started for p in posts]
        last = max((self.arrivals[p.key][0] for p in posts), default=self.load.posts[0].started)
        return LoadResult("order export end to end", len(posts), last - self.load.posts[0].started, latencies, 0)

    @property
    def delivered_rate(self) -> float:
        """Orders that arrived at the stub per second, first POST → last arrival."""
        return self.latencies().rate

    def intake(self) -> tuple[float, float, float]:
        """(POSTs answered per second, orders delivered per second while POSTs were still being answered, after):
        whether the export keeps pace with the intake or waits for it to end."""
        first, last_answer = self.load.posts[0].started, max(p.answered for p in self.load.posts)
        firsts = [self.arrivals[p.key][0] for p in self.load.posts if p.key in self.arrivals]
        during = sum(1 for t in firsts if t <= last_answer)
        last_arrival = max(firsts, default=last_answer)
        after_s = last_arrival - last_answer
        return (
            len(self.load.posts) / (last_answer - first),
            during / (last_answer - first),
            (len(firsts) - during) / after_s if after_s > 0 else float("nan"),
        )


class Stub:
    """The running stub OMS, as the bench reads it."""

    def __init__(self, service: Service, session: aiohttp.ClientSession) -> None:
        self.service = service
        self.session = session

    async def count(self) -> int:
        async with self.session.get(self.service.base_url + "/bench/count") as response:
            return int((await response.json())["orders"])

    async def report(self) -> dict[str, Any]:
        async with self.session.get(self.service.base_url + "/bench/received") as response:
            return dict(await response.json())

    async def wait_for(self, expected: int, timeout_s: float) -> int:
        """Until ``expected`` distinct orders arrived or ``timeout_s`` passed; returns how many arrived."""
        deadline = time.monotonic() + timeout_s
        while True:
            count = await self.count()
            if count >= expected or time.monotonic() > deadline:
                return count
            await asyncio.sleep(POLL_INTERVAL_S)


def connector_service(port: int, dsn: str, stub: Service, log_level: str, workdir: Path) -> Service:
    """`oms-connector serve` with its bus workers (default INBOUND_WORKERS / OUTBOUND_WORKERS), exporting orders
    asynchronously to the stub OMS with OAuth2 client credentials."""
    argv = [str(ROOT / ".venv/bin/oms-connector"), "serve", "--host", HOST, "--port", str(port)]
    env = clean_env(
        DATABASE_URL=dsn,
        OMS_URL=stub.base_url + "/api/",
        OMS_OAUTH_SERVER_URL=stub.base_url + "/oauth/token",
        OMS_OAUTH_CLIENT_ID=OAUTH_CLIENT_ID,
        OMS_OAUTH_CLIENT_SECRET=OAUTH_CLIENT_SECRET,
        OMS_SECRET=SECRET,
        OMS_ORDER_EXPORT_MODE="async",
        OMS_REGISTER_AT_STARTUP="false",
        OPERATOR_TOKEN=OPERATOR_TOKEN,
        COMMERCE_TOKEN=COMMERCE_TOKEN,
        RUN_MIGRATIONS="false",
        LOG_LEVEL=log_level,
    )
    return Service("connector-orders", argv, env, port, "/health/ready", workdir)


def ingest_connector_service(port: int, dsn: str, log_level: str, workdir: Path) -> Service:
    """The connector as bench/ingest.py runs it for its ingest phase: `serve --no-workers`, no OMS configured."""
    argv = [str(ROOT / ".venv/bin/oms-connector"), "serve", "--host", HOST, "--port", str(port), "--no-workers"]
    env = clean_env(
        DATABASE_URL=dsn,
        OMS_SECRET=SECRET,
        OPERATOR_TOKEN=OPERATOR_TOKEN,
        COMMERCE_TOKEN=COMMERCE_TOKEN,
        RUN_MIGRATIONS="false",
        LOG_LEVEL=log_level,
    )
    return Service("connector-ingest", argv, env, port, "/health/ready", workdir)


class Meter:
    """CPU (bench/ingest.py's CpuMeter, plus the stub OMS) and PostgreSQL transactions of one database."""

    def __init__(self, workdir: Path, dsn: str) -> None:
        import psutil

        self._psutil = psutil
        self.cpu = CpuMeter(workdir / "pg")
        self.dsn = dsn

    def _process_cpu(self, pid: int | None) -> float:
        if pid is None:
            return 0.0
        with contextlib.suppress(self._psutil.Error):
            times = self._psutil.Process(pid).cpu_times()
            return float(times.user + times.system)
        return 0.0

    async def sample(self, server: Service, stub: Service | None = None) -> dict[str, Any]:
        transactions = await execute(
            self.dsn, "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
        )
        return {
            "cpu": self.cpu.sample(server.process.pid if server.process else None),
            "stub": self._process_cpu(stub.process.pid if stub and stub.process else None),
            "transactions": int(transactions),
        }

    @staticmethod
    def apply(result: OpenLoop, before: dict[str, Any], after: dict[str, Any]) -> None:
        n = len(result.posts)
        result.cpu = CpuMeter.per_message_ms(before["cpu"], after["cpu"], n)
        result.cpu["stub"] = (after["stub"] - before["stub"]) * 1000 / n
        result.transactions = (after["transactions"] - before["transactions"]) / n


async def outbound_summary(dsn: str) -> tuple[dict[str, int], int]:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT status::text AS status, count(*) AS n FROM message WHERE direction = 'out' GROUP BY 1 ORDER BY 1"
        )
        retried = await connection.fetchval("SELECT count(*) FROM message WHERE direction = 'out' AND attempts > 1")
    finally:
        await connection.close()
    return {row["status"]: int(row["n"]) for row in rows}, int(retried)


async def export_phase(
    args: argparse.Namespace,
    session: aiohttp.ClientSession,
    connector: Service,
    stub: Stub,
    meter: Meter,
    warm: list[Request],
    timed: list[Request],
) -> Export:
    url = connector.base_url + "/orders"
    print(f"order export: POST /orders at {args.rate:g}/s open loop, async export, until each order reached the OMS:")
    warm_load = await open_loop("warm-up", session, url, warm, args.rate)
    arrived = await stub.wait_for(len(warm), args.drain_timeout)
    if warm_load.failed(202) or arrived < len(warm):
        raise BenchFailure(
            f"warm-up: {len(warm_load.failed(202))} POST(s) failed (first: {warm_load.first_problem(202)}); "
            f"{arrived} of {len(warm)} orders reached the stub OMS within {args.drain_timeout:g} s"
        )
    print(f"  warm-up: {len(warm)} orders posted and received")
    await asyncio.sleep(STATS_SETTLE_S)
    before = await meter.sample(connector, stub.service)
    load = await open_loop("POST /orders", session, url, timed, args.rate)
    arrived = await stub.wait_for(len(warm) + len(timed), args.drain_timeout)
    drain_s = time.monotonic() - load.posts[-1].started
    await asyncio.sleep(DUPLICATE_GRACE_S)
    Meter.apply(load, before, await meter.sample(connector, stub.service))
    report = await stub.report()
    messages, retried = await outbound_summary(meter.dsn)
    not_exported = 0
    for post in load.posts:
        if post.status == 202:
            with contextlib.suppress(ValueError):
                not_exported += json.loads(post.body).get("exported_now") is not True
    arrivals = report.pop("received")
    return Export(load, arrivals, report, messages, retried, not_exported, {key for key, _, _ in warm}, drain_s)


def print_export(result: Export, out: Results) -> None:
    """Prints the phase; adds its failures (a request failed, an order was not received exactly once) and warnings
    (the connector did not keep up) to ``out``."""
    load, e2e = result.load, result.latencies()
    posts = load.round_trips(202)
    n = len(load.posts)
    print(
        f"  {'POST /orders → create received':<36} p50 {e2e.pct(0.5):7.1f} ms   p99 {e2e.pct(0.99):7.1f} ms   "
        f"max {max(e2e.latencies, default=float('nan')) * 1000:7.1f} ms   ({e2e.n} of {n} orders)"
    )
    print(
        f"  {'POST /orders answered (202)':<36} p50 {posts.pct(0.5):7.1f} ms   p99 {posts.pct(0.99):7.1f} ms   "
        f"max {max(posts.latencies) * 1000:7.1f} ms   errors {posts.errors}"
    )
    answered, during, after = result.intake()
    after_text = f"{after:.1f}/s" if after == after else "none left"  # NaN: all had arrived by the last answer
    print(
        f"  {'rates':<36} POSTs started {load.sent_rate:.1f}/s (client lag max {load.lag_ms:.1f} ms, peak "
        f"{load.peak_in_flight} in flight, {MAX_CONNECTIONS} connections), answered {answered:.1f}/s; orders "
        f"delivered {result.delivered_rate:.1f}/s overall, {during:.1f}/s while POSTs were being answered, "
        f"{after_text} after; last order arrived {result.drain_s:.2f} s after the last POST started"
    )
    cpu = load.cpu
    print(
        f"  {'':<36} CPU ms/order: connector {cpu['server']:.2f}, PostgreSQL {cpu['postgres']:.2f}, "
        f"stub OMS {cpu['stub']:.2f}, bench client {cpu['client']:.2f}; "
        f"{load.transactions:.1f} PostgreSQL transactions/order"
    )
    stub = result.stub
    print(
        f"  {'':<36} export messages: {', '.join(f'{k} {v}' for k, v in result.messages.items()) or 'none'}; "
        f"{result.retried} retried; stub OMS: {stub['tokens_issued']} token(s) issued, "
        f"{stub['unauthorized']} call(s) refused 401, {stub['bad_credentials']} bad token request(s)"
        + (f", other calls {stub['other_calls']}" if stub["other_calls"] else "")
    )
    once, missing, duplicated, unexpected = result.once(), result.missing(), result.duplicated(), result.unexpected()
    print(f"  {'received exactly once':<36} {once} of {n}")
    problems = out.failures
    if result.delivered_rate < 0.9 * load.rate:
        out.warnings.append(
            f"the connector did not keep up with {load.rate:g} orders/s (delivered {result.delivered_rate:.1f}/s, "
            f"POSTs answered {answered:.1f}/s): the latencies are queueing and grow with --duration"
        )
    if once != n or duplicated or unexpected:
        problems.append(
            f"{n - once} of {n} orders were NOT received exactly once by the stub OMS: {len(missing)} missing "
            f"(e.g. {missing[:5]}), {len(duplicated)} received more than once "
            f"(e.g. {dict(list(duplicated.items())[:5])}), "
            f"{len(unexpected)} unknown ids (e.g. {unexpected[:5]})"
        )
    if posts.errors:
        problems.append(f"{posts.errors} POST /orders failed; first: {posts.first_error}")
    if result.not_exported:
        problems.append(f"{result.not_exported} POST /orders answered 202 without exported_now")
    expected = n + len(result.warmup_ids)
    if result.messages.get("succeeded", 0) != expected or sum(result.messages.values()) != expected:
        problems.append(f"export messages {result.messages}, expected {expected} succeeded")
    if stub["unauthorized"] or stub["bad_credentials"]:
        problems.append(
            f"the stub OMS refused {stub['unauthorized']} call(s) and {stub['bad_credentials']} token request(s)"
        )


# --------------------------------------------------------------------------------------------------------------
# Phase 3: the ingest baselines at the same rate
# --------------------------------------------------------------------------------------------------------------
async def ingest_phase(
    args: argparse.Namespace,
    session: aiohttp.ClientSession,
    service: Service,
    path: str,
    name: str,
    meter: Meter,
    warm: list[Request],
    timed: list[Request],
) -> OpenLoop:
    url = service.base_url + path
    warm_load = await open_loop("warm-up", session, url, warm, args.rate)
    if warm_load.failed(200):
        raise BenchFailure(
            f"{name} warm-up: {len(warm_load.failed(200))} POST(s) failed: {warm_load.first_problem(200)}"
        )
    await asyncio.sleep(STATS_SETTLE_S)
    before = await meter.sample(service)
    load = await open_loop(name, session, url, timed, args.rate)
    await asyncio.sleep(STATS_SETTLE_S)
    Meter.apply(load, before, await meter.sample(service))
    return load


def print_ingest(load: OpenLoop) -> None:
    result = load.round_trips(200)
    cpu = load.cpu
    print(
        f"  {load.name:<36} p50 {result.pct(0.5):7.1f} ms   p99 {result.pct(0.99):7.1f} ms   "
        f"max {max(result.latencies) * 1000:7.1f} ms   errors {result.errors}   "
        f"({load.sent_rate:.1f}/s started, {result.rate:.1f}/s answered, client lag max {load.lag_ms:.1f} ms)"
    )
    print(
        f"  {'':<36} CPU ms/call: server {cpu['server']:.2f}, PostgreSQL {cpu['postgres']:.2f}, "
        f"bench client {cpu['client']:.2f}; {load.transactions:.1f} PostgreSQL transactions/call"
    )
    if result.first_error:
        print(f"  {'':<36} first error: {result.first_error}")


# --------------------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------------------
@dataclass
class Results:
    mapper: list[MapperResult] = field(default_factory=list)
    export: Export | None = None
    ingest: OpenLoop | None = None
    bare: OpenLoop | None = None
    failures: list[str] = field(default_factory=list)  # the run is not valid: exit status 1
    warnings: list[str] = field(default_factory=list)


async def run(args: argparse.Namespace, workdir: Path, services: list[Any]) -> int:
    rate, duration = args.rate, args.duration
    n = round(rate * duration)
    print(f"OMS Connector order-export bench: R={rate:g}/s for D={duration:g} s ({n} orders), W={args.warmup}")
    print(f"  on {os.cpu_count()} CPUs; workdir {workdir}")
    started = time.perf_counter()
    catalogue = OrderCatalogue.build(args.variants)
    warm_orders = catalogue.requests(WARMUP_FIRST_ID, args.warmup)
    timed_orders = catalogue.requests(TIMED_FIRST_ID, n)
    warm_calls, timed_calls = signed_requests("ingest-warm", args.warmup), signed_requests("ingest", n)
    warm_bare, timed_bare = signed_requests("bare-warm", args.warmup), signed_requests("bare", n)
    print(
        f"  bodies built: {len(catalogue.templates)} order variants, 10 items, {len(timed_orders[0][1])} bytes "
        f"→ {min(catalogue.lines)}-{max(catalogue.lines)} MCOM lines, "
        f"{min(catalogue.params_bytes)}-{max(catalogue.params_bytes)} bytes of create params; "
        f"ingest calls {len(timed_calls[0][1])} bytes"
    )
    out = Results()

    print(f"mapper (in this process, {args.mapper_seconds:g} s each, {len(catalogue.templates)} variants round robin):")
    out.mapper = mapper_phase(catalogue, args.mapper_seconds)
    print_mapper(out.mapper)

    pg, admin_uri = await asyncio.to_thread(start_postgres, workdir)
    services.append(pg)  # stopped and deleted with the rest
    orders_dsn = await create_database(admin_uri, "bench_orders", migrated=True)
    ingest_dsn = await create_database(admin_uri, "bench_ingest", migrated=True)
    bare_dsn = await create_database(admin_uri, "bench_ingest_baseline", migrated=False)
    await execute(bare_dsn, f"CREATE TABLE {BASELINE_TABLE} (id bigserial PRIMARY KEY, body jsonb NOT NULL)")
    print(f"  embedded PostgreSQL ready, databases migrated ({time.perf_counter() - started:.1f} s)")

    stub_port = free_port()
    stub_service = Service(
        "stub-oms",
        [sys.executable, str(Path(__file__).resolve()), "--serve-stub-oms", "--port", str(stub_port)],
        clean_env(),
        stub_port,
        "/health",
        workdir,
    )
    connector = connector_service(free_port(), orders_dsn, stub_service, args.log_level, workdir)
    ingest = ingest_connector_service(free_port(), ingest_dsn, args.log_level, workdir)
    bare = ingest_baseline_service(free_port(), bare_dsn, workdir)
    services.extend([stub_service, connector, ingest, bare])
    limits = aiohttp.TCPConnector(limit=MAX_CONNECTIONS, limit_per_host=MAX_CONNECTIONS)
    try:
        timeout = aiohttp.ClientTimeout(args.request_timeout)
        async with aiohttp.ClientSession(connector=limits, timeout=timeout) as session:
            await stub_service.start(session)
            await connector.start(session)
            print(f"  stub OMS on :{stub_service.port}, connector (with workers) on :{connector.port}")
            out.export = await export_phase(
                args,
                session,
                connector,
                Stub(stub_service, session),
                Meter(workdir, orders_dsn),
                warm_orders,
                timed_orders,
            )
            connector.stop()
            stub_service.stop()
            print_export(out.export, out)
            print_log_findings(connector)

            print(f"ingest baselines: signed JSON-RPC calls at {rate:g}/s open loop, POST round trip:")
            await ingest.start(session)
            out.ingest = await ingest_phase(
                args,
                session,
                ingest,
                "/oms/rpc",
                "ingest: connector /oms/rpc",
                Meter(workdir, ingest_dsn),
                warm_calls,
                timed_calls,
            )
            ingest.stop()
            print_ingest(out.ingest)
            print_log_findings(ingest)
            stored = await execute(ingest_dsn, "SELECT count(*) FROM message WHERE external_id LIKE 'ingest-%'")
            if stored != n + args.warmup:
                out.failures.append(f"ingest: {stored} messages stored, expected {n + args.warmup}")

            await bare.start(session)
            out.bare = await ingest_phase(
                args,
                session,
                bare,
                "/rpc",
                "ingest: bare app, 1 INSERT/request",
                Meter(workdir, bare_dsn),
                warm_bare,
                timed_bare,
            )
            bare.stop()
            print_ingest(out.bare)
            for load in (out.ingest, out.bare):
                if load.failed(200):
                    out.failures.append(
                        f"{load.name}: {len(load.failed(200))} POST(s) failed: {load.first_problem(200)}"
                    )
    except BenchFailure as exc:
        out.failures.append(str(exc))
        for service in (connector, ingest):
            print(f"{service.name} log tail:\n{service.log_tail()}")
    finally:
        for service in (connector, stub_service, ingest, bare):
            service.stop()
    print_summary(args, out, time.perf_counter() - started)
    return 1 if out.failures else 0


def loud(lines: list[str]) -> None:
    bar = "!" * 118
    print(bar)
    for line in lines:
        print(f"!! WARNING: {line}")
    print(bar)


def print_summary(args: argparse.Namespace, out: Results, seconds: float) -> None:
    width = 50
    print()
    print(f"Summary (R={args.rate:g}/s open loop for D={args.duration:g} s, 10-item orders; {seconds:.0f} s in all)")
    if out.mapper:
        bare = out.mapper[-1]
        print(f"  {'mapper, in-process, one core':<{width}} {'orders/s':>9} {'µs/order':>9} {'/bare':>8}")
        for result in out.mapper:
            ratio = result.us_per_order / bare.us_per_order
            print(f"  {result.name:<{width}} {result.rate:9.0f} {result.us_per_order:9.0f} {ratio:7.2f}x")
    rows: list[tuple[str, LoadResult, float, float, str]] = []
    if out.export:
        e2e = out.export.latencies()
        once = f"{out.export.once()}/{len(out.export.load.posts)} once"
        rows.append(
            ("order export: POST /orders → OMS create received", e2e, out.export.load.sent_rate, e2e.rate, once)
        )
    for load in (out.ingest, out.bare):
        if load:
            result = load.round_trips(200)
            rows.append((f"{load.name}", result, load.sent_rate, result.rate, f"{result.errors} errors"))
    if rows:
        print(
            f"  {'at a fixed rate (open loop)':<{width}} {'sent/s':>9} {'done/s':>9} {'p50 ms':>9} {'p99 ms':>9} "
            f"{'max ms':>9}"
        )
        for name, result, sent, done, note in rows:
            print(
                f"  {name:<{width}} {sent:9.1f} {done:9.1f} {result.pct(0.5):9.1f} {result.pct(0.99):9.1f} "
                f"{max(result.latencies, default=float('nan')) * 1000:9.1f}   {note}"
            )
    ratios = []
    if out.export and out.ingest:
        ratios.append(("ratio order export / ingest (connector)", out.export.latencies(), out.ingest.round_trips(200)))
    if out.ingest and out.bare:
        ratios.append(("ratio ingest (connector) / bare app", out.ingest.round_trips(200), out.bare.round_trips(200)))
    for name, numerator, denominator in ratios:
        print(
            f"  {name:<{width}} {'':>9} {'':>9} {numerator.pct(0.5) / denominator.pct(0.5):8.2f}x "
            f"{numerator.pct(0.99) / denominator.pct(0.99):8.2f}x"
        )
    if out.failures or out.warnings:
        loud([*out.failures, *out.warnings])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200.0, help="orders (and ingest calls) per second (R)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of each timed phase (D)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed requests at the same rate before each phase")
    parser.add_argument("--variants", type=int, default=8, help="different orders (quantities) posted round robin")
    parser.add_argument("--mapper-seconds", type=float, default=3.0, help="seconds of each mapper measurement")
    parser.add_argument("--log-level", default="WARNING", help="LOG_LEVEL of the connector subprocesses")
    parser.add_argument("--drain-timeout", type=float, default=90.0, help="seconds to wait for the orders to arrive")
    parser.add_argument("--request-timeout", type=float, default=120.0, help="seconds before a POST is given up")
    parser.add_argument("--serve-stub-oms", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve_stub_oms:
        serve_stub_oms(args.port)
        return 0
    if args.rate <= 0 or args.duration <= 0 or args.variants < 1 or args.warmup < 1:
        parser.error("--rate and --duration must be positive, --variants and --warmup at least 1")

    return run_bench(run, args, "omso-")


if __name__ == "__main__":
    sys.exit(main())
