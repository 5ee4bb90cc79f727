"""Journal prune benchmark of the OMS Connector (issue #16, item 4): what pruning millions of old messages costs the
webhooks that arrive meanwhile, against the same webhooks without a prune, in one run, on 127.0.0.1 only.

  1. fill       R finished messages (~400-byte order-like payloads, a few topics, refs, mostly succeeded, some
                failed / dead / discarded / rejected) created 50 to 40 days ago, written by one INSERT … SELECT
                generate_series per 250,000 rows, then VACUUM ANALYZE and CHECKPOINT: an old journal as a deployment
                has it. The processing-time report is marked as having counted them (its state row), so its rollup
                neither holds the prune back nor rolls 40 days up during the run.
  2. baseline   `oms-connector serve --no-workers` (as bench/ingest.py runs it) receives signed JSON-RPC calls at a
                steady open-loop rate (the k-th POST starts at t0 + k/rate whatever the earlier ones are doing) for
                B seconds (120: a shorter window's p99 varies too much run to run): round-trip p50 / p99 / max.
  3. prune      the same rate, for as long as `oms-connector journal prune` (a subprocess, default retention 30 days)
                runs, and at least S seconds: its rows/s, and the webhooks' p50 / p99 / max during it.
  4. after      the same rate for at least S seconds after the prune and until the autovacuum of `message` it
                left behind has run to the end (at most A seconds): what the clean-up costs the webhooks.

PostgreSQL's autovacuum cleans deleted rows up once a fifth of the table is dead. The prune holds it off for
`message` while it runs (JournalPrune.autovacuum_held), so the table is cleaned once, after the prune, at migration
0012's gentler pace, in force here as in a deployment. Before the hold, autovacuum ran again and again during a
large prune and cost the webhooks more than the prune itself. Each window says whether an autovacuum of `message`
ran in it and how many checkpoints completed.

Printed: the prune rate (the command's own figure, and rows over its wall time) and each window's latencies, with
the ratios prune / baseline (the target: p99 at most 2x). Figures are printed, never asserted; the exit status is 1 when
a webhook failed or old finished rows were left. Everything lives in a throw-away embedded PostgreSQL, deleted at
the end (also on error or SIGTERM).

    .venv/bin/python bench/prune.py [--rows R] [--rate W] [--seconds S] [--baseline-seconds B] [--after-max A]
                                   [--log-level L]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
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
    Service,
    clean_env,
    create_database,
    free_port,
    params_for,
    start_postgres,
)
from bench.stock import print_log_findings, run_bench  # noqa: E402

FILL_CHUNK = 250_000  # rows per INSERT … SELECT
TOPICS = (
    "magento.sales.order_management.created",
    "magento.sales.order_management.updated",
    "magento.logistics.fulfillment_management.customer_shipment_done",
    "magento.inventory.aggregate_stock_management.updated",
)
TARGET_RATIO = 2.0  # the target: webhook p99 during a prune <= 2x the same rate without it
MAX_IN_FLIGHT = 512

# One chunk of old finished messages: created between 50 and 40 days ago in id order, finished 40 ms later; 1 in 20
# failed, 1 in 50 dead (outbound), 1 in 100 discarded, 1 in 200 rejected; the payload is bench/ingest.py's
# order-like params (~400 bytes) with the row's own numbers.
FILL = """
    INSERT INTO message (direction, channel, topic, external_id, lane, payload, refs, status, attempts, last_error,
                         next_attempt_at, created_at, started_at, finished_at, duration_ms)
    SELECT CASE WHEN n % 50 = 7 THEN 'out' ELSE 'in' END::message_direction, 'oms', t.topic, 'old-' || n,
           t.topic, replace(replace($1, '@N@', n::text), '@I@', lpad((n % 100000000)::text, 8, '0'))::jsonb,
           ARRAY['10' || lpad((n % 100000000)::text, 8, '0'), 'SKU-' || lpad((n % 101)::text, 4, '0') || '-A'],
           CASE WHEN n % 200 = 3 THEN 'rejected' WHEN n % 100 = 5 THEN 'discarded' WHEN n % 50 = 7 THEN 'dead'
                WHEN n % 20 = 1 THEN 'failed' ELSE 'succeeded' END::message_status,
           1, CASE WHEN n % 20 = 1 THEN 'order 10' || n || ' not found' END,
           c.at, c.at, c.at, c.at + interval '40 milliseconds', 40
      FROM generate_series($2::bigint, $3::bigint) AS n,
           LATERAL (SELECT now() - interval '50 days' + (interval '10 days' * n / $4::bigint) AS at) AS c,
           LATERAL (SELECT ($5::text[])[1 + n % 4] AS topic) AS t
