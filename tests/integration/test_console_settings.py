"""The console's settings page (/admin/settings): the effective configuration by variable, no secret ever shown,
and the connector's version."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from app import __version__
from app.runtime import Runtime
from app.settings import Settings
from tests.support.console import READONLY_TOKEN, sign_in

SECRETS = {
    "oms_oauth_client_secret": "oauth-client-secret-value-1111",
    "oms_secret": "oms-signing-secret-value-2222",
    "oms_secret_previous": "oms-previous-secret-value-3333",
    "commerce_token": "commerce-token-value-4444-abcdef",
    "metrics_token": "metrics-token-value-5555-abcdef",
    "adobe_commerce_token": "adobe-commerce-token-value-6666",
}
DB_PASSWORD = "database-password-7777"
QUERY_PASSWORD = "query-password-8888"
URL_PASSWORD = "url-password-9999"
LABEL_SECRET = "label-secret-value-0000"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        **SECRETS,
        "operator_readonly_token": READONLY_TOKEN,
        "oms_url": f"https://connector:{URL_PASSWORD}@oms.example/api/",
        "oms_oauth_server_url": "https://auth.example/token",
        "oms_oauth_client_id": "connector-client",
        "oms_labels": {"env": "test", "api_token": LABEL_SECRET},
        "adobe_commerce_url": "https://shop.example/rest/all/V1",
    }


@pytest.fixture(autouse=True)
def database_url_with_passwords(runtime: Runtime) -> None:
    """DATABASE_URL as an operator may write it (the runtime keeps its own connection to the test database)."""
    url = f"postgresql://oms:{DB_PASSWORD}@db.example:5432/oms?sslmode=require&password={QUERY_PASSWORD}"
    runtime.settings = runtime.settings.model_copy(update={"database_url": SecretStr(url)})


async def settings_page(client: httpx.AsyncClient, **params: Any) -> str:
    response = await client.get("/admin/settings", params=params)
    assert response.status_code == 200, response.text
    return html.unescape(response.text)


def values(page: str) -> dict[str, str]:
    """Variable → the value cell's text."""
    rows = re.findall(r"<tr>\s*<td[^>]*><code>([A-Z0-9_]+)</code></td>\s*<td>(.*?)</td>", page, re.S)
    return {name: " ".join(re.sub(r"<[^>]+>", " ", cell).split()) for name, cell in rows}


async def test_every_setting_is_listed_by_its_environment_variable(client: httpx.AsyncClient) -> None:
    await sign_in(client)

    shown = values(await settings_page(client))

    assert list(shown) == [name.upper() for name in Settings.model_fields]
    assert shown["OMS_SIGNATURE"] == "required"
    assert shown["OMS_OAUTH_CLIENT_ID"] == "connector-client"
    assert shown["OMS_EXPORT_STATUSES"] == '["pending"]'
    assert shown["RUN_WORKERS"] == "true"


@pytest.mark.parametrize("token", ["operator", "readonly"])
async def test_no_secret_value_appears_in_the_page(client: httpx.AsyncClient, runtime: Runtime, token: str) -> None:
    await sign_in(client, READONLY_TOKEN if token == "readonly" else runtime.settings.operator_token.get_secret_value())

    response = await client.get("/admin/settings")

    assert response.status_code == 200
    secrets = [*SECRETS.values(), DB_PASSWORD, QUERY_PASSWORD, URL_PASSWORD, LABEL_SECRET, READONLY_TOKEN]
    secrets.append(runtime.settings.operator_token.get_secret_value())
    for secret in secrets:
        assert secret not in response.text
        assert secret not in html.unescape(response.text)


async def test_secrets_say_only_whether_they_are_set_and_urls_keep_where_they_point(
    client: httpx.AsyncClient,
) -> None:
    await sign_in(client)

    shown = values(await settings_page(client))

    for name in SECRETS:
        assert shown[name.upper()] == "secret •••••• (set)"
    assert shown["OPERATOR_TOKEN"] == "secret •••••• (set)"
    assert shown["DATABASE_URL"] == (
        "secret postgresql://oms:••••••@db.example:5432/oms?sslmode=require&password=••••••"
    )
    assert shown["OMS_URL"] == "secret https://connector:••••••@oms.example/api/"
    assert shown["OMS_LABELS"] == 'secret {"env": "test", "api_token": "••••••"}'
    assert shown["ADOBE_COMMERCE_URL"] == "https://shop.example/rest/all/V1"


async def test_the_page_shows_the_connector_version_and_the_database_without_its_password(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await sign_in(client)

    page = await settings_page(client)

    assert f"<dt>Version</dt><dd><strong>{__version__}</strong></dd>" in page
    assert runtime.db.url.describe() in page
    assert f"<code>{runtime.head_revision}</code>" in page


async def test_q_finds_the_variables_whose_name_holds_it(client: httpx.AsyncClient) -> None:
    await sign_in(client)

    shown = values(await settings_page(client, q="token"))

    assert set(shown) == {name.upper() for name in Settings.model_fields if "token" in name}
    assert "No variable matches “nothing-like-this”." in await settings_page(client, q="nothing-like-this")


async def test_a_search_longer_than_allowed_answers_a_422_html_page(client: httpx.AsyncClient) -> None:
    await sign_in(client)

    response = await client.get("/admin/settings", params={"q": "x" * 65})

    assert response.status_code == 422
    assert "text/html" in response.headers["content-type"]
    assert "q:" in response.text


async def test_the_settings_page_needs_a_sign_in(client: httpx.AsyncClient) -> None:
    response = await client.get("/admin/settings")

    assert response.status_code == 303
    assert response.headers["location"].startswith("/admin/login")
