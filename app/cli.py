"""The `oms-connector` command: serve, worker, migrate, register, unregister, stock reset, orders sync, orders pull,
catalog-export, journal, report processing."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import re
import signal
import socket
import warnings
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import authlib.deprecate  # noqa: F401  (installs an "always" filter for its warnings: ours below must come after)
import typer

from app import __version__
from app.errors import ConnectorError
from app.logs import configure_logging
from app.models import Direction, Status
from app.settings import MIN_JOURNAL_RETENTION_DAYS, ConfigurationError, Settings, load_settings

if TYPE_CHECKING:
    from app.db import DatabaseUrl
    from app.tokens import KeptToken

# authlib >= 1.9.9 warns that it falls back to httpx when httpx2 is absent: httpx is our deliberate choice (respx
# mocks httpx only; reference/dependencies.md), so the warning is noise for operators.
warnings.filterwarnings("ignore", message=".*httpx2.*")

LISTEN_BACKLOG = 2048  # uvicorn's default

cli = typer.Typer(
    help="OMS Connector: Adobe Commerce ⇄ Order Management System.", no_args_is_help=True, add_completion=False
)


def _settings() -> Settings:
    """The settings, or the command ends here: one line per bad variable on stderr, exit code 2, nothing else."""
    try:
        settings, _ = load_settings(keep_tokens=False)
        configure_logging(settings)  # LOG_FORMAT, LOG_LEVEL, LOG_FILE (one that cannot be opened refuses here)
    except ConfigurationError as exc:
        _refuse(exc)
    return settings


def _refuse(exc: ConfigurationError) -> NoReturn:
    """End a command that cannot start: the reason on stderr (a line per problem, each naming the variable or
    option to change), exit code 2."""
    for line in str(exc).splitlines():
        typer.echo(f"oms-connector: {line}", err=True)
    raise typer.Exit(2) from exc


def _database(settings: Settings) -> DatabaseUrl:
    """The database, reached once before anything is printed or started (the embedded server is started first if
    DATABASE_URL is unset); unreachable: one line naming DATABASE_URL (or DATA_DIR) and exit code 2."""
    from app.db import check_reachable, resolve_database_url

    try:
        url = resolve_database_url(
            settings.database_url.get_secret_value() if settings.database_url else None, settings.data_dir
        )
        asyncio.run(check_reachable(url))
    except ConfigurationError as exc:
        _refuse(exc)
    return url


def _runtime(settings: Settings, url: DatabaseUrl | None = None):  # type: ignore[no-untyped-def]
    from app.runtime import Runtime

    url = url or _database(settings)
    try:
        return Runtime.build(settings, url=url)
    except ConfigurationError as exc:  # e.g. a handler or line-attribute plugin that cannot be loaded
        _refuse(exc)


def _listen(host: str, port: int) -> socket.socket:
    """Bind and listen on --host/--port before anything else is printed or started. uvicorn then serves on this very
    socket: checking the port and letting uvicorn bind it later would leave a window for another process to take
    it (and, until now, the service started its workers and printed its banner before finding out)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: a port in TIME_WAIT is free
    try:
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)  # held from now on: a second process binding the same port fails here
    except (OSError, OverflowError) as exc:
        sock.close()
        _refuse(ConfigurationError(_listen_failure(host, port, exc)))
    return sock


def _listen_failure(host: str, port: int, exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror):
        return f"cannot listen on {host}: unknown host ({exc.strerror}): choose another with --host"
    code = getattr(exc, "errno", None)
    if code == errno.EADDRINUSE:
        return f"port {port} on {host} is in use: choose another with --port"
    if code == errno.EADDRNOTAVAIL:
        return f"cannot listen on {host}: not an address of this machine: choose another with --host"
    if code == errno.EACCES:
        return (
            f"port {port} on {host}: permission denied (ports below 1024 need privileges): choose another with --port"
        )
    return f"cannot listen on {host} port {port}: {getattr(exc, 'strerror', None) or exc}"


