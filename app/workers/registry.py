"""Which handler processes which topic, and what a handler is given."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.data.outbox import Outbox
from app.settings import ConfigurationError, Settings


@dataclass(frozen=True)
class InboundMessage:
    """A claimed inbound message, as a handler sees it."""

    id: int
    topic: str
    external_id: str
    lane: str
    channel: str
    payload: dict[str, Any] | None  # None: a large payload left in the database (register(fetch_large_payload=False))
    attempts: int  # attempts made before this one
    received_at: datetime  # when it was stored in the inbox


@dataclass
class HandlerContext:
    """What a handler works with. ``connection`` is inside the transaction that also records the message's
    status, so effects and status commit (or roll back) together; use ``outbox`` to send something in it."""

    connection: AsyncConnection
    outbox: Outbox
    settings: Settings
    now: datetime


# A handler returns a small JSON-able summary for the journal (e.g. {"applied": 10, "stale": 2}), or None.
Handler = Callable[[HandlerContext, InboundMessage], Awaitable[dict[str, Any] | None]]
# A batch handler applies several consecutive messages of one lane and topic at once (set-based), returning each
# one's summary in order — the same as the handler would have given them one by one — or None when it cannot (the
# bus then runs the handler on each, in the same transaction). If it raises, the bus rolls the batch back and runs
# the handler on each, so a bad message is found and recorded alone.
BatchHandler = Callable[[HandlerContext, Sequence[InboundMessage]], Awaitable[list[dict[str, Any] | None] | None]]


@dataclass
class HandlerRegistry:
    """Maps a topic (JSON-RPC method) to its one handler."""

    _handlers: dict[str, Handler] = field(default_factory=dict)
    _leaving_large_payloads: set[str] = field(default_factory=set)
    _batch_handlers: dict[str, BatchHandler] = field(default_factory=dict)

    def register(
        self,
        topic: str,
        handler: Handler,
        *,
        replace: bool = False,
        fetch_large_payload: bool = True,
        batch_handler: BatchHandler | None = None,
    ) -> None:
        """``fetch_large_payload=False``: a payload over LARGE_PAYLOAD_BYTES stays in the database (``message.payload``
        is None), for handlers that work on it inside PostgreSQL (a FULL stock page is ~300 KiB of JSON); smaller
        ones are brought along, which costs less than a second round trip."""
        if topic in self._handlers and not replace:
            raise ValueError(f"a handler for {topic} is already registered")
        self._handlers[topic] = handler
        if batch_handler is None:  # a replaced handler never keeps the batch handler of the one it replaced
            self._batch_handlers.pop(topic, None)
        else:
            self._batch_handlers[topic] = batch_handler
        if fetch_large_payload:
            self._leaving_large_payloads.discard(topic)
        else:
            self._leaving_large_payloads.add(topic)

    def get(self, topic: str) -> Handler | None:
        return self._handlers.get(topic)

    def get_batch(self, topic: str) -> BatchHandler | None:
        return self._batch_handlers.get(topic)

    @property
    def topics(self) -> list[str]:
        return sorted(self._handlers)

    @property
    def topics_leaving_large_payloads(self) -> list[str]:
        return sorted(self._leaving_large_payloads)


def build_registry(settings: Settings, plugins: Iterable[str] = ()) -> HandlerRegistry:
    """The handlers of this release, plus those added by HANDLER_PLUGINS (``module:function`` taking the
    registry and the settings) — the seam for extensions and for tests that need a handler of their own."""
    from app.workers.handlers import install_handlers  # the handlers import this module

    registry = HandlerRegistry()
    install_handlers(registry)
    for spec in [*settings.handler_plugins, *plugins]:
        module_name, _, function_name = spec.partition(":")
        if not function_name:
            raise ConfigurationError(f"HANDLER_PLUGINS: {spec!r} must look like module:function")
        try:
            install: Callable[[HandlerRegistry, Settings], None] = getattr(
                importlib.import_module(module_name), function_name
            )
        except (ImportError, AttributeError) as exc:  # start-up stops with one line naming the setting
            raise ConfigurationError(
                f"HANDLER_PLUGINS: {spec!r} cannot be loaded: {exc.__class__.__name__}: {exc}"
            ) from exc
        install(registry, settings)
    return registry
