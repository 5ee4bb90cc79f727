"""Order-lifecycle benchmark: OMS shipments applied end to end, against the #2 ingest baseline, on 127.0.0.1 only.

One run, one throw-away embedded PostgreSQL (deleted at the end, also on error or SIGTERM):

  0. set-up    `oms-connector serve` WITH its workers and ADOBE_COMMERCE_URL/TOKEN pointing at a stub Adobe
               Commerce subprocess (tests/support/stub_commerce.py: Magento's quantity checks, invoices, shipments);
               N + W two-item orders (qty 2 + qty 1: three OMS unit lines) are posted to POST /orders and added to
               the stub store.
  1. lifecycle N signed `magento.logistics.fulfillment_management.customer_shipment_done` calls (Go style:
               `shimpent_id`, integer line numbers, one DHL package with tracking), one per order, from C concurrent
               keep-alive requests. Timed from the first request to the moment every shipment is (a) recorded in
               `order_shipment` and (b) delivered to the stub store: its invoice (GET order + POST /invoice) and its
               shipment (POST /ship) both `succeeded` in the outbox. Checked: the stub holds exactly N + W
               shipments and invoices (none twice), each for the right items and quantities.
  2. ingest    the #2 baseline (bench/ingest.py): `oms-connector serve --no-workers` receiving N signed JSON-RPC
               calls from the same client at the same C, in the same run. Ratio: shipments delivered per second /
               calls ingested per second.

Figures and ratios are printed, never asserted; exit status 1 when a request failed or a shipment is missing or
doubled.

    .venv/bin/python bench/lifecycle.py [--shipments N] [--concurrency C] [--warmup W] [--log-level L]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import asyncpg  # noqa: E402

from bench.ingest import (  # noqa: E402  (after the sys.path insert; it also quiets authlib's notice)
    COMMERCE_TOKEN,
    HOST,
    OPERATOR_TOKEN,
    SECRET,
    CpuMeter,
    LoadResult,
    Service,
    clean_env,
    create_database,
    free_port,
    run_load,
    run_with_workdir,
    signed_calls,
    start_postgres,
)
from bench.orders import ingest_connector_service  # noqa: E402

SHIPMENT_DONE = "magento.logistics.fulfillment_management.customer_shipment_done"
STORE_TOKEN = "bench-adobe-commerce-token-0123456789"
FIRST_ENTITY = 100_001
POLL_S = 0.05
COMMERCE_HEADERS = {"Authorization": f"Bearer {COMMERCE_TOKEN}", "Content-Type": "application/json"}


# --------------------------------------------------------------------------------------------------------------
# The stub Adobe Commerce (run in a subprocess: `bench/lifecycle.py --serve-stub-commerce --port P`)
# --------------------------------------------------------------------------------------------------------------
def serve_stub_commerce(port: int) -> None:
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from tests.support.stub_commerce import StubCommerce

    stub = StubCommerce(token=STORE_TOKEN)

    async def add_orders(request: Request) -> JSONResponse:
        for order in await request.json():
            stub.add_order(order["entity_id"], order["increment_id"], order["items"])
        return JSONResponse({"ok": True})

    async def counts(_request: Request) -> JSONResponse:
        shipments, invoices = stub.shipments, stub.invoices
        return JSONResponse(
            {
                "shipments": len(shipments),
                "invoices": len(invoices),
                "shipped_orders": len({s["order_id"] for s in shipments}),
                "wrong_items": sum(s["items"] != expected_items(s["order_id"]) for s in shipments + invoices),
            }
        )

    stub.app.router.routes[:0] = [
        Route("/bench/orders", add_orders, methods=["POST"]),
        Route("/bench/counts", counts, methods=["GET"]),
    ]
    uvicorn.run(stub.app, host=HOST, port=port, log_level="warning", access_log=False)


def expected_items(entity_id: int) -> list[dict[str, int]]:
    return [{"order_item_id": entity_id * 10 + 1, "qty": 2}, {"order_item_id": entity_id * 10 + 2, "qty": 1}]


# --------------------------------------------------------------------------------------------------------------
# Orders and shipments
# --------------------------------------------------------------------------------------------------------------
def order_document(entity_id: int) -> dict[str, Any]:
    from tests.support.orders import commerce_order, item

    return commerce_order(
        entity_id=entity_id,
        increment_id=f"{entity_id + 600_000_000}",
        items=[
            item(entity_id * 10 + 1, f"MUG-{entity_id % 97:03d}", qty=2, price="12.50"),
            item(entity_id * 10 + 2, f"TEE-{entity_id % 89:03d}", qty=1, price="20.00"),
        ],
    )


def shipment_call(entity_id: int) -> tuple[bytes, dict[str, str]]:
    from app.protocol.signature import sign

    number = f"{entity_id + 600_000_000}"
    lines = [
        (f"{entity_id * 10 + 1}-1", 1, "MUG"),
        (f"{entity_id * 10 + 1}-2", 2, "MUG"),
        (f"{entity_id * 10 + 2}-1", 3, "TEE"),
    ]
    params = {
        "shipment": {
            "shimpent_id": f"{number}-001",
            "order_id": number,
            "store_id": "default",
            "source_id": "WAREHOUSE_1",
            "method": "STANDARD",
            "shipment_date": "2026-11-24 14:05:09+01:00",
            "items": [
                {"order_line_id": line_id, "order_line_number": n, "sku": sku, "item_type": "PHYSICAL"}
                for line_id, n, sku in lines
            ],
            "packages": [
                {
                    "id": f"{number}-001",
                    "items": [n for _, n, _ in lines],
                    "carrier": "DHL",
                    "tracking_number": f"00340434{entity_id:012d}",
                    "tracking_link": "",
                    "tracking_comment": "",
                }
            ],
        }
    }
    document = {"jsonrpc": "2.0", "id": f"ship-{number}", "method": SHIPMENT_DONE, "params": params}
    body = json.dumps(document, separators=(",", ":")).encode()
    return body, {"Content-Type": "application/json", "X-Signature": sign(body, SECRET.encode())}


# --------------------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------------------
@dataclass
class Lifecycle:
    load: LoadResult
    recorded_s: float
    delivered_s: float
    recorded: int
    delivered: int
    cpu: dict[str, float]  # CPU ms per shipment: server (the connector), postgres, store (the stub), client

    def rate(self, seconds: float, count: int) -> float:
        return count / seconds if seconds > 0 else 0.0


def connector_service(
    port: int, dsn: str, store: Service, log_level: str, workdir: Path, *, record_only: bool
) -> Service:
    argv = [str(ROOT / ".venv/bin/oms-connector"), "serve", "--host", HOST, "--port", str(port)]
    delivery = {} if record_only else {
        "ADOBE_COMMERCE_URL": store.base_url + "/rest/all/V1", "ADOBE_COMMERCE_TOKEN": STORE_TOKEN,
    }  # fmt: skip
    env = clean_env(
        DATABASE_URL=dsn,
        OMS_SECRET=SECRET,
        OMS_REGISTER_AT_STARTUP="false",
        OPERATOR_TOKEN=OPERATOR_TOKEN,
        COMMERCE_TOKEN=COMMERCE_TOKEN,
        HANDLER_PLUGINS="[]",
        RUN_MIGRATIONS="false",
        LOG_LEVEL=log_level,
        **delivery,
    )
    return Service("connector-lifecycle", argv, env, port, "/health/ready", workdir)


async def post_orders(session: aiohttp.ClientSession, connector: Service, store: Service, entities: list[int]) -> None:
    documents = [order_document(entity) for entity in entities]
    stub_orders = [
        {
            "entity_id": d["entity_id"],
            "increment_id": d["increment_id"],
            "items": [{"item_id": int(i["item_id"]), "qty_ordered": int(i["qty_ordered"])} for i in d["items"]],
        }
        for d in documents
    ]
    async with session.post(store.base_url + "/bench/orders", json=stub_orders) as response:
        response.raise_for_status()
    from tests.support.orders import order_body

    pending = iter([order_body(document) for document in documents])

    async def poster() -> None:
        for body in pending:
            async with session.post(connector.base_url + "/orders", data=body, headers=COMMERCE_HEADERS) as answer:
                if answer.status != 202:
                    raise RuntimeError(f"POST /orders answered {answer.status}: {(await answer.text())[:300]}")

    await asyncio.gather(*(poster() for _ in range(16)))


async def wait_counts(
    dsn: str, expected: int, timeout_s: float, *, record_only: bool = False
) -> tuple[float, float, int, int]:
    """Seconds (from now) until ``expected`` shipments were recorded and until their invoice + ship messages all
    succeeded; with the counts reached."""
    connection = await asyncpg.connect(dsn)
    started = time.perf_counter()
    recorded_at = delivered_at = float("nan")
    recorded = delivered = 0
    try:
        while time.perf_counter() - started < timeout_s:
            recorded = int(await connection.fetchval("SELECT count(*) FROM order_shipment"))
            if recorded >= expected and recorded_at != recorded_at:
                recorded_at = time.perf_counter() - started
                if record_only:
                    break
            delivered = int(
                await connection.fetchval(
                    "SELECT count(*) FROM message WHERE topic = 'commerce.order.ship' AND status = 'succeeded'"
                )
            )
            pending = int(
                await connection.fetchval(
                    "SELECT count(*) FROM message WHERE channel = 'commerce' AND status <> 'succeeded'"
                )
            )
            if delivered >= expected and pending == 0:
                delivered_at = time.perf_counter() - started
                break
            await asyncio.sleep(POLL_S)
    finally:
        await connection.close()
    return recorded_at, delivered_at, recorded, delivered


async def lifecycle_phase(
    args: argparse.Namespace,
    session: aiohttp.ClientSession,
    services: list[Any],
    workdir: Path,
    dsn: str,
    store: Service,
    first_entity: int,
    *,
    record_only: bool,
) -> Lifecycle:
    n, c, w = args.shipments, args.concurrency, args.warmup
    connector = connector_service(free_port(), dsn, store, args.log_level, workdir, record_only=record_only)
    services.append(connector)
    await connector.start(session)
    entities = list(range(first_entity, first_entity + w + n))
    await post_orders(session, connector, store, entities)
    url = connector.base_url + "/oms/rpc"
    warm_load = await run_load("warm-up", session, url, [shipment_call(e) for e in entities[:w]], c)
    warm_recorded, warm_delivered, _, _ = await wait_counts(dsn, w, args.phase_timeout, record_only=record_only)
    if warm_load.errors or (warm_recorded if record_only else warm_delivered) != (
        warm_recorded if record_only else warm_delivered
    ):
        raise RuntimeError(f"warm-up failed: {warm_load.first_error or 'not done in time'}")
    meter = CpuMeter(workdir / "pg")
    before = meter.sample(connector.process.pid if connector.process else None), _cpu(store)
    load = await run_load("customer_shipment_done", session, url, [shipment_call(e) for e in entities[w:]], c)
    recorded_s, delivered_s, recorded, delivered = await wait_counts(
        dsn, w + n, args.phase_timeout, record_only=record_only
    )
    after = meter.sample(connector.process.pid if connector.process else None), _cpu(store)
    cpu = CpuMeter.per_message_ms(before[0], after[0], n)
    cpu["store"] = (after[1] - before[1]) * 1000 / n
    connector.stop()
    # wait_counts is timed from the last webhook's answer; the phase from the first request
    return Lifecycle(load, load.seconds + recorded_s, load.seconds + delivered_s, recorded, delivered, cpu)


def _cpu(service: Service) -> float:
    import psutil

    if service.process is None:
        return 0.0
    times = psutil.Process(service.process.pid).cpu_times()
    return float(times.user + times.system)


def print_phase(title: str, result: Lifecycle, n: int, *, delivered: bool) -> None:
    load = result.load
    print(title)
    print(
        f"  webhooks answered        {load.rate:9.0f} /s   p50 {load.pct(0.5):7.1f} ms   "
        f"p99 {load.pct(0.99):7.1f} ms   errors {load.errors}"
    )
    print(f"  shipments recorded       {n / result.recorded_s:9.0f} /s   (all {n} after {result.recorded_s:.2f} s)")
    if delivered:
        print(
            f"  shipments delivered      {n / result.delivered_s:9.0f} /s   (invoice and shipment in the stub store: "
            f"GET order, POST invoice, POST ship; all {n} after {result.delivered_s:.2f} s)"
        )
    cpu = result.cpu
    print(
        f"  CPU ms/shipment          connector {cpu['server']:.2f}, PostgreSQL {cpu['postgres']:.2f}, "
        f"stub store {cpu['store']:.2f}, bench client {cpu['client']:.2f} (2 cores: "
        f"{sum(cpu.values()) / 2:.2f} ms of wall time per shipment at best)"
    )


async def run(args: argparse.Namespace, workdir: Path, services: list[Any]) -> int:
    n, c, w = args.shipments, args.concurrency, args.warmup
    print(f"OMS Connector lifecycle bench: N={n} shipments, C={c} concurrent requests, W={w} warm-up")
    print(f"  on {os.cpu_count()} CPUs; workdir {workdir}")
    print("  (set-up posts N + W orders per phase to the connector first; a phase takes about N / 100 s)")
    server, admin = start_postgres(workdir)
    services.append(server)
    recorded_dsn = await create_database(admin, "bench_recorded", migrated=True)
    delivered_dsn = await create_database(admin, "bench_delivered", migrated=True)
    ingest_dsn = await create_database(admin, "bench_ingest", migrated=True)
    failures: list[str] = []
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=max(c, 32))) as session:
        store_port = free_port()
        store = Service(
            "stub-commerce",
            [sys.executable, str(Path(__file__).resolve()), "--serve-stub-commerce", "--port", str(store_port)],
            clean_env(),
            store_port,
            "/bench/counts",
            workdir,
        )
        services.append(store)
        await store.start(session)

        ingest = ingest_connector_service(free_port(), ingest_dsn, args.log_level, workdir)
        services.append(ingest)
        await ingest.start(session)
        await run_load("ingest warm-up", session, ingest.base_url + "/oms/rpc", signed_calls("warm", w), c)
        baseline = await run_load("ingest (#2)", session, ingest.base_url + "/oms/rpc", signed_calls("timed", n), c)
        ingest.stop()

        only = await lifecycle_phase(
            args, session, services, workdir, recorded_dsn, store, FIRST_ENTITY, record_only=True
        )
        full = await lifecycle_phase(
            args, session, services, workdir, delivered_dsn, store, FIRST_ENTITY + 100_000, record_only=False
        )
        async with session.get(store.base_url + "/bench/counts") as response:
            counts = await response.json()

    print("ingest baseline (#2): signed JSON-RPC calls stored in the inbox (serve --no-workers)")
    print(
        f"  calls ingested           {baseline.rate:9.0f} /s   p50 {baseline.pct(0.5):7.1f} ms   "
        f"p99 {baseline.pct(0.99):7.1f} ms   errors {baseline.errors}"
    )
    print_phase("lifecycle, recorded only (no ADOBE_COMMERCE_*): webhook -> inbox -> handler", only, n, delivered=False)
    print_phase(
        "lifecycle, delivered: webhook -> inbox -> handler -> outbox -> stub Adobe Commerce", full, n, delivered=True
    )
    print(
        f"  stub store               {counts['shipments']} shipments, {counts['invoices']} invoices, "
        f"{counts['shipped_orders']} orders shipped, {counts['wrong_items']} with wrong items"
    )
    print("summary (ratios against the ingest baseline of this run)")
    print(f"  shipments recorded (record only) / calls ingested   {n / only.recorded_s / baseline.rate:6.3f}x")
    print(f"  shipments delivered               / calls ingested   {n / full.delivered_s / baseline.rate:6.3f}x")
    total = w + n
    if only.load.errors or full.load.errors or baseline.errors:
        failures.append(f"requests failed: {only.load.first_error or full.load.first_error or baseline.first_error}")
    if counts["shipments"] != total or counts["invoices"] != total or counts["shipped_orders"] != total:
        failures.append(f"the stub store holds {counts}, expected {total} shipments and invoices, one per order")
    if counts["wrong_items"]:
        failures.append(f"{counts['wrong_items']} documents with the wrong items")
    if only.recorded != total or full.recorded != total or full.delivered != total:
        failures.append(f"recorded {only.recorded} / {full.recorded}, delivered {full.delivered}, expected {total}")
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shipments", "-n", type=int, default=2000, help="timed shipments (N), one per order")
    parser.add_argument("--concurrency", "-c", type=int, default=32, help="concurrent webhook requests (C)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed shipments first (W)")
    parser.add_argument("--log-level", default="WARNING", help="LOG_LEVEL of the connector subprocesses")
    parser.add_argument("--phase-timeout", type=float, default=300.0, help="seconds before a phase is abandoned")
    parser.add_argument("--serve-stub-commerce", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_stub_commerce:
        serve_stub_commerce(args.port)
        return 0

    return run_with_workdir(run, args, "omsl-")


if __name__ == "__main__":
    sys.exit(main())
