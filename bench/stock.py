"""Stock benchmark of the OMS Connector against bare baselines, on 127.0.0.1 only, in one run.

  1. FULL      the real connector (`oms-connector serve`, uvicorn subprocess WITH its bus workers) receives a FULL
               snapshot of S SKUs (aggregate EU-WEB) as S/P signed JSON-RPC calls of P SKUs each
               (`magento.inventory.aggregate_stock_management.updated`, PHP-style numeric-string quantities), posted
               one after the other on a keep-alive connection, each acknowledged before the next (as the OMS does).
               Timed from the first POST until every page is `succeeded` in the `message` table (polled every
               20 ms). Round 1 inserts the SKUs, round 2 sends a later snapshot of the same SKUs (the UPDATE path).
               Checked afterwards: every page's journal result says applied=P, stale=0, and `stock` holds S rows
               of that snapshot with the quantities sent.
  2. baseline  the same rows, upserted by the connector's array statement (`APPLY_STOCK`, aimed at a scratch
               table `CREATE TABLE stock_scratch (LIKE stock INCLUDING ALL)`): S/P autocommitted statements on one
               plain asyncpg connection, parameters built beforehand. Round 1 into the empty table, round 2 with a
               later source_ts. The ratio connector / baseline per round is what the target (<= 1.3x, #18) is about.
  3. DELTA     N signed DELTA messages of one SKU each, posted with C concurrent keep-alive requests, spread over A
               aggregates (stock lanes are per aggregate: a lane's messages are applied in order, the ready ones
               in batches of one statement, so A bounds the parallelism), timed from the first POST until all are
               `succeeded`; then the same N on a single aggregate (one lane: the target is >= 1,500 messages/s).
               Against bench/ingest.py's bare FastAPI app (one INSERT per request, same N and C), which only
               stores the calls.

Untimed warm-ups run first, on other aggregates: one FULL page through the connector and one statement on the
baseline's connection, then W DELTAs through the connector and W calls to the ingest baseline.
Figures and ratios are printed, never asserted; the exit status is 1 when a request or a message failed or a row
is missing. Everything lives in a throw-away embedded PostgreSQL that is deleted at the end (also on error or
SIGTERM).

    .venv/bin/python bench/stock.py [--skus S] [--page P] [--deltas N] [--concurrency C] [--aggregates A]
                                    [--warmup W] [--log-level L] [--phase-timeout SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

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
    REQUEST_TIMEOUT_S,
    SECRET,
    CpuMeter,
    LoadResult,
    Service,
    clean_env,
    cleanup,
    create_database,
    execute,
    free_port,
    print_load,
    run_load,
    start_postgres,
)

FULL_AGGREGATE = "EU-WEB"
SCRATCH_TABLE = "stock_scratch"
POLL_INTERVAL_S = 0.02
TARGET_RATIO = 1.3  # #18's target for FULL snapshots: connector <= 1.3x the raw upsert, both rounds
ONE_LANE_TARGET = 1500  # #18's target for one stock lane (1 aggregate, one-SKU DELTAs): messages/s
FAILED_STATUSES = ("failed", "dead", "rejected", "discarded")
Call = tuple[bytes, dict[str, str]]


class BenchFailure(Exception):
    """A request failed, a message failed or a row is missing: the run is not valid."""


# --------------------------------------------------------------------------------------------------------------
# Messages and baseline parameters, all built before any timer starts
# --------------------------------------------------------------------------------------------------------------
def sku(i: int) -> str:
    return f"SKU-{i:06d}"


def quantity(i: int, salt: int) -> str:
    """A numeric string like the PHP peer sends, different per SKU and per round."""
    return f"{(i * 37 + salt * 101) % 1000}.{(i + salt) % 4 * 25:02d}00"


def oms_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")  # zoneless, as the PHP peer sends it (read as OMS_TIMEZONE=UTC)


def stock_call(call_id: str, aggregate: str, mode: str, created_on: datetime, rows: list[tuple[str, str]]) -> Call:
    from app.protocol.signature import sign
    from app.protocol.stock import STOCK_UPDATED

    snapshot = {
        "aggregate_id": aggregate,
        "mode": mode,
        "created_on": oms_time(created_on),
        "stock": [{"sku": s, "quantity": q, "unlimited": False} for s, q in rows],
    }
    document = {"jsonrpc": "2.0", "id": call_id, "method": STOCK_UPDATED, "params": {"snapshot": snapshot}}
    body = json.dumps(document, separators=(",", ":")).encode()
    return body, {"Content-Type": "application/json", "X-Signature": sign(body, SECRET.encode(), "sha1")}


@dataclass
class Snapshot:
    """One FULL snapshot: the signed pages for the connector and the same rows as APPLY_STOCK parameters."""

    label: str
    aggregate: str
    created_on: datetime  # naive UTC, as sent
    calls: list[Call]
    pages: list[tuple[list[str], list[str], list[bool]]]  # quantities as the decimal text APPLY_STOCK takes

    @property
    def skus(self) -> int:
        return sum(len(page[0]) for page in self.pages)

    @property
    def source_ts(self) -> datetime:
        return self.created_on.replace(tzinfo=UTC)

    @property
    def total_quantity(self) -> Decimal:
        return sum((Decimal(q) for page in self.pages for q in page[1]), Decimal(0))


def full_snapshot(label: str, aggregate: str, skus: int, page: int, created_on: datetime, salt: int) -> Snapshot:
    calls, pages = [], []
    for number, first in enumerate(range(1, skus + 1, page)):
        rows = [(sku(i), quantity(i, salt)) for i in range(first, min(first + page, skus + 1))]
        calls.append(stock_call(f"{label}-page-{number}", aggregate, "FULL", created_on, rows))
        pages.append(([s for s, _ in rows], [str(q) for _, q in rows], [False] * len(rows)))
    return Snapshot(label, aggregate, created_on, calls, pages)


def delta_calls(label: str, count: int, aggregates: list[str], first_created_on: datetime) -> list[Call]:
    """One SKU per message, each message one second later than the one before, round-robin over the aggregates."""
    return [
        stock_call(
            f"{label}-{i}",
            aggregates[i % len(aggregates)],
            "DELTA",
            first_created_on + timedelta(seconds=i),
            [(sku(i + 1), quantity(i + 1, 7))],
        )
        for i in range(count)
    ]


# --------------------------------------------------------------------------------------------------------------
# The connector, end to end: POST, then poll the journal until every message succeeded
# --------------------------------------------------------------------------------------------------------------
@dataclass
class EndToEnd:
    name: str
    n: int  # messages
    rows: int  # stock rows they carry
    seconds: float  # first POST → all succeeded
    load: LoadResult  # the POSTs alone (load.seconds: first POST → last answer)
    journal: list[asyncpg.Record] = field(default_factory=list)
    cpu: dict[str, float] | None = None  # CPU seconds: server, postgres, client
    retried: list[str] = field(default_factory=list)
    started_wall: datetime | None = None  # the first POST, on the clock the connector stamps the journal with

    @property
    def rate(self) -> float:
        return self.n / self.seconds if self.seconds > 0 else 0.0

    def breakdown(self) -> dict[str, float]:
        """Where the serial lane's time went, from the journal's timestamps (seconds; they add up to ``seconds``):
        first POST → first claim, in handlers (parse + APPLY_STOCK), between a message's outcome and the next
        claim (FINISH update, commit, next claim and payload decode), last outcome → seen by the bench's poll."""
        first, last = self.journal[0], self.journal[-1]
        assert self.started_wall is not None
        return {
            "lead-in": (first["started_at"] - self.started_wall).total_seconds(),
            "handlers": sum((r["finished_at"] - r["started_at"]).total_seconds() for r in self.journal),
            "between": sum(
                (b["started_at"] - a["finished_at"]).total_seconds()
                for a, b in zip(self.journal, self.journal[1:], strict=False)
            ),
            "tail": self.seconds - (last["finished_at"] - self.started_wall).total_seconds(),
        }


