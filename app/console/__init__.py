"""The operator console at /admin: server-rendered pages (Jinja2, a little JavaScript), signed in with the operator
token, every asset served by the connector itself. One more thin adapter over app/services."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from app.console.pages import auth, catalog, integration, journal, orders, report, settings, stock
from app.console.web import HERE, PREFIX, ConsoleRefusal, SignInRequired, html_error, redirect, sign_in_url
from app.errors import ConnectorError


def install_console(app: FastAPI) -> None:
    """Mount /admin. Call after app.routers.errors.install_error_handlers: below /admin a refusal is an HTML page,
    elsewhere the JSON error shape stays."""
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="console-static")
    for module in (auth, integration, journal, orders, catalog, stock, report, settings):
        app.include_router(module.router, prefix=PREFIX, include_in_schema=False)

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, _exc: SignInRequired) -> Response:
        if request.method != "GET":
            return html_error(request, ConsoleRefusal(401, "Signed out", "sign in again, then repeat the action"))
        return redirect(request, sign_in_url(request))

    @app.exception_handler(ConsoleRefusal)
    async def _refused(request: Request, exc: ConsoleRefusal) -> Response:
        return html_error(request, exc)

    for kind in (ConnectorError, RequestValidationError, HTTPException):
        _html_below_admin(app, kind)


def _html_below_admin(app: FastAPI, kind: type[Exception]) -> None:
    json_handler = app.exception_handlers[kind]

    async def handler(request: Request, exc: Any) -> Response:
        if not request.url.path.startswith(PREFIX + "/") or request.url.path.startswith(PREFIX + "/static/"):
            return await json_handler(request, exc)
        return html_error(request, _as_refusal(exc))

    app.add_exception_handler(kind, handler)


def _as_refusal(exc: Exception) -> ConsoleRefusal:
    if isinstance(exc, RequestValidationError):
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error.get('loc', ())[1:]) or 'input'}: {error.get('msg', '')}"
            for error in exc.errors()[:10]
        )
        return ConsoleRefusal(422, "Invalid input", problems)
    if isinstance(exc, HTTPException):
        return ConsoleRefusal(exc.status_code, HTTPStatus(exc.status_code).phrase, str(exc.detail))
    status = getattr(exc, "http_status", None) or 400
    if status >= 500:
        status = 502
    return ConsoleRefusal(status, HTTPStatus(status).phrase, getattr(exc, "message", str(exc)))
