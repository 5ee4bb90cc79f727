"""A stock message is applied in PostgreSQL when all its rows are plain and read in Python otherwise: whatever the
rows hold, both ways end in the same stock, the same journal summary, or the same refusal."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.runtime import Runtime
from app.workers.handlers import stock as stock_handler
from tests.support.stock_messages import apply_stored

ABSENT = object()

# What peers may send in one field, edge cases first (each drawn as often as any other).
skus = st.sampled_from(
    [
        ["A"],
        {"code": "A"},
        "A",
        "sku-1/red",
        " A",
        "A ",
        "Ä-1",
        "B\u00a0",
        "\u2003C",
        "A\tB",
        42,
        4.2,
        True,
        "",
        "  ",
        None,
        "x" * 200,
        "y" * 201,
    ]
)
quantities = st.one_of(
    st.sampled_from(
        [
            *("7", "7.5", "07", "0", "-0", "-1", -1, -0.5, "0.0001", "1.00001", "1e2", 1e2, " 8", "8 ", "", "NaN"),
            *("Infinity", "999999999999999", "1000000000000000", 10**15 - 1, 10**15, "٣", None, True, ABSENT, [], {}),
            *(
                "0x1A",
                "0o17",
                "0b101",
                "1_000",
                "1__0",
                "+7",
                "\t7\n",
                "\u00a08",
                ".5",
                "7.",
                "1.5e1",
                "inf",
                "1.00000",
            ),
        ]
    ),
    st.from_regex(r"-?[0-9]{1,16}(\.[0-9]{1,5})?", fullmatch=True),
)
flags = st.sampled_from([ABSENT, True, False, "true", "no", None, 1, 0, "maybe", [True], {"on": True}])


plain_rows = st.fixed_dictionaries(
    {"sku": st.sampled_from(["A", "B", "sku-1/red", "Ä-1"]), "quantity": st.sampled_from(["7", "0.25", 3, 12.5])},
    optional={"unlimited": st.booleans()},
)


@st.composite
def any_row(draw: st.DrawFn) -> Any:
    """A plain row with one field replaced by something peers may send (or, now and then, not a row at all)."""
    if draw(st.integers(min_value=0, max_value=20)) == 0:
        return draw(st.sampled_from(["not a row", 5, None, []]))
    entry = dict(draw(plain_rows))
    field = draw(st.sampled_from(["sku", "quantity", "unlimited"]))
    value = draw({"sku": skus, "quantity": quantities, "unlimited": flags}[field])
    if value is ABSENT:
        entry.pop(field, None)
    else:
        entry[field] = value
    return entry


async def run(runtime: Runtime, raw: asyncpg.Connection, rows: list[Any], *, in_postgres: bool) -> tuple[Any, Any]:
    """A DELTA of ``rows`` stored without the webhook's mark (its rows checked in SQL when applied in PostgreSQL)."""
    return await apply_stored(runtime, raw, rows, headers={}, in_postgres=in_postgres, mode="DELTA")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.one_of(st.lists(plain_rows, max_size=6), st.lists(st.one_of(plain_rows, any_row(), any_row()), max_size=4))
)
async def test_postgres_and_python_apply_any_rows_alike(runtime, raw, rows):
    assert await run(runtime, raw, rows, in_postgres=True) == await run(runtime, raw, rows, in_postgres=False)


async def test_plain_rows_are_applied_in_postgres_without_reading_the_payload_in_python(runtime, raw, monkeypatch):
    calls: list[Any] = []
    original = stock_handler.parse_snapshot
    monkeypatch.setattr(
        stock_handler, "parse_snapshot", lambda params, **kw: calls.append(params) or original(params, **kw)
    )
    outcome, stock = await run(
        runtime, raw, [{"sku": "A", "quantity": "3"}, {"sku": "A", "quantity": 4}], in_postgres=True
    )
    assert outcome == ("applied", {**outcome[1], "skus": 1, "applied": 1, "stale": 0, "repeated_skus": 1})
    assert [(sku, int(quantity), unlimited) for sku, quantity, unlimited in stock] == [("A", 4, False)]
    assert [call["snapshot"]["stock"] for call in calls] == [[]]  # only the snapshot's own fields went to Python


@pytest.mark.parametrize(
    "edge",
    [
        {"sku": "x" * 200, "quantity": "1"},
        {"sku": "y" * 201, "quantity": "1"},
        {"sku": "A", "quantity": "-1"},
        {"sku": "A", "quantity": -1},
        {"sku": "A", "quantity": "999999999999999.9999"},
        {"sku": "A", "quantity": "1000000000000000"},
        {"sku": "A", "quantity": "1.00001"},
        {"sku": "A", "quantity": "NaN"},
        {"sku": "A", "quantity": "0x1A"},
        {"sku": "A", "quantity": "1_000"},
        {"sku": "A", "quantity": " 8 "},
        {"sku": "A", "quantity": 7.123456},
        {"sku": "A", "quantity": 1e20},
        {"sku": ["A"], "quantity": "1"},
        {"sku": {"code": "A"}, "quantity": "1"},
        {"sku": "A", "quantity": ["7"]},
        {"sku": "A", "quantity": "1", "unlimited": [True]},
        {"sku": "A", "quantity": "1", "unlimited": "yes"},
        {"sku": "A", "quantity": {"value": 1}},
        {"sku": "A", "quantity": "1", "unlimited": "true"},
        {"sku": "A", "quantity": "1", "unlimited": None},
        {"sku": "A", "unlimited": True},
        {"sku": " A", "quantity": "1"},
        {"sku": "A\u00a0", "quantity": "1"},
        {"sku": "Ä", "quantity": "1"},
        {"sku": 42, "quantity": "1"},
        {"quantity": "1"},
        "not a row",
    ],
)
async def test_each_edge_row_is_treated_alike_by_both_paths(runtime, raw, edge):
    rows = [{"sku": "B", "quantity": "2"}, edge]
    assert await run(runtime, raw, rows, in_postgres=True) == await run(runtime, raw, rows, in_postgres=False)