class Journal:
    """The bench's own plain asyncpg connection to the connector's database."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    async def mark(self) -> int:
        return int(await self.connection.fetchval("SELECT coalesce(max(id), 0) FROM message"))

    async def wait(self, after: int, expected: int, posting: asyncio.Task[LoadResult], timeout_s: float) -> list[str]:
        """Until ``expected`` inbound messages with id > ``after`` have succeeded. Returns the errors of attempts
        that were retried on the way; raises on a failed message, a failed POST or the timeout."""
        deadline = time.monotonic() + timeout_s
        retried: list[str] = []
        while True:
            row = await self.connection.fetchrow(
                "SELECT count(*) FILTER (WHERE status = 'succeeded') AS ok,"
                "       count(*) FILTER (WHERE status = ANY($2::message_status[])) AS bad,"
                "       count(*) FILTER (WHERE status = 'retrying') AS retrying"
                "  FROM message WHERE direction = 'in' AND id > $1",
                after,
                list(FAILED_STATUSES),
            )
            if row["bad"]:
                failures = await self.connection.fetch(
                    "SELECT id, external_id, status::text, last_error FROM message"
                    " WHERE direction = 'in' AND id > $1 AND status = ANY($2::message_status[]) ORDER BY id LIMIT 5",
                    after,
                    list(FAILED_STATUSES),
                )
                lines = [f"  message {r['id']} ({r['external_id']}) {r['status']}: {r['last_error']}" for r in failures]
                raise BenchFailure(f"{row['bad']} message(s) did not succeed:\n" + "\n".join(lines))
            if row["retrying"] and not retried:
                retried = [
                    f"message {r['id']} ({r['external_id']}): {r['last_error']}"
                    for r in await self.connection.fetch(
                        "SELECT id, external_id, last_error FROM message"
                        " WHERE direction = 'in' AND id > $1 AND status = 'retrying' ORDER BY id LIMIT 3",
                        after,
                    )
                ]
            if row["ok"] >= expected:
                return retried
            if posting.done() and (posting.exception() is not None or posting.result().errors):
                load = posting.result()  # re-raises the exception, if any
                raise BenchFailure(f"{load.errors} POST(s) failed; first: {load.first_error}")
            if time.monotonic() > deadline:
                raise BenchFailure(f"timeout: {row['ok']} of {expected} messages succeeded after {timeout_s:g} s")
            await asyncio.sleep(POLL_INTERVAL_S)

    async def records(self, after: int) -> list[asyncpg.Record]:
        return await self.connection.fetch(
            "SELECT id, external_id, status::text, result::text, duration_ms, created_at, started_at, finished_at"
            "  FROM message WHERE direction = 'in' AND id > $1 ORDER BY id",
            after,
        )


@dataclass
class Connector:
    """The running connector as the phases drive it: where to POST, how to watch its journal and its CPU."""

    session: aiohttp.ClientSession
    url: str
    journal: Journal
    meter: CpuMeter
    pid: int | None

    async def end_to_end(self, name: str, calls: list[Call], concurrency: int, rows: int, timeout_s: float) -> EndToEnd:
        """POST ``calls`` (``concurrency`` at a time, keep-alive) and time until all of them succeeded."""
        after = await self.journal.mark()
        before = self.meter.sample(self.pid)
        started_wall = datetime.now(UTC)
        started = time.perf_counter()
        posting = asyncio.create_task(run_load(name, self.session, self.url, calls, concurrency))
        try:
            retried = await self.journal.wait(after, len(calls), posting, timeout_s)
            seconds = time.perf_counter() - started
            load = await posting
        finally:
            if not posting.done():
                posting.cancel()
                await asyncio.gather(posting, return_exceptions=True)
        cpu = {key: ms / 1000 for key, ms in self.meter.per_message_ms(before, self.meter.sample(self.pid), 1).items()}
        if load.errors:
            raise BenchFailure(f"{name}: {load.errors} POST(s) failed; first: {load.first_error}")
        records = await self.journal.records(after)
        if len(records) != len(calls):
            raise BenchFailure(f"{name}: {len(records)} inbound messages stored, expected {len(calls)}")
        return EndToEnd(name, len(calls), rows, seconds, load, records, cpu, retried, started_wall)


def check_results(result: EndToEnd, rows_per_message: list[int]) -> None:
    """Every message applied all its rows and found none stale (its journal result)."""
    for record, rows in zip(result.journal, rows_per_message, strict=True):
        summary = json.loads(record["result"] or "{}")
        if summary.get("applied") != rows or summary.get("stale") != 0:
            raise BenchFailure(f"{result.name}: message {record['id']} ({record['external_id']}) result {summary}")


async def check_stock(connection: asyncpg.Connection, name: str, table: str, snapshot: Snapshot) -> None:
    row = await connection.fetchrow(
        f"SELECT count(*) AS n, count(*) FILTER (WHERE source_ts = $2) AS current, sum(quantity) AS total"
        f"  FROM {table} WHERE aggregate_id = $1",
        snapshot.aggregate,
        snapshot.source_ts,
    )
    expected = snapshot.skus
    if (row["n"], row["current"], row["total"]) != (expected, expected, snapshot.total_quantity):
        raise BenchFailure(
            f"{name}: {table} holds {row['n']} rows of {snapshot.aggregate}, {row['current']} of this snapshot, "
            f"quantity sum {row['total']}; expected {expected}, {expected}, {snapshot.total_quantity}"
        )


# --------------------------------------------------------------------------------------------------------------
# The physical baseline: APPLY_STOCK itself, aimed at a scratch table, on one plain asyncpg connection
# --------------------------------------------------------------------------------------------------------------
def scratch_statement() -> tuple[str, list[str]]:
    """APPLY_STOCK with ``$n`` parameters and the scratch table in place of ``stock`` (same SQL shape)."""
    from app.data.sql import positional
    from app.data.stock import APPLY_STOCK

    sql, names = positional(APPLY_STOCK)
    for old in ("INSERT INTO stock (", "WHERE stock.source_ts"):
        if sql.count(old) != 1:
            raise BenchFailure(f"APPLY_STOCK changed shape ({old!r} found {sql.count(old)} times): update bench")
        sql = sql.replace(old, old.replace("stock", SCRATCH_TABLE))
    return sql, names


@dataclass
class Baseline:
    name: str
    rows: int
    seconds: float
    statements: int


async def baseline_upsert(connection: asyncpg.Connection, name: str, snapshot: Snapshot, message_id: int) -> Baseline:
    sql, names = scratch_statement()
    now = datetime.now(UTC)
    arguments = []
    for skus, quantities, unlimited in snapshot.pages:
        values = {
            "aggregate_id": snapshot.aggregate,
            "source_ts": snapshot.source_ts,
            "message_id": message_id,
            "now": now,
            "skus": skus,
            "quantities": quantities,
            "unlimited": unlimited,
        }
        arguments.append([values[n] for n in names])
    applied = []
    started = time.perf_counter()
    for args in arguments:
        applied.append(await connection.fetchval(sql, *args))  # no transaction block: each one autocommits
    seconds = time.perf_counter() - started
    if applied != [len(page[0]) for page in snapshot.pages]:
        raise BenchFailure(f"{name}: the upserts wrote {applied} rows per statement")
    await check_stock(connection, name, SCRATCH_TABLE, snapshot)
    return Baseline(name, snapshot.skus, seconds, len(arguments))


# --------------------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------------------
def print_full(result: EndToEnd, baseline: Baseline) -> None:
    cpu = result.cpu or {}
    pages = result.journal
    split = result.breakdown()
    print(
        f"  {result.name:<34} {result.seconds:7.2f} s  {result.rows / result.seconds:9.0f} SKUs/s   "
        f"(all {result.n} POSTs answered after {result.load.seconds:.2f} s, POST p50 {result.load.pct(0.5):.0f} ms)"
    )
    print(
        f"  {'':<34} lane: first POST to first claim {split['lead-in']:.2f} s, in handlers {split['handlers']:.2f} s "
        f"({split['handlers'] * 1000 / len(pages):.0f} ms/page), between pages {split['between']:.2f} s "
        f"({split['between'] * 1000 / max(1, len(pages) - 1):.0f} ms each), last outcome to seen {split['tail']:.2f} s"
    )
    print(
        f"  {'':<34} CPU s: connector {cpu.get('server', 0):.2f}, PostgreSQL {cpu.get('postgres', 0):.2f}, "
        f"bench client {cpu.get('client', 0):.2f}"
    )
    for retried in result.retried:
        print(f"  {'':<34} RETRIED: {retried}")
    print(
        f"  {baseline.name:<34} {baseline.seconds:7.2f} s  {baseline.rows / baseline.seconds:9.0f} SKUs/s   "
        f"({baseline.statements} autocommitted statements, "
        f"{baseline.seconds * 1000 / baseline.statements:.0f} ms each)"
    )
    print(
        f"  {'ratio connector / baseline':<34} {result.seconds / baseline.seconds:7.2f}x   (target <= {TARGET_RATIO}x)"
    )


def print_delta(result: EndToEnd) -> None:
    cpu = result.cpu or {}
    print(
        f"  {result.name:<34} {result.rate:7.0f} msgs/s   ({result.n} in {result.seconds:.2f} s; all POSTs "
        f"answered after {result.load.seconds:.2f} s, POST p50 {result.load.pct(0.5):.1f} ms, "
        f"p99 {result.load.pct(0.99):.1f} ms)"
    )
    print(
        f"  {'':<34} CPU ms/msg: connector {cpu.get('server', 0) * 1000 / result.n:.2f}, "
        f"PostgreSQL {cpu.get('postgres', 0) * 1000 / result.n:.2f}, "
        f"bench client {cpu.get('client', 0) * 1000 / result.n:.2f}"
    )
    for retried in result.retried:
        print(f"  {'':<34} RETRIED: {retried}")


def print_log_findings(service: Service) -> None:
    """Warnings, errors and tracebacks the service logged (the start-up banner aside)."""
    words = (" WARNING ", " ERROR ", " CRITICAL ", "Traceback")
    lines = [line for line in service.log_tail(100_000).splitlines() if any(word in line for word in words)]
    print(f"  {service.name} log: {len(lines)} warning/error line(s)" + (", the last ones:" if lines else ""))
    for line in lines[-8:]:
        print(f"    {line[:300]}")


# --------------------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------------------
def connector_service(port: int, dsn: str, log_level: str, workdir: Path) -> Service:
    """`oms-connector serve` with its bus workers (default INBOUND_WORKERS), against the bench database."""
    argv = [str(ROOT / ".venv/bin/oms-connector"), "serve", "--host", HOST, "--port", str(port)]
    env = clean_env(
        DATABASE_URL=dsn,
        OMS_SECRET=SECRET,
        OMS_TIMEZONE="UTC",
        OMS_REGISTER_AT_STARTUP="false",
        OPERATOR_TOKEN=OPERATOR_TOKEN,
        COMMERCE_TOKEN=COMMERCE_TOKEN,
        RUN_MIGRATIONS="false",
        LOG_LEVEL=log_level,
    )
    return Service("connector", argv, env, port, "/health/ready", workdir)


def ingest_baseline_service(port: int, dsn: str, workdir: Path) -> Service:
    """bench/ingest.py's bare FastAPI app: one autocommit INSERT of the raw body per request."""
    argv = [sys.executable, str(ROOT / "bench/ingest.py"), "--serve-baseline", "--port", str(port), "--dsn", dsn]
    return Service("ingest-baseline", argv, clean_env(), port, "/health", workdir)


