"""Stock end to end over real sockets: a `serve` process takes signed stock calls, two `worker` processes apply
them, and `GET /stock/{sku}` over HTTP shows the newest value of every SKU — whatever the arrival order."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

from app.data.bus import LARGE_PAYLOAD_BYTES
from app.db import DatabaseUrl
from tests.support.processes import Processes, new_call, wait_until
from tests.support.signing import COMMERCE_TOKEN

STOCK = "magento.inventory.aggregate_stock_management.updated"
T0 = datetime(2026, 5, 4, 6, 0, tzinfo=UTC)
AGGREGATES = ("EU-WEB", "US-WEB")
SKUS = [f"SKU-{n:03}" for n in range(60)]


def call(aggregate: str, mode: str, at: datetime, rows: dict[str, int]) -> dict:
    return {
        "snapshot": {
            "aggregate_id": aggregate,
            "mode": mode,
            "created_on": at.strftime("%Y-%m-%d %H:%M:%S"),
            "stock": [{"sku": sku, "quantity": str(quantity)} for sku, quantity in rows.items()],
        }
    }


async def test_two_workers_apply_interleaved_full_and_delta_traffic_and_the_api_shows_the_newest_values(
    tmp_path: Path, database_url: DatabaseUrl, raw: asyncpg.Connection
):
    rng = random.Random(7)
    traffic: list[dict] = []
    newest: dict[tuple[str, str], tuple[datetime, int]] = {}
    for aggregate in AGGREGATES:
        # FULL at t0 in 3 pages of 20; DELTAs made during it (t0 + k min) for random SKUs; and one late, old DELTA.
        pages = [call(aggregate, "FULL", T0, {sku: 10 for sku in SKUS[i : i + 20]}) for i in range(0, 60, 20)]
        deltas = [
            call(
                aggregate, "DELTA", T0 + timedelta(minutes=k), {sku: rng.randint(0, 99) for sku in rng.sample(SKUS, 5)}
            )
            for k in range(1, 9)
        ]
        stale = call(aggregate, "DELTA", T0 - timedelta(hours=1), {sku: 999 for sku in SKUS[:10]})
        ordered = [pages[0], deltas[0], deltas[1], pages[1], *deltas[2:5], pages[2], *deltas[5:], stale]
        traffic.extend(ordered)
        for params in ordered:
            snapshot = params["snapshot"]
            at = datetime.strptime(snapshot["created_on"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
            for row in snapshot["stock"]:
                key = (row["sku"], aggregate)
                if key not in newest or at >= newest[key][0]:
                    newest[key] = (at, int(row["quantity"]))
    # the two aggregates' calls interleaved, each aggregate's own order kept
    eu, us = traffic[: len(traffic) // 2], traffic[len(traffic) // 2 :]
    interleaved = [params for pair in zip(eu, us, strict=True) for params in pair]

    websites = json.dumps({"EU-WEB": ["base"], "US-WEB": ["us"]})
    with Processes(tmp_path, database_url, OMS_AGGREGATE_WEBSITES=websites) as procs:
        ingest = procs.serve("ingest", workers=False)
        workers = [procs.worker("worker-a"), procs.worker("worker-b")]
        await ingest.wait_ready()
        for worker in workers:
            await worker.wait_for_log("workers started")
        async with httpx.AsyncClient(base_url=ingest.base_url, timeout=30) as http:
            for params in interleaved:  # each acknowledged before the next, as the OMS sends them
                _id, body, headers = new_call(STOCK, params)
                response = await http.post("/oms/rpc", content=body, headers=headers)
                assert response.status_code == 200, response.text

            async def all_applied() -> bool:
                done = await raw.fetchval(
                    "SELECT count(*) FROM message WHERE topic = $1 AND status = 'succeeded'", STOCK
                )
                return done == len(interleaved)

            await wait_until(all_applied, 60, "not every stock message succeeded", ingest, *workers)

            stale_results = await raw.fetch(
                "SELECT result FROM message WHERE topic = $1 AND payload->'snapshot'->>'created_on' = $2",
                STOCK,
                (T0 - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S"),
            )
            assert [json.loads(r["result"])["stale"] for r in stale_results] == [10, 10]

            auth = {"Authorization": f"Bearer {COMMERCE_TOKEN}"}
            for sku in SKUS:
                response = await http.get(f"/stock/{sku}", headers=auth)
                assert response.status_code == 200, response.text
                view = response.json()
                got = {a["aggregate_id"]: a["quantity"] for a in view["aggregates"]}
                assert got == {agg: newest[sku, agg][1] for agg in AGGREGATES}, sku
                by_website = {w["website"]: (w["salable_quantity"], w["is_salable"]) for w in view["websites"]}
                expected = {
                    website: (newest[sku, agg][1], newest[sku, agg][1] > 0)
                    for agg, website in (("EU-WEB", "base"), ("US-WEB", "us"))
                }
                assert by_website == expected, sku

        lanes = {r["lane"] for r in await raw.fetch("SELECT DISTINCT lane FROM message WHERE topic = $1", STOCK)}
        assert lanes == {f"{STOCK}/{agg}" for agg in AGGREGATES}
        for process in (*workers, ingest):
            process.stop_cleanly()


async def test_a_worker_killed_in_the_middle_of_a_stock_page_applies_none_of_it_and_the_next_applies_all(
    tmp_path: Path, database_url: DatabaseUrl, raw: asyncpg.Connection
):
    skus = [f"SKU-{n:04}" for n in range(5000)]  # a FULL page: large enough to be applied inside PostgreSQL
    await raw.execute(
        "INSERT INTO stock (sku, aggregate_id, quantity, unlimited, source_ts, message_id, updated_at)"
        " VALUES ('SKU-1500', 'EU-WEB', 1, false, $1, 0, now())",
        T0 - timedelta(days=1),
    )
    blocker = await asyncpg.connect(database_url.libpq)
    try:
        with Processes(tmp_path, database_url) as procs:
            ingest = procs.serve("ingest", workers=False)
            doomed = procs.worker("worker-1")
            await ingest.wait_ready()
            await doomed.wait_for_log("workers started")
            # Hold SKU-1500's row: the worker's upsert writes the SKUs before it, then waits mid-statement.
            lock = blocker.transaction()
            await lock.start()
            await blocker.execute("SELECT 1 FROM stock WHERE sku = 'SKU-1500' FOR UPDATE")
            _id, body, headers = new_call(
                STOCK, call("EU-WEB", "FULL", T0, {sku: 7 + n % 89 for n, sku in enumerate(skus)})
            )
            async with httpx.AsyncClient(base_url=ingest.base_url, timeout=10) as http:
                assert (await http.post("/oms/rpc", content=body, headers=headers)).status_code == 200
            size = await raw.fetchval("SELECT pg_column_size(payload) FROM message WHERE topic = $1", STOCK)
            assert size > LARGE_PAYLOAD_BYTES  # the page is applied inside PostgreSQL

            async def waiting_on_the_row() -> bool:
                return bool(
                    await raw.fetchval(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE wait_event_type = 'Lock' AND wait_event = 'transactionid'"
                    )
                )

            await wait_until(waiting_on_the_row, 30, "worker-1 never reached the locked row", doomed)
            doomed.kill()
            await lock.rollback()  # the killed worker's backend now finds its client gone and rolls back

            async def rolled_back() -> bool:
                return not await waiting_on_the_row() and await raw.fetchval("SELECT count(*) FROM stock") == 1

            await wait_until(rolled_back, 15, "the killed worker's transaction was not rolled back")
            assert await raw.fetchval("SELECT status::text FROM message WHERE topic = $1", STOCK) == "queued"

            rescuer = procs.worker("worker-2")

            async def applied() -> bool:
                return await raw.fetchval("SELECT status::text FROM message WHERE topic = $1", STOCK) == "succeeded"

            await wait_until(applied, 30, "worker-2 never applied the page", rescuer)
            row = await raw.fetchrow("SELECT attempts, result FROM message WHERE topic = $1", STOCK)
            assert row["attempts"] == 1  # the killed attempt left no trace
            assert (json.loads(row["result"])["applied"], json.loads(row["result"])["stale"]) == (5000, 0)
            stock = {r["sku"]: int(r["quantity"]) for r in await raw.fetch("SELECT sku, quantity FROM stock")}
            assert stock == {sku: 7 + n % 89 for n, sku in enumerate(skus)}
            rescuer.stop_cleanly()
            ingest.stop_cleanly()
    finally:
        await blocker.close()
