"""The usual error shape, for every refusal the HTTP API gives (JSON-RPC errors of the webhook aside):

    {"detail": "<what is wrong>", "error": "<its name>", "errors": [{"field", "message"}, …], "request_id": "…"}

``errors`` comes with input refusals (422: each field at fault), ``request_id`` with every error (the one in the
``X-Request-ID`` header, also in the log line of an unexpected error). Our errors (``ConnectorError``), FastAPI's
validation errors and Starlette's HTTP errors (401, 404, 405…) are all rendered here.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from app.errors import ConnectorError, InputRejected, PeerError, StorageUnavailable

REQUEST_ID_HEADER = "X-Request-ID"


class FieldError(BaseModel):
    field: str = Field(description="Where: a body path (`items[2].qty_ordered`), a query or path parameter's name")
    message: str


class ErrorAnswer(BaseModel):
    """Every error answer of the API."""

    detail: str = Field(description="What is wrong, for a person")
    error: str = Field(description="Its name, for a program (`InputRejected`, `NotFound`, `Unauthorized`…)")
    errors: list[FieldError] | None = Field(default=None, description="Input refusals: each field at fault")
    request_id: str | None = Field(default=None, description="As in the X-Request-ID header and the log")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorAnswer, "description": "The input cannot be taken as it is: `errors` names each field"},
    500: {"model": ErrorAnswer, "description": "Unexpected error: nothing was changed by it; quote `request_id`"},
}


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def error_response(
    request: Request,
    status: int,
    detail: str,
    error: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    answer = ErrorAnswer(detail=detail, error=error, errors=errors, request_id=request_id_of(request))
    return JSONResponse(answer.model_dump(exclude_none=True), status_code=status, headers=headers)


def describe_validation_errors(errors: Any) -> list[dict[str, str]]:
    """FastAPI's validation errors as ``{field, message}``: ``methods[0].code``, ``limit`` (a query parameter)."""
    described = []
    for error in errors:
        location = list(error.get("loc", ()))
        source = location.pop(0) if location and location[0] in ("body", "query", "path", "header") else None
        if error.get("type") == "json_invalid":
            reason = (error.get("ctx") or {}).get("error") or error.get("msg", "not valid JSON")
            described.append({"field": "(body)", "message": str(reason)})
            continue
        field = ""
        for part in location:
            field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
        described.append({"field": field or f"({source or 'request'})", "message": str(error.get("msg", "invalid"))})
    return described


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ConnectorError)
    async def connector_error(request: Request, exc: ConnectorError) -> JSONResponse:
        status = getattr(exc, "http_status", None)
        if status is None:
            status = 502 if isinstance(exc, PeerError) else 400
        headers = {"Retry-After": "30"} if isinstance(exc, StorageUnavailable) else None
        errors = exc.errors if isinstance(exc, InputRejected) else None
        return error_response(request, status, exc.message, exc.__class__.__name__, errors=errors, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = describe_validation_errors(exc.errors())
        detail = "; ".join(f"{error['field']}: {error['message']}" for error in errors)
        return error_response(request, 422, detail, "InputRejected", errors=errors)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        name = HTTPStatus(exc.status_code).phrase.replace(" ", "").replace("-", "")
        headers = dict(exc.headers) if exc.headers else None
        return error_response(request, exc.status_code, str(exc.detail), name, headers=headers)