@dataclass
class Messages:
    """Every body of the run, built and signed (and every baseline parameter list built) before any timer."""

    warm_full: Snapshot
    rounds: list[tuple[str, Snapshot]]  # (path exercised, snapshot)
    lanes: list[str]
    warm_deltas: list[Call]
    deltas: list[Call]  # over ``lanes``
    single: list[Call]  # one aggregate
    ingest_warm: list[Call]
    ingest: list[Call]

    @classmethod
    def build(cls, args: argparse.Namespace) -> Messages:
        base = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        later = base + timedelta(hours=1)
        lanes = [f"DELTA-{k + 1}" for k in range(args.aggregates)]
        return cls(
            warm_full=full_snapshot("warm-full", "WARMUP", args.page, args.page, base - timedelta(hours=1), salt=0),
            rounds=[
                ("insert", full_snapshot("full-1", FULL_AGGREGATE, args.skus, args.page, base, salt=1)),
                ("update", full_snapshot("full-2", FULL_AGGREGATE, args.skus, args.page, later, salt=2)),
            ],
            lanes=lanes,
            warm_deltas=delta_calls("warm-delta", args.warmup, ["WARMUP-D"], base),
            deltas=delta_calls("delta", args.deltas, lanes, later),
            single=delta_calls("delta-single", args.deltas, ["DELTA-ONE"], later),
            ingest_warm=delta_calls("ingest-warm", args.warmup, lanes, base),
            ingest=delta_calls("ingest", args.deltas, lanes, base),
        )


