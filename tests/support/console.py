"""Signing in to the console (/admin) from a test: the session cookie lands in the client, the CSRF token is
returned for the forms to post."""

from __future__ import annotations

import re

import httpx

from tests.support.signing import OPERATOR_TOKEN

READONLY_TOKEN = "readonly-token-for-tests-0123456789"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def sign_in(client: httpx.AsyncClient, token: str = OPERATOR_TOKEN) -> str:
    """Sign ``client`` in with ``token``; returns the session's CSRF token."""
    answer = await client.post("/admin/login", data={"token": token, "next": "/admin/settings"})
    assert answer.status_code == 303, answer.text
    return csrf_of((await client.get("/admin/settings")).text)


def csrf_of(page: str) -> str:
    found = _CSRF.search(page)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)
