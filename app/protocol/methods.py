"""The MCOM methods this connector knows (protocol §3.0)."""

from __future__ import annotations

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
        "magento.logistics.carrier_management.request_shipping_details",
        "magento.logistics.warehouse_management.request_shipment",
    }
)


def lane_for(method: str, params: dict[str, object]) -> str:
    """The ordering key of an inbound call: its method, except stock, which is ordered per aggregate (its
    timestamp filter makes order across aggregates irrelevant, so they proceed in parallel)."""
    if method == STOCK_UPDATED:
        key = lane_key(params)
        if key is not None:
            return f"{method}/{key}"
    return method
