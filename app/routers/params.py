"""Path parameters shared by the routers, bounded like the values they name (a longer one cannot exist, and would
only reach PostgreSQL to fail there)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from app.protocol.commerce_order import IDENTIFIER_MAX
from app.protocol.commerce_product import MAX_SKU
from app.protocol.stock import MAX_SKU_CHARS

ProductSku = Annotated[str, Path(min_length=1, max_length=MAX_SKU, description="The product's SKU")]
StockSku = Annotated[str, Path(min_length=1, max_length=MAX_SKU_CHARS, description="The SKU as the OMS sends it")]
IncrementId = Annotated[str, Path(min_length=1, max_length=IDENTIFIER_MAX, description="The order number")]
# Any integer: one that cannot be a message id (0, beyond bigint) is simply not found (404, app/services/journal.py).
MessageId = Annotated[int, Path(description="The journal id")]
