"""Full catalog export benchmark: products/s and peak RSS per send mode, against baselines measured in the same run,
on 127.0.0.1 only, with a throw-away embedded PostgreSQL (deleted at the end, also on error or SIGTERM).

  set-up     `oms-connector migrate` (as a deployment does: it also writes the catalog settings in force, which
             the catalog keeps each product's params encoded for, migration 0008), then the connector's catalog table
             filled (SQL generate_series: simple products with a name and two configured attributes, one in ten
             disabled; the catalog's trigger encodes each as it is inserted).
  export     per send mode and size: `oms-connector catalog-export run` (a subprocess, OMS_CATALOG_BATCH_SIZE=5000)
             exports the S products (the catalog table holds exactly S for that run; none recorded as exported
             before: every run is a first export, which records every product's fingerprint) to a stub OMS
             subprocess (`--serve-stub-oms`: aiohttp, answers every call, counts calls per JSON-RPC id; it scans
             the body for the ids and parses one request in ten to check the scan, see serve_stub_oms). Timed from
             the command's start to its end (and, as "export alone", from the export's recorded start to its
             finish: no process start-up); peak RSS of the command sampled every 20 ms; CPU per 1000 products of
             the command, PostgreSQL and the stub. Checked: the stub received each product exactly once.
  baselines  raw JSON encoding of the same products' JSON-RPC requests (json.dumps, one core, in this process) —
             the rpc-batch mode's reference; a bare aiohttp loop posting the same products pre-encoded as
             5000-call batch requests to the same stub (what this stub and machine allow rpc-batch, shown as a
             second ratio); and a raw aiohttp POST loop (32 concurrent keep-alive connections, one JSON-RPC call
             per product) against the same stub — the client-side ceiling, the single mode's reference.

Figures and ratios are printed, never asserted; exit status 1 when a product was missing or sent twice.

    .venv/bin/python bench/catalog.py [--sizes 100000,1000000] [--modes rpc-batch,single] [--baseline-calls N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import subprocess
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
    HOST,
    OPERATOR_TOKEN,
    SECRET,
    Service,
    clean_env,
    create_database,
    free_port,
    run_with_workdir,
    start_postgres,
)

UPDATED = "magento.catalog.product_management.updated"
ATTRIBUTES = ["color", "brand"]


# --------------------------------------------------------------------------------------------------------------
# The stub OMS (a subprocess: `bench/catalog.py --serve-stub-oms --port P`)
# --------------------------------------------------------------------------------------------------------------
CALL_ID = re.compile(rb'"id"\s*:\s*"([^"\\]*)"')  # bench ids and products hold no quote, backslash or other "id" key
CHECK_EVERY = 10  # requests: one in ten is parsed as JSON and checked against the scan


def serve_stub_oms(port: int) -> None:
    """Answers every call with an empty result and counts calls per JSON-RPC id (one id per product and export).

    It scans the raw body for the ids instead of parsing it: it shares the 2 cores with the connector it measures,
    and parsing a batch cost it 2.5x the CPU per product of the raw-encoding baseline (a real OMS runs elsewhere).
    One request in CHECK_EVERY is parsed as JSON and checked: the same ids, in order, each a JSON-RPC 2.0 call of
    the product whose SKU ends its id. A failed check answers HTTP 500 and is counted."""
    from aiohttp import web

    seen: dict[bytes, int] = {}
    state = {"requests": 0, "check_failures": 0}

    def checked(body: bytes, ids: list[bytes]) -> bool:
        try:
            document = json.loads(body)
            calls = document if isinstance(document, list) else [document]
            return [call["id"].encode() for call in calls] == ids and all(
                call["jsonrpc"] == "2.0" and call["id"].endswith(call["params"]["product"]["sku"]) for call in calls
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return False

    async def rpc(request: web.Request) -> web.Response:
        body = await request.read()
        ids = CALL_ID.findall(body)
        state["requests"] += 1
        if not ids or (state["requests"] % CHECK_EVERY == 1 and not checked(body, ids)):
            state["check_failures"] += 1
            return web.Response(status=500, text="the request is not what the scan found")
        for call_id in ids:
            seen[call_id] = seen.get(call_id, 0) + 1
        answers = [b'{"jsonrpc":"2.0","id":"' + call_id + b'","result":[]}' for call_id in ids]
        answer = b"[" + b",".join(answers) + b"]" if body.lstrip().startswith(b"[") else answers[0]
        return web.Response(body=answer, content_type="application/json")

    async def counts(_request: web.Request) -> web.Response:
        twice = sum(1 for n in seen.values() if n > 1)
        return web.json_response({"products": len(seen), "calls": sum(seen.values()), "twice": twice, **state})

    async def reset(_request: web.Request) -> web.Response:
        seen.clear()
        state.update(requests=0, check_failures=0)
        return web.json_response({"ok": True})

    app = web.Application(client_max_size=1024**3)
    app.add_routes([web.post("/api/", rpc), web.get("/bench/counts", counts), web.post("/bench/reset", reset)])
    web.run_app(app, host=HOST, port=port, access_log=None, print=None)


# --------------------------------------------------------------------------------------------------------------
# Phases
# --------------------------------------------------------------------------------------------------------------
def product_params(n: int) -> dict[str, Any]:
    """What the export sends for product n (the same as the SQL below fills in)."""
    return {
        "product": {
            "type": "simple",
            "sku": f"SKU-{n:07d}",
            "name": [{"value": f"Product {n}", "locale": "en_US"}],
            "enabled": n % 10 != 0,
            "custom_attributes": [
                {"attribute_code": "color", "value": str(n % 17)},
                {"attribute_code": "brand", "value": f"Brand {n % 101}"},
            ],
            "children_skus": [],
        }
    }


async def fill_catalog(dsn: str, size: int) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("TRUNCATE catalog_product, catalog_product_exported, catalog_export")
        await connection.execute(
            """
            INSERT INTO catalog_product (sku, type, name, enabled, custom_attributes, created_at, updated_at)
            SELECT 'SKU-' || lpad(n::text, 7, '0'), 'simple', 'Product ' || n, n % 10 <> 0,
                   jsonb_build_object('color', (n % 17)::text, 'brand', 'Brand ' || (n % 101)), now(), now()
              FROM generate_series(1, $1) AS n
            """,
            size,
        )
        # A catalog as it stands in a running deployment: vacuumed (hint bits set, visibility map) and checkpointed,
        # so the export does not pay for the bulk fill's clean-up.
        await connection.execute("VACUUM (ANALYZE) catalog_product")
        await connection.execute("CHECKPOINT")
    finally:
        await connection.close()


@dataclass
class Export:
    mode: str
    size: int
    seconds: float
    peak_rss_mb: float
    products: int
    calls: int
    twice: int
    output: str
    cpu: dict[str, float]  # CPU seconds of the export command, PostgreSQL and the stub OMS during the run
    export_seconds: float  # started_at to finished_at as the export recorded them (no process start-up)
    check_failures: int  # requests the stub parsed and found not to be what its scan read

    @property
    def export_rate(self) -> float:
        return self.size / self.export_seconds if self.export_seconds > 0 else 0.0

    def cpu_per_1000(self) -> str:
        return ", ".join(f"{name} {seconds * 1000 * 1000 / self.size:.1f} ms" for name, seconds in self.cpu.items())

    @property
    def rate(self) -> float:
        return self.size / self.seconds if self.seconds > 0 else 0.0


async def export_run(
    dsn: str, pgdata: Path, stub: Service, session: aiohttp.ClientSession, mode: str, size: int
) -> Export:
    import psutil

    async with session.post(stub.base_url + "/bench/reset") as response:
        response.raise_for_status()
    connection = await asyncpg.connect(dsn)
    try:  # a first export, whatever ran before it
        await connection.execute("TRUNCATE catalog_product_exported, catalog_export")
    finally:
        await connection.close()
    env = clean_env(
        DATABASE_URL=dsn,
        OMS_URL=stub.base_url + "/api/",
        OMS_SECRET=SECRET,
        OPERATOR_TOKEN=OPERATOR_TOKEN,
        OMS_CATALOG_SEND_MODE=mode,
        OMS_CATALOG_BATCH_SIZE="5000",
        OMS_PRODUCT_ATTRIBUTES=json.dumps(ATTRIBUTES),
        RUN_MIGRATIONS="false",
        LOG_LEVEL="WARNING",
    )
    argv = [str(ROOT / ".venv/bin/oms-connector"), "catalog-export", "run"]
    cpu_before = cpu_seconds(pgdata, stub)
    started = time.perf_counter()
    process = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    peak = 0
    watched = psutil.Process(process.pid)
    while process.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.Error:
            pass
        await asyncio.sleep(0.02)
    seconds = time.perf_counter() - started
    await asyncio.sleep(0.2)  # the command's PostgreSQL backends exit after it
    cpu_after = cpu_seconds(pgdata, stub)
    cpu = {name: cpu_after[name] - cpu_before[name] for name in cpu_before}
    output = (process.stdout.read() if process.stdout else b"").decode(errors="replace").strip()
    async with session.get(stub.base_url + "/bench/counts") as response:
        counts = await response.json()
    connection = await asyncpg.connect(dsn)
    try:
        export_seconds = await connection.fetchval(
            "SELECT extract(epoch FROM finished_at - started_at) FROM catalog_export ORDER BY id DESC LIMIT 1"
        )
    finally:
        await connection.close()
    return Export(
        mode,
        size,
        seconds,
        peak / 2**20,
        counts["products"],
        counts["calls"],
        counts["twice"],
        output,
        cpu,
        float(export_seconds or 0),
        counts["check_failures"],
    )


def cpu_seconds(pgdata: Path, stub: Service) -> dict[str, float]:
    """Cumulative CPU seconds: the export command (this process's waited-for children: the stub still runs),
    PostgreSQL (the postmaster, its live processes and the exited ones it waited for) and the stub OMS."""
    import psutil

    def own(process: Any) -> float:
        try:
            times = process.cpu_times()
            return float(times.user + times.system)
        except psutil.Error:
            return 0.0

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    postmaster = psutil.Process(int((pgdata / "postmaster.pid").read_text().split()[0]))
    exited = postmaster.cpu_times()
    pg = own(postmaster) + exited.children_user + exited.children_system
    pg += sum(own(p) for p in postmaster.children(recursive=True))
    assert stub.process is not None
    return {
        "connector": children.ru_utime + children.ru_stime,
        "postgres": pg,
        "stub": own(psutil.Process(stub.process.pid)),
    }


def request(n: int, prefix: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": f"{prefix}SKU-{n:07d}", "method": UPDATED, "params": product_params(n)}


def json_baseline(size: int) -> float:
    """Products/s of json.dumps over the same JSON-RPC requests the export sends, one core (built beforehand, as
    the catalog rows are)."""
    requests = [request(n, "mdc-catalog-1-") for n in range(1, size + 1)]
    started = time.perf_counter()
    for item in requests:
        json.dumps(item, separators=(",", ":"))
    return size / (time.perf_counter() - started)


async def batch_ceiling(stub: Service, size: int, batch: int = 5000) -> float:
    """Products/s of a bare aiohttp loop posting the same products, already encoded, as JSON-RPC batch requests of
    ``batch`` calls to the same stub and reading each answer as JSON: what this stub and machine allow rpc-batch."""
    bodies = [
        ("[" + ",".join(json.dumps(request(n, "ceiling-")) for n in range(start, min(start + batch, size + 1))) + "]")
        for start in range(1, size + 1, batch)
    ]
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        for body in bodies:
            async with session.post(
                stub.base_url + "/api/", data=body.encode(), headers={"Content-Type": "application/json"}
            ) as answer:
                answer.raise_for_status()
                json.loads(await answer.read())
        return size / (time.perf_counter() - started)


async def post_baseline(stub: Service, calls: int, concurrency: int = 32) -> float:
    """Products/s of a bare aiohttp loop posting one JSON-RPC call per product to the same stub."""
    bodies = iter(json.dumps(request(n, "raw-")).encode() for n in range(1, calls + 1))
    url = stub.base_url + "/api/"
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            for body in bodies:
                async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as answer:
                    answer.raise_for_status()
                    await answer.read()

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        return calls / (time.perf_counter() - started)


# --------------------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------------------
async def run(args: argparse.Namespace, workdir: Path, services: list[Any]) -> int:
    sizes = [int(size) for size in args.sizes.split(",")]
    modes = args.modes.split(",")
    print(f"OMS Connector catalog-export bench: sizes {sizes}, modes {modes}; {os.cpu_count()} CPUs; {workdir}")
    server, admin = start_postgres(workdir)
    services.append(server)
    dsn = await create_database(admin, "bench_catalog", migrated=False)
    # As a deployment does: `oms-connector migrate` also writes the catalog settings in force (attributes, locale),
    # which the catalog keeps each product encoded for.
    subprocess.run(
        [str(ROOT / ".venv/bin/oms-connector"), "migrate"],
        env=clean_env(DATABASE_URL=dsn, OPERATOR_TOKEN=OPERATOR_TOKEN, OMS_PRODUCT_ATTRIBUTES=json.dumps(ATTRIBUTES)),
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    failures: list[str] = []
    results: list[Export] = []
    async with aiohttp.ClientSession() as session:
        port = free_port()
        stub = Service(
            "stub-oms",
            [sys.executable, str(Path(__file__).resolve()), "--serve-stub-oms", "--port", str(port)],
            clean_env(),
            port,
            "/bench/counts",
            workdir,
        )
        services.append(stub)
        await stub.start(session)
        for size in sizes:
            started = time.perf_counter()
            await fill_catalog(dsn, size)
            print(f"  catalog filled with {size:,} products in {time.perf_counter() - started:.1f} s")
            for mode in modes:
                result = await export_run(dsn, workdir / "pg", stub, session, mode, size)
                results.append(result)
                print(
                    f"  {mode:<9} {size:>9,} products: {result.seconds:7.1f} s, {result.rate:9,.0f} products/s, "
                    f"peak RSS {result.peak_rss_mb:6.1f} MiB; CPU per 1000 products: {result.cpu_per_1000()}"
                )
                if result.products != size or result.calls != size or result.twice or result.check_failures:
                    failures.append(
                        f"{mode} {size}: the stub saw {result.products} products in {result.calls} calls "
                        f"({result.twice} twice, {result.check_failures} failed checks); "
                        f"the command said: {result.output[-500:]}"
                    )
        raw_json = json_baseline(min(max(sizes), 200_000))
        ceiling = await batch_ceiling(stub, min(max(sizes), 200_000))
        raw_post = await post_baseline(stub, args.baseline_calls)
    print("baselines (same run)")
    print(f"  raw json.dumps of the same JSON-RPC requests, one core  {raw_json:11,.0f} products/s")
    print(f"  bare aiohttp loop of pre-encoded 5000-call batches      {ceiling:11,.0f} products/s (stub ceiling)")
    print(f"  raw aiohttp POST loop, 32 connections, same stub        {raw_post:11,.0f} products/s")
    print("summary")
    for result in results:
        base, name = (raw_json, "raw JSON") if result.mode == "rpc-batch" else (raw_post, "raw POST loop")
        extra = f", {result.rate / ceiling:5.3f}x the stub ceiling" if result.mode == "rpc-batch" else ""
        print(
            f"  {result.mode:<9} {result.size:>9,}: {result.rate:9,.0f} products/s = {result.rate / base:5.3f}x "
            f"{name}{extra}; export alone {result.export_rate:9,.0f} products/s; peak RSS {result.peak_rss_mb:.1f} MiB"
        )
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="catalog sizes, comma-separated")
    parser.add_argument("--modes", default="rpc-batch,single", help="send modes, comma-separated")
    parser.add_argument("--baseline-calls", type=int, default=50_000, help="calls of the raw POST loop")
    parser.add_argument("--serve-stub-oms", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_stub_oms:
        serve_stub_oms(args.port)
        return 0

    return run_with_workdir(run, args, "omsk-")


if __name__ == "__main__":
    sys.exit(main())
