"""One handler per OMS topic. ``install_handlers`` registers the ones this release has."""

from __future__ import annotations

from app.workers.handlers import (
    order_created,
    order_updated,
    refund_updated,
    return_updated,
    shipment_done,
    stock,
)
from app.workers.registry import HandlerRegistry


def install_handlers(registry: HandlerRegistry) -> None:
    stock.install(registry)
    order_created.install(registry)
    order_updated.install(registry)
    shipment_done.install(registry)
    return_updated.install(registry)
    refund_updated.install(registry)
