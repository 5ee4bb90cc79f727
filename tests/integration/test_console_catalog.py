"""The console's catalog page on a real PostgreSQL: the full export's progress (refreshing itself while it runs), Run,
Schedule and Cancel; the exported attributes, shipping methods and bundle sourcing rules edited through forms; the
CSV upload and its result; and what a read-only session, a missing CSRF token or bad input get (4xx, nothing
changed)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import respx

from app.clock import FrozenClock
from app.console.pages.catalog import export_progress
from app.runtime import Runtime
from app.schemas import CatalogExportView
from app.services import catalog_export
from tests.support.console import READONLY_TOKEN, csrf_of
from tests.support.signing import OPERATOR_TOKEN

OMS_URL = "http://oms.test/api/"
IMPORT_LIMIT = 4096
EXPORT_CARD = re.compile(r'<section class="card" id="export"[^>]*>')
CSV = (
    "sku,name,product_type,product_online,color\n"
    "MUG-1,Mug one,simple,1,red\n"
    ",No SKU,simple,1,\n"  # row 2: no SKU
    "TEE-1,Tee one,simple,1,blue\n"
)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "oms_url": OMS_URL,
        "operator_readonly_token": READONLY_TOKEN,
        "catalog_import_max_bytes": IMPORT_LIMIT,
        "oms_product_attributes": ["color"],
    }


@pytest.fixture
def stub_oms(oms: respx.Router) -> list[str]:
    """The OMS acknowledging every product it is sent; returns the SKUs it received."""
    received: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls = json.loads(request.content)
        single = isinstance(calls, dict)
        answers = []
        for call in [calls] if single else calls:
            received.append(call["params"]["product"]["sku"])
            answers.append({"jsonrpc": "2.0", "id": call["id"], "result": []})
        return httpx.Response(200, json=answers[0] if single else answers)

    oms.post(OMS_URL).mock(side_effect=answer)
    return received


async def signed_in(client: httpx.AsyncClient, token: str = OPERATOR_TOKEN) -> str:
    """Sign in on the catalog page; the session's CSRF token."""
    answer = await client.post("/admin/login", data={"token": token, "next": "/admin/catalog"})
    assert answer.status_code == 303, answer.text
    return csrf_of((await client.get("/admin/catalog")).text)


@pytest.fixture
async def csrf(client: httpx.AsyncClient) -> str:
    return await signed_in(client)


async def products(raw: asyncpg.Connection, count: int, prefix: str = "SKU") -> list[str]:
    skus = [f"{prefix}-{n:05d}" for n in range(count)]
    await raw.execute(
        """
        INSERT INTO catalog_product (sku, type, name, enabled, created_at, updated_at)
        SELECT s, 'simple', 'Product ' || s, true, now(), now() FROM unnest($1::text[]) AS s
        """,
        skus,
    )
    return skus


def export_card(page: str) -> str:
    found = EXPORT_CARD.search(page)
    assert found is not None, "no export card on the page"
    return found.group(0)


async def export_statuses(raw: asyncpg.Connection) -> list[str]:
    return [row["status"] for row in await raw.fetch("SELECT status FROM catalog_export ORDER BY id")]


# --- the export's progress ------------------------------------------------------------------------------------------
async def test_the_page_says_when_no_export_was_ever_requested(client: httpx.AsyncClient, csrf: str) -> None:
    page = await client.get("/admin/catalog")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "No full export was ever requested." in page.text
    assert "data-refresh" not in export_card(page.text)
    assert (
        'action="/admin/catalog/export/run"' in page.text and 'action="/admin/catalog/export/cancel"' not in page.text
    )


