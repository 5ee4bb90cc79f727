"""An OMS for respx that records every call it receives, in order, and answers as a test tells it: ``ok`` (a
result), ``unavailable`` (HTTP 503: the connector retries) or ``refuse`` (a JSON-RPC error: the call fails).
Single calls and JSON-RPC batch requests alike."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

CREATE = "magento.sales.order_management.create"

Answer = Literal["ok", "unavailable", "refuse"]


@dataclass(frozen=True)
class Received:
    order: str | None  # the order number the call is about
    method: str
    id: str  # the JSON-RPC id (the connector's stable id per message)
    accepted: bool  # answered with a result


def order_of(params: dict[str, Any]) -> str | None:
    """The order a call is about: ``order.id`` (create, cancel) or ``return.order_id`` (return authorize)."""
    if isinstance(params.get("order"), dict):
        return str(params["order"].get("id"))
    if isinstance(params.get("return"), dict):
        return str(params["return"].get("order_id"))
    return None


@dataclass
class RecordingOms:
    answer: Answer = "ok"
    received: list[Received] = field(default_factory=list)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # create params of each order accepted

    def __call__(self, request: httpx.Request) -> httpx.Response:
        document = json.loads(request.content)
        calls = document if isinstance(document, list) else [document]
        answer = self.answer
        accepted = answer == "ok"
        for call in calls:
            order = order_of(call["params"])
            self.received.append(Received(order, call["method"], call["id"], accepted))
            if accepted and call["method"] == CREATE and order is not None:
                self.orders.setdefault(order, call["params"]["order"])
        if answer == "unavailable":
            return httpx.Response(503, text="maintenance")
        answers = [
            {"jsonrpc": "2.0", "id": call["id"], "result": []}
            if accepted
            else {"jsonrpc": "2.0", "id": call["id"], "error": {"code": -32000, "message": "Order not found"}}
            for call in calls
        ]
        return httpx.Response(200, json=answers if isinstance(document, list) else answers[0])

    def methods(self, order: str) -> list[tuple[str, bool]]:
        """(method, accepted) of each call about ``order``, in the order received."""
        return [(call.method, call.accepted) for call in self.received if call.order == order]

    def reset(self) -> None:
        self.answer = "ok"
        self.received.clear()
        self.orders.clear()
