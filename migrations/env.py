"""Alembic environment (async): the URL is set by app.db.alembic_config from the connector's settings."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app.models import Base

config = context.config
target_metadata = Base.metadata

if not config.get_main_option("sqlalchemy.url"):
    # Plain `alembic …` from the project folder: use the connector's own settings (DATABASE_URL or embedded).
    from app.db import resolve_database_url
    from app.settings import Settings

    _settings = Settings()
    _url = resolve_database_url(
        _settings.database_url.get_secret_value() if _settings.database_url else None, _settings.data_dir
    )
    config.set_main_option("sqlalchemy.url", _url.sqlalchemy.replace("%", "%%"))


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    engine = create_async_engine(config.get_main_option("sqlalchemy.url") or "")
    async with engine.connect() as connection:
        # Serialise concurrent start-ups (several replicas) on one migration run.
        await connection.exec_driver_sql("SELECT pg_advisory_lock(hashtext('oms-connector-migrations'))")
        # The lock is the session's; end the transaction that took it, so that Alembic owns the transactions (a
        # migration that needs an autocommit block, such as adding an enum value, can then have one).
        await connection.commit()
        await connection.run_sync(_run)
        await connection.exec_driver_sql("SELECT pg_advisory_unlock(hashtext('oms-connector-migrations'))")
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
