"""Sign-in and sign-out: the operator token (or the read-only one) for a session cookie."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.console.session import COOKIE
from app.console.web import PREFIX, ConsoleRefusal, Viewer, codec, is_https, read_form, redirect, render

router = APIRouter()


def _safe_next(target: str | None) -> str:
    """Only a console path of ours (no //host, no scheme): a sign-in link cannot send anyone elsewhere."""
    if not target or not target.startswith(PREFIX) or target.startswith("//") or "\\" in target:
        return PREFIX
    return target


@router.get("/login")
async def login_form(request: Request, next: Annotated[str | None, Query(max_length=2000)] = None) -> Response:
    return render(request, "login.html", {"next": _safe_next(next), "error": None})


@router.post("/login")
async def login(request: Request) -> Response:
    fields = await read_form(request)
    target = _safe_next((fields.get("next") or [PREFIX])[-1])
    token = (fields.get("token") or [""])[-1]
    role = codec(request).role_for(token) if token and len(token) <= 512 else None
    if role is None:
        error = "That token opens nothing here." if codec(request).enabled else "No operator token is configured."
        return render(request, "login.html", {"next": target, "error": error}, status=401)
    _session, cookie = codec(request).issue(role)
    response = redirect(request, target, f"Signed in ({role.value}).")
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=codec(request).max_age_s,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )
    return response


@router.post("/logout")
async def logout(request: Request, session: Viewer) -> Response:
    fields = await read_form(request)
    if not session.csrf_matches((fields.get("csrf_token") or [None])[-1]):
        raise ConsoleRefusal(403, "Form expired or forged", "the form's CSRF token is missing or wrong")
    response = redirect(request, f"{PREFIX}/login", "Signed out.")
    response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict", secure=is_https(request))
    return response
