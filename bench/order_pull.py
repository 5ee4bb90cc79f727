"""Order-pull benchmark of the OMS Connector: orders discovered and exported by polling Adobe Commerce, against the
same number of orders posted to POST /orders, in one run, on 127.0.0.1 only.

  1. post    `oms-connector serve` WITH its workers (async export) receives N orders as POST /orders (bearer
             COMMERCE_TOKEN, C requests in flight, 10-item orders of bench/orders.py, unique numbers). Timed from
             the first POST: all POSTs answered (orders accepted/s) and every create received by the stub OMS
             (orders exported/s).
  2. pull    another `serve` WITH its workers, on its own database, polls a stub Adobe Commerce (a subprocess:
             tests/support/stub_commerce.py's GET /V1/orders with searchCriteria) every ADOBE_COMMERCE_ORDER_POLL_S
             (P, 1 s) in pages of S (100). Its first poll finds an empty store; then the same N orders (other
             numbers) appear at once. Timed from that moment: every order stored by the connector (polled in
             `sales_order` every 20 ms: orders discovered/s) and every create received by the stub OMS (orders
             exported/s). Discovery includes the wait for the next poll (up to P).

The stub OMS is bench/orders.py's (a subprocess with OAuth2 client credentials; it records when each create arrived,
CLOCK_MONOTONIC). Checked: every order reached the OMS exactly once in both phases (exit status 1 otherwise). The
summary gives each figure and the ratio pull / post. Everything lives in a throw-away embedded PostgreSQL that is
deleted at the end (also on error or SIGTERM).

    .venv/bin/python bench/order_pull.py [--orders N] [--concurrency C] [--page-size S] [--poll-s P] [--variants V]
                                         [--log-level L] [--timeout SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import asyncpg  # noqa: E402

from bench.ingest import (  # noqa: E402  (after the sys.path insert; it also quiets authlib's notice)
    HOST,
    Service,
    clean_env,
    create_database,
    free_port,
    start_postgres,
)
from bench.orders import COMMERCE_HEADERS, Stub, connector_service, order_document  # noqa: E402
from bench.stock import print_log_findings, run_bench  # noqa: E402

STUB_COMMERCE_TOKEN = "bench-adobe-commerce-token-0123456789"
POST_FIRST_ID = 600_000_001  # order numbers of the POST phase
PULL_FIRST_ID = 700_000_001  # … and of the pull phase
POLL_INTERVAL_S = 0.02
DUPLICATE_GRACE_S = 1.5  # after the last order arrived: time for a duplicate to show up


class BenchFailure(Exception):
    """The run cannot go on (a service did not start, the orders never arrived)."""


# --------------------------------------------------------------------------------------------------------------
# Orders, the same N for both phases (their numbers apart)
# --------------------------------------------------------------------------------------------------------------
def templates(variants: int) -> list[dict[str, Any]]:
    """bench/orders.py's 10-item orders as JSON-ready documents (what travels over the wire)."""
    from tests.support.orders import order_body

    return [json.loads(order_body(order_document(variant))) for variant in range(variants)]


