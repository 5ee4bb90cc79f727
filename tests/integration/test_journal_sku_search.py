"""Journal search by any SKU or order number (issue #20, item 4): a message that names more references than its
``refs`` keep (a FULL stock page of 5,000 SKUs, an order of 250 lines, a configurable with 250 children) is found by
every one of them — at once from its payload, then from ``message_refs`` once indexed (app/workers/references.py) —
through GET /journal, the CLI and the bulk actions alike; the prune deletes the indexed references with their
message; the database reads a payload's references as Python does; a search stays bounded."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.data.references import PENDING_SEARCHED
from app.db import DatabaseUrl, alembic_config
from app.protocol.references import (
    LIST_REFERENCE_KEYS,
    MAX_REFERENCE_LENGTH,
    MAX_REFERENCES,
    REFERENCE_KEYS,
    extract_references,
)
from app.runtime import Runtime
from app.workers.references import DEFER_S
from app.workers.registry import HandlerRegistry, build_registry
from tests.conftest import create_database, drop_database, make_settings
from tests.integration.test_journal_cli import journal as journal_cli
from tests.support.orders import commerce_order, item, order_body
from tests.support.signing import COMMERCE_TOKEN, operator_headers, rpc_body, signed_headers

STOCK_TOPIC = "magento.inventory.aggregate_stock_management.updated"
AUTH = operator_headers()
COMMERCE = {"Authorization": f"Bearer {COMMERCE_TOKEN}"}
PAGE = 5000


def full_page(prefix: str = "SKU", skus: int = PAGE) -> dict[str, Any]:
    rows = [{"sku": f"{prefix}-{i:05d}", "quantity": str(i % 50), "unlimited": False} for i in range(skus)]
    return {"snapshot": {"aggregate_id": "EU-WEB", "mode": "FULL", "created_on": "2026-12-01T00:00:00Z", "stock": rows}}


async def post_call(client: httpx.AsyncClient, raw: asyncpg.Connection, topic: str, params: dict[str, Any]) -> int:
    body = rpc_body(method=topic, params=params)
    response = await client.post("/oms/rpc", content=body, headers=signed_headers(body))
    assert response.status_code == 200, response.text
    return await raw.fetchval(
        "SELECT id FROM message WHERE direction = 'in' AND external_id = $1", json.loads(body)["id"]
    )


async def found(client: httpx.AsyncClient, reference: str, **filters: Any) -> list[int]:
    response = await client.get("/journal", params={"reference": reference, **filters}, headers=AUTH)
    assert response.status_code == 200, response.text
    return [entry["id"] for entry in response.json()["items"]]


async def waiting(raw: asyncpg.Connection) -> list[int]:
    return [row["message_id"] for row in await raw.fetch("SELECT message_id FROM message_refs_pending ORDER BY 1")]


async def indexed(raw: asyncpg.Connection) -> dict[int, list[str]]:
    return {row["message_id"]: row["refs"] for row in await raw.fetch("SELECT message_id, refs FROM message_refs")}


# --- a FULL stock page ---------------------------------------------------------------------------------------


async def test_the_4999th_sku_of_a_full_page_is_found_as_soon_as_the_page_is_stored(client, raw):
    page = await post_call(client, raw, STOCK_TOPIC, full_page())
    other = await post_call(client, raw, STOCK_TOPIC, full_page("OTHER", 300))

    stored = await raw.fetchval("SELECT cardinality(refs) FROM message WHERE id = $1", page)
    assert stored == MAX_REFERENCES  # the first 200 only: the rest waits for the indexer
    assert await waiting(raw) == [page, other]
    assert await found(client, "SKU-04998") == [page]
    assert await found(client, "SKU-00007") == [page]  # from its refs
    assert await found(client, "OTHER-00299") == [other]
    assert await found(client, "SKU-05000") == []  # not in the page
    assert await found(client, "SKU-0499") == []  # a whole reference, not a part of one


async def test_once_indexed_every_sku_of_the_page_is_found_from_its_references(client, runtime: Runtime, raw, clock):
    page = await post_call(client, raw, STOCK_TOPIC, full_page())
    clock.advance(seconds=DEFER_S + 1)  # the page itself is still queued: the indexer waits that long for the bus

    assert await runtime.references.index_all() == 1
    assert await waiting(raw) == []
    refs = (await indexed(raw))[page]
    assert sorted(refs) == [f"SKU-{i:05d}" for i in range(PAGE)]
    assert await found(client, "SKU-04998") == [page]
    assert await found(client, "SKU-00000") == [page]


async def test_the_cli_journal_list_finds_the_4999th_sku_of_a_full_page(client, raw, database_url):
    page = await post_call(client, raw, STOCK_TOPIC, full_page())
    await post_call(client, raw, STOCK_TOPIC, full_page("OTHER", 10))

    before_indexing = await journal_cli(database_url, "list", "--reference", "SKU-04998")
    assert before_indexing.returncode == 0, before_indexing.stderr
    assert [line.split()[0] for line in before_indexing.stdout.splitlines()] == [str(page)]


async def test_a_search_combines_the_reference_with_the_other_filters(client, raw):
    page = await post_call(client, raw, STOCK_TOPIC, full_page())
    assert await found(client, "SKU-04998", direction="in", topic=STOCK_TOPIC, status="queued") == [page]
    assert await found(client, "SKU-04998", direction="out") == []
    assert await found(client, "SKU-04998", status="succeeded") == []


async def test_a_bulk_discard_by_a_sku_late_in_a_full_page_discards_that_page(client, raw):
    page = await post_call(client, raw, STOCK_TOPIC, full_page())
    other = await post_call(client, raw, STOCK_TOPIC, full_page("OTHER", 300))

    response = await client.post("/journal/discard", json={"reference": "SKU-04998"}, headers=AUTH)

    assert response.status_code == 200, response.text
    assert response.json()["changed"] == 1
    statuses = await raw.fetch("SELECT id, status::text FROM message ORDER BY id")
    assert [(row["id"], row["status"]) for row in statuses] == [(page, "discarded"), (other, "queued")]


# --- what is queued for indexing, and when it is indexed -----------------------------------------------------


async def test_a_message_that_names_fewer_than_200_references_is_not_queued_for_indexing(client, raw):
    small = await post_call(client, raw, STOCK_TOPIC, full_page("SMALL", MAX_REFERENCES - 1))
    capped = await post_call(client, raw, STOCK_TOPIC, full_page("CAPPED", MAX_REFERENCES))

    assert await raw.fetchval("SELECT cardinality(refs) FROM message WHERE id = $1", small) == MAX_REFERENCES - 1
    assert await waiting(raw) == [capped]
    assert await found(client, f"SMALL-{MAX_REFERENCES - 2:05d}") == [small]


async def test_the_indexer_lets_the_bus_go_first_for_at_most_a_minute(client, runtime: Runtime, raw, clock):
    page = await post_call(client, raw, STOCK_TOPIC, full_page("SKU", 300))  # queued: the bus has work

    assert await runtime.references.index_next() == 0
    clock.advance(seconds=DEFER_S - 1)
    assert await runtime.references.index_next() == 0
    await raw.execute("UPDATE message SET status = 'succeeded', finished_at = now() WHERE id = $1", page)
    assert await runtime.references.index_next() == 1  # the bus is idle: at once
    assert list(await indexed(raw)) == [page]

    later = await post_call(client, raw, STOCK_TOPIC, full_page("LATER", 300))
    assert await runtime.references.index_next() == 0
    clock.advance(seconds=DEFER_S + 1)
    assert await runtime.references.index_next() == 1  # waited long enough: indexed although the bus has work
    assert sorted(await indexed(raw)) == [page, later]


async def test_a_queued_message_that_was_deleted_meanwhile_just_leaves_the_queue(client, runtime: Runtime, raw, clock):
    page = await post_call(client, raw, STOCK_TOPIC, full_page("SKU", 300))
    await raw.execute("DELETE FROM message WHERE id = $1", page)

    assert await runtime.references.index_all() == 1
    assert await waiting(raw) == [] and await indexed(raw) == {}


async def test_a_process_with_workers_indexes_by_itself(database_url: DatabaseUrl, raw):
    rows = [{"sku": f"W-{i:04d}"} for i in range(300)]
    message = await raw.fetchval(
        """
        INSERT INTO message (direction, channel, topic, external_id, lane, payload, refs, status, next_attempt_at,
                             created_at, finished_at)
        VALUES ('in', 'oms', 'x', 'x-1', 'x', $1::jsonb, ARRAY(SELECT 'W-' || lpad(g::text, 4, '0')
                                                              FROM generate_series(0, 199) g),
                'succeeded', now(), now(), now())
        RETURNING id
        """,
        json.dumps({"rows": rows}),
    )
    runtime = Runtime.build(make_settings(database_url), url=database_url)
    await runtime.start(workers=True, register=False)
    try:
        for _ in range(100):
            if await indexed(raw):
                break
            await asyncio.sleep(0.05)
    finally:
        await runtime.stop()
    assert list(await indexed(raw)) == [message] and await waiting(raw) == []


# --- outbound messages --------------------------------------------------------------------------------------


async def test_an_order_export_is_found_by_a_sku_beyond_the_first_200(client, runtime: Runtime, raw, clock):
    items = [item(1000 + n, f"LINE-{n:03d}", price="1.00") for n in range(250)]
    response = await client.post(
        "/orders",
        content=order_body(commerce_order(items=items)),
        headers={**COMMERCE, "Content-Type": "application/json"},
    )
    assert response.status_code in (200, 202), response.text
    export = await raw.fetchval("SELECT id FROM message WHERE direction = 'out'")

    assert await raw.fetchval("SELECT cardinality(refs) FROM message WHERE id = $1", export) == MAX_REFERENCES
    assert await found(client, "LINE-240") == [export]  # from its payload, before it is indexed
    clock.advance(seconds=DEFER_S + 1)
    await runtime.references.index_all()
    assert await found(client, "LINE-240", direction="out") == [export]
    assert await found(client, "000000101", direction="out") == [export]  # the order number, as before
    assert "LINE-249" in (await indexed(raw))[export]


async def test_a_product_export_is_found_by_a_child_sku_beyond_the_first_200(client, runtime: Runtime, raw, clock):
    children = [
        {"id": 5000 + n, "sku": f"TEE-{n:03d}", "name": f"Tee {n}", "type_id": "simple", "status": 1, "price": 10}
        for n in range(250)
    ]
    parent = {
        "id": 4001, "sku": "TEE", "name": "Tee", "type_id": "configurable", "status": 1, "price": 10,
        "extension_attributes": {"configurable_product_links": [child["id"] for child in children]},
    }  # fmt: skip
    response = await client.post("/catalog/products", json=[parent, *children], headers=COMMERCE)
    assert response.status_code == 200, response.text
    export = await raw.fetchval(
        "SELECT id FROM message WHERE direction = 'out' AND payload -> 'product' ->> 'sku' = 'TEE' ORDER BY id DESC"
    )
    child = await raw.fetchval(
        "SELECT id FROM message WHERE direction = 'out' AND payload -> 'product' ->> 'sku' = 'TEE-240'"
    )

    assert await raw.fetchval("SELECT refs[1:3] FROM message WHERE id = $1", export) == ["TEE", "TEE-000", "TEE-001"]
    assert sorted(await found(client, "TEE-240")) == sorted([export, child])
    clock.advance(seconds=DEFER_S + 1)
    await runtime.references.index_all()
    assert sorted(await found(client, "TEE-240")) == sorted([export, child])


class TestSourceItemsForAdobeCommerce:
    """Stock applied, queued for Adobe Commerce in batches of source items: each batch is found by its SKUs."""

    @pytest.fixture
    def registry(self) -> HandlerRegistry:
        return build_registry(make_settings())  # the real stock handler

    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {
            "oms_aggregate_websites": {"EU-WEB": ["base"]},
            "adobe_commerce_url": "http://127.0.0.1:9/",  # nothing is delivered here
            "adobe_commerce_token": "commerce-test-token",
            "adobe_commerce_source_codes": {"EU-WEB": "eu_source"},
            "adobe_commerce_source_items_batch": 500,
        }

    async def test_a_batch_is_found_by_a_sku_beyond_the_first_200_and_by_its_source(
        self, client, runtime: Runtime, raw, clock
    ):
        page = await post_call(client, raw, STOCK_TOPIC, full_page("SRC", 300))
        while await runtime.bus.process_next_inbound():
            pass
        [batch] = [row["id"] for row in await raw.fetch("SELECT id FROM message WHERE channel = 'commerce'")]

        refs = await raw.fetchval("SELECT refs FROM message WHERE id = $1", batch)
        assert len(refs) == MAX_REFERENCES and refs[:2] == ["eu_source", "SRC-00000"]
        assert await found(client, "SRC-00299") == [batch, page]
        assert await found(client, "eu_source") == [batch]
        assert await runtime.references.index_all() == 2  # the bus is idle
        assert await found(client, "SRC-00299") == [batch, page]


# --- retention and bounds -----------------------------------------------------------------------------------


async def test_the_prune_deletes_a_messages_indexed_references_with_it(client, runtime: Runtime, raw, clock):
    old = await post_call(client, raw, STOCK_TOPIC, full_page("OLD", 300))
    recent = await post_call(client, raw, STOCK_TOPIC, full_page("NEW", 300))
    clock.advance(seconds=DEFER_S + 1)
    assert await runtime.references.index_all() == 2
    await raw.execute(
        "UPDATE message SET status = 'succeeded', created_at = $2, finished_at = $2 WHERE id = $1",
        old,
        clock.now() - timedelta(days=40),
    )
    await raw.execute("UPDATE message SET status = 'succeeded', finished_at = $2 WHERE id = $1", recent, clock.now())
    await raw.execute("UPDATE message_stat_state SET counted_until = $1", clock.now())

    result = await runtime.journal_prune.prune(30)

    assert result.deleted == 1
    assert list(await indexed(raw)) == [recent]
    assert await found(client, "NEW-00299") == [recent] and await found(client, "OLD-00299") == []


@pytest.mark.parametrize("length", [MAX_REFERENCE_LENGTH + 1, 60_000])
async def test_a_reference_longer_than_any_kept_is_refused_with_422_naming_it(client, raw, length):
    response = await client.get("/journal", params={"reference": "S" * length}, headers=AUTH)
    assert response.status_code == 422, response.text
    answer = response.json()
    assert answer["error"] == "InputRejected"
    assert [error["field"] for error in answer["errors"]] == ["reference"]


async def test_the_cli_refuses_a_reference_longer_than_any_kept(database_url):
    listed = await journal_cli(database_url, "list", "--reference", "S" * (MAX_REFERENCE_LENGTH + 1))
    assert listed.returncode == 1
    assert "reference: at most 200 characters" in listed.stderr


async def test_a_reference_of_200_characters_finds_the_value_it_begins(client, raw):
    long_sku = "L" * 150 + "-" + "x" * 100
    message = await post_call(client, raw, STOCK_TOPIC, {"snapshot": {"mode": "DELTA", "stock": [{"sku": long_sku}]}})
    assert await found(client, long_sku[:MAX_REFERENCE_LENGTH]) == [message]


async def test_a_search_reads_the_payloads_of_the_newest_queued_messages_only(client, runtime: Runtime, raw, clock):
    """The bound on what a search reads: beyond PENDING_SEARCHED queued messages, an older one is found by its
    refs only until the indexer reaches it."""
    await raw.execute(
        """
        INSERT INTO message (direction, channel, topic, external_id, lane, payload, refs, status, next_attempt_at,
                             created_at, finished_at)
        SELECT 'in', 'oms', 'x', 'x-' || n, 'x', jsonb_build_object('rows', (
                   SELECT jsonb_agg(jsonb_build_object('sku', 'M' || n || '-' || g)) FROM generate_series(0, 200) g)),
               ARRAY(SELECT 'M' || n || '-' || g FROM generate_series(0, 199) g), 'succeeded', $1, $1, $1
          FROM generate_series(1, $2) n
        """,
        clock.now(),
        PENDING_SEARCHED + 1,
    )
    oldest, newest = (
        await raw.fetchval("SELECT min(id) FROM message"),
        await raw.fetchval("SELECT max(id) FROM message"),
    )

    assert await found(client, f"M{PENDING_SEARCHED + 1}-200") == [newest]
    assert await found(client, "M1-200") == []  # beyond the bound, not indexed yet
    assert await found(client, "M1-199") == [oldest]  # its refs
    await runtime.references.index_all()  # the bus is idle
    assert await found(client, "M1-200") == [oldest]


# --- the database reads references as Python does ------------------------------------------------------------

_KEYS = st.sampled_from(sorted({*REFERENCE_KEYS, *LIST_REFERENCE_KEYS, "order", "id", "lines", "name", "qty"}))
_TEXT = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=6) | st.sampled_from(
    [" MUG ", "\u00a0A\u2003", "\t\n", "", "x" * 250, " " + "y" * 205, 'q"u\\o\u0007te', "Ä-ü"]
)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not x.is_integer())  # (1e+16: see 0015)
    | _TEXT
)
_JSON = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_KEYS, children, max_size=4),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.dictionaries(_KEYS, _JSON, max_size=5))
async def test_the_database_reads_the_references_of_a_payload_as_python_does(raw, params):
    in_postgres = await raw.fetchval("SELECT message_references($1::jsonb)", json.dumps(params))
    assert sorted(in_postgres) == sorted(extract_references(params, limit=None))


async def test_references_deeper_than_eight_levels_are_left_out_by_both(raw):
    deep: dict[str, Any] = {"sku": "LEVEL-9"}
    for level in range(8, 0, -1):
        deep = {"sku": f"LEVEL-{level}", "next": deep}
    params = {"sku": "LEVEL-0", "next": deep, "order": {"id": 42, "lines": [[{"children_skus": ["C-1", 7, True]}]]}}

    in_postgres = await raw.fetchval("SELECT message_references($1::jsonb)", json.dumps(params))
    assert sorted(in_postgres) == sorted(extract_references(params, limit=None))
    assert "LEVEL-8" in in_postgres and "LEVEL-9" not in in_postgres and {"42", "C-1", "7"} <= set(in_postgres)


# --- migration 0015 -------------------------------------------------------------------------------------------


async def test_0015_queues_the_messages_stored_before_it_that_filled_their_refs_and_downgrades(pg_server):
    url = await create_database(pg_server, template=None)
    try:
        await asyncio.to_thread(command.upgrade, alembic_config(url), "0014")
        connection = await asyncpg.connect(url.libpq)
        try:
            insert = """
                INSERT INTO message (direction, channel, topic, external_id, lane, payload, refs, status,
                                     next_attempt_at, created_at)
                VALUES ('in', 'oms', 'x', $1, 'x', '{}', ARRAY(SELECT 'R' || g FROM generate_series(1, $2) g),
                        'queued', now(), now())
                RETURNING id
            """
            full = await connection.fetchval(insert, "full", MAX_REFERENCES)
            await connection.fetchval(insert, "small", 3)
            await asyncio.to_thread(command.upgrade, alembic_config(url), "0015")
            assert await waiting(connection) == [full]
            later = await connection.fetchval(insert, "later", MAX_REFERENCES + 5)
            assert await waiting(connection) == [full, later]  # the trigger, from now on

            await asyncio.to_thread(command.downgrade, alembic_config(url), "0014")
            tables = {row["tablename"] for row in await connection.fetch("SELECT tablename FROM pg_tables")}
            assert not {"message_refs", "message_refs_pending"} & tables
            await connection.fetchval(insert, "after-downgrade", MAX_REFERENCES)  # no trigger left behind
            assert await connection.fetchval("SELECT count(*) FROM pg_proc WHERE proname LIKE 'message_ref%'") == 0
        finally:
            await connection.close()
    finally:
        await drop_database(pg_server, url)
