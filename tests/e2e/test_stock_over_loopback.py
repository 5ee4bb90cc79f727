"""Stock end to end over real sockets: a `serve` process takes signed stock calls, two `worker` processes apply
them, and `GET /stock/{sku}` over HTTP shows the newest value of every SKU — whatever the arrival order."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

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