def order(shapes: list[dict[str, Any]], index: int, first_id: int) -> dict[str, Any]:
    """Order ``index`` (from 0) of the templates ``shapes``, round robin: its own number and entity id; updated
    ten a second, in index order."""
    updated = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(1_780_000_000 + index // 10))
    return {
        **shapes[index % len(shapes)],
        "entity_id": index + 1,
        "increment_id": str(first_id + index),
        "created_at": updated,
        "updated_at": updated,
    }


# --------------------------------------------------------------------------------------------------------------
# The stub Adobe Commerce (run in a subprocess: `bench/order_pull.py --serve-stub-commerce --port P --orders N`)
# --------------------------------------------------------------------------------------------------------------
def serve_stub_commerce(port: int, orders: int, variants: int) -> None:
    """tests/support/stub_commerce.py's StubCommerce on uvicorn's default loop, in a process of its own. Its N
    orders are built at start and appear at once on ``POST /bench/publish`` (answering when, CLOCK_MONOTONIC)."""
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from tests.support.stub_commerce import StubCommerce

    shapes = templates(variants)
    documents = {index + 1: order(shapes, index, PULL_FIRST_ID) for index in range(orders)}

    class BenchStubCommerce(StubCommerce):
        def __init__(self) -> None:
            super().__init__(token=STUB_COMMERCE_TOKEN)
            self.app.router.routes.extend(
                [
                    Route("/health", self._health, methods=["GET"]),
                    Route("/bench/publish", self._publish, methods=["POST"]),
                    Route("/bench/requests", self._count, methods=["GET"]),
                ]
            )

        async def _health(self, _request: Request) -> JSONResponse:
            return JSONResponse({"status": "ok"})

        async def _publish(self, _request: Request) -> JSONResponse:
            with self._lock:
                self._orders.update(documents)  # shared, not copied: every answer is a copy
                return JSONResponse({"published": len(documents), "at": time.monotonic()})

        async def _count(self, _request: Request) -> JSONResponse:
            with self._lock:
                return JSONResponse({"order_searches": sum(1 for r in self.requests if r.path == "/orders")})

    stub = BenchStubCommerce()
    uvicorn.run(stub.app, host=HOST, port=port, log_level="warning", access_log=False, lifespan="off")


# --------------------------------------------------------------------------------------------------------------
# The phases
# --------------------------------------------------------------------------------------------------------------
@dataclass
class Phase:
    name: str
    numbers: list[str]
    started: float = 0.0  # CLOCK_MONOTONIC: first POST, or the orders published
    taken: float = 0.0  # every order accepted (POSTs answered) or discovered (stored)
    exported: float = 0.0  # the last create received by the stub OMS
    arrivals: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.numbers)

    def rate(self, until: float) -> float:
        return self.n / (until - self.started) if until > self.started else float("nan")

    def once(self) -> int:
        return sum(1 for number in self.numbers if len(self.arrivals.get(number, ())) == 1)


async def wait_for_oms(stub: Stub, phase: Phase, expected: int, timeout_s: float) -> None:
    """Until the stub OMS has ``expected`` orders in all; then the phase's arrivals and last one."""
    arrived = await stub.wait_for(expected, timeout_s)
    if arrived < expected:
        phase.errors.append(f"{phase.name}: only {arrived} of {expected} orders reached the stub OMS")
    await asyncio.sleep(DUPLICATE_GRACE_S)
    received = (await stub.report())["received"]
    phase.arrivals = {number: received[number] for number in phase.numbers if number in received}
    phase.exported = max((times[0] for times in phase.arrivals.values()), default=phase.started)
    if phase.once() != phase.n:
        phase.errors.append(f"{phase.name}: {phase.n - phase.once()} of {phase.n} orders NOT received exactly once")


async def post_phase(
    args: argparse.Namespace, session: aiohttp.ClientSession, connector: Service, stub: Stub, docs: list[bytes]
) -> Phase:
    numbers = [str(POST_FIRST_ID + index) for index in range(len(docs))]
    phase = Phase("POST /orders", numbers)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(docs)):
        queue.put_nowait(index)

    async def client() -> None:
        while not queue.empty():
            index = queue.get_nowait()
            async with session.post(connector.base_url + "/orders", data=docs[index], headers=COMMERCE_HEADERS) as r:
                body = await r.read()
                if r.status != 202 and len(phase.errors) < 5:
                    phase.errors.append(f"POST /orders {numbers[index]}: HTTP {r.status}: {body[:200]!r}")

    phase.started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(args.concurrency)))
    phase.taken = time.monotonic()
    await wait_for_oms(stub, phase, len(docs), args.timeout)
    return phase


