"""Adobe Commerce (Magento 2) REST API: an integration token (bearer) over an injectable httpx transport.

Errors are translated for the outbox's rules (reference/magento-rest.md §1): timeouts, connection errors, 5xx and
429 raise ``PeerUnavailable`` (retried, Retry-After honoured), and so does 401/403 (a token being rotated or a
missing ACL resource is fixed by an operator, after which the effect must still arrive); 400, 404 and other 4xx
raise ``PeerRejected`` with Magento's own message, its ``%1`` / ``%name`` placeholders filled in. A read given
``max_bytes`` (the order pull's pages) stops reading an answer at that size and raises ``AnswerTooLarge``. Order
lists are read as plain JSON, not by the strict rules of app/protocol/strict_json.py: one order with a NUL in a
comment must not make the whole page unreadable; the order pull checks each order strictly, as POST /orders does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from pydantic import SecretStr

from app.clients.http_answers import retry_after_seconds, shorten
from app.clients.oms import make_transport
from app.errors import AnswerTooLarge, PeerRejected, PeerUnavailable
from app.metrics import COMMERCE_PEER, Metrics
from app.protocol import strict_json
from app.protocol.order_search import OrderKey, newest_order_params, orders_since_params
from app.settings import Settings

PLACEHOLDER = re.compile(r"%(\w+)")
SEARCH_PAGE_SIZE = 100  # one order has a handful of shipments, invoices and credit memos


def render_magento_message(message: str, parameters: Any) -> str:
    """Magento's ``{message, parameters}``: ``%1``, ``%2`` index a list (from 1), ``%name`` a dict."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if isinstance(parameters, list) and name.isdigit() and 0 < int(name) <= len(parameters):
            return str(parameters[int(name) - 1])
        if isinstance(parameters, dict) and name in parameters:
            return str(parameters[name])
        return match.group(0)

    return PLACEHOLDER.sub(value, message) if parameters else message


def magento_error_text(response: httpx.Response) -> str:
    """What Magento said, for the journal: the rendered ``message`` (and each of ``errors``), the ``messages.error``
    list of its fatal-error shape, or else the start of the raw body."""
    try:
        document = strict_json.loads(response.content)
    except strict_json.UnacceptableJson:
        return shorten(response.text) or "(empty body)"
    if isinstance(document, dict):
        texts: list[str] = []
        if isinstance(document.get("message"), str):
            texts.append(render_magento_message(document["message"], document.get("parameters")))
        for error in document.get("errors") or []:
            if isinstance(error, dict) and isinstance(error.get("message"), str):
                texts.append(render_magento_message(error["message"], error.get("parameters")))
        fatal = document.get("messages")
        if isinstance(fatal, dict):
            texts += [str(e.get("message")) for e in fatal.get("error") or [] if isinstance(e, dict)]
        if texts:
            return shorten("; ".join(texts))
    return shorten(response.text)


@dataclass(frozen=True)
class ProductsPage:
    items: list[dict[str, Any]]
    total_count: int


@dataclass(frozen=True)
class OrdersPage:
    """One page of ``GET /orders``: its items as Adobe Commerce sent them (objects, unless the store is broken: the
    order pull refuses anything else, item by item), how many orders match the search, and the answer's size."""

    items: list[Any]
    total_count: int
    size_bytes: int


