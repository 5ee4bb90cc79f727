"""Request dependencies: the runtime and who is calling. Tokens are compared in constant time."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.runtime import Runtime

_bearer = HTTPBearer(auto_error=False, description="Operator or commerce token")


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def _token_matches(credentials: HTTPAuthorizationCredentials | None, *expected: str) -> bool:
    if credentials is None or credentials.scheme.lower() != "bearer":
        return False
    given = credentials.credentials.encode()
    matched = False
    for token in expected:
        matched |= hmac.compare_digest(given, token.encode())
    return matched


def require_operator(
    runtime: RuntimeDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    token = runtime.settings.operator_token
    if token is None or not _token_matches(credentials, token.get_secret_value()):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="operator token required (Authorization: Bearer <OPERATOR_TOKEN>)",
            headers={"WWW-Authenticate": "Bearer"},
        )


OperatorAuth = Depends(require_operator)


def require_commerce_or_operator(
    runtime: RuntimeDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    tokens = [t.get_secret_value() for t in (runtime.settings.commerce_token, runtime.settings.operator_token) if t]
    if not tokens or not _token_matches(credentials, *tokens):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="commerce or operator token required (Authorization: Bearer <COMMERCE_TOKEN or OPERATOR_TOKEN>)",
            headers={"WWW-Authenticate": "Bearer"},
        )


CommerceOrOperatorAuth = Depends(require_commerce_or_operator)