async def pull_phase(
    args: argparse.Namespace,
    session: aiohttp.ClientSession,
    connector: Service,
    commerce: Service,
    stub: Stub,
    dsn: str,
    already: int,
) -> Phase:
    numbers = [str(PULL_FIRST_ID + index) for index in range(args.orders)]
    phase = Phase("pull from Adobe Commerce", numbers)

    async def searches() -> int:
        async with session.get(commerce.base_url + "/bench/requests") as response:
            return int((await response.json())["order_searches"])

    deadline = time.monotonic() + args.timeout
    while await searches() < 2:  # the first poll: the newest order (none), then an empty page
        if time.monotonic() > deadline:
            raise BenchFailure("the connector never polled the stub Adobe Commerce")
        await asyncio.sleep(POLL_INTERVAL_S)
    async with session.post(commerce.base_url + "/bench/publish") as response:
        phase.started = float((await response.json())["at"])
    connection = await asyncpg.connect(dsn)
    try:
        while await connection.fetchval("SELECT count(*) FROM sales_order") < args.orders:
            if time.monotonic() > deadline:
                phase.errors.append("the pull never discovered every order")
                break
            await asyncio.sleep(POLL_INTERVAL_S)
        phase.taken = time.monotonic()
        await wait_for_oms(stub, phase, already + args.orders, args.timeout)
        polls = await connection.fetch("SELECT result FROM message WHERE topic = 'connector.orders.pull' ORDER BY id")
        results = [json.loads(row["result"]) for row in polls]
        pages = sum(result["pages"] for result in results)
        seconds = sum(result["seconds"] for result in results)
        phase.notes.append(f"{len(results)} poll(s) journaled: {pages} pages, {seconds:.2f} s inside the polls")
    finally:
        await connection.close()
    return phase


def pull_connector(
    port: int, dsn: str, oms: Service, commerce: Service, args: argparse.Namespace, workdir: Path
) -> Service:
    """bench/orders.py's connector (workers, async export, the stub OMS with OAuth2), polling the stub Adobe
    Commerce."""
    service = connector_service(port, dsn, oms, args.log_level, workdir)
    service.name = "connector-pull"
    service.log_path = workdir / "connector-pull.log"
    service.env.update(
        ADOBE_COMMERCE_URL=f"{commerce.base_url}/rest/all/V1",
        ADOBE_COMMERCE_TOKEN=STUB_COMMERCE_TOKEN,
        ADOBE_COMMERCE_ORDER_POLL_S=str(args.poll_s),
        ADOBE_COMMERCE_ORDER_PAGE_SIZE=str(args.page_size),
    )
    return service


def print_phase(phase: Phase, taken: str) -> None:
    print(
        f"  {phase.name:<28} {phase.n} orders: {taken} {phase.rate(phase.taken):8.1f}/s "
        f"({phase.taken - phase.started:.2f} s), exported {phase.rate(phase.exported):8.1f}/s "
        f"({phase.exported - phase.started:.2f} s); received exactly once {phase.once()} of {phase.n}"
    )
    for note in phase.notes:
        print(f"  {'':<28} {note}")