class CommerceClient:
    """Calls under ``ADOBE_COMMERCE_URL``. Pass ``transport=httpx.MockTransport(...)`` or use respx in unit tests."""

    def __init__(
        self,
        *,
        base_url: str,
        token: SecretStr,
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.metrics = metrics or Metrics()  # each request by outcome
        self._token = token
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout_s),
            headers={"Accept": "application/json"},
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, transport: httpx.AsyncBaseTransport | None = None, metrics: Metrics | None = None
    ) -> CommerceClient:
        if settings.adobe_commerce_url is None or settings.adobe_commerce_token is None:
            raise ValueError("ADOBE_COMMERCE_URL and ADOBE_COMMERCE_TOKEN are not configured")
        return cls(
            base_url=str(settings.adobe_commerce_url),
            token=settings.adobe_commerce_token,
            timeout_s=settings.adobe_commerce_timeout_s,
            transport=transport or make_transport(settings.oms_http_transport),
            metrics=metrics,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- the routes the connector uses ---------------------------------------------------------------------
    async def get_order(self, entity_id: str) -> dict[str, Any]:
        order = await self.request("GET", f"/orders/{entity_id}")
        if not isinstance(order, dict):
            raise PeerRejected(f"Adobe Commerce answered GET /orders/{entity_id} with something not an order")
        return order

    async def documents_of_order(self, kind: str, entity_id: str) -> list[dict[str, Any]]:
        """``kind`` (invoices, shipments, creditmemos) of one order, by search criteria on ``order_id``."""
        found = await self.request(
            "GET",
            f"/{kind}",
            params={
                "searchCriteria[filter_groups][0][filters][0][field]": "order_id",
                "searchCriteria[filter_groups][0][filters][0][value]": entity_id,
                "searchCriteria[filter_groups][0][filters][0][condition_type]": "eq",
                "searchCriteria[pageSize]": SEARCH_PAGE_SIZE,
            },
        )
        items = found.get("items") if isinstance(found, dict) else None
        return [item for item in items or [] if isinstance(item, dict)]

    async def products_page(self, page: int, page_size: int) -> ProductsPage:
        """One page of ``GET /products`` in entity-id order (stable while an export runs; Adobe Commerce answers a
        page past the last with the last one again, so callers stop at ``total_count``)."""
        found = await self.request(
            "GET",
            "/products",
            params={
                "searchCriteria[pageSize]": page_size,
                "searchCriteria[currentPage]": page,
                "searchCriteria[sortOrders][0][field]": "entity_id",
                "searchCriteria[sortOrders][0][direction]": "ASC",
            },
        )
        if not isinstance(found, dict) or not isinstance(found.get("items", []), list):
            raise PeerRejected("Adobe Commerce answered GET /products with something not a product list")
        total = found.get("total_count")
        return ProductsPage(
            items=[item for item in found.get("items") or [] if isinstance(item, dict)],
            total_count=int(total) if isinstance(total, int | str) and str(total).isdigit() else 0,
        )

    async def orders_page(
        self, *, since: datetime, after: OrderKey | None, page_size: int, max_bytes: int
    ) -> OrdersPage:
        """One keyset page of ``GET /orders`` (app/protocol/order_search.py): orders updated at or after ``since``,
        or after the order ``after``, oldest first. An answer over ``max_bytes`` raises AnswerTooLarge."""
        sizes: list[int] = []
        found = await self.request(
            "GET",
            "/orders",
            params=orders_since_params(since=since, after=after, page_size=page_size),
            max_bytes=max_bytes,
            sizes=sizes,
            lenient=True,
        )
        return OrdersPage(*_order_list(found), size_bytes=sizes[0] if sizes else 0)

    async def newest_order(self, *, max_bytes: int) -> Any | None:
        """The most recently updated order (None: the store has none)."""
        found = await self.request("GET", "/orders", params=newest_order_params(), max_bytes=max_bytes, lenient=True)
        items, _total = _order_list(found)
        return items[0] if items else None

    async def post(self, path: str, body: Mapping[str, Any] | None) -> Any:
        return await self.request("POST", path, body=body)

    # --- transport ----------------------------------------------------------------------------------------
    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        max_bytes: int | None = None,
        sizes: list[int] | None = None,
        lenient: bool = False,
    ) -> Any:
        """Call ``path`` and return the JSON answer (None when empty). ``max_bytes``: read at most that much of the
        answer (AnswerTooLarge beyond); ``sizes`` gets the size of the answer read; ``lenient``: plain JSON (see
        above) instead of the strict rules."""
        headers = {"Authorization": f"Bearer {self._token.get_secret_value()}"}
        content = None
        if body is not None:
            content = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        with self.metrics.peer_call(COMMERCE_PEER):
            return await self._request(method, path, content, params, headers, max_bytes, sizes, lenient)

    async def _request(
        self,
        method: str,
        path: str,
        content: bytes | None,
        params: Mapping[str, Any] | None,
        headers: dict[str, str],
        max_bytes: int | None = None,
        sizes: list[int] | None = None,
        lenient: bool = False,
    ) -> Any:
        where = f"{method} {path}"
        try:
            if max_bytes is None:
                response = await self._http.request(
                    method, self.base_url + path, content=content, params=params, headers=headers
                )
            else:
                request = self._http.build_request(
                    method, self.base_url + path, content=content, params=params, headers=headers
                )
                response = await self._read_at_most(request, max_bytes, where)
        except httpx.TimeoutException as exc:
            raise PeerUnavailable(f"timeout calling Adobe Commerce ({where}): {exc.__class__.__name__}") from exc
        except httpx.TransportError as exc:
            raise PeerUnavailable(f"cannot reach Adobe Commerce ({where}): {exc.__class__.__name__}: {exc}") from exc
        _raise_for_status(response, where)
        if sizes is not None:
            sizes.append(len(response.content))
        if not response.content.strip():
            return None
        try:
            return json.loads(response.content) if lenient else strict_json.loads(response.content)
        except (strict_json.UnacceptableJson, ValueError, RecursionError) as exc:
            raise PeerUnavailable(f"Adobe Commerce answered {where} with a body that is not JSON ({exc})") from exc

    async def _read_at_most(self, request: httpx.Request, max_bytes: int, where: str) -> httpx.Response:
        """Send ``request`` and read its answer (decoded) up to ``max_bytes``: the answer as a response whose content
        is that body, or AnswerTooLarge as soon as it is known to be larger (its Content-Length, or what came)."""
        response = await self._http.send(request, stream=True)
        try:
            declared = response.headers.get("content-length", "")
            too_large = AnswerTooLarge(
                f"Adobe Commerce answered {where} with more than {max_bytes} bytes: the connector stops reading there"
            )
            if declared.isdigit() and int(declared) > max_bytes and "content-encoding" not in response.headers:
                raise too_large
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise too_large
                chunks.append(chunk)
        finally:
            await response.aclose()
        kept = [(name, value) for name, value in response.headers.multi_items() if name.lower() not in _BODY_HEADERS]
        return httpx.Response(response.status_code, headers=kept, content=b"".join(chunks), request=request)


_BODY_HEADERS = frozenset({"content-length", "content-encoding", "transfer-encoding"})  # of the body as it came


def _order_list(found: Any) -> tuple[list[Any], int]:
    """``{items, total_count}`` of an order search (``items`` absent or null: none)."""
    items = found.get("items") if isinstance(found, dict) else None
    if not isinstance(found, dict) or not isinstance(items, list | None):
        raise PeerRejected("Adobe Commerce answered GET /orders with something not an order list")
    total = found.get("total_count")
    count = total if isinstance(total, int) and not isinstance(total, bool) else len(items or [])
    return list(items or []), count


def _raise_for_status(response: httpx.Response, where: str) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    said = magento_error_text(response)
    if status == 429 or status >= 500:
        raise PeerUnavailable(
            f"Adobe Commerce answered {where} with HTTP {status}: {said}",
            retry_after_s=retry_after_seconds(response.headers.get("retry-after")),
        )
    if status in (401, 403):
        raise PeerUnavailable(
            f"Adobe Commerce answered {where} with HTTP {status}: {said} "
            "(check ADOBE_COMMERCE_TOKEN and the integration's API resources)"
        )
    raise PeerRejected(f"Adobe Commerce answered {where} with HTTP {status}: {said}")