"""


@dataclass
class Post:
    due: float
    started: float = 0.0
    answered: float = 0.0
    status: int = 0
    error: str | None = None


@dataclass
class Window:
    name: str
    posts: list[Post] = field(default_factory=list)
    seconds: float = 0.0
    vacuumed: bool = False  # an autovacuum of `message` ran during the window
    checkpoints: int = 0  # checkpoints PostgreSQL completed during the window (timed or requested by WAL volume)

    @property
    def latencies_ms(self) -> list[float]:
        return sorted((post.answered - post.started) * 1000.0 for post in self.posts)

    def pct(self, q: float) -> float:
        values = self.latencies_ms
        return values[min(len(values) - 1, round(q * (len(values) - 1)))] if values else float("nan")

    @property
    def failed(self) -> list[Post]:
        return [post for post in self.posts if post.error is not None or post.status != 200]

    @property
    def rate(self) -> float:
        return len(self.posts) / self.seconds if self.seconds else 0.0


def webhooks(prefix: str) -> Iterator[tuple[bytes, dict[str, str]]]:
    """bench/ingest.py's signed `created` calls (~420-byte bodies), unique ids, made as they are sent."""
    from app.protocol.signature import sign

    n = 0
    while True:
        document = {"jsonrpc": "2.0", "id": f"{prefix}-{n}", "method": TOPICS[0], "params": params_for(n)}
        body = json.dumps(document, separators=(",", ":")).encode()
        yield body, {"Content-Type": "application/json", "X-Signature": sign(body, SECRET.encode())}
        n += 1


async def steady(
    name: str,
    session: aiohttp.ClientSession,
    url: str,
    calls: Iterator[tuple[bytes, dict[str, str]]],
    rate: float,
    *,
    min_s: float,
    until: Callable[[], bool] = lambda: True,
    max_s: float = 3600.0,
) -> Window:
    """POST at ``rate`` per second (open loop: each POST on its own task at its due time) for at least ``min_s``
    seconds and until ``until()`` holds."""
    window = Window(name)
    tasks: list[asyncio.Task[None]] = []
    in_flight = 0

    async def post(record: Post, body: bytes, headers: dict[str, str]) -> None:
        nonlocal in_flight
        in_flight += 1
        record.started = time.monotonic()
        try:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                record.status = response.status
        except Exception as exc:
            record.error = f"{exc.__class__.__name__}: {exc}"
        record.answered = time.monotonic()
        in_flight -= 1

    start = time.monotonic() + 0.01
    index = 0
    while True:
        due = start + index / rate
        elapsed = due - start
        if elapsed >= max_s or (elapsed >= min_s and until()):
            break
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if in_flight >= MAX_IN_FLIGHT:
            raise RuntimeError(f"{name}: {in_flight} webhooks in flight: the connector stopped answering")
        body, headers = next(calls)
        record = Post(due)
        window.posts.append(record)
        tasks.append(asyncio.create_task(post(record, body, headers)))
        index += 1
    await asyncio.gather(*tasks)
    window.seconds = time.monotonic() - start
    return window


async def fill(dsn: str, rows: int) -> None:
    template = json.dumps(params_for(0)).replace("BENCH000000000", "OLD@N@").replace("1000000000", "10@I@")
    connection = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        for first in range(1, rows + 1, FILL_CHUNK):
            last = min(rows, first + FILL_CHUNK - 1)
            await connection.execute(FILL, template, first, last, rows, list(TOPICS))
            done = time.perf_counter() - started
            print(f"    {last:>10,} rows ({last / done:,.0f}/s)", flush=True)
        await connection.execute("VACUUM ANALYZE message")
        await connection.execute("CHECKPOINT")
        # The processing-time report has counted (and rolled up) everything before this minute.
        await connection.execute(
            """
            UPDATE message_stat_state
               SET rolled_up_until = date_trunc('minute', now()), counted_until = date_trunc('minute', now()),
                   hours_until = date_trunc('hour', now()), updated_at = now()
             WHERE id = 1
            """
        )
        size = await connection.fetchval("SELECT pg_size_pretty(pg_total_relation_size('message'))")
        print(f"  filled {rows:,} finished messages in {time.perf_counter() - started:.1f} s; table {size}")
    finally:
        await connection.close()


