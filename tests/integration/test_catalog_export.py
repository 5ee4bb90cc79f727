"""Full catalog export on a real PostgreSQL with a respx OMS: batch accounting in both send modes, one export at a
time, scheduled exports picked up by the workers, cancel mid-run, resume after the process died (from the last
completed batch, nothing acknowledged sent again), refused products, fingerprints for later change detection."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest
import respx

from app.clock import FrozenClock
from app.runtime import Runtime
from app.services import catalog_export
from tests.support.signing import COMMERCE_TOKEN, operator_headers
from tests.support.stub_commerce import StubCommerce

OMS_URL = "http://oms.test/api/"
UPDATED = "magento.catalog.product_management.updated"
COMMERCE = {"Authorization": f"Bearer {COMMERCE_TOKEN}"}
PRODUCTS = 250


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"oms_url": OMS_URL, "oms_catalog_batch_size": 100, "oms_catalog_concurrency": 8}


class Oms:
    """Records every product call (JSON-RPC id per SKU); ``refuse`` SKUs get a JSON-RPC error."""

    def __init__(self) -> None:
        self.ids: dict[str, list[str]] = {}
        self.params: dict[str, dict[str, Any]] = {}  # the last params received per SKU
        self.requests = 0
        self.batch_sizes: list[int] = []
        self.refuse: set[str] = set()
        self.after_calls: tuple[int, asyncio.Event] | None = None
        self.delay_s = 0.0  # per call: an OMS slower than the database, as real ones are
        self.unanswered_once: set[str] = set()  # SKUs a batch answer leaves out the first time
        self.refuse_batches = False  # HTTP 400 to any JSON-RPC batch request

    def answer(self, call: dict[str, Any]) -> dict[str, Any]:
        sku = call["params"]["product"]["sku"]
        self.ids.setdefault(sku, []).append(call["id"])
        self.params[sku] = call["params"]
        if sku in self.refuse:
            return {"jsonrpc": "2.0", "id": call["id"], "error": {"code": -32602, "message": f"bad product {sku}"}}
        return {"jsonrpc": "2.0", "id": call["id"], "result": []}

    async def respond(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        document = json.loads(request.content)
        if isinstance(document, list):
            if self.refuse_batches:
                return httpx.Response(400, text="batch requests are not supported")
            self.batch_sizes.append(len(document))
            answers = [self.answer(call) for call in document]
            left_out = {call["id"] for call in document if call["params"]["product"]["sku"] in self.unanswered_once}
            self.unanswered_once -= {call["params"]["product"]["sku"] for call in document}
            return httpx.Response(200, json=[answer for answer in answers if answer["id"] not in left_out])
        answer = self.answer(document)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.after_calls and sum(map(len, self.ids.values())) >= self.after_calls[0]:
            self.after_calls[1].set()
            await asyncio.sleep(0.05)  # let the test act while calls are in flight
        return httpx.Response(200, json=answer)

    @property
    def received(self) -> Counter[str]:
        return Counter({sku: len(ids) for sku, ids in self.ids.items()})


@pytest.fixture
def stub(oms: respx.Router) -> Oms:
    recorder = Oms()
    oms.post(OMS_URL).mock(side_effect=recorder.respond)
    return recorder


@pytest.fixture
async def catalog(raw: asyncpg.Connection) -> list[str]:
    skus = [f"SKU-{n:05d}" for n in range(PRODUCTS)]
    await raw.execute(
        """
        INSERT INTO catalog_product (sku, type, name, enabled, created_at, updated_at)
        SELECT s, 'simple', 'Product ' || s, true, now(), now() FROM unnest($1::text[]) AS s
        """,
        skus,
    )
    return skus


async def wait_for_status(client: httpx.AsyncClient, *statuses: str, timeout_s: float = 30) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        view = (await client.get("/catalog/exports/current", headers=operator_headers())).json()
        if view["status"] in statuses:
            return view
        assert asyncio.get_running_loop().time() < deadline, f"export still {view}"
        await asyncio.sleep(0.02)


async def test_a_full_export_sends_every_product_once_in_batches(
    client: httpx.AsyncClient, stub: Oms, catalog: list[str], raw: asyncpg.Connection
) -> None:
    started = await client.post("/catalog/exports", json={}, headers=COMMERCE)
    assert started.status_code == 202, started.text
    assert started.json()["status"] == "running" and started.json()["batch_size"] == 100
    view = await wait_for_status(client, "done")
    assert stub.received == Counter(dict.fromkeys(catalog, 1))
    assert (view["batches_sent"], view["batches_acknowledged"], view["products_read"]) == (3, 3, PRODUCTS)
    assert view["products_sent"] == PRODUCTS and view["error_count"] == 0 and view["finished_at"]
    assert stub.ids["SKU-00007"] == [f"mdc-catalog-{view['id']}-SKU-00007"]
    # What was exported is what product events now compare against: posting it unchanged exports nothing.
    assert await raw.fetchval(
        "SELECT count(*) FROM catalog_product p JOIN catalog_product_exported e USING (sku) "
        "WHERE e.fingerprint = p.fingerprint"
    ) == len(catalog)
    same = {"sku": "SKU-00007", "name": "Product SKU-00007", "type_id": "simple", "status": 1}
    answer = await client.post("/catalog/products", json=same, headers=COMMERCE)
    assert answer.json()["products"][0]["reason"] == "unchanged"


async def test_products_kept_encoded_for_other_attributes_go_out_with_the_attributes_in_force(
    client: httpx.AsyncClient, stub: Oms, raw: asyncpg.Connection
) -> None:
    await raw.execute(
        """
        INSERT INTO catalog_product (sku, type, name, enabled, custom_attributes, created_at, updated_at)
        SELECT s, 'simple', 'Product ' || s, true, '{"color": "red", "size": "L"}', now(), now()
          FROM unnest($1::text[]) AS s
        """,
        ["SKU-A", "SKU-B"],
    )
    kept = await raw.fetchval("SELECT params FROM catalog_product WHERE sku = 'SKU-A'")
    assert '"custom_attributes":[]' in kept  # encoded for the attributes then in force: none
    answer = await client.put("/catalog/attributes", json={"attributes": ["size"]}, headers=operator_headers())
    assert answer.status_code == 200, answer.text

    await client.post("/catalog/exports", headers=operator_headers())
    await wait_for_status(client, "done")
    for sku in ("SKU-A", "SKU-B"):
        assert stub.params[sku]["product"]["custom_attributes"] == [{"attribute_code": "size", "value": "L"}]
    # what was recorded as exported is what a product event with these attributes computes: nothing goes again
    attributes = [{"attribute_code": "color", "value": "red"}, {"attribute_code": "size", "value": "L"}]
    same = {"sku": "SKU-A", "name": "Product SKU-A", "type_id": "simple", "status": 1, "custom_attributes": attributes}
    posted = await client.post("/catalog/products", json=same, headers=COMMERCE)
    assert posted.json()["products"][0]["reason"] == "unchanged"


VERSIONS = """
    SELECT p.sku, p.xmin::text, e.xmin::text, e.fingerprint
      FROM catalog_product p JOIN catalog_product_exported e USING (sku)