async def test_a_running_export_shows_batches_products_rate_and_eta_and_refreshes_until_it_is_done(
    client: httpx.AsyncClient, csrf: str, raw: asyncpg.Connection, clock: FrozenClock
) -> None:
    await products(raw, 1000)
    export_id = await raw.fetchval(
        """
        INSERT INTO catalog_export (status, source, send_mode, batch_size, lease_owner, lease_until, products_read,
                                    products_sent, batches_sent, batches_acknowledged, created_at, started_at,
                                    updated_at)
        VALUES ('running', 'catalog', 'single', 100, 'elsewhere', $1, 200, 250, 3, 2, $2, $2, $2)
        RETURNING id
        """,
        clock.now() + timedelta(minutes=5),
        clock.now() - timedelta(seconds=10),
    )
    page = (await client.get("/admin/catalog")).text
    assert 'data-refresh="2"' in export_card(page)
    assert f"Export <strong>#{export_id}</strong>" in page and "running" in page
    assert "2 / 3" in page  # batches acknowledged / sent
    assert "products sent of 1,000" in page and ">250<" in page
    assert ">25.0<" in page  # 250 products in 10 s
    assert ">30.00 s<" in page  # 750 left at 25 a second
    assert 'style="width: 25.0%"' in page
    assert 'action="/admin/catalog/export/cancel"' in page

    await raw.execute(
        "UPDATE catalog_export SET status = 'done', products_sent = 1000, products_read = 1000, batches_sent = 10,"
        " batches_acknowledged = 10, finished_at = $1, lease_owner = NULL WHERE id = $2",
        clock.now(),
        export_id,
    )
    page = (await client.get("/admin/catalog", headers={"X-Console-Refresh": "1"})).text
    assert "data-refresh" not in export_card(page)
    assert "10 / 10" in page and 'style="width: 100.0%"' in page and ">10.00 s<" in page  # took
    assert 'action="/admin/catalog/export/cancel"' not in page


def test_the_progress_of_an_export_from_adobe_commerce_is_an_estimate_with_no_eta_once_canceled() -> None:
    view = CatalogExportView.model_validate(
        {
            "id": 1, "status": "canceled", "source": "commerce", "send_mode": "single", "batch_size": 100,
            "products_read": 300, "products_sent": 300, "batches_sent": 3, "batches_acknowledged": 3,
            "error_count": 0, "errors": [], "last_error": None, "created_at": "2026-01-01T00:00:00Z",
            "started_at": "2026-01-01T00:00:00Z", "finished_at": "2026-01-01T00:01:00Z", "products_per_second": 5.0,
        }
    )  # fmt: skip
    progress = export_progress(view, 1200, estimated=False)
    assert (progress.expected, progress.estimated, progress.percent, progress.eta_s) == (1200, True, 25.0, None)
    assert export_progress(view, 100, estimated=False).expected == 300  # never less than what was sent
    unknown = export_progress(view.model_copy(update={"status": "running"}), None, estimated=True)
    assert (unknown.expected, unknown.percent, unknown.eta_s) == (None, None, None)  # a catalog too large to count


