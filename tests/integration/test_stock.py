"""Stock from the OMS through the real webhook, inbox and bus: the timestamp filter (the seed's FULL/DELTA
scenario), idempotency, all-or-nothing, unlimited stock, and what each website can sell."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest

from app.data.bus import LARGE_PAYLOAD_BYTES
from app.workers.handlers import stock as stock_handler
from app.workers.registry import HandlerRegistry, build_registry
from tests.conftest import make_settings
from tests.support.signing import COMMERCE_TOKEN, operator_headers, rpc_body, signed_headers

STOCK = "magento.inventory.aggregate_stock_management.updated"
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def registry() -> HandlerRegistry:
    return build_registry(make_settings())  # this release's handlers: the real stock handler


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"oms_aggregate_websites": {"EU-WEB": ["base", "de"], "US-WEB": ["us"]}}


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")  # as the PHP peer sends it: no zone (OMS_TIMEZONE=UTC here)


def snapshot(rows: dict[str, Any], *, at: datetime | str | None, mode: str = "DELTA", aggregate: str = "EU-WEB"):
    stock = []
    for sku, value in rows.items():
        stock.append(value if isinstance(value, dict) else {"sku": sku, "quantity": str(value)})
    body: dict[str, Any] = {"aggregate_id": aggregate, "mode": mode, "stock": stock}
    if at is not None:
        body["created_on"] = at if isinstance(at, str) else stamp(at)
    return {"snapshot": body}


async def send(client: httpx.AsyncClient, params: dict[str, Any], *, id: str = "auto") -> str:
    body = rpc_body(method=STOCK, params=params, id=id)
    response = await client.post("/oms/rpc", content=body, headers=signed_headers(body))
    assert response.status_code == 200, response.text
    return json.loads(body)["id"]


async def drain(runtime) -> int:
    steps = 0
    while await runtime.bus.process_next_inbound():
        steps += 1
        assert steps < 200
    return steps


async def message(raw: asyncpg.Connection, external_id: str) -> asyncpg.Record:
    return await raw.fetchrow("SELECT * FROM message WHERE external_id = $1 AND status <> 'rejected'", external_id)


async def result(raw: asyncpg.Connection, external_id: str) -> dict[str, Any]:
    row = await message(raw, external_id)
    assert row["status"] == "succeeded", (row["status"], row["last_error"])
    return json.loads(row["result"])


async def stock(raw: asyncpg.Connection, aggregate: str = "EU-WEB") -> dict[str, Decimal]:
    rows = await raw.fetch("SELECT sku, quantity FROM stock WHERE aggregate_id = $1", aggregate)
    return {row["sku"]: row["quantity"] for row in rows}


def page(skus: range, quantity: int) -> dict[str, int]:
    return {f"SKU-{n}": quantity for n in skus}


# --- the timestamp filter ---------------------------------------------------------------------------------------
async def test_a_delta_produced_during_a_full_snapshot_wins_over_the_full_snapshots_later_pages(client, runtime, raw):
    t0, t1 = T0, T0 + timedelta(minutes=2)
    # FULL at t0 in three pages of 4 SKUs; the DELTA at t1 arrives after page 1 and changes SKUs of pages 1 to 3.
    page_1 = await send(client, snapshot(page(range(0, 4), 10), at=t0, mode="FULL"))
    await drain(runtime)
    delta = await send(client, snapshot({"SKU-1": 1, "SKU-5": 5, "SKU-9": 9}, at=t1))
    await drain(runtime)
    page_2 = await send(client, snapshot(page(range(4, 8), 10), at=t0, mode="FULL"))
    page_3 = await send(client, snapshot(page(range(8, 12), 10), at=t0, mode="FULL"))
    await drain(runtime)

    expected = {f"SKU-{n}": Decimal(10) for n in range(12)} | {"SKU-1": 1, "SKU-5": 5, "SKU-9": 9}
    assert await stock(raw) == expected
    assert {k: (await result(raw, page_1))[k] for k in ("applied", "stale")} == {"applied": 4, "stale": 0}
    assert {k: (await result(raw, delta))[k] for k in ("applied", "stale")} == {"applied": 3, "stale": 0}
    assert {k: (await result(raw, page_2))[k] for k in ("applied", "stale")} == {"applied": 3, "stale": 1}
    assert {k: (await result(raw, page_3))[k] for k in ("applied", "stale")} == {"applied": 3, "stale": 1}
    delta_id = (await message(raw, delta))["id"]
    kept = await raw.fetch("SELECT sku, source_ts, message_id FROM stock WHERE sku = ANY($1)", ["SKU-5", "SKU-9"])
    assert {(r["source_ts"], r["message_id"]) for r in kept} == {(t1, delta_id)}


async def test_an_old_message_arriving_last_is_discarded_and_counted_as_stale(client, runtime, raw):
    await send(client, snapshot({"A": 5, "B": 6}, at=T0 + timedelta(hours=1)))
    late = await send(client, snapshot({"A": 50, "B": 60, "C": 70}, at=T0))
    await drain(runtime)

    assert await stock(raw) == {"A": 5, "B": 6, "C": 70}  # C had no newer value: applied
    summary = await result(raw, late)
    assert (summary["applied"], summary["stale"], summary["skus"]) == (1, 2, 3)


async def test_a_message_with_the_same_timestamp_is_applied_so_a_replay_is_harmless(client, runtime, raw):
    first = await send(client, snapshot({"A": 5, "B": 6}, at=T0))
    same = await send(client, snapshot({"A": 5, "B": 6}, at=T0))  # another id, same content and time
    await drain(runtime)
    assert await stock(raw) == {"A": 5, "B": 6}
    assert (await result(raw, same))["applied"] == 2
    assert (await result(raw, first))["applied"] == 2

    corrected = await send(client, snapshot({"A": 4}, at=T0))  # equal time, later arrival: applied
    await drain(runtime)
    assert (await stock(raw))["A"] == 4
    assert (await result(raw, corrected))["stale"] == 0


async def test_a_redelivered_message_is_acknowledged_and_applied_once(client, runtime, raw):
    params = snapshot({"A": 5}, at=T0)
    await send(client, params, id="oms-stock-1")
    await drain(runtime)
    await send(client, snapshot({"A": 7}, at=T0 + timedelta(minutes=1)))
    await drain(runtime)
    await send(client, params, id="oms-stock-1")  # re-delivered after a newer update
    assert await drain(runtime) == 0

    assert await raw.fetchval("SELECT count(*) FROM message WHERE external_id = 'oms-stock-1'") == 1
    assert await stock(raw) == {"A": 7}


async def test_zoneless_times_are_read_in_the_oms_time_zone_and_compared_with_offset_times(
    client, runtime, raw, settings_overrides
):
    runtime.settings = runtime.bus.settings = runtime.settings.model_copy(update={"oms_timezone": "Europe/Berlin"})
    # 10:30 in Berlin (winter, UTC+1) is 09:30 UTC
    await send(client, snapshot({"A": 1}, at="2026-02-11 10:30:00"))
    newer = await send(client, snapshot({"A": 2}, at="2026-02-11T09:45:00+00:00"))
    older = await send(client, snapshot({"A": 3}, at="2026-02-11 10:40:00"))  # 09:40 UTC: older than 09:45
    newest = await send(client, snapshot({"A": 4}, at="2026-02-11T11:50:00+02:00"))  # 09:50 UTC
    await drain(runtime)

    assert (await result(raw, newer))["applied"] == 1
    assert (await result(raw, older))["stale"] == 1
    assert (await result(raw, newest))["created_on"] == "2026-02-11T09:50:00+00:00"
    assert await stock(raw) == {"A": 4}


async def test_a_message_without_created_on_is_stamped_with_the_time_it_was_received(client, runtime, raw, clock):
    received = clock.now()
    sent = await send(client, snapshot({"A": 3}, at=None))
    await drain(runtime)
    summary = await result(raw, sent)
    assert summary["created_on_source"] == "received_at"
    assert await raw.fetchval("SELECT source_ts FROM stock WHERE sku = 'A'") == received


# --- all-or-nothing -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("bad_row", "reason"),
    [
        ({"sku": "C", "quantity": "-2"}, "snapshot.stock[2].quantity: must not be negative"),
        ({"sku": "C", "quantity": "lots"}, "snapshot.stock[2].quantity: must be a number"),
        ({"quantity": "2"}, "snapshot.stock[2].sku: required"),
    ],
)
async def test_a_bad_row_fails_the_whole_message_naming_it_and_the_lane_moves_on(client, runtime, raw, bad_row, reason):
    await send(client, snapshot({"A": 1, "B": 1}, at=T0))
    await drain(runtime)
    bad = await send(client, snapshot({"A": 9, "B": 9, "C": bad_row}, at=T0 + timedelta(minutes=1)))
    await send(client, snapshot({"B": 2}, at=T0 + timedelta(minutes=2)))
    await drain(runtime)

    row = await message(raw, bad)
    assert row["status"] == "failed"
    assert row["last_error"].startswith(reason), row["last_error"]
    assert row["attempts"] == 1  # permanent: not retried
    assert await stock(raw) == {"A": 1, "B": 2}  # nothing of the bad message; the next one applied


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"aggregate_id": None}, "snapshot.aggregate_id: required"),
        ({"mode": "PARTIAL"}, "snapshot.mode: must be one of FULL, DELTA, NONZERO"),
        ({"created_on": "11/02/2026"}, "snapshot.created_on:"),
    ],
)
async def test_a_bad_snapshot_field_fails_the_message_with_a_reason_naming_it(client, runtime, raw, change, reason):
    params = snapshot({"A": 1}, at=T0)
    params["snapshot"].update(change)
    bad = await send(client, params)
    await drain(runtime)
    row = await message(raw, bad)
    assert (row["status"], row["last_error"][: len(reason)]) == ("failed", reason)
    assert await stock(raw) == {}


async def test_the_go_mocks_empty_snapshot_is_acknowledged_and_changes_nothing(client, runtime, raw):
    sent = await send(client, {"Snapshot": {"AggregateId": "AGG1", "Mode": "", "Stock": None}})
    await drain(runtime)
    summary = await result(raw, sent)
    assert summary["applied"] == 0 and "ignored" in summary
    assert await raw.fetchval("SELECT count(*) FROM stock") == 0


async def test_an_empty_full_snapshot_wipes_nothing(client, runtime, raw):
    await send(client, snapshot({"A": 4}, at=T0))
    await send(client, snapshot({}, at=T0 + timedelta(hours=1), mode="FULL"))
    await drain(runtime)
    assert await stock(raw) == {"A": 4}  # absent SKUs are left unchanged, in every mode


# --- unlimited stock and what websites sell ----------------------------------------------------------------------
async def sku_view(client: httpx.AsyncClient, sku: str, token: str | None = None) -> dict[str, Any]:
    response = await client.get(f"/stock/{sku}", headers=operator_headers(token) if token else operator_headers())
    assert response.status_code == 200, response.text
    return response.json()


def websites(view: dict[str, Any]) -> dict[str, tuple[Any, bool]]:
    return {w["website"]: (w["salable_quantity"], w["is_salable"]) for w in view["websites"]}


async def test_unlimited_stock_is_always_salable_until_a_limited_update_manages_it_again(client, runtime, raw):
    await send(client, snapshot({"A": {"sku": "A", "quantity": "0", "unlimited": True}}, at=T0))
    await drain(runtime)
    view = await sku_view(client, "A")
    [eu] = view["aggregates"]
    assert (eu["unlimited"], eu["manage_stock"]) == (True, False)
    assert websites(view) == {"base": (None, True), "de": (None, True), "us": (0, False)}

    await send(client, snapshot({"A": {"sku": "A", "quantity": "0", "unlimited": False}}, at=T0 + timedelta(hours=1)))
    await drain(runtime)
    view = await sku_view(client, "A")
    assert (view["aggregates"][0]["unlimited"], view["aggregates"][0]["manage_stock"]) == (False, True)
    assert websites(view) == {"base": (0, False), "de": (0, False), "us": (0, False)}


async def test_the_sku_view_shows_each_aggregate_and_exactly_what_each_website_can_sell(client, runtime, raw):
    eu = await send(client, snapshot({"MUG": "7"}, at=T0))
    await send(client, snapshot({"MUG": "2.5"}, at=T0, aggregate="US-WEB"))
    await send(client, snapshot({"MUG": "40"}, at=T0, aggregate="OUTLET"))  # feeds no website
    await drain(runtime)

    view = await sku_view(client, "MUG", token=COMMERCE_TOKEN)
    assert view["sku"] == "MUG"
    by_aggregate = {a["aggregate_id"]: a for a in view["aggregates"]}
    assert by_aggregate["EU-WEB"]["quantity"] == 7
    assert by_aggregate["EU-WEB"]["websites"] == ["base", "de"]
    assert by_aggregate["EU-WEB"]["message_id"] == (await message(raw, eu))["id"]
    assert datetime.fromisoformat(by_aggregate["EU-WEB"]["source_timestamp"]) == T0
    assert by_aggregate["US-WEB"]["quantity"] == 2.5
    assert by_aggregate["OUTLET"]["websites"] == []
    assert view["unassigned_aggregates"] == ["OUTLET"]
    assert websites(view) == {"base": (7, True), "de": (7, True), "us": (2.5, True)}


async def test_a_sku_the_oms_never_sent_is_404(client):
    response = await client.get("/stock/NOPE", headers=operator_headers())
    assert response.status_code == 404
    assert "NOPE" in response.json()["detail"]


async def test_skus_with_slashes_are_read(client, runtime):
    await send(client, snapshot({"TEE/RED/M": 3}, at=T0))
    await drain(runtime)
    assert (await sku_view(client, "TEE/RED/M"))["aggregates"][0]["quantity"] == 3


async def test_bulk_reads_answer_every_requested_sku_of_a_website(client, runtime):
    await send(client, snapshot({"A": 3, "B": 0, "C": {"sku": "C", "unlimited": True}}, at=T0))
    await drain(runtime)
    response = await client.get(
        "/stock", params={"website": "de", "skus": "A,B,C,UNKNOWN"}, headers=operator_headers(COMMERCE_TOKEN)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["website"], body["aggregate_id"]) == ("de", "EU-WEB")
    got = {i["sku"]: (i["quantity"], i["salable_quantity"], i["is_salable"]) for i in body["items"]}
    assert got == {"A": (3, 3, True), "B": (0, 0, False), "C": (0, None, True), "UNKNOWN": (None, 0, False)}


async def test_listing_a_website_pages_through_its_skus_in_order(client, runtime):
    await send(client, snapshot(page(range(10, 35), 1), at=T0))
    await drain(runtime)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"website": "base", "limit": 10} | ({"cursor": cursor} if cursor else {})
        body = (await client.get("/stock", params=params, headers=operator_headers())).json()
        seen += [item["sku"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(f"SKU-{n}" for n in range(10, 35))


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"website": "mars"}, 404),
        ({}, 422),
        ({"website": "base", "skus": ",".join(f"S{n}" for n in range(501))}, 422),
        ({"website": "base", "limit": 5000}, 422),
    ],
)
async def test_bulk_reads_refuse_unknown_websites_and_unbounded_requests(client, params, status):
    response = await client.get("/stock", params=params, headers=operator_headers())
    assert response.status_code == status, response.text


# --- who may read and write ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/stock/A", "/stock?website=base", "/stock/aggregates"])
async def test_stock_needs_a_token(client, path):
    assert (await client.get(path)).status_code == 401
    assert (await client.get(path, headers=operator_headers("wrong-token-0123456789"))).status_code == 401


async def test_the_aggregate_map_is_for_operators_only(client):
    response = await client.get("/stock/aggregates", headers=operator_headers(COMMERCE_TOKEN))
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/stock"), ("PUT", "/stock/A"), ("PATCH", "/stock/A"), ("DELETE", "/stock/A"), ("POST", "/stock/A")],
)
async def test_manual_stock_edits_answer_409_saying_the_oms_owns_stock(client, runtime, raw, method, path):
    await send(client, snapshot({"A": 3}, at=T0))
    await drain(runtime)
    response = await client.request(
        method, path, json={"sku": "A", "quantity": 99}, headers=operator_headers(COMMERCE_TOKEN)
    )
    assert response.status_code == 409
    assert "owned by the OMS" in response.json()["detail"]
    assert await stock(raw) == {"A": 3}


# --- aggregates ↔ websites -----------------------------------------------------------------------------------------
async def test_the_aggregate_map_is_seeded_from_the_settings_and_shows_unassigned_aggregates(client, runtime):
    await send(client, snapshot({"A": 1}, at=T0, aggregate="OUTLET"))
    await drain(runtime)
    response = await client.get("/stock/aggregates", headers=operator_headers())
    assert response.json() == {"aggregates": {"EU-WEB": ["base", "de"], "US-WEB": ["us"]}, "unassigned": ["OUTLET"]}


async def test_operators_change_the_map_and_websites_follow_at_once_and_a_restart_keeps_it(client, runtime):
    await send(client, snapshot({"A": 5}, at=T0, aggregate="OUTLET"))
    await drain(runtime)
    body = {"aggregates": {"OUTLET": ["outlet"], "US-WEB": ["us", "ca"]}}
    response = await client.put("/stock/aggregates", json=body, headers=operator_headers())
    assert response.status_code == 200, response.text
    assert response.json() == {"aggregates": body["aggregates"], "unassigned": ["EU-WEB"]}
    assert websites(await sku_view(client, "A")) == {"outlet": (5, True), "us": (0, False), "ca": (0, False)}

    await runtime.seed()  # a restart seeds OMS_AGGREGATE_WEBSITES again: the operator's map stays
    after = (await client.get("/stock/aggregates", headers=operator_headers())).json()
    assert after["aggregates"] == body["aggregates"]


async def test_a_website_fed_by_two_aggregates_is_refused(client):
    body = {"aggregates": {"EU-WEB": ["base"], "US-WEB": ["base"]}}
    response = await client.put("/stock/aggregates", json=body, headers=operator_headers())
    assert response.status_code == 422
    assert "'base' is fed by both" in response.text


# --- where a message is read ----------------------------------------------------------------------------------------
async def test_a_large_page_is_applied_in_postgres_and_a_small_message_in_python(client, runtime, raw, monkeypatch):
    parsed: list[int] = []
    original = stock_handler.parse_snapshot

    def counting(params: dict[str, Any], **kwargs: Any) -> Any:
        parsed.append(len(params["snapshot"]["stock"]))
        return original(params, **kwargs)

    monkeypatch.setattr(stock_handler, "parse_snapshot", counting)
    large = await send(client, snapshot(page(range(4000), 3), at=T0, mode="FULL"))
    small = await send(client, snapshot({"SKU-1": 1}, at=T0 + timedelta(minutes=1)))
    size = await raw.fetchval("SELECT pg_column_size(payload) FROM message WHERE external_id = $1", large)
    assert size > LARGE_PAYLOAD_BYTES  # the precondition of this test
    await drain(runtime)

    assert parsed == [0, 1]  # the large page: only its own fields went to Python; the small one: its row too
    assert (await result(raw, large))["applied"] == 4000
    assert (await result(raw, small))["applied"] == 1
    assert (await stock(raw))["SKU-1"] == 1 and len(await stock(raw)) == 4000
