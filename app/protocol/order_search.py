"""Adobe Commerce's order search as the order pull uses it (``GET /V1/orders?searchCriteria…``, magento-rest.md §2).

Orders are read in one total order: ``updated_at`` (UTC text with one-second resolution and no zone, as Adobe
Commerce's REST API writes it: "2026-01-31 23:59:59"), then ``entity_id``. A page is asked for by **keyset**, not
by page number: the first page of a poll takes every order updated at or after a time; each next page takes the
orders after the last one read — ``updated_at > t OR (updated_at = t AND entity_id > id)``, written with
searchCriteria's filter groups (filters in a group are OR-ed, groups AND-ed) as
``[updated_at >= t] AND [updated_at > t OR entity_id > id]`` — always as ``currentPage`` 1. Numbered pages over a
filter on ``updated_at`` skip orders: an order of page 1 saved again while page 2 is read moves to the end, every
order behind it moves up one place, and the one that moved onto page 1 is never read. A keyset page cannot skip one,
and the quirk of numbered pages (a page past the last answers the last one again) never arises.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from app.protocol.timestamps import InvalidTimestamp, parse_oms_timestamp

COMMERCE_TIME = "%Y-%m-%d %H:%M:%S"  # how Adobe Commerce writes (and compares) order times: UTC, no zone
BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)  # before any Adobe Commerce order (Magento 2 dates from 2015)
_CRITERIA = "searchCriteria"


@dataclass(frozen=True, order=True)
class OrderKey:
    """An order's place in the pull's order: its ``updated_at`` (UTC, whole seconds), then its ``entity_id``."""

    updated_at: datetime
    entity_id: int

    def describe(self) -> str:
        return f"{commerce_time(self.updated_at)} #{self.entity_id}"


class UnplacedOrder(ValueError):
    """An order without a readable ``updated_at`` or ``entity_id``: it has no place in the pull's order."""


def commerce_time(moment: datetime) -> str:
    """``moment`` as Adobe Commerce writes order times: UTC, whole seconds (earlier fractions dropped), no zone."""
    return moment.astimezone(UTC).strftime(COMMERCE_TIME)


def whole_second(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


def order_key(order: Any) -> OrderKey:
    """The place of an order as Adobe Commerce returned it. Raises UnplacedOrder naming the field."""
    if not isinstance(order, dict):
        raise UnplacedOrder("the order is not a JSON object")
    entity_id = order.get("entity_id")
    if isinstance(entity_id, str) and entity_id.isascii() and entity_id.isdigit() and len(entity_id) <= 18:
        entity_id = int(entity_id)
    if isinstance(entity_id, bool) or not isinstance(entity_id, int) or not 0 < entity_id < 2**63:
        raise UnplacedOrder(f"entity_id: expected a positive whole number, got {order.get('entity_id')!r}")
    try:
        updated_at = parse_oms_timestamp(order.get("updated_at"), UTC)
    except InvalidTimestamp as exc:
        raise UnplacedOrder(f"updated_at: {exc}") from None
    return OrderKey(whole_second(updated_at), entity_id)


def _filter(group: int, index: int, field: str, value: str | int, condition: str) -> dict[str, str | int]:
    prefix = f"{_CRITERIA}[filter_groups][{group}][filters][{index}]"
    return {f"{prefix}[field]": field, f"{prefix}[value]": value, f"{prefix}[condition_type]": condition}


def _sort(direction: str) -> dict[str, str]:
    return {
        f"{_CRITERIA}[sortOrders][0][field]": "updated_at",
        f"{_CRITERIA}[sortOrders][0][direction]": direction,
        f"{_CRITERIA}[sortOrders][1][field]": "entity_id",
        f"{_CRITERIA}[sortOrders][1][direction]": direction,
    }


def orders_since_params(*, since: datetime, after: OrderKey | None, page_size: int) -> dict[str, str | int]:
    """The query of one page: orders updated at or after ``since`` (the first page of a poll), or after the order
    ``after`` (each next page; ``since`` is then ignored), oldest first, at most ``page_size``."""
    if after is None:
        filters = _filter(0, 0, "updated_at", commerce_time(since), "gteq")
    else:
        moment = commerce_time(after.updated_at)
        filters = {
            **_filter(0, 0, "updated_at", moment, "gteq"),
            **_filter(1, 0, "updated_at", moment, "gt"),
            **_filter(1, 1, "entity_id", after.entity_id, "gt"),
        }
    return {
        **filters,
        **_sort("ASC"),
        f"{_CRITERIA}[pageSize]": page_size,
        f"{_CRITERIA}[currentPage]": 1,
    }


def newest_order_params() -> dict[str, str | int]:
    """The query of the most recently updated order (where a pull that never ran starts)."""
    return {**_sort("DESC"), f"{_CRITERIA}[pageSize]": 1, f"{_CRITERIA}[currentPage]": 1}


def overlapped(key: OrderKey, overlap_s: float) -> datetime:
    """Where a poll that starts from ``key`` reads from: ``overlap_s`` seconds earlier, to the whole second."""
    return whole_second(key.updated_at - timedelta(seconds=overlap_s))