def _print_tokens(settings: Settings, tokens: list[KeptToken]) -> None:
    """Where the generated tokens are kept; a token itself only on the start that generated it."""
    for token in tokens:
        label = f"  {token.name:<16}"
        if token.new:
            value = getattr(settings, token.name.lower()).get_secret_value()
            typer.echo(f"{label}generated, kept in {token.path} (shown this once): {value}")
        else:
            typer.echo(f"{label}generated earlier, kept in {token.path}")


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on")] = 8000,
    workers: Annotated[bool, typer.Option(help="Run the bus workers in this process")] = True,
) -> None:
    """Run the HTTP service (and, unless --no-workers or RUN_WORKERS=false, the bus workers)."""
    import uvicorn

    from app.main import create_app
    from app.tokens import keep_generated_tokens

    # Everything that can refuse to start is done before the banner: settings, port, database, token file.
    settings = _settings()
    sock = _listen(host, port)
    port = sock.getsockname()[1]  # --port 0: the one the system chose
    url = _database(settings)
    try:
        settings, tokens = keep_generated_tokens(settings)
    except ConfigurationError as exc:
        _refuse(exc)
    runtime = _runtime(settings, url)
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
    warning = settings.signature_warning
    if warning:
        typer.echo(f"  WARNING         {warning}")
        logging.getLogger("app").warning(warning, extra={"action": "signature_warning"})
    _print_tokens(settings, tokens)
    # uvicorn's loggers were set up with ours by configure_logging (same handlers and format; its access log gets
    # the request id and duration): log_config=None and log_level=None keep uvicorn from replacing that.
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None, log_level=None, access_log=True))
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    if not server.started:  # as uvicorn.run: the lifespan failed (its error is logged)
        raise typer.Exit(3)


@cli.command()
def worker() -> None:
    """Run the bus workers without HTTP (scale them separately from `serve`)."""
    settings = _settings()
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
    settings = _settings()
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
    settings = _settings()
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

    settings = _settings()
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
    settings = _settings()
    result = _run_once(settings, "orders sync", lambda runtime: runtime.orders.sync(limit))
    numbers = ", ".join(result.increment_ids[:20]) + (" …" if result.queued > 20 else "")
    typer.echo(f"orders sync: queued {result.queued} orders for export" + (f": {numbers}" if numbers else ""))
    for skipped in result.skipped:
        typer.echo(f"  not queued: {skipped['increment_id']}: {skipped['reason']}", err=True)


@orders_cli.command("pull")
def orders_pull(
    since: Annotated[
        datetime | None,
        typer.Option(
            parser=lambda value: _when(value),  # (defined with the journal's options below)
            metavar="TIME",
            help="Read every order updated since this time (ISO 8601; UTC if bare), e.g. 2026-01-01T00:00:00Z; "
            "default: from the cursor",
        ),
    ] = None,
) -> None:
    """Pull orders from Adobe Commerce now, as the workers do every ADOBE_COMMERCE_ORDER_POLL_S (waiting for a poll
    under way): the orders updated since the cursor (or --since, a backfill), until caught up; each is stored and
    exported as POST /orders would. The cursor moves forward only."""
    result = _run_once(_settings(), "orders pull", lambda runtime: _pull(runtime, since))
    read = "nothing read"
    if result.since is not None:
        read = (
            f"{result.read} orders read in {result.pages} pages since {result.since:%Y-%m-%d %H:%M:%S} UTC: "
            f"{result.new} new, {result.changed} changed, {result.unchanged} unchanged, {result.rejected} refused; "
            f"{result.exported} exported, {result.held} held"
        )
    cursor = f"{result.cursor.describe()} (updated_at UTC #entity_id)" if result.cursor else "none"
    typer.echo(f"orders pull: {read}; cursor {cursor}")
    for refused in result.refused:
        typer.echo(f"  refused: {refused['increment_id'] or '(no number)'}: {refused['reason']}", err=True)
    if result.error is not None:
        typer.echo(f"oms-connector: orders pull failed: {result.error}", err=True)
        raise typer.Exit(1)


async def _pull(runtime: Any, since: datetime | None) -> Any:
    try:
        return await runtime.order_pull.pull(since)
    finally:
        if runtime.commerce is not None:
            await runtime.commerce.aclose()


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
    settings = _settings()
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
    settings = _settings()
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


journal_cli = typer.Typer(
    help="The journal: every message in and out (the seed's oms:queue:*). List, show, retry, discard, prune.",
    no_args_is_help=True,
)
cli.add_typer(journal_cli, name="journal")