@dataclass
class Results:
    fulls: list[tuple[EndToEnd, Baseline]] = field(default_factory=list)
    deltas: list[EndToEnd] = field(default_factory=list)
    ingest: LoadResult | None = None
    failures: list[str] = field(default_factory=list)


async def full_phase(
    args: argparse.Namespace, messages: Messages, connector: Connector, raw: asyncpg.Connection, out: Results
) -> None:
    first = messages.rounds[0][1]
    print(f"FULL snapshot: {first.skus} SKUs of {FULL_AGGREGATE} in {len(first.calls)} pages, sequential POSTs:")
    for number, (path, snapshot) in enumerate(messages.rounds, start=1):
        name = f"round {number} ({path})"
        result = await connector.end_to_end(f"{name}: connector", snapshot.calls, 1, snapshot.skus, args.phase_timeout)
        check_results(result, [len(page[0]) for page in snapshot.pages])
        await check_stock(connector.journal.connection, result.name, "stock", snapshot)
        baseline = await baseline_upsert(raw, f"{name}: baseline", snapshot, number)
        out.fulls.append((result, baseline))
        print_full(result, baseline)


async def delta_phase(args: argparse.Namespace, messages: Messages, connector: Connector, out: Results) -> None:
    n, c = args.deltas, args.concurrency
    print(f"DELTA: 1 SKU per message, C={c} concurrent POSTs, until all succeeded:")
    await connector.end_to_end("warm-up", messages.warm_deltas, c, args.warmup, args.phase_timeout)
    runs = [
        (f"connector, {len(messages.lanes)} aggregates", messages.deltas),
        ("connector, 1 aggregate", messages.single),
    ]
    for name, calls in runs:
        result = await connector.end_to_end(name, calls, c, n, args.phase_timeout)
        check_results(result, [1] * n)
        out.deltas.append(result)
        print_delta(result)
    stored = await connector.journal.connection.fetchval(
        "SELECT count(*) FROM stock WHERE aggregate_id = ANY($1::text[])", [*messages.lanes, "DELTA-ONE"]
    )
    if stored != 2 * n:
        raise BenchFailure(f"DELTA: stock holds {stored} rows of the DELTA aggregates, expected {2 * n}")
    print(
        f"  (a stock lane is one aggregate, applied in order in batches: {len(messages.lanes)} aggregates keep up "
        "to that many of the connector's workers busy (INBOUND_WORKERS, default 4); 1 aggregate shows one lane's "
        f"pace, target >= {ONE_LANE_TARGET:,} messages/s)"
    )


