"""The stub OMS (tests/support/stub_oms.py) with two knobs a test turns while the connector runs, for the browser
tests of the console:

* ``refuse_orders``: order numbers whose ``create`` the OMS refuses with a JSON-RPC error object (the connector
  marks the message ``failed``: PeerRejected, not retried); remove the number and an operator's retry goes through;
* ``delays``: seconds to wait before answering a call of a method (a slow OMS), so a catalog export advances batch
  by batch slowly enough for a page to watch it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from tests.support.stub_oms import StubOms

CREATE = "magento.sales.order_management.create"
REFUSAL = {"code": -32602, "message": "order refused by the stub OMS (a test asked for it)"}


class SteerableOms(StubOms):
    name = "steerable stub OMS"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.refuse_orders: set[str] = set()
        self.delays: dict[str, float] = {}
        self.refusals: list[str] = []  # the order numbers of the creates refused, in order
        self._refusal_lock = threading.Lock()

    async def _rpc(self, request: Request) -> JSONResponse:
        try:
            document = json.loads(await request.body())  # Starlette keeps the body: the base class reads it again
        except ValueError:
            return await super()._rpc(request)
        items = document if isinstance(document, list) else [document]
        methods = {item.get("method") for item in items if isinstance(item, dict)}
        delay = max((self.delays.get(str(method), 0.0) for method in methods), default=0.0)
        if delay:
            await asyncio.sleep(delay)
        if not isinstance(document, dict) or document.get("method") != CREATE:
            return await super()._rpc(request)
        number = str(((document.get("params") or {}).get("order") or {}).get("id"))
        if number not in self.refuse_orders:
            return await super()._rpc(request)
        with self._refusal_lock:
            self.refusals.append(number)
        return JSONResponse({"jsonrpc": "2.0", "id": document.get("id"), "error": REFUSAL})
