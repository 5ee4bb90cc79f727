"""Is Adobe Commerce reachable, with the token the connector has? A small live check for the console's home page.

GET /integration judges the OMS by the calls this process made; nothing calls Adobe Commerce on a quiet day, so the
console asks it directly: one search the connector needs anyway (``GET /invoices`` filtered on ``order_id`` 0, the
``Magento_Sales::sales`` resource, an indexed lookup that finds nothing), bounded by PROBE_TIMEOUT_S. The answer is
kept PROBE_CACHE_S so a page refreshed by several operators asks once, and concurrent pages share one call.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from pydantic import BaseModel, Field

from app.clients.commerce import CommerceClient
from app.clock import Clock
from app.errors import PeerError

PROBE_TIMEOUT_S = 2.0  # a page must not wait longer than this for the store
PROBE_CACHE_S = 30.0  # a probe's answer is reused this long
PROBE_ORDER_ID = "0"  # no order has entity id 0: the search answers an empty list


class CommerceStatus(BaseModel):
    """What the console shows about Adobe Commerce (never the token)."""

    configured: bool = Field(description="ADOBE_COMMERCE_URL and ADOBE_COMMERCE_TOKEN are set")
    url: str | None
    reachable: bool | None = Field(description="It answered the probe with the token accepted (None: not configured)")
    error: str | None = Field(description="Why not: a timeout, a connection error, an HTTP status and what it said")
    checked_at: datetime | None
    latency_ms: float | None


class CommerceProbe:
    """The live check, with its cache (one per process: the console keeps it on the app's state)."""

    def __init__(self, client: CommerceClient | None, url: str | None, clock: Clock) -> None:
        self.client = client
        self.url = url
        self.clock = clock
        self._cached: tuple[float, CommerceStatus] | None = None
        self._lock = asyncio.Lock()

    async def status(self) -> CommerceStatus:
        """The last answer while it is fresh, else a new probe (at most PROBE_TIMEOUT_S)."""
        if self.client is None:
            return CommerceStatus(
                configured=False, url=None, reachable=None, error=None, checked_at=None, latency_ms=None
            )
        fresh = self._fresh()
        if fresh is not None:
            return fresh
        async with self._lock:  # one probe at a time; those who waited take its answer
            fresh = self._fresh()
            if fresh is not None:
                return fresh
            status = await self._probe(self.client)
            self._cached = (time.monotonic(), status)
            return status

    def _fresh(self) -> CommerceStatus | None:
        if self._cached is None or time.monotonic() - self._cached[0] >= PROBE_CACHE_S:
            return None
        return self._cached[1]

    async def _probe(self, client: CommerceClient) -> CommerceStatus:
        started = time.monotonic()
        error: str | None = None
        try:
            await asyncio.wait_for(client.documents_of_order("invoices", PROBE_ORDER_ID), PROBE_TIMEOUT_S)
        except TimeoutError:
            error = f"no answer within {PROBE_TIMEOUT_S:g} s"
        except PeerError as exc:
            error = exc.message
        return CommerceStatus(
            configured=True,
            url=self.url,
            reachable=error is None,
            error=error,
            checked_at=self.clock.now(),
            latency_ms=round((time.monotonic() - started) * 1000, 1),
        )