async def run(args: argparse.Namespace, workdir: Path, services: list[Any]) -> int:
    s, p, n, c, a = args.skus, args.page, args.deltas, args.concurrency, args.aggregates
    print(f"OMS Connector stock bench: S={s} SKUs in pages of {p}, N={n} DELTAs, C={c}, A={a} aggregates")
    print(f"  on {os.cpu_count()} CPUs; workdir {workdir}")
    started = time.perf_counter()
    messages = Messages.build(args)
    page_kib = len(messages.rounds[0][1].calls[0][0]) / 1024
    print(f"  bodies built and signed: FULL page {page_kib:.0f} KiB, DELTA {len(messages.deltas[0][0])} bytes")

    pg, admin_uri = await asyncio.to_thread(start_postgres, workdir)
    services.append(pg)  # stopped and deleted with the rest
    dsn = await create_database(admin_uri, "bench_stock", migrated=True)
    await execute(dsn, f"CREATE TABLE {SCRATCH_TABLE} (LIKE stock INCLUDING ALL)")
    ingest_dsn = await create_database(admin_uri, "bench_ingest_baseline", migrated=False)
    await execute(ingest_dsn, f"CREATE TABLE {BASELINE_TABLE} (id bigserial PRIMARY KEY, body jsonb NOT NULL)")
    print(f"  embedded PostgreSQL ready, database migrated ({time.perf_counter() - started:.1f} s)")

    server = connector_service(free_port(), dsn, args.log_level, workdir)
    ingest_baseline = ingest_baseline_service(free_port(), ingest_dsn, workdir)
    services.extend([server, ingest_baseline])
    journal = Journal(await asyncpg.connect(dsn))
    raw = await asyncpg.connect(dsn)  # the baseline's one connection
    out = Results()
    limits = aiohttp.TCPConnector(limit=c, limit_per_host=c)
    try:
        async with aiohttp.ClientSession(connector=limits, timeout=aiohttp.ClientTimeout(REQUEST_TIMEOUT_S)) as session:
            await server.start(session)
            print(f"  connector (with workers) on :{server.port}")
            pid = server.process.pid if server.process else None
            connector = Connector(session, server.base_url + "/oms/rpc", journal, CpuMeter(workdir / "pg"), pid)
            # warm-ups: one FULL page through the connector, one statement on the baseline's connection
            await connector.end_to_end("warm-up", messages.warm_full.calls, 1, p, args.phase_timeout)
            await baseline_upsert(raw, "warm-up", messages.warm_full, message_id=0)
            await full_phase(args, messages, connector, raw, out)
            await delta_phase(args, messages, connector, out)
            server.stop()

            await ingest_baseline.start(session)
            baseline_url = ingest_baseline.base_url + "/rpc"
            await run_load("warm-up", session, baseline_url, messages.ingest_warm, c)
            out.ingest = await run_load("ingest baseline", session, baseline_url, messages.ingest, c)
            print_load(out.ingest)
            ingest_baseline.stop()
            stored = await execute(ingest_dsn, f"SELECT count(*) FROM {BASELINE_TABLE}")
            if out.ingest.errors or stored != n + args.warmup:
                out.failures.append(f"ingest baseline: {out.ingest.errors} errors, {stored} rows stored")
    except BenchFailure as exc:
        out.failures.append(str(exc))
    finally:
        server.stop()
        for connection in (journal.connection, raw):
            with contextlib.suppress(Exception):
                await connection.close()
    print_log_findings(server)
    print_summary(args, out, time.perf_counter() - started)
    if out.failures:
        print(f"connector log tail:\n{server.log_tail()}")
    return 1 if out.failures else 0