async def run(args: argparse.Namespace, workdir: Path, services: list[Any]) -> int:
    print(
        f"OMS Connector order-pull bench: N={args.orders} orders, POST concurrency {args.concurrency}, pull pages "
        f"of {args.page_size} every {args.poll_s:g} s"
    )
    print(f"  on {os.cpu_count()} CPUs; workdir {workdir}")
    started = time.perf_counter()
    shapes = templates(args.variants)
    docs = [json.dumps(order(shapes, index, POST_FIRST_ID)).encode() for index in range(args.orders)]
    pg, admin_uri = await asyncio.to_thread(start_postgres, workdir)
    services.append(pg)  # stopped and deleted with the rest
    post_dsn = await create_database(admin_uri, "bench_post", migrated=True)
    pull_dsn = await create_database(admin_uri, "bench_pull", migrated=True)
    print(f"  embedded PostgreSQL ready, databases migrated ({time.perf_counter() - started:.1f} s)")

    oms_port, commerce_port = free_port(), free_port()
    oms = Service(
        "stub-oms",
        [sys.executable, str(ROOT / "bench/orders.py"), "--serve-stub-oms", "--port", str(oms_port)],
        clean_env(),
        oms_port,
        "/health",
        workdir,
    )
    commerce = Service(
        "stub-commerce",
        [
            sys.executable, str(Path(__file__).resolve()), "--serve-stub-commerce", "--port", str(commerce_port),
            "--orders", str(args.orders), "--variants", str(args.variants),
        ],
        clean_env(),
        commerce_port,
        "/health",
        workdir,
    )  # fmt: skip
    post = connector_service(free_port(), post_dsn, oms, args.log_level, workdir)
    pull = pull_connector(free_port(), pull_dsn, oms, commerce, args, workdir)
    services.extend([oms, commerce, post, pull])
    phases: list[Phase] = []
    failures: list[str] = []
    try:
        timeout = aiohttp.ClientTimeout(120)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256), timeout=timeout) as session:
            await oms.start(session)
            await commerce.start(session)
            stub = Stub(oms, session)
            await post.start(session)
            print(f"post: {args.orders} orders to POST /orders, {args.concurrency} in flight:")
            phases.append(await post_phase(args, session, post, stub, docs))
            post.stop()
            print_phase(phases[-1], "accepted")
            print_log_findings(post)

            await pull.start(session)
            print(f"pull: as many orders appear at once in the stub Adobe Commerce, polled every {args.poll_s:g} s:")
            phases.append(await pull_phase(args, session, pull, commerce, stub, pull_dsn, args.orders))
            pull.stop()
            print_phase(phases[-1], "discovered")
            print_log_findings(pull)
    except BenchFailure as exc:
        failures.append(str(exc))
    finally:
        for service in (post, pull, commerce, oms):
            service.stop()
    for phase in phases:
        failures.extend(phase.errors)
    print_summary(args, phases, failures, time.perf_counter() - started)
    return 1 if failures else 0


def print_summary(args: argparse.Namespace, phases: list[Phase], failures: list[str], seconds: float) -> None:
    print()
    print(f"Summary (N={args.orders} 10-item orders each way; {seconds:.0f} s in all)")
    print(f"  {'':<40} {'taken/s':>9} {'exported/s':>11} {'to export, s':>13}")
    for phase in phases:
        name = f"{phase.name} ({'accepted' if phase.name.startswith('POST') else 'discovered'})"
        print(
            f"  {name:<40} {phase.rate(phase.taken):9.1f} {phase.rate(phase.exported):11.1f} "
            f"{phase.exported - phase.started:13.2f}"
        )
    if len(phases) == 2:
        post, pull = phases
        print(
            f"  {'ratio pull / POST':<40} {pull.rate(pull.taken) / post.rate(post.taken):8.2f}x "
            f"{pull.rate(pull.exported) / post.rate(post.exported):10.2f}x"
        )
    for failure in failures:
        print(f"FAILED: {failure}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", "-n", type=int, default=5000, help="orders per phase (N)")
    parser.add_argument("--concurrency", "-c", type=int, default=32, help="POST /orders requests in flight (C)")
    parser.add_argument("--page-size", type=int, default=100, help="ADOBE_COMMERCE_ORDER_PAGE_SIZE (S)")
    parser.add_argument("--poll-s", type=float, default=1.0, help="ADOBE_COMMERCE_ORDER_POLL_S (P)")
    parser.add_argument("--variants", type=int, default=8, help="different orders (quantities), round robin")
    parser.add_argument("--log-level", default="WARNING", help="LOG_LEVEL of the connector subprocesses")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds before a phase is abandoned")
    parser.add_argument("--serve-stub-commerce", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve_stub_commerce:
        serve_stub_commerce(args.port, args.orders, args.variants)
        return 0
    if args.orders < 1 or args.concurrency < 1 or args.variants < 1 or not 1 <= args.page_size <= 300:
        parser.error("--orders, --concurrency and --variants must be at least 1, --page-size 1 to 300")
    if args.poll_s <= 0:
        parser.error("--poll-s must be positive")
    return run_bench(run, args, "omsp-")


if __name__ == "__main__":
    sys.exit(main())