def print_window(window: Window) -> None:
    print(
        f"  {window.name:<24} {len(window.posts):>7} webhooks at {window.rate:6.1f}/s over {window.seconds:6.1f} s: "
        f"p50 {window.pct(0.5):7.2f} ms  p99 {window.pct(0.99):7.2f} ms  max {window.pct(1.0):8.2f} ms  "
        f"failed {len(window.failed)}, checkpoints {window.checkpoints}"
        + ("  (autovacuum of message ran)" if window.vacuumed else ""),
        flush=True,  # each window as it ends: the after window may last half an hour
    )


class VacuumWatch:
    """Whether an autovacuum of `message` runs, sampled every half second on a connection of its own, and how many
    checkpoints completed (pg_stat_checkpointer)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.seen = False
        self.running = False  # an autovacuum of `message` is running at the last sample
        self.vacuums = 0  # autovacuums of `message` completed (pg_stat_user_tables.autovacuum_count)
        self.checkpoints = 0
        self._taken_checkpoints = 0
        self._sampled = asyncio.Event()  # set after the first sample
        self._task: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        connection = await asyncpg.connect(self.dsn)
        try:
            while True:
                running = await connection.fetchval(
                    "SELECT count(*) FROM pg_stat_progress_vacuum WHERE relid = 'message'::regclass"
                )
                self.running = bool(running)
                self.seen = self.seen or self.running
                self.vacuums = await connection.fetchval(
                    "SELECT autovacuum_count FROM pg_stat_user_tables WHERE relid = 'message'::regclass"
                )
                self.checkpoints = await connection.fetchval("SELECT num_done FROM pg_stat_checkpointer")
                self._sampled.set()
                await asyncio.sleep(0.5)
        finally:
            await connection.close()

    async def start(self) -> None:
        """Start sampling; returns after the first sample, so the first take() counts from now."""
        self._task = asyncio.create_task(self._watch())
        await self._sampled.wait()

    def take(self, window: Window | None = None) -> None:
        """Record in ``window`` whether an autovacuum ran, and how many checkpoints completed, since the last call."""
        if window is not None:
            window.vacuumed, window.checkpoints = self.seen, self.checkpoints - self._taken_checkpoints
        self.seen, self._taken_checkpoints = False, self.checkpoints

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def run(args: argparse.Namespace, workdir: Path, services: list[Any]) -> int:
    print(f"OMS Connector prune bench: {args.rows:,} rows, {args.rate:g} webhooks/s, {args.seconds:g} s windows, "
          f"{os.cpu_count()} CPUs; workdir {workdir}")  # fmt: skip
    started = time.perf_counter()
    server, admin_uri = await asyncio.to_thread(start_postgres, workdir)
    services.append(server)
    dsn = await create_database(admin_uri, "bench_prune", migrated=True)
    print(f"  embedded PostgreSQL ready, database migrated ({time.perf_counter() - started:.1f} s)")
    await fill(dsn, args.rows)

    port = free_port()
    env = clean_env(
        DATABASE_URL=dsn,
        OMS_SECRET=SECRET,
        OPERATOR_TOKEN=OPERATOR_TOKEN,
        COMMERCE_TOKEN=COMMERCE_TOKEN,
        RUN_MIGRATIONS="false",
        LOG_LEVEL=args.log_level,
    )
    argv = [str(ROOT / ".venv/bin/oms-connector"), "serve", "--host", HOST, "--port", str(port), "--no-workers"]
    connector = Service("connector", argv, env, port, "/health/ready", workdir)
    services.append(connector)
    timeout = aiohttp.ClientTimeout(total=120)
    connector_limit = aiohttp.TCPConnector(limit=MAX_IN_FLIGHT)
    watch = VacuumWatch(dsn)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector_limit) as session:
        await connector.start(session)
        url = connector.base_url + "/oms/rpc"
        calls = webhooks("bench-prune")
        await steady("warm-up", session, url, calls, args.rate, min_s=min(2.0, args.seconds))
        await watch.start()
        watch.take()
        baseline = await steady("baseline (no prune)", session, url, calls, args.rate, min_s=args.baseline_seconds)
        watch.take(baseline)
        print_window(baseline)

        prune_argv = [str(ROOT / ".venv/bin/oms-connector"), "journal", "prune"]
        prune_started = time.monotonic()
        pruning = await asyncio.create_subprocess_exec(
            *prune_argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        during = await steady(
            "during the prune", session, url, calls, args.rate, min_s=args.seconds,
            until=lambda: pruning.returncode is not None,
        )  # fmt: skip
        watch.take(during)
        print_window(during)
        output = (await pruning.communicate())[0].decode(errors="replace")
        prune_wall = time.monotonic() - prune_started
        vacuums_before = watch.vacuums
        after = await steady(
            "after, until vacuumed", session, url, calls, args.rate, min_s=args.seconds, max_s=args.after_max,
            until=lambda: watch.vacuums > vacuums_before and not watch.running,
        )  # fmt: skip
        after_vacuumed = watch.vacuums > vacuums_before
        watch.take(after)
    await watch.stop()
    print_log_findings(connector)

    connection = await asyncpg.connect(dsn)
    try:
        left_old = await connection.fetchval(
            "SELECT count(*) FROM message WHERE external_id LIKE 'old-%' AND status <> ALL($1::message_status[])",
            ["queued", "waiting", "processing", "retrying"],
        )
        stored = await connection.fetchval("SELECT count(*) FROM message WHERE external_id LIKE 'bench-prune-%'")
    finally:
        await connection.close()

    print("\nprune (`oms-connector journal prune`, its output):")
    for line in output.strip().splitlines()[-3:]:
        print(f"  {line[:400]}")
    found = re.search(r"deleted (\d+) messages .* in (\d+) batches, ([\d.]+) s", output)
    deleted = int(found.group(1)) if found else 0
    print(f"  {deleted:,} rows in {prune_wall:.1f} s wall (process start included): {deleted / prune_wall:,.0f} rows/s")
    if found:
        print(f"  the prune's own timing: {float(found.group(3)):.1f} s, {deleted / float(found.group(3)):,.0f} rows/s")
    print_window(after)
    print("\nwebhooks (POST /oms/rpc round trip, open loop):")
    for window in (baseline, during, after):
        print_window(window)
    print("\nsummary")
    print(f"  prune rate                      {deleted / prune_wall:10,.0f} rows/s (wall)")
    for name, q in (("p50", 0.5), ("p99", 0.99)):
        ratio = during.pct(q) / baseline.pct(q)
        mark = (
            "" if name != "p99" else ("  (target <= 2x: met)" if ratio <= TARGET_RATIO else "  (target <= 2x: MISSED)")
        )
        print(f"  webhook {name} during / without   {ratio:10.2f}x{mark}")
    vacuum_note = "" if after_vacuumed else f"  (autovacuum not done after {args.after_max:g} s)"
    print(f"  webhook p99 after / without     {after.pct(0.99) / baseline.pct(0.99):10.2f}x{vacuum_note}")
    print(f"  old finished rows left          {left_old:10,}   webhooks stored {stored:,}")
    failures = sum(len(window.failed) for window in (baseline, during, after))
    sent = sum(len(window.posts) for window in (baseline, during, after))
    problems = []
    if failures:
        problems.append(f"{failures} webhooks failed")
    if left_old:
        problems.append(f"{left_old} old finished rows left")
    if pruning.returncode != 0:
        problems.append(f"the prune exited {pruning.returncode}")
    if stored < sent:
        problems.append(f"only {stored} of {sent} webhooks stored")
    for problem in problems:
        print(f"  PROBLEM: {problem}")
    return 1 if problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000_000, help="old finished messages to prune (R)")
    parser.add_argument("--rate", type=float, default=200.0, help="webhooks per second in every window (W)")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds of the baseline and after windows (S)")
    parser.add_argument(
        "--baseline-seconds", type=float, default=120.0,
        help="seconds of the baseline window (long: a 30 s window's p99 is 60 samples, and varied 3-8 ms run to run)",
    )  # fmt: skip
    parser.add_argument(
        "--after-max", type=float, default=1800.0, help="longest after window (it lasts until autovacuum is done)"
    )
    parser.add_argument("--log-level", default="WARNING", help="LOG_LEVEL of the connector subprocesses")
    args = parser.parse_args()
    if args.rows < 1 or args.rate <= 0 or args.seconds <= 0 or args.baseline_seconds <= 0:
        parser.error("--rows, --rate, --seconds and --baseline-seconds must be positive")

    return run_bench(run, args, "omsp-")


if __name__ == "__main__":
    sys.exit(main())