def print_summary(args: argparse.Namespace, out: Results, seconds: float) -> None:
    print()
    print(
        f"Summary (S={args.skus}, P={args.page}, N={args.deltas}, C={args.concurrency}, A={args.aggregates}; "
        f"{seconds:.0f} s in all)"
    )
    print(f"  {'phase':<52} {'seconds':>8} {'SKUs/s':>9} {'conn/base':>10} {'target':>7}")
    for result, baseline in out.fulls:
        print(f"  {'FULL ' + result.name:<52} {result.seconds:8.2f} {result.rows / result.seconds:9.0f}")
        print(
            f"  {'FULL ' + baseline.name + ' (raw APPLY_STOCK)':<52} {baseline.seconds:8.2f} "
            f"{baseline.rows / baseline.seconds:9.0f} {result.seconds / baseline.seconds:9.2f}x "
            f"{'<= ' + str(TARGET_RATIO) + 'x':>7}"
        )
    print(f"  {'phase':<52} {'msgs/s':>8} {'':>9} {'conn/base':>10}")
    for result in out.deltas:
        ratio = f"{result.rate / out.ingest.rate:9.2f}x" if out.ingest else ""
        print(f"  {'DELTA ' + result.name + ', end to end':<52} {result.rate:8.0f} {'':>9} {ratio}")
    if out.ingest:
        print(f"  {'ingest baseline: 1 INSERT/request, stored only':<52} {out.ingest.rate:8.0f}")
    for failure in out.failures:
        print(f"FAILED: {failure}")


