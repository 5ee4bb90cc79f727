"""Log lines as the configured process writes them, captured in memory: ``capture_logs(**settings)`` runs
app/logs.configure_logging with a StringIO for stderr and, on exit, puts back the process-wide logging state it
changed (root handlers and level, uvicorn's and the quieted libraries' loggers)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from app.logs import DETAIL_AT_INFO, QUIETER, UVICORN_LOGGERS, configure_logging
from app.settings import Settings


class Captured(io.StringIO):
    def lines(self) -> list[dict[str, Any]]:
        """The JSON lines written so far."""
        return [json.loads(line) for line in self.getvalue().splitlines()]


class Terminal(Captured):
    def isatty(self) -> bool:
        return True


@contextmanager
def capture_logs(stream: Captured | None = None, **settings: Any) -> Iterator[Captured]:
    names = [*UVICORN_LOGGERS, *(name for name, _ in QUIETER), *DETAIL_AT_INFO]
    root = logging.getLogger()
    root_level, root_handlers = root.level, root.handlers[:]
    saved = {name: (lg.level, lg.handlers[:], lg.propagate) for name in names for lg in [logging.getLogger(name)]}
    stream = stream if stream is not None else Captured()
    try:
        configure_logging(Settings(_env_file=None, **settings), stream=stream)  # type: ignore[call-arg]
        yield stream
    finally:
        for handler in root.handlers[:]:
            if handler not in root_handlers:
                root.removeHandler(handler)
                handler.close()
        root.setLevel(root_level)
        for name, (level, handlers, propagate) in saved.items():
            logger = logging.getLogger(name)
            logger.setLevel(level)
            logger.handlers[:] = handlers
            logger.propagate = propagate
