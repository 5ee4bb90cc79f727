"""The console's sign-in (issue #17, item 2): the operator token for a signed, HttpOnly, SameSite=Strict, expiring
session cookie; the read-only token; CSRF on every state-changing form; bounded forms; no way out of /admin."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from itsdangerous import URLSafeTimedSerializer

from app.console.session import COOKIE, Role, SessionCodec
from tests.conftest import make_settings
from tests.support.console import READONLY_TOKEN, csrf_of, sign_in
from tests.support.signing import COMMERCE_TOKEN, OPERATOR_TOKEN


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"operator_readonly_token": READONLY_TOKEN}


async def test_a_page_without_a_session_sends_to_the_sign_in_form_and_back(client: httpx.AsyncClient):
    answer = await client.get("/admin/journal?status=dead")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/login?next=%2Fadmin%2Fjournal%3Fstatus%3Ddead"
    form = await client.get(answer.headers["location"])
    assert form.status_code == 200 and 'name="token"' in form.text and 'value="/admin/journal?status=dead"' in form.text
    signed_in = await client.post("/admin/login", data={"token": OPERATOR_TOKEN, "next": "/admin/journal?status=dead"})
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/admin/journal?status=dead"


async def test_the_session_cookie_is_signed_http_only_same_site_strict_and_expiring(client: httpx.AsyncClient):
    answer = await client.post("/admin/login", data={"token": OPERATOR_TOKEN})
    cookie = next(value for name, value in answer.headers.multi_items() if name == "set-cookie" and COOKIE in value)
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "max-age", "path"} <= flags and "samesite=strict" in cookie.lower()
    assert "secure" not in flags  # plain http here; see the HTTPS test
    assert OPERATOR_TOKEN not in cookie


async def test_the_cookie_is_secure_when_served_over_https(runtime):
    from app.main import create_app

    app = create_app(runtime, start_workers=False, register=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://console.test") as http:
        answer = await http.post("/admin/login", data={"token": OPERATOR_TOKEN})
    cookie = next(value for name, value in answer.headers.multi_items() if name == "set-cookie" and COOKIE in value)
    assert "secure" in {part.strip().lower() for part in cookie.split(";")}


@pytest.mark.parametrize("token", ["", "wrong-token-0123456789", COMMERCE_TOKEN, OPERATOR_TOKEN + "x", "x" * 600])
async def test_a_wrong_token_signs_nobody_in(client: httpx.AsyncClient, token: str):
    answer = await client.post("/admin/login", data={"token": token})
    assert answer.status_code == 401 and "opens nothing" in answer.text
    assert COOKIE not in answer.headers.get("set-cookie", "")
    assert (await client.get("/admin/settings")).status_code == 303


async def test_a_forged_or_foreign_cookie_is_no_session(client: httpx.AsyncClient):
    forged = URLSafeTimedSerializer("not-the-key", salt="oms-connector console session").dumps(
        {"role": "operator", "csrf": "x"}
    )
    for value in (forged, "garbage", "a" * 5000):
        client.cookies.set(COOKIE, value, path="/admin")
        assert (await client.get("/admin/settings")).status_code == 303
        client.cookies.clear()


def test_a_session_expires_and_ends_when_a_token_changes():
    codec = SessionCodec(make_settings(console_session_hours=1))
    _session, cookie = codec.issue(Role.OPERATOR)
    assert codec.read(cookie) is not None
    codec.max_age_s = -1  # an hour later, as the signed timestamp says
    assert codec.read(cookie) is None
    other = SessionCodec(make_settings(operator_token="another-operator-token-0123456789"))
    assert other.read(SessionCodec(make_settings()).issue(Role.OPERATOR)[1]) is None


async def test_the_read_only_token_sees_pages_and_changes_nothing(client: httpx.AsyncClient):
    csrf = await sign_in(client, READONLY_TOKEN)
    page = await client.get("/admin/settings")
    assert page.status_code == 200 and "readonly" in page.text
    refused = await client.post("/admin/integration/disable", data={"csrf_token": csrf})
    assert refused.status_code == 403 and "read-only" in refused.text
    assert (await client.get("/health/ready")).status_code == 200  # still enabled: nothing changed


async def test_a_state_changing_form_without_its_csrf_token_is_refused(client: httpx.AsyncClient, raw):
    csrf = await sign_in(client)
    for data in ({}, {"csrf_token": ""}, {"csrf_token": csrf[:-1] + ("A" if csrf[-1] != "A" else "B")}):
        answer = await client.post("/admin/integration/disable", data=data)
        assert answer.status_code == 403 and "CSRF" in answer.text
    assert await raw.fetchval("SELECT enabled FROM integration_state WHERE id = 1") is True


async def test_sign_out_needs_its_csrf_token_and_ends_the_session(client: httpx.AsyncClient):
    csrf = await sign_in(client)
    assert (await client.post("/admin/logout", data={})).status_code == 403
    answer = await client.post("/admin/logout", data={"csrf_token": csrf})
    assert answer.status_code == 303 and answer.headers["location"] == "/admin/login"
    assert (await client.get("/admin/settings")).status_code == 303


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/admin", "/journal", "/admin\\..\\x"])
async def test_the_sign_in_never_sends_anyone_off_the_console(client: httpx.AsyncClient, target: str):
    answer = await client.post("/admin/login", data={"token": OPERATOR_TOKEN, "next": target})
    assert answer.status_code == 303 and answer.headers["location"] == "/admin"


async def test_console_forms_are_bounded_before_they_are_read(client: httpx.AsyncClient):
    csrf = await sign_in(client)
    too_big = await client.post(
        "/admin/logout",
        content=b"csrf_token=" + b"a" * 70_000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert too_big.status_code == 413 and "text/html" in too_big.headers["content-type"]
    many = "&".join(f"f{i}=1" for i in range(500)) + f"&csrf_token={csrf}"
    assert (
        await client.post(
            "/admin/logout", content=many.encode(), headers={"content-type": "application/x-www-form-urlencoded"}
        )
    ).status_code == 400
    nul = await client.post(
        "/admin/logout",
        content=f"csrf_token={csrf}&x=%00".encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert nul.status_code == 422
    assert (await client.get("/admin/settings")).status_code == 200  # none of them signed anyone out


async def test_console_answers_carry_the_security_headers_and_no_cdn(client: httpx.AsyncClient):
    await sign_in(client)
    page = await client.get("/admin/settings")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    assert "http://" not in page.text.replace("http://testserver", "") and "https://" not in page.text
    assert csrf_of(page.text)


async def test_a_missing_console_page_is_an_html_page_and_the_api_keeps_json(client: httpx.AsyncClient):
    await sign_in(client)
    page = await client.get("/admin/no-such-page")
    assert page.status_code == 404 and "text/html" in page.headers["content-type"]
    api = await client.get("/no-such-route")
    assert api.status_code == 404 and api.json()["error"] == "NotFound"


async def test_the_api_docs_load_swagger_ui_from_the_connector_itself(client: httpx.AsyncClient):
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "/docs/static/swagger-ui-bundle.js" in docs.text and "cdn" not in docs.text.lower()
    assets = [await client.get(path) for path in ("/docs/static/swagger-ui-bundle.js", "/docs/static/swagger-ui.css")]
    assert all(asset.status_code == 200 and len(asset.content) > 10_000 for asset in assets)
    assert (await client.get("/redoc")).status_code == 404  # ReDoc would load from a CDN: not offered


async def test_a_nul_in_a_console_address_gets_an_html_422_and_the_api_keeps_json(client: httpx.AsyncClient):
    await sign_in(client)
    page = await client.get("/admin/journal?topic=a%00b")
    assert page.status_code == 422 and "text/html" in page.headers["content-type"] and "NUL" in page.text
    api = await client.get("/journal?topic=a%00b", headers={"Authorization": "Bearer x"})
    assert api.status_code == 422 and api.json()["error"] == "InputRejected"