async def test_the_catalog_size_is_counted_up_to_a_bound_then_estimated_by_postgresql(
    runtime: Runtime, raw: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    await products(raw, 30)
    assert await runtime.catalog_exports.expected_products() == (30, False)
    monkeypatch.setattr(catalog_export, "SIZE_COUNTED", 20)
    assert await runtime.catalog_exports.expected_products() == (None, True)  # never analyzed: no estimate yet
    await raw.execute("ANALYZE catalog_product")
    assert await runtime.catalog_exports.expected_products() == (30, True)


async def test_run_starts_an_export_in_this_process_that_sends_the_catalog(
    client: httpx.AsyncClient, csrf: str, raw: asyncpg.Connection, runtime: Runtime, stub_oms: list[str]
) -> None:
    skus = await products(raw, 5)
    answer = await client.post("/admin/catalog/export/run", data={"csrf_token": csrf})
    assert answer.status_code == 303 and answer.headers["location"] == "/admin/catalog#export"
    for _ in range(500):
        if (await runtime.catalog_exports.current()).status == "done":
            break
        await asyncio.sleep(0.01)
    view = await runtime.catalog_exports.current()
    assert (view.status, view.products_sent) == ("done", 5) and sorted(stub_oms) == skus
    page = await client.get("/admin/catalog")
    assert "Export 1 started." in page.text  # the notice after the post
    assert "data-refresh" not in export_card(page.text) and "done" in page.text


async def test_schedule_leaves_an_export_pending_one_at_a_time_and_cancel_cancels_it(
    client: httpx.AsyncClient, csrf: str, raw: asyncpg.Connection
) -> None:
    scheduled = await client.post("/admin/catalog/export/schedule", data={"csrf_token": csrf})
    assert scheduled.status_code == 303
    assert await export_statuses(raw) == ["pending"]
    page = (await client.get("/admin/catalog")).text
    assert 'data-refresh="2"' in export_card(page) and "scheduled: a worker process starts it" in page
    assert "export #1 is pending: one at a time" in page  # Run is disabled meanwhile

    again = await client.post("/admin/catalog/export/run", data={"csrf_token": csrf})
    assert again.status_code == 303
    assert await export_statuses(raw) == ["pending"]  # still the one export
    assert "Export 1 is already pending: one at a time." in (await client.get("/admin/catalog")).text

    canceled = await client.post("/admin/catalog/export/cancel", data={"csrf_token": csrf})
    assert canceled.status_code == 303
    assert await export_statuses(raw) == ["canceled"]
    page = (await client.get("/admin/catalog")).text
    assert "Export 1 canceled" in page and "data-refresh" not in export_card(page)

    none_left = await client.post("/admin/catalog/export/cancel", data={"csrf_token": csrf})
    assert none_left.status_code == 303
    assert "No export is pending or running." in (await client.get("/admin/catalog")).text


# --- attributes, shipping methods, sourcing rules -------------------------------------------------------------------
async def test_exported_attributes_edited_on_the_page_are_stored_and_shown(
    client: httpx.AsyncClient, csrf: str, runtime: Runtime
) -> None:
    saved = await client.post(
        "/admin/catalog/attributes", data={"csrf_token": csrf, "attributes": "color\nsize, material\n\ncolor"}
    )
    assert saved.status_code == 303 and saved.headers["location"] == "/admin/catalog#attributes"
    assert await runtime.catalog.attributes() == ["color", "size", "material"]
    page = (await client.get("/admin/catalog")).text
    assert "color\nsize\nmaterial</textarea>" in page and "Exported attributes: color, size, material." in page

    refused = await client.post("/admin/catalog/attributes", data={"csrf_token": csrf, "attributes": "size\nBad-Code"})
    assert refused.status_code == 422
    assert "Nothing was changed" in refused.text and "&#39;Bad-Code&#39; is not an attribute code" in refused.text
    assert "size\nBad-Code</textarea>" in refused.text  # what was typed stays to be fixed
    assert await runtime.catalog.attributes() == ["color", "size", "material"]


async def test_shipping_methods_edited_on_the_page_are_stored_exported_and_shown(
    client: httpx.AsyncClient, csrf: str, runtime: Runtime, raw: asyncpg.Connection
) -> None:
    text = "flatrate_flatrate Flat Rate\n\ntablerate_bestway   Best Way  \n"
    saved = await client.post("/admin/catalog/shipping-methods", data={"csrf_token": csrf, "methods": text})
    assert saved.status_code == 303
    methods = await runtime.catalog.shipping_methods()
    assert [(m.code, m.name) for m in methods] == [
        ("flatrate_flatrate", "Flat Rate"),
        ("tablerate_bestway", "Best Way"),
    ]
    page = (await client.get("/admin/catalog")).text
    assert "flatrate_flatrate Flat Rate\ntablerate_bestway Best Way</textarea>" in page
    assert "2 shipping methods saved; 2 exported to the OMS." in page
    rows = await raw.fetch("SELECT sku FROM catalog_product WHERE shipping_method ORDER BY sku")
    assert [row["sku"] for row in rows] == ["flatrate_flatrate", "tablerate_bestway"]

    no_name = await client.post(
        "/admin/catalog/shipping-methods", data={"csrf_token": csrf, "methods": "a_a A\n\nnameless"}
    )
    assert no_name.status_code == 422 and "line 3 name" in no_name.text
    await products(raw, 1, prefix="TAKEN")
    taken = await client.post(
        "/admin/catalog/shipping-methods", data={"csrf_token": csrf, "methods": "flatrate_flatrate Flat\nTAKEN-00000 X"}
    )
    assert taken.status_code == 409 and "line 2 code:" in taken.text
    assert [m.code for m in await runtime.catalog.shipping_methods()] == ["flatrate_flatrate", "tablerate_bestway"]


async def test_a_bundle_sourcing_rule_is_looked_up_by_sku_and_changed(
    client: httpx.AsyncClient, csrf: str, runtime: Runtime
) -> None:
    looked_up = await client.get("/admin/catalog", params={"bundle": " KIT-YOGA "})
    assert looked_up.status_code == 200
    assert "<strong>SHIP_TOGETHER</strong>" in looked_up.text and "the default" in looked_up.text

    changed = await client.post(
        "/admin/catalog/sourcing-rule", data={"csrf_token": csrf, "sku": "KIT-YOGA", "rule": "SHIP_SEPARATELY"}
    )
    assert changed.status_code == 303 and changed.headers["location"] == "/admin/catalog?bundle=KIT-YOGA#sourcing"
    assert (await runtime.orders.sourcing_rule("KIT-YOGA")).rule == "SHIP_SEPARATELY"
    page = (await client.get(changed.headers["location"])).text
    assert "<strong>SHIP_SEPARATELY</strong>" in page and "set for this bundle" in page

    refused = await client.post(
        "/admin/catalog/sourcing-rule", data={"csrf_token": csrf, "sku": "KIT-YOGA", "rule": "ship by pigeon"}
    )
    assert refused.status_code == 422 and "unknown sourcing rule" in refused.text
    no_sku = await client.post(
        "/admin/catalog/sourcing-rule", data={"csrf_token": csrf, "sku": " ", "rule": "together"}
    )
    assert no_sku.status_code == 422 and "a SKU has 1 to 64 characters" in no_sku.text
    assert (await runtime.orders.sourcing_rule("KIT-YOGA")).rule == "SHIP_SEPARATELY"


# --- CSV import ---------------------------------------------------------------------------------------------------
async def test_a_csv_upload_shows_its_counts_and_bad_rows_and_imports_the_good_ones(
    client: httpx.AsyncClient, csrf: str, raw: asyncpg.Connection
) -> None:
    answer = await client.post(
        "/admin/catalog/import",
        data={"csrf_token": csrf},
        files={"file": ("catalog.csv", CSV.encode(), "text/csv")},
    )
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert re.fullmatch(r"/admin/catalog/imports/\d+", location)
    page = await client.get(location)
    assert page.status_code == 200
    assert "Imported catalog.csv: 3 rows, 2 products stored, 2 queued for export, 1 bad rows." in page.text
    assert '<span class="mono">catalog.csv</span>' in page.text
    bad_rows = re.findall(r'<tr><td class="num">(\d+)</td><td class="mono">(\w+)</td>', page.text)
    assert bad_rows == [("2", "sku")]
    stored = await raw.fetch("SELECT sku FROM catalog_product ORDER BY sku")
    assert [row["sku"] for row in stored] == ["MUG-1", "TEE-1"]


async def test_an_upload_over_the_limit_is_refused_with_413_and_imports_nothing(
    client: httpx.AsyncClient, csrf: str, raw: asyncpg.Connection
) -> None:
    header = "sku,name,product_type\n"
    huge = (header + "".join(f"BIG-{n:06d},Big,simple\n" for n in range(5000))).encode()  # over the declared cap
    declared = await client.post(
        "/admin/catalog/import", data={"csrf_token": csrf}, files={"file": ("big.csv", huge, "text/csv")}
    )
    assert declared.status_code == 413 and "CATALOG_IMPORT_MAX_BYTES" in declared.text
    assert declared.headers["content-type"].startswith("text/html")

    over = (header + "".join(f"OVER-{n:04d},Over,simple\n" for n in range(300))).encode()  # over the limit only
    assert IMPORT_LIMIT < len(over) < 64 * 1024
    counted = await client.post(
        "/admin/catalog/import", data={"csrf_token": csrf}, files={"file": ("over.csv", over, "text/csv")}
    )
    assert counted.status_code == 413 and "CATALOG_IMPORT_MAX_BYTES" in counted.text
    assert await raw.fetchval("SELECT count(*) FROM catalog_product") == 0


async def test_an_upload_over_the_limit_without_a_declared_length_is_cut_off_with_413(
    client: httpx.AsyncClient, csrf: str, raw: asyncpg.Connection
) -> None:
    boundary = "console-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{csrf}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
        "Content-Type: text/csv\r\n\r\nsku,name,product_type\r\n"
    ).encode()
    sent = 0

    async def body() -> AsyncIterator[bytes]:  # no Content-Length: sent chunked, as long as it is read
        nonlocal sent
        yield head
        for n in range(200):
            sent += 1
            yield "".join(f"BIG-{n:03d}{m:04d},Big,simple\r\n" for m in range(50)).encode()
        yield f"\r\n--{boundary}--\r\n".encode()

    answer = await client.post(
        "/admin/catalog/import",
        content=body(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert answer.status_code == 413 and "CATALOG_IMPORT_MAX_BYTES" in answer.text
    assert sent < 200  # it stopped reading
    assert await raw.fetchval("SELECT count(*) FROM catalog_product") == 0


# --- who may change what --------------------------------------------------------------------------------------------
POSTS: list[tuple[str, dict[str, str]]] = [
    ("/admin/catalog/export/run", {}),
    ("/admin/catalog/export/schedule", {}),
    ("/admin/catalog/attributes", {"attributes": "size"}),
    ("/admin/catalog/shipping-methods", {"methods": "flatrate_flatrate Flat Rate"}),
    ("/admin/catalog/sourcing-rule", {"sku": "KIT-YOGA", "rule": "SHIP_SEPARATELY"}),
]


async def nothing_changed(raw: asyncpg.Connection, runtime: Runtime, attributes: list[str]) -> None:
    assert await export_statuses(raw) == []
    assert await runtime.catalog.attributes() == attributes  # as before the posts
    assert await runtime.catalog.shipping_methods() == []
    assert (await runtime.orders.sourcing_rule("KIT-YOGA")).source == "default"
    assert await raw.fetchval("SELECT count(*) FROM catalog_product") == 0


async def test_a_read_only_session_sees_the_page_and_changes_nothing(
    client: httpx.AsyncClient, raw: asyncpg.Connection, runtime: Runtime
) -> None:
    attributes = await runtime.catalog.attributes()
    csrf = await signed_in(client, READONLY_TOKEN)
    page = (await client.get("/admin/catalog", params={"bundle": "KIT-YOGA"})).text
    assert page.count('disabled title="read-only sign-in"') >= 5  # run, attributes, methods, rule, import
    for url, fields in POSTS:
        answer = await client.post(url, data={"csrf_token": csrf, **fields})
        assert answer.status_code == 403 and "Read-only" in answer.text, url
    upload = await client.post(
        "/admin/catalog/import", data={"csrf_token": csrf}, files={"file": ("catalog.csv", CSV.encode(), "text/csv")}
    )
    assert upload.status_code == 403 and "Read-only" in upload.text
    await nothing_changed(raw, runtime, attributes)


async def test_a_post_without_the_right_csrf_token_changes_nothing(
    client: httpx.AsyncClient, csrf: str, raw: asyncpg.Connection, runtime: Runtime
) -> None:
    attributes = await runtime.catalog.attributes()
    for url, fields in POSTS:
        for token in ({}, {"csrf_token": "forged"}):
            answer = await client.post(url, data={**token, **fields})
            assert answer.status_code == 403 and "CSRF" in answer.text, url
    for token in ({}, {"csrf_token": "forged"}):
        upload = await client.post(
            "/admin/catalog/import", data=token, files={"file": ("catalog.csv", CSV.encode(), "text/csv")}
        )
        assert upload.status_code == 403 and "CSRF" in upload.text
    await nothing_changed(raw, runtime, attributes)


async def test_a_signed_out_visitor_is_sent_to_sign_in_and_cannot_upload(client: httpx.AsyncClient) -> None:
    page = await client.get("/admin/catalog", params={"bundle": "KIT"})
    assert page.status_code == 303 and page.headers["location"].startswith("/admin/login?next=")
    upload = await client.post("/admin/catalog/import", files={"file": ("catalog.csv", CSV.encode(), "text/csv")})
    assert upload.status_code == 401


# --- bad input ----------------------------------------------------------------------------------------------------
async def test_bad_input_gets_an_html_4xx_page_never_a_500(
    client: httpx.AsyncClient, csrf: str, raw: asyncpg.Connection
) -> None:
    journal_id = await raw.fetchval(
        "INSERT INTO message (direction, channel, topic, external_id, lane, payload, status, next_attempt_at,"
        " created_at) VALUES ('in', 'oms', 'other.topic', 'x-1', 'other.topic', '{}', 'succeeded', now(), now())"
        " RETURNING id"
    )
    answers = {
        "long bundle": (await client.get("/admin/catalog", params={"bundle": "K" * 65}), 422),
        "import id not a number": (await client.get("/admin/catalog/imports/abc"), 422),
        "no such import": (await client.get("/admin/catalog/imports/99999999"), 404),
        "not an import": (await client.get(f"/admin/catalog/imports/{journal_id}"), 404),
        "huge import id": (await client.get(f"/admin/catalog/imports/{2**70}"), 404),
        "NUL sku": (
            await client.post("/admin/catalog/sourcing-rule", data={"csrf_token": csrf, "sku": "K\x00", "rule": "x"}),
            422,
        ),
        "not multipart": (
            await client.post("/admin/catalog/import", data={"csrf_token": csrf, "file": "sku\nA"}),
            415,
        ),
        "no file": (
            await client.post(
                "/admin/catalog/import",
                data={"csrf_token": csrf},
                files={"other": (None, "x")},
            ),
            422,
        ),
        "two files": (
            await client.post(
                "/admin/catalog/import",
                data={"csrf_token": csrf},
                files=[("file", ("a.csv", b"sku\nA\n", "text/csv")), ("file", ("b.csv", b"sku\nB\n", "text/csv"))],
            ),
            400,
        ),
        "no sku column": (
            await client.post(
                "/admin/catalog/import",
                data={"csrf_token": csrf},
                files={"file": ("bad.csv", b"name,type\nA,simple\n", "text/csv")},
            ),
            422,
        ),
    }
    for case, (answer, status) in answers.items():
        assert answer.status_code == status, (case, answer.status_code, answer.text[:300])
        assert answer.headers["content-type"].startswith("text/html"), case
    # A NUL in the query string is refused before any route (app/routers/guard.py, its JSON error shape).
    assert (await client.get("/admin/catalog", params={"bundle": "KIT\x00"})).status_code == 422
    assert await raw.fetchval("SELECT count(*) FROM catalog_product") == 0
