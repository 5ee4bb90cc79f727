"""The order list's export-status filter (GET /orders, the console's grid) finds exactly the orders whose export
status (the one shown per order) is the one asked for, whichever index answers it (app/data/orders.py order_page)."""

from __future__ import annotations

import pytest

from app.models import Status
from app.runtime import Runtime
from app.schemas import ExportStatus
from app.services import orders
from app.services.orders import EXPORT_MESSAGE_STATUSES
from tests.support.orders import commerce_order, order_body

# Export message status → the order's export status (app/data/orders.py ORDER_EXPORT_STATUS).
MESSAGE_STATUSES = [status.value for status in Status]


def test_every_message_status_of_an_export_maps_to_exactly_one_export_status():
    owners = {
        status: [name for name, statuses in EXPORT_MESSAGE_STATUSES.items() if status in statuses]
        for status in MESSAGE_STATUSES
    }
    assert all(len(names) == 1 for names in owners.values()), owners


@pytest.mark.parametrize("rare_below", [0, 10_000], ids=["every-status-common", "every-status-rare"])
@pytest.mark.parametrize("newest_first", [False, True])
async def test_each_export_status_filter_finds_exactly_the_orders_of_that_status(
    runtime: Runtime, raw, newest_first, rare_below, monkeypatch
):
    monkeypatch.setattr(orders, "RARE_EXPORTS", rare_below)  # both plans: the primary-key walk, and messages first
    # One order per message status, one held, one acknowledged.
    for number, status in enumerate(MESSAGE_STATUSES, start=1):
        await runtime.orders.accept(order_body(commerce_order(increment_id=f"9{number:02d}")))
        await raw.execute(
            "UPDATE message SET status = $2::message_status WHERE id ="
            " (SELECT export_message_id FROM sales_order WHERE increment_id = $1)",
            f"9{number:02d}",
            status,
        )
    await runtime.orders.accept(order_body(commerce_order(increment_id="980", status="holded")))
    await runtime.orders.accept(order_body(commerce_order(increment_id="981")))
    await raw.execute("UPDATE sales_order SET acknowledged_at = now() WHERE increment_id = '981'")

    everything = (await runtime.orders.page(export_status=None, since=None, cursor=None, limit=100)).items
    shown = {order.increment_id: order.export_status for order in everything}
    assert set(shown.values()) == set(ExportStatus)  # every export status is there to be found
    for wanted in ExportStatus:
        found, cursor = [], None
        while True:  # pages of 2: the keyset works with every filter
            page = await runtime.orders.page(
                export_status=wanted, since=None, cursor=cursor, limit=2, newest_first=newest_first
            )
            found += [order.increment_id for order in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert sorted(found) == sorted(number for number, status in shown.items() if status is wanted), wanted
        assert found == sorted(found, reverse=newest_first)