def on_sigterm(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through main's finally: the servers are stopped, the workdir deleted


def event_loop_runner() -> Any:
    """uvloop's run (the loop uvicorn uses in the connector) when it is installed, else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


def run_bench(
    run: Callable[[argparse.Namespace, Path, list[Any]], Awaitable[int]], args: argparse.Namespace, prefix: str
) -> int:
    """Run a bench's ``run(args, workdir, services)`` on the event loop the connector uses, in a throw-away workdir
    that is deleted at the end with every service the run started — also on error or SIGTERM."""
    signal.signal(signal.SIGTERM, on_sigterm)
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())
    services: list[Any] = []
    workdir = Path(tempfile.mkdtemp(prefix=prefix))  # a short path: PostgreSQL's Unix socket lives in it
    try:
        return int(event_loop_runner()(run(args, workdir, services)))
    finally:
        cleanup(services, workdir)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skus", type=int, default=100_000, help="SKUs in the FULL snapshot (S)")
    parser.add_argument("--page", type=int, default=5_000, help="SKUs per FULL page, one message each (P)")
    parser.add_argument("--deltas", type=int, default=2_000, help="DELTA messages of one SKU each (N)")
    parser.add_argument("--concurrency", "-c", type=int, default=64, help="concurrent DELTA requests (C)")
    parser.add_argument("--aggregates", type=int, default=4, help="aggregates (lanes) the DELTAs are spread over (A)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed DELTA / ingest-baseline calls first")
    parser.add_argument("--log-level", default="WARNING", help="LOG_LEVEL of the connector subprocess")
    parser.add_argument("--phase-timeout", type=float, default=300.0, help="seconds before a phase is abandoned")
    args = parser.parse_args()

    return run_bench(run, args, "omss-")


if __name__ == "__main__":
    sys.exit(main())
