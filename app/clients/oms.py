"""The OMS as a JSON-RPC peer: OAuth2 client credentials (authlib) over an injectable httpx transport.

Success is strict (protocol §1.2): HTTP 2xx, a JSON object body, a ``result`` member and no non-empty ``error``
(string or object). Timeouts, connection errors, 5xx and 429 raise ``PeerUnavailable`` (retry later, honouring
Retry-After); other 4xx and JSON-RPC errors raise ``PeerRejected`` with the OMS's message. The token is fetched
on first use, renewed shortly before ``expires_in`` (authlib), and fetched again once after a 401.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client
from pydantic import SecretStr

from app.clients.http_answers import retry_after_seconds, shorten
from app.errors import PeerError, PeerRejected, PeerUnavailable
from app.metrics import OMS_PEER, Metrics
from app.protocol import strict_json
from app.protocol.jsonrpc import encoded_request, request_envelope
from app.settings import Settings

log = logging.getLogger(__name__)

TOKEN_LEEWAY_S = 30  # renew this long before the token's announced expiry
MAX_CONNECTIONS = 64
UNANSWERED = "the batch answer has no entry for this id"
T = TypeVar("T")


@dataclass(frozen=True)
class RpcCall:
    id: str
    method: str
    params: dict[str, Any] | None = None
    encoded_params: str | None = None  # params already encoded as JSON text (sent as is)
    encoded_call: str | None = None  # the whole request object already encoded (sent as is)

    def wire(self) -> str:
        if self.encoded_call is not None:
            return self.encoded_call
        if self.encoded_params is not None:
            return encoded_request(self.id, self.method, self.encoded_params)
        return json.dumps(request_envelope(self.id, self.method, self.params or {}), separators=(",", ":"))


def make_transport(kind: str) -> httpx.AsyncBaseTransport:
    """The production transport: aiohttp behind the httpx API is ~4x faster here (reference/dependencies.md)."""
    limits = httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS)
    if kind == "aiohttp":
        from httpx_aiohttp import AiohttpTransport

        return AiohttpTransport(limits=limits)
    return httpx.AsyncHTTPTransport(limits=limits)


class OmsClient:
    """JSON-RPC calls to the OMS. Pass ``transport=httpx.MockTransport(...)`` in unit tests."""

    def __init__(
        self,
        *,
        url: str,
        oauth_token_url: str | None = None,
        client_id: str = "",
        client_secret: SecretStr | None = None,
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.url = url
        self.metrics = metrics or Metrics()  # each exchange by outcome, each token fetch
        self._oauth = oauth_token_url is not None
        timeout = httpx.Timeout(timeout_s)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        self._http: httpx.AsyncClient
        if oauth_token_url is not None:
            self._http = AsyncOAuth2Client(
                client_id=client_id,
                client_secret=(client_secret or SecretStr("")).get_secret_value(),
                token_endpoint=oauth_token_url,
                grant_type="client_credentials",
                token_endpoint_auth_method="client_secret_post",
                leeway=TOKEN_LEEWAY_S,
                transport=transport,
                timeout=timeout,
                headers=headers,
            )
        else:
            self._http = httpx.AsyncClient(transport=transport, timeout=timeout, headers=headers)
        self._token_lock = asyncio.Lock()
        self.token_fetched_at: float | None = None
        self.token_error: str | None = None
        self.last_success_at: float | None = None  # last time the OMS answered at all
        self.last_error: str | None = None  # why the last call could not reach it (None once it answers)

    @classmethod
    def from_settings(
        cls, settings: Settings, transport: httpx.AsyncBaseTransport | None = None, metrics: Metrics | None = None
    ) -> OmsClient:
        if settings.oms_url is None:
            raise ValueError("OMS_URL is not configured")
        return cls(
            url=str(settings.oms_url),
            oauth_token_url=str(settings.oms_oauth_server_url) if settings.oms_oauth_server_url else None,
            client_id=settings.oms_oauth_client_id,
            client_secret=settings.oms_oauth_client_secret,
            timeout_s=settings.oms_http_timeout_s,
            transport=transport or make_transport(settings.oms_http_transport),
            metrics=metrics,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- calls ----------------------------------------------------------------------------------------------
    async def call(
        self,
        method: str,
        params: dict[str, Any] | None,
        request_id: str,
        *,
        encoded_params: str | None = None,
        encoded_call: str | None = None,
    ) -> Any:
        """Send one call; return its ``result``. Raises PeerUnavailable or PeerRejected."""
        body = RpcCall(request_id, method, params, encoded_params, encoded_call).wire().encode()
        return await self._exchange(body, _single_result)

    async def call_batch(self, calls: Sequence[RpcCall]) -> dict[str, Any | PeerError]:
        """Send ``calls`` as one JSON-RPC batch; map each id to its result or its error.

        A failure of the whole exchange raises; a call the answer does not mention comes back as
        PeerUnavailable (it may be retried with the same id).
        """
        items = await self._exchange(("[" + ",".join(call.wire() for call in calls) + "]").encode(), _batch_items)
        by_id: dict[str, Any] = {}
        for item in items:
            if isinstance(item, dict) and "id" in item:
                by_id[str(item["id"])] = item
        outcomes: dict[str, Any | PeerError] = {}
        for call in calls:
            item = by_id.get(call.id)
            if item is None:
                outcomes[call.id] = PeerUnavailable(UNANSWERED)
                continue
            try:
                outcomes[call.id] = _result_of(item)
            except PeerError as exc:
                outcomes[call.id] = exc
        return outcomes

    async def call_batch_encoded(self, body: str, ids: Sequence[str]) -> dict[str, PeerError]:
        """Send a JSON-RPC batch request already encoded (``body``, calls with ``ids``); return only the calls that
        failed, by id (the catalog export keeps no results: an empty answer means every call succeeded). A failure
        of the whole exchange raises; a call the answer does not mention is PeerUnavailable."""
        items = await self._exchange(body.encode(), _batch_items)
        if _all_succeeded_in_order(items, ids):  # the usual answer, checked in one pass
            return {}
        unanswered = set(ids)
        failures: dict[str, PeerError] = {}
        for item in items:
            if not isinstance(item, dict) or "id" not in item:
                continue
            call_id = str(item["id"])
            if call_id not in unanswered:
                continue  # not one of ours, or answered twice: the first answer counts
            unanswered.discard(call_id)
            if item.get("error") or "result" not in item:
                try:
                    _result_of(item)
                except PeerError as exc:
                    failures[call_id] = exc
        for call_id in unanswered:
            failures[call_id] = PeerUnavailable(UNANSWERED)
        return failures

    async def _exchange(self, body: bytes, read: Callable[[httpx.Response], T]) -> T:
        """Post ``body`` and read the answer; whether the OMS could be reached is kept for /integration."""
        with self.metrics.peer_call(OMS_PEER):
            try:
                response = await self._post(body)
                self._reached()
                return read(response)
            except PeerUnavailable as exc:
                self.last_error = exc.message
                raise

    def _reached(self) -> None:
        """The OMS answered (whatever it said): it is reachable."""
        self.last_success_at = time.time()
        self.last_error = None

    # --- transport and token --------------------------------------------------------------------------------
    async def _post(self, content: bytes) -> httpx.Response:
        await self._ensure_token(force=False)
        response = await self._send(content)
        if response.status_code == 401 and self._oauth:
            # The token may have been revoked or expired early: fetch a new one, once.
            await self._ensure_token(force=True)
            response = await self._send(content)
        _raise_for_status(response)
        return response

    async def _send(self, content: bytes) -> httpx.Response:
        try:
            return await self._http.post(self.url, content=content)
        except httpx.TimeoutException as exc:
            raise PeerUnavailable(f"timeout calling the OMS: {exc.__class__.__name__}") from exc
        except httpx.TransportError as exc:
            raise PeerUnavailable(f"cannot reach the OMS: {exc.__class__.__name__}: {exc}") from exc

    async def _ensure_token(self, *, force: bool) -> None:
        if not self._oauth:
            return
        client = self._http
        assert isinstance(client, AsyncOAuth2Client)
        async with self._token_lock:
            # Renew an expiring token here, not inside the request (authlib would leak its errors untranslated).
            if client.token and not force and not client.token.is_expired(leeway=client.leeway):
                return
            try:
                await client.fetch_token()
            except httpx.TransportError as exc:
                self.metrics.token_fetched(ok=False)
                self.token_error = f"token endpoint unreachable: {exc.__class__.__name__}"
                raise PeerUnavailable(self.token_error) from exc
            except Exception as exc:  # authlib raises OAuthError and friends for refused or odd answers
                self.metrics.token_fetched(ok=False)
                self.token_error = f"token request failed: {exc.__class__.__name__}: {shorten(str(exc))}"
                raise PeerUnavailable(self.token_error) from exc
            self.metrics.token_fetched(ok=True)
            self.token_error = None
            self.token_fetched_at = time.time()

    def token_state(self) -> dict[str, Any]:
        """For /integration: never the token itself."""
        if not self._oauth:
            return {"oauth": False}
        client = self._http
        assert isinstance(client, AsyncOAuth2Client)
        token = client.token or {}
        expires_at = token.get("expires_at") if token else None
        return {
            "oauth": True,
            "has_token": bool(token),
            "fetched_at": self.token_fetched_at,
            "expires_at": expires_at,
            "error": self.token_error,
        }


def _raise_for_status(response: httpx.Response) -> None:
    status = response.status_code
    if status == 429 or status >= 500:
        raise PeerUnavailable(
            f"OMS answered HTTP {status}: {shorten(response.text)}",
            retry_after_s=retry_after_seconds(response.headers.get("retry-after")),
        )
    if status == 401:
        raise PeerUnavailable("OMS answered HTTP 401 even with a fresh token: check the OAuth settings")
    if not 200 <= status < 300:
        raise PeerRejected(f"OMS answered HTTP {status}: {shorten(response.text)}")


def _json_body(response: httpx.Response) -> Any:
    if not response.content.strip():
        raise PeerRejected(f"OMS answered HTTP {response.status_code} with an empty body")
    try:
        return strict_json.loads(response.content)  # the same rules as for what the OMS calls us with
    except strict_json.UnacceptableJson as exc:
        raise PeerRejected(f"OMS answer is not JSON this service accepts ({exc}): {shorten(response.text)}") from exc


def _single_result(response: httpx.Response) -> Any:
    document = _json_body(response)
    if not isinstance(document, dict):
        raise PeerRejected(f"OMS answer is not a JSON object: {shorten(response.text)}")
    return _result_of(document)


def _batch_items(response: httpx.Response) -> list[Any]:
    document = _json_body(response)
    if isinstance(document, dict):
        _result_of(document)  # a single error object for the whole batch: raise it
        raise PeerRejected("OMS answered a batch with a single object")
    if not isinstance(document, list):
        raise PeerRejected(f"OMS answer to a batch is not a list: {shorten(response.text)}")
    return document


def _all_succeeded_in_order(items: list[Any], ids: Sequence[str]) -> bool:
    """Every call answered with a result and no error, in the order sent (as peers answer). False means "look
    closer", not "failed"."""
    if len(items) != len(ids):
        return False
    try:
        return all(
            item["id"] == call_id and "result" in item and not item.get("error")
            for item, call_id in zip(items, ids, strict=True)
        )
    except (TypeError, KeyError, AttributeError):
        return False


def _result_of(document: dict[str, Any]) -> Any:
    error = document.get("error")
    if error:  # the Go peer sends "error": "" on success, a string on failure; JSON-RPC 2.0 sends an object
        if isinstance(error, dict):
            message = f"{error.get('code', '')} {error.get('message', '')}".strip() or json.dumps(error)
        else:
            message = str(error)
        raise PeerRejected(f"OMS returned an error: {shorten(message)}")
    if "result" not in document:
        raise PeerRejected("OMS answer has no result")
    return document["result"]
