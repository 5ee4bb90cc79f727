"""A stock page whose rows the webhook found plain is marked so when stored (app/protocol/stock.py PLAIN_ROWS_MARK),
and the handler applies it in PostgreSQL without checking its rows again (#18): the mark changes what it costs,
never what is written. A page stored without the mark — by an older release, another writer, or with any other
row — still has every row checked in SQL, and an irregular row is still read, and named, by Python."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.data.bus import LARGE_PAYLOAD_BYTES
from app.protocol.stock import PLAIN_ROWS_MARK, STOCK_UPDATED, header_marks
from app.workers.handlers import stock as stock_handler
from app.workers.registry import HandlerRegistry, build_registry
from tests.conftest import make_settings
from tests.integration.test_stock import drain, message, page, send, snapshot
from tests.support.signing import rpc_body, signed_headers
from tests.support.stock_messages import T0, apply_stored


@pytest.fixture
def registry() -> HandlerRegistry:
    return build_registry(make_settings())  # this release's handlers: the real stock handler


@pytest.fixture
def rows_seen_by_python(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many rows each call of the handler's ``parse_snapshot`` was given (0: only the snapshot's own fields)."""
    seen: list[int] = []
    original = stock_handler.parse_snapshot

    def counting(params: dict[str, Any], **kwargs: Any) -> Any:
        seen.append(len(params["snapshot"]["stock"]))
        return original(params, **kwargs)

    monkeypatch.setattr(stock_handler, "parse_snapshot", counting)
    return seen