"""


class TestRpcBatchMode:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"oms_url": OMS_URL, "oms_catalog_batch_size": 100, "oms_catalog_send_mode": "rpc-batch"}

    async def test_each_batch_is_one_json_rpc_batch_request(
        self, client: httpx.AsyncClient, stub: Oms, catalog: list[str]
    ) -> None:
        await client.post("/catalog/exports", headers=operator_headers())
        view = await wait_for_status(client, "done")
        assert stub.batch_sizes == [100, 100, 50] and stub.requests == 3
        assert stub.received == Counter(dict.fromkeys(catalog, 1))
        assert view["send_mode"] == "rpc-batch" and view["batches_acknowledged"] == 3

    async def test_calls_a_batch_answer_leaves_out_are_sent_again_alone_and_refusals_are_listed(
        self, client: httpx.AsyncClient, stub: Oms, catalog: list[str]
    ) -> None:
        stub.unanswered_once = {"SKU-00010", "SKU-00150"}
        stub.refuse = {"SKU-00020"}
        await client.post("/catalog/exports", headers=operator_headers())
        view = await wait_for_status(client, "done")
        # the first two batches were each sent again with only the call left out, under the same id
        assert stub.batch_sizes == [100, 1, 100, 1, 50]
        assert stub.received == Counter({**dict.fromkeys(catalog, 1), "SKU-00010": 2, "SKU-00150": 2})
        assert len(set(stub.ids["SKU-00010"])) == 1
        assert (view["batches_sent"], view["batches_acknowledged"], view["products_sent"]) == (3, 3, PRODUCTS)
        assert [error["sku"] for error in view["errors"]] == ["SKU-00020"] and view["error_count"] == 1

    async def test_an_oms_refusing_batch_requests_fails_the_export_and_says_which_setting(
        self, client: httpx.AsyncClient, stub: Oms, catalog: list[str]
    ) -> None:
        stub.refuse_batches = True
        await client.post("/catalog/exports", headers=operator_headers())
        view = await wait_for_status(client, "failed")
        assert "refused the batch request" in view["last_error"] and "OMS_CATALOG_SEND_MODE" in view["last_error"]
        assert "HTTP 400" in view["last_error"] and view["batches_acknowledged"] == 0

    async def test_exporting_an_unchanged_catalog_again_writes_no_product_row(
        self, client: httpx.AsyncClient, stub: Oms, catalog: list[str], raw: asyncpg.Connection
    ) -> None:
        await client.post("/catalog/exports", headers=operator_headers())
        await wait_for_status(client, "done")
        versions = await raw.fetch(VERSIONS)
        await client.post("/catalog/exports", headers=operator_headers())
        view = await wait_for_status(client, "done")
        assert view["products_sent"] == PRODUCTS and stub.received == Counter(dict.fromkeys(catalog, 2))
        # the OMS already had every product's params: no fingerprint to record, no row version written
        again = await raw.fetch(VERSIONS)
        assert sorted(map(tuple, again)) == sorted(map(tuple, versions))


async def test_one_export_at_a_time_and_a_scheduled_one_is_run_by_the_workers(
    client: httpx.AsyncClient, runtime: Runtime, stub: Oms, catalog: list[str]
) -> None:
    scheduled = await client.post("/catalog/exports", json={"schedule_only": True}, headers=operator_headers())
    assert scheduled.status_code == 202 and scheduled.json()["status"] == "pending"
    again = await client.post("/catalog/exports", json={}, headers=operator_headers())
    assert again.status_code == 200 and again.json()["id"] == scheduled.json()["id"]
    assert stub.requests == 0  # nothing runs until a worker takes it
    export_id = await runtime.catalog_exports.claim()
    assert export_id == scheduled.json()["id"]
    await runtime.catalog_exports.run(export_id)
    assert (await wait_for_status(client, "done"))["products_sent"] == PRODUCTS
    assert stub.received == Counter(dict.fromkeys(catalog, 1))


async def test_a_canceled_export_stops_sending(
    client: httpx.AsyncClient, stub: Oms, catalog: list[str], runtime: Runtime
) -> None:
    reached = asyncio.Event()
    stub.after_calls = (120, reached)
    await client.post("/catalog/exports", headers=operator_headers())
    await asyncio.wait_for(reached.wait(), 30)
    canceled = await client.delete("/catalog/exports/current", headers=operator_headers())
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    await asyncio.gather(*runtime.background, return_exceptions=True)  # the export task stops by itself
    sent = sum(stub.received.values())
    assert 120 <= sent < PRODUCTS
    view = await wait_for_status(client, "canceled")
    assert view["batches_acknowledged"] == 1 and view["finished_at"]
    assert (await client.delete("/catalog/exports/current", headers=operator_headers())).status_code == 404


async def test_an_export_whose_process_died_resumes_after_the_last_recorded_product(
    client: httpx.AsyncClient,
    stub: Oms,
    catalog: list[str],
    runtime: Runtime,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
    raw: asyncpg.Connection,
) -> None:
    monkeypatch.setattr(catalog_export, "FLUSH_EVERY", 10)
    stub.delay_s = 0.01  # slow enough to stop it mid-export whatever the machine's load
    await client.post("/catalog/exports", headers=operator_headers())

    async def recorded_into_second_batch() -> bool:
        view = (await client.get("/catalog/exports/current", headers=operator_headers())).json()
        return view["products_sent"] >= 140

    while not await recorded_into_second_batch():
        await asyncio.sleep(0.005)
    for task in runtime.background:  # the process dies: its export task is gone, its lease left behind
        task.cancel()
    await asyncio.gather(*runtime.background, return_exceptions=True)
    died = await wait_for_status(client, "running")
    recorded = set(await raw.fetchval("SELECT batch_acked FROM catalog_export WHERE id = $1", died["id"]))
    acknowledged = died["batches_acknowledged"]  # 1, or 2 if the second batch completed just before
    assert acknowledged in (1, 2) and 140 <= died["products_sent"] < PRODUCTS
    assert len(recorded) == died["products_sent"] - 100 * acknowledged
    first_batch = catalog[: 100 * acknowledged]
    assert all(stub.received[sku] == 1 for sku in first_batch)
    sent_before = dict(stub.received)

    assert await runtime.catalog_exports.claim() is None  # the lease still holds
    clock.advance(seconds=runtime.settings.oms_catalog_export_lease_s + 1)
    export_id = await runtime.catalog_exports.claim()
    assert export_id == died["id"]
    await runtime.catalog_exports.run(export_id)

    view = await wait_for_status(client, "done")
    assert set(stub.received) == set(catalog)
    assert all(stub.received[sku] == 1 for sku in first_batch)  # acknowledged batches are never sent again
    again = [sku for sku, count in stub.received.items() if count > 1]
    # Only products whose acknowledgement was not recorded yet go again (in flight when the process died: the
    # calls under way and the acknowledgements not flushed), with the same JSON-RPC id, so the OMS can tell.
    assert not recorded & set(again)  # an acknowledgement on record is never sent again
    assert len(again) <= 2 * catalog_export.FLUSH_EVERY + 8
    assert all(sku in sent_before and len(set(stub.ids[sku])) == 1 for sku in again)
    assert (view["batches_sent"], view["batches_acknowledged"], view["products_read"]) == (3, 3, PRODUCTS)


async def test_products_the_oms_refuses_are_listed_and_the_export_completes(
    client: httpx.AsyncClient, stub: Oms, catalog: list[str]
) -> None:
    stub.refuse = {"SKU-00003", "SKU-00200"}
    await client.post("/catalog/exports", headers=operator_headers())
    view = await wait_for_status(client, "done")
    assert view["error_count"] == 2
    assert {error["sku"] for error in view["errors"]} == {"SKU-00003", "SKU-00200"}
    assert "bad product SKU-00003" in next(e["error"] for e in view["errors"] if e["sku"] == "SKU-00003")
    assert view["products_sent"] == PRODUCTS


async def test_without_an_oms_an_export_is_refused_and_without_one_ever_status_is_404(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    assert (await client.get("/catalog/exports/current", headers=operator_headers())).status_code == 404
    runtime.catalog_exports.client = None
    refused = await client.post("/catalog/exports", headers=operator_headers())
    assert refused.status_code == 409 and "OMS_URL" in refused.json()["detail"]


class TestFromAdobeCommerce:
    """With ADOBE_COMMERCE_* set, the export reads the store's catalog (GET /products, paged) and keeps it."""

    @pytest.fixture
    def store(self) -> Iterator[StubCommerce]:
        with StubCommerce() as stub:
            stub.products = [
                {"id": 1, "sku": "TEE", "name": "Tee", "type_id": "configurable", "status": 1,
                 "extension_attributes": {"configurable_product_links": [15, 16]}},
                *({"id": n, "sku": f"P-{n:02d}", "name": f"Product {n}", "type_id": "simple", "status": 1}
                  for n in range(2, 15)),
                {"id": 15, "sku": "TEE-S", "name": "Tee S", "type_id": "simple", "status": 1},
                {"id": 16, "sku": "TEE-M", "name": "Tee M", "type_id": "simple", "status": 1},
                {"id": 17, "sku": "", "name": "broken", "type_id": "simple"},
            ]  # fmt: skip
            yield stub

    @pytest.fixture
    def settings_overrides(self, store: StubCommerce) -> dict[str, Any]:
        return {
            "oms_url": OMS_URL,
            "oms_catalog_batch_size": 10,
            "adobe_commerce_url": store.base_url,
            "adobe_commerce_token": store.token,
        }

    async def test_the_stores_catalog_is_exported_in_batches_and_kept(
        self, client: httpx.AsyncClient, stub: Oms, raw: asyncpg.Connection, runtime: Runtime
    ) -> None:
        started = await client.post("/catalog/exports", headers=operator_headers())
        assert started.json()["source"] == "commerce"
        view = await wait_for_status(client, "done")
        assert set(stub.received) == {"TEE", "TEE-S", "TEE-M", *(f"P-{n:02d}" for n in range(2, 15))}
        assert all(count == 1 for count in stub.received.values())
        assert (view["batches_sent"], view["batches_acknowledged"], view["products_read"]) == (2, 2, 16)
        assert view["error_count"] == 1 and view["errors"][0]["sku"] == ""
        assert await raw.fetchval("SELECT count(*) FROM catalog_product") == 16
        # TEE's children came in the second batch: TEE goes again, as a product event, with them.
        payload = await raw.fetchval("SELECT payload FROM message WHERE topic = $1 AND lane = 'product/TEE'", UPDATED)
        assert json.loads(payload)["product"]["children_skus"] == ["TEE-S", "TEE-M"]

    async def test_a_last_page_of_only_unreadable_products_is_still_reported(
        self, client: httpx.AsyncClient, stub: Oms, store: StubCommerce
    ) -> None:
        store.products = [
            *({"id": n, "sku": f"P-{n:02d}", "name": f"Product {n}", "type_id": "simple", "status": 1}
              for n in range(1, 11)),
            {"id": 11, "sku": "", "name": "broken", "type_id": "simple"},  # no SKU: unreadable
        ]  # fmt: skip
        await client.post("/catalog/exports", headers=operator_headers())
        view = await wait_for_status(client, "done")
        assert len(stub.received) == 10 and view["products_read"] == 10
        assert view["error_count"] == 1 and view["errors"][0]["sku"] == ""
        assert "unreadable" in view["errors"][0]["error"]
