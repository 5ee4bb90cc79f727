"""A tiny stand-in Adobe Commerce (Magento 2) REST API on 127.0.0.1, served by uvicorn in a background thread.

Routes live under ``/rest/all/V1`` (see ``base_url``) and need ``Authorization: Bearer <token>``:

* ``GET /orders/{id}``, ``POST /orders/{id}/comments``, ``POST /orders/{id}/cancel``;
* ``GET /orders?searchCriteria…`` as Magento answers it: filter groups (AND) of filters (OR) on any field (``eq``,
  ``neq``, ``gt``, ``gteq``, ``lt``, ``lteq``, ``in``, ``nin``, ``from``, ``to``; ``entity_id`` compared as a number),
  sort orders, ``pageSize`` / ``currentPage`` (a page past the last answers the last one), ``total_count``;
* ``POST /order/{id}/invoice``, ``/order/{id}/ship``, ``/order/{id}/refund`` with Magento's quantity checks;
* ``GET /invoices``, ``/shipments``, ``/creditmemos`` filtered by ``order_id`` search criteria;
* ``POST /inventory/source-items``.

Faults: ``down`` (503 HTML to everything), ``fail_next`` (the next requests answer a status before doing anything),
``lose_next_response`` (the next POSTs are applied, then answered 502, as if the response were lost on the way back;
a POST the stub refused, 400/404, uses one up too). Every request is recorded as a ``RecordedRequest``, faults too.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tests.support.loopback import LoopbackStub

PREFIX = "/rest/all/V1"
UNAUTHORIZED = {
    "message": "The consumer isn't authorized to access %resources.",
    "parameters": {"resources": "Magento_Sales::sales"},
}
NO_ENTITY = {"message": "The entity that was requested doesn't exist. Verify the entity and try again."}
NO_INVOICE = {"message": "The invoice can't be created without products. Add products and try again."}
NO_SHIPMENT = {
    "message": "Shipment Document Validation Error(s):\n%1",
    "parameters": ["The order does not allow a shipment to be created."],
}
NO_CREDITMEMO = {"message": "The order does not allow a creditmemo to be created."}
TOO_MUCH_REFUND = {"message": "The most money available to refund is %1.", "parameters": ["0"]}
EPSILON = 1e-9
SEARCH_KEY = re.compile(
    r"searchCriteria\[(?:filter_groups|filterGroups)\]\[(\d+)\]\[filters\]\[(\d+)\]"
    r"\[(field|value|condition_type|conditionType)\]"
)
SORT_KEY = re.compile(r"searchCriteria\[(?:sortOrders|sort_orders)\]\[(\d+)\]\[(field|direction)\]")
NUMERIC_FIELDS = frozenset({"entity_id", "store_id", "customer_id"})

Answer = tuple[int, Any]
# (the order for /orders/{id} and /order/{id} routes, else the path's captured part; JSON body; query) -> answer
Handler = Callable[[Any, Any, str], Answer]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # relative to /rest/all/V1, e.g. "/order/7/ship"
    query: str
    json: Any
    authorization: str | None
    status: int  # the status the client received


def _qty(value: Any) -> int | float:
    number = float(value)
    return int(number) if number.is_integer() else number


class StubCommerce(LoopbackStub):
    name = "stub Commerce"

    def __init__(self, token: str = "commerce-integration-token-0123456789") -> None:
        self.token = token
        self.down = False  # answer every request 503 with an HTML page (a store outage)
        self._lock = threading.Lock()
        self._fail_queue: deque[int] = deque()
        self._lose_responses = 0
        self._orders: dict[int, dict[str, Any]] = {}
        self._documents: dict[str, list[dict[str, Any]]] = {"invoices": [], "shipments": [], "creditmemos": []}
        self._next_id = {"invoices": 5001, "shipments": 6001, "creditmemos": 7001}  # distinct ranges catch mix-ups
        self.source_items: dict[tuple[str, str], dict[str, Any]] = {}
        self.source_item_batches: list[list[dict[str, Any]]] = []
        self.requests: list[RecordedRequest] = []
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", re.compile(r"/orders/(\d+)"), self._get_order),
            ("GET", re.compile(r"/orders"), self._list_orders),
            ("POST", re.compile(r"/orders/(\d+)/comments"), self._comment),
            ("POST", re.compile(r"/orders/(\d+)/cancel"), self._cancel),
            ("POST", re.compile(r"/order/(\d+)/invoice"), self._invoice),
            ("POST", re.compile(r"/order/(\d+)/ship"), self._ship),
            ("POST", re.compile(r"/order/(\d+)/refund"), self._refund),
            ("GET", re.compile(r"/(invoices|shipments|creditmemos)"), self._search),
            ("POST", re.compile(r"/inventory/source-items"), self._source_items),
            ("GET", re.compile(r"/products"), self._products),
        ]
        self.products: list[dict[str, Any]] = []  # the catalog GET /products pages through, in entity_id order
        methods = ["GET", "POST", "PUT", "DELETE"]
        self.app = Starlette(routes=[Route(PREFIX + "/{rest:path}", self._dispatch, methods=methods)])

    @property
    def base_url(self) -> str:
        assert self.port is not None, "the stub Commerce is not started"
        return f"http://127.0.0.1:{self.port}{PREFIX}"

    # --- set-up and fault controls --------------------------------------------------------------------------
    def add_order(self, entity_id: int, increment_id: str, items: list[dict[str, Any]], **extra: Any) -> None:
        lines = []
        for item in items:
            line = {**item, "qty_ordered": _qty(item["qty_ordered"])}
            for field in ("qty_invoiced", "qty_shipped", "qty_refunded", "qty_canceled"):
                line.setdefault(field, 0)
            lines.append(line)
        order = {"entity_id": entity_id, "increment_id": increment_id, "state": "new", "status": "pending"}
        with self._lock:
            self._orders[entity_id] = {**extra, **order, "items": lines, "status_histories": []}

    def put_order(self, document: dict[str, Any]) -> None:
        """Store (or replace) an order exactly as given, JSON-ready (tests/support/pulled_orders.py builds them):
        what ``GET /orders`` and ``GET /orders/{id}`` answer."""
        with self._lock:
            self._orders[int(document["entity_id"])] = copy.deepcopy(document)

    def update_order(self, entity_id: int, updated_at: str, **fields: Any) -> None:
        """The store saves an order: ``fields`` changed (e.g. ``status``) and ``updated_at`` moved."""
        with self._lock:
            self._orders[entity_id].update(fields, updated_at=updated_at)

    def invoice_at_checkout(self, entity_id: int) -> None:
        """The store invoiced the whole order when it was placed (online capture)."""
        with self._lock:
            for item in self._orders[entity_id]["items"]:
                item["qty_invoiced"] = item["qty_ordered"]

    def set_item(self, entity_id: int, item_id: int, **fields: Any) -> None:
        """Change an order item behind the connector's back (e.g. ``qty_canceled`` in the admin)."""
        with self._lock:
            next(i for i in self._orders[entity_id]["items"] if i["item_id"] == item_id).update(fields)

    def fail_next(self, count: int, status: int = 503) -> None:
        with self._lock:
            self._fail_queue.extend([status] * count)

    def lose_next_response(self, count: int = 1) -> None:
        with self._lock:
            self._lose_responses += count

    # --- what the test looks at -----------------------------------------------------------------------------
    def order(self, entity_id: int) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._orders[entity_id])

    def requests_to(self, method: str, suffix: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.method == method.upper() and r.path.endswith(suffix)]

    @property
    def invoices(self) -> list[dict[str, Any]]:
        return self._copy("invoices")

    @property
    def shipments(self) -> list[dict[str, Any]]:
        return self._copy("shipments")

    @property
    def creditmemos(self) -> list[dict[str, Any]]:
        return self._copy("creditmemos")

    def _copy(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._documents[kind])

    # --- dispatch: faults, authorization, routing, recording -----------------------------------------------
    async def _dispatch(self, request: Request) -> Response:
        method, path, query = request.method, request.url.path.removeprefix(PREFIX), request.url.query
        authorization = request.headers.get("authorization")
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
            malformed = False
        except ValueError:
            body, malformed = raw.decode(errors="replace"), True
        with self._lock:
            response = self._answer(method, path, query, body, malformed, authorization)
            self.requests.append(RecordedRequest(method, path, query, body, authorization, response.status_code))
        return response

    def _answer(
        self, method: str, path: str, query: str, body: Any, malformed: bool, authorization: str | None
    ) -> Response:
        if self.down:
            return HTMLResponse("<html>503 Service Unavailable</html>", status_code=503)
        if self._fail_queue:
            status = self._fail_queue.popleft()
            return HTMLResponse(f"<html>{status} stub failure</html>", status_code=status)
        if authorization != f"Bearer {self.token}":
            return JSONResponse(UNAUTHORIZED, status_code=401)
        if malformed:
            return JSONResponse({"message": "Decoding error: malformed JSON"}, status_code=400)
        status, answer = 404, {"message": "Request does not match any route."}
        for route_method, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                target: Any = match.group(1) if match.groups() else ""
                if target.isdigit():
                    target = self._orders.get(int(target))
                try:
                    status, answer = handler(target, body, query) if target is not None else (404, NO_ENTITY)
                except (AttributeError, KeyError, TypeError, ValueError) as exc:  # a body the stub cannot read
                    status, answer = 400, {"message": f"stub: unreadable request: {exc!r}"}
                break
        if method == "POST" and self._lose_responses > 0:
            self._lose_responses -= 1  # the work above is done; only the answer is lost
            return HTMLResponse("<html>502 Bad Gateway</html>", status_code=502)
        return JSONResponse(answer, status_code=status)

    # --- orders ---------------------------------------------------------------------------------------------
    def _get_order(self, order: dict[str, Any], _body: Any, _query: str) -> Answer:
        return 200, copy.deepcopy(order)

    def _comment(self, order: dict[str, Any], body: Any, _query: str) -> Answer:
        history = (body or {}).get("statusHistory") or {}
        status = history.get("status") or None
        order["status_histories"].append(
            {
                "comment": history.get("comment"),
                "status": status or order["status"],
                "is_customer_notified": history.get("is_customer_notified", 0),
                "is_visible_on_front": history.get("is_visible_on_front", 0),
            }
        )
        if status:
            order["status"] = status
        return 200, True

    def _cancel(self, order: dict[str, Any], _body: Any, _query: str) -> Answer:
        touched = any(item["qty_invoiced"] or item["qty_shipped"] for item in order["items"])
        if order["state"] in ("canceled", "complete", "closed") or touched:
            return 200, False
        for item in order["items"]:
            item["qty_canceled"] = item["qty_ordered"]
        order["state"] = order["status"] = "canceled"
        return 200, True

    # --- documents ------------------------------------------------------------------------------------------
    @staticmethod
    def _requested(
        order: dict[str, Any], body: Any, room: Callable[[dict[str, Any]], float], allow_zero: bool = False
    ) -> list[dict[str, Any]] | None:
        """The requested lines as {order_item_id, qty}, all remaining room when none are given; None if invalid."""
        lines = {item["item_id"]: item for item in order["items"]}
        wanted = (body or {}).get("items") or [
            {"order_item_id": item["item_id"], "qty": room(item)} for item in order["items"] if room(item) > EPSILON
        ]
        result, used = [], dict.fromkeys(lines, 0.0)
        for entry in wanted:
            item = lines.get(int(entry.get("order_item_id", 0)))
            qty = _qty(entry.get("qty", 0))
            if item is None or qty < 0 or used[item["item_id"]] + qty > room(item) + EPSILON:
                return None
            used[item["item_id"]] += qty
            result.append({"order_item_id": item["item_id"], "qty": qty})
        if not allow_zero and not any(line["qty"] > 0 for line in result):
            return None
        return result

    def _record(self, kind: str, order: dict[str, Any], body: Any, **fields: Any) -> int:
        entity_id = self._next_id[kind]
        self._next_id[kind] += 1
        comment = (body or {}).get("comment")
        comments = [{"comment": comment.get("comment")}] if isinstance(comment, dict) and comment.get("comment") else []
        document = {"entity_id": entity_id, "order_id": order["entity_id"], **fields, "comments": comments}
        self._documents[kind].append(document)
        return entity_id

    @staticmethod
    def _settle(order: dict[str, Any]) -> None:
        def done(item: dict[str, Any], field: str) -> bool:
            return item[field] + item["qty_canceled"] >= item["qty_ordered"] - EPSILON

        if all(done(item, "qty_shipped") and done(item, "qty_invoiced") for item in order["items"]):
            order["state"] = order["status"] = "complete"
        else:
            order["state"] = order["status"] = "processing"

    def _invoice(self, order: dict[str, Any], body: Any, _query: str) -> Answer:
        lines = self._requested(order, body, lambda i: i["qty_ordered"] - i["qty_invoiced"] - i["qty_canceled"])
        if lines is None:
            return 400, NO_INVOICE
        self._apply(order, lines, "qty_invoiced")
        self._settle(order)
        return 200, self._record("invoices", order, body, items=lines)

    def _ship(self, order: dict[str, Any], body: Any, _query: str) -> Answer:
        lines = self._requested(order, body, lambda i: i["qty_ordered"] - i["qty_shipped"] - i["qty_canceled"])
        if lines is None:
            return 400, NO_SHIPMENT
        self._apply(order, lines, "qty_shipped")
        self._settle(order)
        tracks, arguments = (body or {}).get("tracks") or [], (body or {}).get("arguments")
        return 200, self._record("shipments", order, body, items=lines, tracks=tracks, arguments=arguments)

    def _refund(self, order: dict[str, Any], body: Any, _query: str) -> Answer:
        if not any(item["qty_invoiced"] > 0 for item in order["items"]):
            return 400, NO_CREDITMEMO
        lines = self._requested(order, body, lambda i: i["qty_invoiced"] - i["qty_refunded"], allow_zero=True)
        if lines is None:
            return 400, TOO_MUCH_REFUND
        self._apply(order, lines, "qty_refunded")
        arguments = (body or {}).get("arguments")
        return 200, self._record("creditmemos", order, body, items=lines, arguments=arguments)

    @staticmethod
    def _apply(order: dict[str, Any], lines: list[dict[str, Any]], field: str) -> None:
        items = {item["item_id"]: item for item in order["items"]}
        for line in lines:
            item = items[line["order_item_id"]]
            item[field] = _qty(item[field] + line["qty"])

    def _search(self, kind: str, _body: Any, query: str) -> Answer:
        """Magento search criteria: filters within a group are OR-ed, groups AND-ed; only ``order_id`` is known."""
        groups: dict[str, dict[str, dict[str, str]]] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            if named := SEARCH_KEY.fullmatch(key):
                group, index, part = named.groups()
                part = "condition_type" if part == "conditionType" else part
                groups.setdefault(group, {}).setdefault(index, {})[part] = value

        def accepts(document: dict[str, Any], filters: dict[str, dict[str, str]]) -> bool:
            known = [spec for spec in filters.values() if spec.get("field") == "order_id"]  # others are ignored
            for spec in known:
                value = spec.get("value", "")
                if str(document["order_id"]) in (value.split(",") if spec.get("condition_type") == "in" else [value]):
                    return True
            return not known

        found = [copy.deepcopy(d) for d in self._documents[kind] if all(accepts(d, f) for f in groups.values())]
        return 200, {"items": found, "search_criteria": {}, "total_count": len(found)}

    def _list_orders(self, _ident: str, _body: Any, query: str) -> Answer:
        """``GET /orders`` with search criteria, as Magento: filters, sort orders, numbered pages (a page past the
        last answers the last one again), ``total_count`` of everything the filters match."""
        pairs = parse_qsl(query, keep_blank_values=True)
        if not any(key.startswith("searchCriteria") for key, _ in pairs):
            return 400, {"message": "%fieldName is a required field.", "parameters": {"fieldName": "searchCriteria"}}
        groups: dict[str, dict[str, dict[str, str]]] = {}
        sorts: dict[str, dict[str, str]] = {}
        params: dict[str, str] = {}
        for key, value in pairs:
            if named := SEARCH_KEY.fullmatch(key):
                group, index, part = named.groups()
                part = "condition_type" if part == "conditionType" else part
                groups.setdefault(group, {}).setdefault(index, {})[part] = value
            elif named := SORT_KEY.fullmatch(key):
                sorts.setdefault(named.group(1), {})[named.group(2)] = value
            else:
                params[key] = value
        found = [
            order
            for order in self._orders.values()
            if all(any(_matches(order, spec) for spec in filters.values()) for filters in groups.values())
        ]
        for index in sorted(sorts, key=int, reverse=True):  # stable sorts, the last key first
            field, descending = sorts[index].get("field", ""), sorts[index].get("direction", "ASC").upper() == "DESC"
            found.sort(key=lambda order, field=field: _comparable(field, order.get(field)), reverse=descending)
        size = int(params.get("searchCriteria[pageSize]", "0")) or max(1, len(found))
        last = max(1, -(-len(found) // size))
        page = min(max(1, int(params.get("searchCriteria[currentPage]", "1"))), last)
        items = copy.deepcopy(found[(page - 1) * size : page * size])
        criteria = {"filter_groups": [], "page_size": size, "current_page": page}
        return 200, {"items": items, "search_criteria": criteria, "total_count": len(found)}

    def _products(self, _ident: str, _body: Any, query: str) -> Answer:
        """Paged like Magento: ``searchCriteria`` is required, and a page past the last answers the last one."""
        params = dict(parse_qsl(query))
        if "searchCriteria[pageSize]" not in params:
            return 400, {"message": "%fieldName is a required field.", "parameters": {"fieldName": "searchCriteria"}}
        size = int(params["searchCriteria[pageSize]"])
        ordered = sorted(self.products, key=lambda product: product["id"])
        last = max(1, -(-len(ordered) // size))
        page = min(int(params.get("searchCriteria[currentPage]", "1")), last)
        items = copy.deepcopy(ordered[(page - 1) * size : page * size])
        return 200, {"items": items, "search_criteria": {"page_size": size, "current_page": page},
                     "total_count": len(ordered)}  # fmt: skip

    def _source_items(self, _ident: str, body: Any, _query: str) -> Answer:
        items = (body or {}).get("sourceItems") if isinstance(body, dict) else None
        if not isinstance(items, list):
            return 400, {"message": '"%1" is required. Enter and try again.', "parameters": ["sourceItems"]}
        keyed = {(item["sku"], item["source_code"]): dict(item) for item in items}  # all read before any is stored
        self.source_items.update(keyed)
        self.source_item_batches.append(copy.deepcopy(items))
        return 200, []


def _comparable(field: str, value: Any) -> Any:
    """A field's value as Magento compares it: numbers for numeric columns, text otherwise (order times are
    "YYYY-MM-DD HH:MM:SS" text, so text order is time order)."""
    if field in NUMERIC_FIELDS:
        try:
            return (0, float(value))
        except (TypeError, ValueError):
            return (1, 0.0)
    return (0, "" if value is None else str(value))


def _matches(order: dict[str, Any], spec: dict[str, str]) -> bool:
    field, value, condition = spec.get("field", ""), spec.get("value", ""), spec.get("condition_type", "eq")
    have = _comparable(field, order.get(field))
    if condition in ("in", "nin"):
        inside = have in {_comparable(field, part) for part in value.split(",")}
        return inside if condition == "in" else not inside
    want = _comparable(field, value)
    compare = {
        "eq": have == want,
        "neq": have != want,
        "gt": have > want,
        "gteq": have >= want,
        "from": have >= want,
        "lt": have < want,
        "lteq": have <= want,
        "to": have <= want,
    }
    return compare.get(condition, False)