# Rows Python takes as they are — some of which the checks in SQL, narrower, would leave to Python (not ASCII, a
# blank inside) — and, now and then, one Python fixes or refuses.
plain_rows = st.fixed_dictionaries(
    {
        "sku": st.sampled_from(["A", "B", "sku-1/red", "Ä-1", "a\tb", "ü", "x" * 200]),
        "quantity": st.one_of(
            st.sampled_from(["7", "07", "0.25", "0", 3, 0, 10**15 - 1]),
            st.from_regex(r"[0-9]{1,15}(\.[0-9]{1,4})?", fullmatch=True),
        ),
    },
    optional={"unlimited": st.booleans()},
)
other_rows = st.sampled_from(
    [
        {"sku": " A", "quantity": "7"},
        {"sku": "B\u00a0", "quantity": "1"},
        {"sku": 42, "quantity": "1"},
        {"sku": "A", "quantity": 12.5},
        {"sku": "A", "quantity": "1", "unlimited": "yes"},
        {"sku": "A", "unlimited": True},
        {"sku": "A", "quantity": "-1"},
        {"sku": "A", "quantity": "1.00001"},
        "not a row",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.one_of(
        st.lists(plain_rows, max_size=8), st.lists(st.one_of(plain_rows, plain_rows, other_rows), max_size=5)
    )
)
async def test_a_page_applied_with_the_webhooks_mark_leaves_what_python_leaves(runtime, raw, rows_seen_by_python, rows):
    rows_seen_by_python.clear()
    in_postgres = await apply_stored(runtime, raw, rows, headers=None, in_postgres=True)
    marked = header_marks({"snapshot": {"stock": rows}})[PLAIN_ROWS_MARK]
    if marked:
        assert rows_seen_by_python == [0]  # applied in PostgreSQL: only the snapshot's own fields went to Python
    assert in_postgres == await apply_stored(runtime, raw, rows, headers=None, in_postgres=False)
    assert in_postgres == await apply_stored(runtime, raw, rows, headers={}, in_postgres=True)  # checked in SQL


@pytest.mark.parametrize(
    ("headers", "checked"),
    [
        pytest.param({PLAIN_ROWS_MARK: True}, False, id="marked"),
        pytest.param({}, True, id="no-mark"),  # an older release, another writer
        pytest.param({PLAIN_ROWS_MARK: False}, True, id="mark-false"),
        pytest.param({PLAIN_ROWS_MARK: "true"}, True, id="mark-as-text"),  # what a request header would be
        pytest.param({"oms-connector: plain stock rows v0": True}, True, id="another-name"),
    ],
)
async def test_only_the_mark_itself_spares_a_stored_page_the_checks_in_sql(
    runtime, raw, rows_seen_by_python, headers, checked
):
    # Plain for Python, but not ASCII: checked in SQL, this row is left to Python, which reads the whole message.
    rows = [{"sku": "B", "quantity": "2"}, {"sku": "Ä-1", "quantity": "3"}]
    outcome, stock = await apply_stored(runtime, raw, rows, headers=headers, in_postgres=True)

    assert rows_seen_by_python == ([0, 2] if checked else [0])
    assert outcome[0] == "applied" and (outcome[1]["skus"], outcome[1]["applied"]) == (2, 2)
    assert [(sku, int(quantity)) for sku, quantity, _ in stock] == [("B", 2), ("Ä-1", 3)]


async def test_a_marked_page_passes_the_timestamp_filter_like_any_other(runtime, raw, rows_seen_by_python):
    rows = [{"sku": "A", "quantity": "1"}, {"sku": "B", "quantity": "2"}]
    await apply_stored(
        runtime, raw, rows, headers=None, in_postgres=True, aggregate="EU", created_on="2026-01-02 00:00:00"
    )
    older = [{"sku": "B", "quantity": "5"}, {"sku": "C", "quantity": "6"}]  # B is older than what is stored
    outcome, stock = await apply_stored(
        runtime, raw, older, headers=None, in_postgres=True, aggregate="EU", created_on="2026-01-01 00:00:00"
    )

    assert rows_seen_by_python == [0, 0]  # both marked and applied in PostgreSQL
    assert (outcome[1]["skus"], outcome[1]["applied"], outcome[1]["stale"]) == (2, 1, 1)
    assert [(sku, int(quantity)) for sku, quantity, _ in stock] == [("A", 1), ("B", 2), ("C", 6)]


@pytest.mark.parametrize("headers", [pytest.param({}, id="no-mark"), pytest.param(None, id="as-the-webhook-stores")])
async def test_an_irregular_row_of_a_stored_page_is_read_by_python_which_names_it(runtime, raw, headers):
    rows = [{"sku": "A", "quantity": "1"}, {"sku": "B", "quantity": "2"}, {"sku": "C", "quantity": "-1"}]
    outcome, stock = await apply_stored(runtime, raw, rows, headers=headers, in_postgres=True)
    assert outcome == ("refused", "snapshot.stock[2].quantity: must not be negative (got '-1')")
    assert stock is None


# --- through the webhook --------------------------------------------------------------------------------------
async def stored_headers(raw: asyncpg.Connection, external_id: str) -> dict[str, Any]:
    return json.loads((await message(raw, external_id))["headers"])


async def test_the_webhook_marks_a_page_of_plain_rows_and_it_is_applied_in_postgres(
    client, runtime, raw, rows_seen_by_python
):
    large = await send(client, snapshot(page(range(4000), 3), at=T0, mode="FULL"))
    size = await raw.fetchval("SELECT pg_column_size(payload) FROM message WHERE external_id = $1", large)
    assert size > LARGE_PAYLOAD_BYTES  # the precondition: its claim leaves the payload in the database
    assert (await stored_headers(raw, large))[PLAIN_ROWS_MARK] is True

    await drain(runtime)

    assert rows_seen_by_python == [0]
    stored = await message(raw, large)
    assert stored["status"] == "succeeded" and json.loads(stored["result"])["applied"] == 4000
    assert await raw.fetchval("SELECT count(*) FROM stock WHERE aggregate_id = 'EU-WEB' AND quantity = 3") == 4000


async def test_a_page_with_one_irregular_row_is_stored_unmarked_and_python_names_the_row(
    client, runtime, raw, rows_seen_by_python
):
    rows: dict[str, Any] = page(range(4000), 3)
    rows["SKU-3999"] = {"sku": "SKU-3999", "quantity": "-2"}
    large = await send(client, snapshot(rows, at=T0, mode="FULL"))
    assert (await stored_headers(raw, large))[PLAIN_ROWS_MARK] is False

    await drain(runtime)

    stored = await message(raw, large)
    assert stored["status"] == "failed"
    assert "snapshot.stock[3999].quantity: must not be negative" in stored["last_error"]
    assert rows_seen_by_python == [0, 4000]  # checked in SQL, then read in Python
    assert await raw.fetchval("SELECT count(*) FROM stock") == 0  # all or nothing


async def test_a_request_header_of_the_marks_name_cannot_mark_a_page(client, runtime, raw, rows_seen_by_python):
    rows: dict[str, Any] = page(range(4000), 3)
    rows["SKU-0"] = {"sku": " SKU-0", "quantity": "5"}  # Python strips it: not plain
    body = rpc_body(method=STOCK_UPDATED, params=snapshot(rows, at=T0, mode="FULL"))
    # A real HTTP server never hands such a name on (a space, a colon); the in-process client does.
    response = await client.post("/oms/rpc", content=body, headers={**signed_headers(body), PLAIN_ROWS_MARK: "true"})
    assert response.status_code == 200
    external_id = json.loads(body)["id"]
    assert (await stored_headers(raw, external_id))[PLAIN_ROWS_MARK] is False  # the inbox's, in its place

    await drain(runtime)

    assert rows_seen_by_python == [0, 4000]  # checked in SQL, then read in Python, which strips the SKU
    assert await raw.fetchval("SELECT quantity FROM stock WHERE sku = 'SKU-0'") == 5
    assert await raw.fetchval("SELECT count(*) FROM stock WHERE sku = ' SKU-0'") == 0
