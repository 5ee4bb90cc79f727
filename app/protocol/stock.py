"""`magento.inventory.aggregate_stock_management.updated`: the OMS's salable stock per aggregate (protocol §3.8).

Tolerant where real peers are sloppy: quantities as numeric strings (PHP), `unlimited` absent (PHP) or as "true"/1,
`created_on` zoneless or with an offset, the mode in any case. Strict where it protects stock: a missing or
non-text aggregate or SKU, a negative or non-numeric quantity, an unknown mode or an unreadable `created_on` makes
the whole message invalid — with the field and position named — and nothing of it is applied.

Rows are checked by a plain loop rather than a pydantic model per row: a FULL page holds thousands of SKUs and this
is the hottest path of stock updates (bench/stock.py); the error messages name ``snapshot.stock[i].field`` exactly.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

from app.errors import PermanentHandlerError
from app.protocol.timestamps import InvalidTimestamp, parse_oms_timestamp

STOCK_UPDATED = "magento.inventory.aggregate_stock_management.updated"
MAX_SKU_CHARS = 200
MAX_QUANTITY = Decimal("1e15")  # numeric(20, 4) holds 16 integer digits
MAX_WHOLE_QUANTITY = 10**15
QUANTITY_STEP = Decimal("0.0001")
# What ``_plain_row`` takes as is: SKUs without surrounding blanks or NUL, quantities as plain decimal text.
_is_plain_sku = re.compile(r"[^\s\x00](?:[^\x00]*[^\s\x00])?").fullmatch
_is_plain_quantity = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,4})?").fullmatch  # ASCII digits: what numeric takes
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no", ""})
# Stored in a stock message's headers by the inbox (``header_marks``): JSON true when every row of it is plain and no
# SKU comes twice; the stock handler then applies a large page in PostgreSQL without checking or de-duplicating its
# rows again (app/data/stock.py APPLY_PLAIN_STOCK_FROM_MESSAGE). No caller can set it: the name is no HTTP header's
# (it holds spaces and a colon), the inbox writes it in place of any request header of that name, and stored request
# headers are text, never JSON true. Should what counts as plain ever narrow, rename it: marks made under the old
# rules are then no longer trusted.
PLAIN_ROWS_MARK = "oms-connector: plain stock rows, each SKU once"


class StockMode(enum.StrEnum):
    FULL = "FULL"  # every SKU of the aggregate, possibly over several messages (pages) with one created_on
    DELTA = "DELTA"  # the SKUs that changed
    NONZERO = "NONZERO"  # the SKUs that have stock


class InvalidSnapshot(PermanentHandlerError):
    """The stock message cannot be applied as it is; nothing of it was applied."""


@dataclass(frozen=True)
class StockSnapshot:
    """One stock message, validated, as column arrays sorted by SKU (the order rows are locked in)."""

    aggregate_id: str
    mode: StockMode
    created_on: datetime  # aware; the message's own time, or when we received it (created_on_given False)
    created_on_given: bool
    skus: list[str]
    quantities: list[str]  # validated decimal text (≥ 0, ≤ 4 places); PostgreSQL casts it to numeric
    unlimited: list[bool]
    repeated_skus: int  # rows whose SKU came again later in the same message (the later row wins)


@dataclass(frozen=True)
class EmptySnapshot:
    """A message with nothing to apply (no snapshot or no stock list, as the Go mock sends): logged, not applied."""

    reason: str


def lane_key(params: dict[str, Any]) -> str | None:
    """The aggregate a stock message is about: stock messages are ordered per aggregate (different aggregates
    touch different rows, so they may run in parallel)."""
    snapshot = params.get("snapshot")
    aggregate = snapshot.get("aggregate_id") if isinstance(snapshot, dict) else None
    if isinstance(aggregate, str | int) and not isinstance(aggregate, bool) and str(aggregate).strip():
        return str(aggregate).strip()[:100]
    return None


def parse_snapshot(params: dict[str, Any], *, zone: tzinfo, received_at: datetime) -> StockSnapshot | EmptySnapshot:
    snapshot = params.get("snapshot")
    if snapshot is None:
        return EmptySnapshot("no 'snapshot' in params (the Go mock's capitalised 'Snapshot' is not a stock update)")
    if not isinstance(snapshot, dict):
        raise InvalidSnapshot("snapshot: must be an object")
    stock = snapshot.get("stock")
    if stock is None:
        return EmptySnapshot("snapshot without a 'stock' list: nothing to apply")
    if not isinstance(stock, list):
        raise InvalidSnapshot("snapshot.stock: must be a list")
    aggregate_id = _text(snapshot.get("aggregate_id"), "snapshot.aggregate_id", MAX_SKU_CHARS)
    mode = _mode(snapshot.get("mode"))
    raw_created_on = snapshot.get("created_on")
    if raw_created_on is None or raw_created_on == "":
        created_on, given = received_at, False
    else:
        try:
            created_on, given = parse_oms_timestamp(raw_created_on, zone), True
        except InvalidTimestamp as exc:
            raise InvalidSnapshot(f"snapshot.created_on: {exc}") from None

    rows: dict[str, tuple[str, bool]] = {}
    for position, entry in enumerate(stock):
        # The usual row is taken as is; anything else goes through the checks, which name the field.
        sku, quantity, unlimited = _plain_row(entry) or _checked_row(entry, f"snapshot.stock[{position}]")
        rows[sku] = (quantity, unlimited)  # a repeated SKU: the later row wins
    skus = sorted(rows)
    return StockSnapshot(
        aggregate_id=aggregate_id,
        mode=mode,
        created_on=created_on,
        created_on_given=given,
        skus=skus,
        quantities=[rows[sku][0] for sku in skus],
        unlimited=[rows[sku][1] for sku in skus],
        repeated_skus=len(stock) - len(rows),
    )


def header_marks(params: dict[str, Any]) -> dict[str, Any]:
    """What the inbox stores in a stock message's headers besides the request's own (in their place, should a request
    send the same name): PLAIN_ROWS_MARK, true when its snapshot's stock is a list of plain rows — each one
    ``parse_snapshot`` takes as is, neither fixed nor refused — with no SKU twice, false otherwise. Decided here,
    where the webhook has the body parsed anyway (~0.6 µs a row), so that the handler can apply a large page in
    PostgreSQL without checking or de-duplicating its rows again."""
    snapshot = params.get("snapshot")
    stock = snapshot.get("stock") if type(snapshot) is dict else None
    plain = type(stock) is list and all(map(_plain_row, stock)) and len({row["sku"] for row in stock}) == len(stock)
    return {PLAIN_ROWS_MARK: plain}


def _plain_row(entry: Any) -> tuple[str, str, bool] | None:
    """The usual row — an object with a text SKU without surrounding blanks or NUL, a plain decimal quantity (text
    or integer) and a boolean or absent flag — as (sku, quantity text, unlimited), taken as is; None for any other
    row (``_checked_row`` then reads it, fixing what peers send sloppily and naming anything bad)."""
    if type(entry) is dict:
        sku, unlimited = entry.get("sku"), entry.get("unlimited", False)
        if (
            type(sku) is str
            and 0 < len(sku) <= MAX_SKU_CHARS
            and (unlimited is False or unlimited is True)
            and _is_plain_sku(sku)
        ):
            quantity = entry.get("quantity")
            if type(quantity) is str:
                if _is_plain_quantity(quantity):
                    return sku, quantity, unlimited
            elif type(quantity) is int and 0 <= quantity < MAX_WHOLE_QUANTITY:
                return sku, str(quantity), unlimited
    return None


def _checked_row(entry: Any, where: str) -> tuple[str, str, bool]:
    if not isinstance(entry, dict):
        raise InvalidSnapshot(f"{where}: must be an object")
    sku = _text(entry.get("sku"), f"{where}.sku", MAX_SKU_CHARS)
    unlimited = _flag(entry.get("unlimited"), f"{where}.unlimited")
    raw_quantity = entry.get("quantity")
    if raw_quantity is None and unlimited:
        return sku, "0", unlimited  # an unlimited SKU needs no quantity
    return sku, format(_quantity(raw_quantity, f"{where}.quantity"), "f"), unlimited


def _text(value: Any, field: str, max_chars: int) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # numeric SKUs and aggregate ids arrive as numbers from some peers
    if not isinstance(value, str) or not value.strip():
        raise InvalidSnapshot(f"{field}: required, a non-empty string (got {value!r})")
    text = value.strip()
    if len(text) > max_chars or "\x00" in text:
        raise InvalidSnapshot(f"{field}: at most {max_chars} characters, no NUL (got {text[:40]!r}…)")
    return text


def _mode(value: Any) -> StockMode:
    try:
        return StockMode(value.strip().upper())  # type: ignore[union-attr]
    except (AttributeError, ValueError):
        allowed = ", ".join(m.value for m in StockMode)
        raise InvalidSnapshot(f"snapshot.mode: must be one of {allowed} (got {value!r})") from None


def _flag(value: Any, field: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise InvalidSnapshot(f"{field}: must be true or false (got {value!r})")


def _quantity(value: Any, field: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidSnapshot(f"{field}: must be a number (got {value!r})")
    try:
        quantity = Decimal(value.strip() if isinstance(value, str) else str(value))
    except InvalidOperation:
        raise InvalidSnapshot(f"{field}: must be a number (got {value!r})") from None
    if not quantity.is_finite():
        raise InvalidSnapshot(f"{field}: must be a finite number (got {value!r})")
    if quantity < 0:
        raise InvalidSnapshot(f"{field}: must not be negative (got {value!r})")
    if quantity >= MAX_QUANTITY:
        raise InvalidSnapshot(f"{field}: too large (got {value!r})")
    if quantity != quantity.quantize(QUANTITY_STEP):
        raise InvalidSnapshot(f"{field}: at most 4 decimal places (got {value!r})")
    return quantity
