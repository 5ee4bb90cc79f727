"""The route class of every router (``api_router``): a body FastAPI parses is bounded and read as strict JSON.

Endpoints that read their body themselves (the OMS webhook, orders, products, the CSV import) bound it with their
own limit (``read_limited_body``) and parse it with ``app.protocol.strict_json`` too; the bodies FastAPI parses for
a pydantic model get the same rules here, so an endpoint added later cannot forget them.
tests/integration/test_input_rules.py sends every operation of the OpenAPI document the same bad inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute

from app.protocol import strict_json
from app.routers.body import read_limited_body
from app.routers.errors import ERROR_RESPONSES


class StrictJsonRequest(Request):
    """A request whose ``body()`` stops at COMMERCE_MAX_BODY_BYTES and whose ``json()`` is ``strict_json.loads``."""

    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            limit = self.app.state.runtime.settings.commerce_max_body_bytes
            self._body = await read_limited_body(self, limit)
        return self._body

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = strict_json.loads(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        reads_body = self.body_field is not None

        async def strict_handler(request: Request) -> Response:
            strict = StrictJsonRequest(request.scope, request.receive)
            if reads_body:
                # Read here, not inside FastAPI's handler, which would turn the 413 into a generic 400.
                await strict.body()
            return await handler(strict)

        return strict_handler


def api_router(*, usual_errors: bool = True, **kwargs: Any) -> APIRouter:
    """An APIRouter whose routes are StrictJsonRoute and document the usual error shape (every router of the app
    is made by this; ``usual_errors=False`` for the webhook, which answers JSON-RPC error objects)."""
    responses = {**(ERROR_RESPONSES if usual_errors else {}), **kwargs.pop("responses", {})}
    return APIRouter(route_class=StrictJsonRoute, responses=responses, **kwargs)
