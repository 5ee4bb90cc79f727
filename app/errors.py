"""The connector's errors.

    ConnectorError                      root; `retryable` says whether trying again can help
    ├── RequestError                    a caller sent something we cannot take (never retried)
    │   ├── SignatureInvalid            missing or wrong X-Signature on an OMS call
    │   ├── PayloadTooLarge             body over OMS_MAX_BODY_BYTES
    │   ├── ParseError                  body empty or not JSON            (JSON-RPC -32700)
    │   ├── InvalidRequest              not a JSON-RPC request object     (JSON-RPC -32600)
    │   ├── MethodNotFound              a method we do not know           (JSON-RPC -32601)
    │   └── InputRejected               input that cannot be taken as it is (422, names each field)
    │       ├── OrderRejected               an order that cannot be exported as it is
    │       ├── ProductRejected             a product that cannot be stored as it is
    │       └── SkuConflict                 a SKU taken by another kind of catalog entry (409, names both)
    ├── IntegrationDisabled             an operator disabled the integration (retryable: try later)
    ├── StorageUnavailable              PostgreSQL cannot be reached right now (retryable)
    ├── HandlerError                    a topic handler failed
    │   ├── PermanentHandlerError       the message itself is wrong: fail it, move the lane on
    │   └── TransientHandlerError       something around it is wrong: retry, keep the lane blocked
    ├── PeerError                       a call to the OMS (or another peer) did not succeed
    │   ├── PeerUnavailable             timeout, connection error, 5xx, 429 (retryable; may carry Retry-After)
    │   └── PeerRejected                4xx or a JSON-RPC error: the peer said no (not retryable)
    │       └── AnswerTooLarge              the peer's answer is larger than the connector reads
    ├── OperatorActionRefused           e.g. retrying a message that succeeded
    ├── NotConfigured                   the action needs a setting that is not set
    ├── PluginFailed                    an installed extension (line-attribute plugin) failed (500)
    └── NotFound                        no such message

Library errors (asyncpg, httpx, authlib) are translated at the boundary with ``raise ... from exc``.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Something went wrong in the connector."""

    retryable: bool = False

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or self.__class__.__name__).strip())

    @property
    def message(self) -> str:
        return str(self.args[0])


class RequestError(ConnectorError):
    """The request cannot be accepted."""

    http_status = 400
    jsonrpc_code = -32600


class SignatureInvalid(RequestError):
    """The X-Signature header is missing or does not match the body."""

    http_status = 401
    jsonrpc_code = -32001


class PayloadTooLarge(RequestError):
    """The request body is larger than OMS_MAX_BODY_BYTES."""

    http_status = 413
    jsonrpc_code = -32600


class ParseError(RequestError):
    """The body is empty or not valid JSON."""

    jsonrpc_code = -32700


class InvalidRequest(RequestError):
    """The body is not a JSON-RPC request object with a method and params."""

    jsonrpc_code = -32600


class MethodNotFound(RequestError):
    """The method is not one this connector handles."""

    http_status = 404  # as JSON-RPC over HTTP conventions (and the PHP peer) answer an unknown method
    jsonrpc_code = -32601


class MethodNotServed(RequestError):
    """The method is part of the protocol, but this connector does not serve it."""

    http_status = 501
    jsonrpc_code = -32004


class InputRejected(RequestError):
    """The input cannot be taken as it is; ``errors`` names each field at fault (422)."""

    http_status = 422

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{error['field']}: {error['message']}" for error in errors))
        self.errors = errors


class OrderRejected(InputRejected):
    """The order cannot be exported as it is; ``errors`` names each field at fault."""


class ProductRejected(InputRejected):
    """A posted product cannot be stored as it is; ``errors`` names each field at fault."""


class SkuConflict(InputRejected):
    """A SKU belongs to another kind of catalog entry: a store product cannot take a shipping method's code, nor a
    shipping method a product's SKU. Nothing is stored; ``errors`` names each SKU and what holds it."""

    http_status = 409


class IntegrationDisabled(ConnectorError):
    """The integration is disabled by an operator; nothing is accepted or sent until it is enabled."""

    retryable = True
    http_status = 503
    jsonrpc_code = -32002


class StorageUnavailable(ConnectorError):
    """The database cannot be reached right now; nothing was stored."""

    retryable = True
    http_status = 503
    jsonrpc_code = -32003


class HandlerError(ConnectorError):
    """A topic handler could not process a message."""


class PermanentHandlerError(HandlerError):
    """The message cannot ever be processed as it is (bad field, unknown reference)."""


class TransientHandlerError(HandlerError):
    """The message could not be processed now; trying again later may work."""

    retryable = True


class PeerError(ConnectorError):
    """A call to a peer did not succeed."""


class PeerUnavailable(PeerError):
    """The peer did not answer usefully (timeout, connection error, 5xx, 429); try again later."""

    retryable = True

    def __init__(self, message: str | None = None, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PeerRejected(PeerError):
    """The peer refused the call (4xx or a JSON-RPC error); sending it again will not help."""


class AnswerTooLarge(PeerRejected):
    """The peer's answer is larger than the connector reads (it stopped reading there); ask for less."""


class LifecycleConflict(ConnectorError):
    """The order is not in a state that allows this (e.g. a cancel once the OMS has it in logistics)."""

    http_status = 409


class OperatorActionRefused(ConnectorError):
    """The operator action is not allowed for this message in its current state."""

    http_status = 409


class NotConfigured(ConnectorError):
    """A setting this action needs is not configured."""

    http_status = 409


class PluginFailed(ConnectorError):
    """An installed extension failed; nothing was stored. Fix or remove the plugin, then post again."""

    http_status = 500


class NotFound(ConnectorError):
    """No such object."""

    http_status = 404
