"""One handler per OMS topic. ``install_handlers`` registers the ones this release has."""

from __future__ import annotations

from app.workers.handlers import order_created, stock
from app.workers.registry import HandlerRegistry


def install_handlers(registry: HandlerRegistry) -> None:
    stock.install(registry)
    order_created.install(registry)
