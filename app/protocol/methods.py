"""The MCOM methods this connector knows (protocol §3.0)."""

from __future__ import annotations

from app.protocol.order_events import order_number_of
from app.protocol.stock import STOCK_UPDATED, lane_key

REGISTER = "magento.service_bus.remote.register"
UNREGISTER = "magento.service_bus.remote.unregister"

# Calls the OMS makes to us. A known method is stored even while no handler for it is installed: it waits in
# its lane (visible in /integration and /journal) and is processed once a release adds the handler.
OMS_TO_CONNECTOR = frozenset(
    {
        "magento.sales.order_management.created",
        "magento.sales.order_management.updated",
        "magento.logistics.fulfillment_management.customer_shipment_done",
        "magento.inventory.aggregate_stock_management.updated",
        "magento.postsales.return_management.updated",
        "magento.postsales.refund_management.updated",
    }
)

# Calls the OMS may make that this connector does not serve: it is no carrier integration (labels come from the
# OMS's own carrier set-up) and runs no source of its own. They are answered with a JSON-RPC error and journaled.
NOT_SERVED = {
    "magento.logistics.carrier_management.request_shipping_details": (
        "this connector is not a carrier integration: shipping labels and tracking numbers must come from the "
        "OMS's carrier set-up"
    ),
    "magento.logistics.warehouse_management.request_shipment": (
        "this connector runs no source of its own: assign the shipment to a warehouse the OMS manages"
    ),
}


def lane_for(method: str, params: dict[str, object]) -> str:
    """The ordering key of an inbound call: its method, except

    * stock, ordered per aggregate (its timestamp filter makes order across aggregates irrelevant, so they proceed
      in parallel);
    * the order lifecycle (created, updated, shipment, return, refund), ordered per order across those topics: a
      refund is then never applied before the shipment that came first, whatever the backlog of another topic, and
      a message that keeps failing holds up one order only.
    """
    if method == STOCK_UPDATED:
        key = lane_key(params)
        if key is not None:
            return f"{method}/{key}"
    number = order_number_of(method, params)  # type: ignore[arg-type]
    if number is not None:
        return f"order/{number}"
    return method
