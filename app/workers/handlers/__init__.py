"""One handler per OMS topic. ``install_handlers`` registers the ones this release has."""

from __future__ import annotations

from app.protocol.stock import STOCK_UPDATED
from app.workers.handlers import stock
from app.workers.registry import HandlerRegistry


def install_handlers(registry: HandlerRegistry) -> None:
    registry.register(STOCK_UPDATED, stock.handle)
