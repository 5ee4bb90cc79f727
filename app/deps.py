"""Request dependencies: the runtime and who is calling. Tokens are compared in constant time."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from app.runtime import Runtime

_bearer = HTTPBearer(auto_error=False, description="Operator, commerce or metrics token")


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _runtime(request: Request) -> Runtime:
    # Every dependency here is ``async def``: FastAPI runs a plain ``def`` one in a worker thread, a hop that cost
    # more than the whole check (bench/orders.py), and none of them waits on anything.
    return get_runtime(request)


RuntimeDep = Annotated[Runtime, Depends(_runtime)]


def _token_matches(credentials: HTTPAuthorizationCredentials | None, *expected: str) -> bool:
    if credentials is None or credentials.scheme.lower() != "bearer":
        return False
    given = credentials.credentials.encode()
    matched = False
    for token in expected:
        matched |= hmac.compare_digest(given, token.encode())
    return matched


def _require_token(
    credentials: HTTPAuthorizationCredentials | None, tokens: list[SecretStr | None], detail: str
) -> None:
    expected = [token.get_secret_value() for token in tokens if token is not None]
    if not expected or not _token_matches(credentials, *expected):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail=detail,
            headers={"WWW-Authenticate": "Bearer"},
        )


async def require_operator(
    runtime: RuntimeDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    detail = "operator token required (Authorization: Bearer <OPERATOR_TOKEN>)"
    _require_token(credentials, [runtime.settings.operator_token], detail)


OperatorAuth = Depends(require_operator)


async def require_commerce_or_operator(
    runtime: RuntimeDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    settings = runtime.settings
    detail = "commerce or operator token required (Authorization: Bearer <COMMERCE_TOKEN or OPERATOR_TOKEN>)"
    _require_token(credentials, [settings.commerce_token, settings.operator_token], detail)


CommerceOrOperatorAuth = Depends(require_commerce_or_operator)


async def require_commerce(
    runtime: RuntimeDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    detail = "commerce token required (Authorization: Bearer <COMMERCE_TOKEN>)"
    _require_token(credentials, [runtime.settings.commerce_token], detail)


CommerceAuth = Depends(require_commerce)


async def require_metrics_reader(
    runtime: RuntimeDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """GET /metrics: the operator token, or METRICS_TOKEN, which opens nothing else (Prometheus keeps it)."""
    settings = runtime.settings
    detail = "operator or metrics token required (Authorization: Bearer <OPERATOR_TOKEN or METRICS_TOKEN>)"
    _require_token(credentials, [settings.operator_token, settings.metrics_token], detail)


MetricsAuth = Depends(require_metrics_reader)