def _when(value: str | None) -> datetime | None:
    """An ISO 8601 time option (without an offset: UTC)."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 time such as 2026-12-01T08:00:00+01:00") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# The filters of GET /journal, as options of `journal list | retry | discard`.
DirectionOption = Annotated[Direction | None, typer.Option(help="in (to the connector) or out (to a peer)")]
TopicOption = Annotated[str | None, typer.Option(help="The JSON-RPC method")]
StatusOption = Annotated[Status | None, typer.Option(help="The journal status")]
ExternalIdOption = Annotated[str | None, typer.Option("--external-id", help="The JSON-RPC id")]
ReferenceOption = Annotated[str | None, typer.Option(help="An order number or SKU the message names")]
SinceOption = Annotated[
    datetime | None, typer.Option(parser=_when, metavar="TIME", help="Created at or after (ISO 8601; UTC if bare)")
]
UntilOption = Annotated[datetime | None, typer.Option(parser=_when, metavar="TIME", help="Created before")]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Only count what would change")]


def _journal_filter(**values: Any) -> Any:
    from app.services.journal import JournalFilter

    return JournalFilter(**values)


def _single_or_bulk(message_id: int | None, filters: Any, dry_run: bool, action: str) -> None:
    """One message by id, or every message filters match: not both, not neither (exit code 2)."""
    if message_id is not None and (not filters.empty or dry_run):
        typer.echo(f"oms-connector: journal {action}: give a message id or filters (and --dry-run), not both", err=True)
        raise typer.Exit(2)
    if message_id is None and filters.empty:
        typer.echo(f"oms-connector: journal {action}: give a message id or at least one filter", err=True)
        raise typer.Exit(2)


def _echo_bulk(result: Any) -> None:
    more = "more than " if result.more else ""
    if result.dry_run:
        typer.echo(f"journal {result.action} (dry run): {more}{result.matched} messages match; nothing changed")
        return
    typer.echo(f"journal {result.action}: {result.matched} messages matched, {result.changed} changed")
    for outcome in result.outcomes:
        ids = ", ".join(str(message_id) for message_id in outcome.first_ids)
        etc = " …" if outcome.count > len(outcome.first_ids) else ""
        typer.echo(f"  {outcome.outcome}: {outcome.count} — {outcome.note}; ids {ids}{etc}")


@journal_cli.command("list")
def journal_list(
    direction: DirectionOption = None,
    topic: TopicOption = None,
    status: StatusOption = None,
    external_id: ExternalIdOption = None,
    reference: ReferenceOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Messages per page")] = 50,
    cursor: Annotated[int | None, typer.Option(min=1, help="The next page: as printed at the end")] = None,
) -> None:
    """Messages newest first, filtered as GET /journal filters them."""
    from app.services.journal import JournalQuery

    query = JournalQuery(
        direction=direction, topic=topic, status=status, external_id=external_id, reference=reference, since=since,
        until=until, limit=limit, cursor=cursor,
    )  # fmt: skip
    items, next_cursor = _run_once(_settings(), "journal list", lambda runtime: runtime.journal.search(query))
    for item in items:
        line = (
            f"{item.id}  {item.created_at:%Y-%m-%d %H:%M:%S%z}  {item.direction.value:<3} {item.status.value:<10} "
            f"{item.topic}  lane {item.lane}  attempts {item.attempts}"
        )
        typer.echo(line + (f"  last error: {item.last_error[:160]}" if item.last_error else ""))
    if next_cursor is not None:
        typer.echo(f"more: --cursor {next_cursor}")


@journal_cli.command("show")
def journal_show(message_id: Annotated[int, typer.Argument(help="The journal id")]) -> None:
    """One message: payload, headers (no secrets), attempts, last error, timings (JSON)."""
    from app.schemas import JournalDetail

    message = _run_once(_settings(), "journal show", lambda runtime: runtime.journal.get(message_id))
    typer.echo(JournalDetail.model_validate(message).model_dump_json(indent=2))


@journal_cli.command("retry")
def journal_retry(
    message_id: Annotated[int | None, typer.Argument(help="One message (or give filters)")] = None,
    direction: DirectionOption = None,
    topic: TopicOption = None,
    status: StatusOption = None,
    external_id: ExternalIdOption = None,
    reference: ReferenceOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    dry_run: DryRunOption = False,
) -> None:
    """Retry one failed, dead or retrying message, or every one the filters match (at most 100,000), as
    POST /journal/retry does: a call about an order the OMS lacks waits again; waiting calls and superseded
    creates are reported, not retried."""
    filters = _journal_filter(
        direction=direction, topic=topic, status=status, external_id=external_id, reference=reference, since=since,
        until=until,
    )  # fmt: skip
    _single_or_bulk(message_id, filters, dry_run, "retry")
    settings = _settings()
    if message_id is not None:
        message = _run_once(settings, "journal retry", lambda runtime: runtime.journal.retry(message_id))
        typer.echo(f"message {message.id}: {message.status.value}")
        return
    _echo_bulk(
        _run_once(settings, "journal retry", lambda runtime: runtime.journal.retry_matching(filters, dry_run=dry_run))
    )


@journal_cli.command("discard")
def journal_discard(
    message_id: Annotated[int | None, typer.Argument(help="One message (or give filters)")] = None,
    direction: DirectionOption = None,
    topic: TopicOption = None,
    status: StatusOption = None,
    external_id: ExternalIdOption = None,
    reference: ReferenceOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    reason: Annotated[str | None, typer.Option(help="Why (kept with each message)")] = None,
    dry_run: DryRunOption = False,
) -> None:
    """Discard one queued, waiting, retrying, failed or dead message, or every one the filters match (at most
    100,000): their lanes move on."""
    filters = _journal_filter(
        direction=direction, topic=topic, status=status, external_id=external_id, reference=reference, since=since,
        until=until,
    )  # fmt: skip
    _single_or_bulk(message_id, filters, dry_run, "discard")
    settings = _settings()
    if message_id is not None:
        message = _run_once(settings, "journal discard", lambda runtime: runtime.journal.discard(message_id, reason))
        typer.echo(f"message {message.id}: {message.status.value}")
        return
    _echo_bulk(
        _run_once(
            settings,
            "journal discard",
            lambda runtime: runtime.journal.discard_matching(filters, reason, dry_run=dry_run),
        )
    )


def _days(value: str | None) -> int | None:
    """``30d`` or ``30``: days, at least MIN_JOURNAL_RETENTION_DAYS."""
    if value is None:
        return None
    found = re.fullmatch(r"(\d{1,5})d?", value.strip())
    if found is None:
        raise typer.BadParameter(f"{value!r}: give days, such as 30d")
    days = int(found.group(1))
    if days < MIN_JOURNAL_RETENTION_DAYS:
        raise typer.BadParameter(
            f"at least {MIN_JOURNAL_RETENTION_DAYS}d: a pruned message's id is no longer recognised as a duplicate"
        )
    return days


@journal_cli.command("prune")
def journal_prune(
    older_than: Annotated[
        int | None,
        typer.Option(
            "--older-than", parser=_days, metavar="DAYS", help="e.g. 30d (default OMS_JOURNAL_RETENTION_DAYS)"
        ),
    ] = None,
    dry_run: DryRunOption = False,
) -> None:
    """The seed's oms:queue:prune: delete the finished messages older than the retention, in batches (pending
    messages never; what the processing-time report has not counted, and what an order's state is read from, are
    kept). The workers also do this once a day."""
    result = _run_once(
        _settings(), "journal prune", lambda runtime: runtime.journal_prune.prune(older_than, dry_run=dry_run)
    )
    verb = "would delete" if dry_run else "deleted"
    typer.echo(
        f"journal prune{' (dry run)' if dry_run else ''}: {verb} {result.deleted} messages created and finished "
        f"before {result.cutoff:%Y-%m-%d %H:%M:%S%z} ({result.older_than_days} days) in {result.batches} batches, "
        f"{result.seconds:g} s ({result.rows_per_second:,.0f}/s); kept {result.kept_pending} pending, "
        f"{result.kept_recent} finished later or not yet counted by the report, {result.kept_for_orders} an order's "
        "state is read from"
    )
    if result.finished_before is None:
        typer.echo("  nothing deleted: the processing-time report has counted no message yet")


report_cli = typer.Typer(help="Reports read from the journal and its stats.", no_args_is_help=True)
cli.add_typer(report_cli, name="report")


@report_cli.command("processing")
def report_processing(
    since: Annotated[str, typer.Option(help="A duration back from now (90m, 24h, 7d) or an ISO 8601 time")] = "24h",
    until: Annotated[str | None, typer.Option(help="Same forms as --since; default now")] = None,
    bucket: Annotated[str, typer.Option(help="minute, hour or day")] = "hour",
    topic: Annotated[list[str] | None, typer.Option(help="Only this topic (repeat for several)")] = None,
    direction: Annotated[str | None, typer.Option(help="in or out")] = None,
    channel: Annotated[str | None, typer.Option(help="oms or commerce")] = None,
) -> None:
    """The processing-time report (the seed's system report) as a table: per topic and bucket, the messages finished
    (succeeded, failed or dead, discarded, rejected) and their processing and end-to-end times."""
    from app.clock import SystemClock
    from app.errors import InputRejected
    from app.services.reports import render_table, report_query

    try:
        query = report_query(
            now=SystemClock().now(),
            since=since,
            until=until,
            bucket=bucket,
            direction=direction,
            channel=channel,
            topics=topic or (),
        )
    except InputRejected as exc:  # refused before anything starts, naming the option
        for error in exc.errors:
            typer.echo(f"oms-connector: --{error['field']}: {error['message']}", err=True)
        raise typer.Exit(2) from exc
    settings = _settings()
    report = _run_once(settings, "report processing", lambda runtime: runtime.reports.processing(query))
    typer.echo(render_table(report))


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
