"""Storing what the OMS sends us, durably, before we answer.

Concurrent webhook calls are *group-committed*: each request hands its row to a writer task and waits; the
writer inserts every row waiting at that moment with one statement and one commit, then answers them all. Under
load one commit serves many requests, which is how ingest keeps up with (and beats) one INSERT per request; an
idle service still commits each message at once. A request is answered only after its row is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from app.clock import Clock
from app.data.bus import INSERT_MESSAGES
from app.data.outbox import OMS_CHANNEL, NewMessage, insert_parameters
from app.data.sql import positional
from app.db import Database, is_connection_error
from app.errors import ConnectorError, MethodNotFound, MethodNotServed, RequestError, StorageUnavailable
from app.metrics import Metrics
from app.models import Direction, Status
from app.protocol.jsonrpc import RpcRequest, parse_request
from app.protocol.methods import NOT_SERVED, OMS_TO_CONNECTOR, lane_for
from app.protocol.references import extract_references
from app.protocol.stock import STOCK_UPDATED, header_marks

log = logging.getLogger(__name__)

MAX_BATCH_ROWS = 500  # rows per group commit
WRITER_TASKS = 2  # commits in flight at once: one fills while the other commits
STOP_GRACE_S = 10.0  # how long stop() lets queued rows be written
SECRET_HEADER_WORDS = ("authorization", "cookie", "token", "secret", "password", "api-key", "apikey")
MAX_REJECTED_EXCERPT = 4096
INSERT_SQL, INSERT_PARAMETERS = positional(INSERT_MESSAGES)


@dataclass(frozen=True)
class Accepted:
    message_id: int | None  # None when the id had been received before (a re-delivery)

    @property
    def duplicate(self) -> bool:
        return self.message_id is None


def journal_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Request headers for the journal, minus anything that could be a credential."""
    return {
        name.lower(): value
        for name, value in headers.items()
        if not any(word in name.lower() for word in SECRET_HEADER_WORDS)
    }


class InboxWriter:
    """Group-commits inbox rows. ``submit`` returns once the row is committed (or was already there)."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._queue: asyncio.Queue[tuple[NewMessage, asyncio.Future[int | None]]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(), name=f"inbox-writer-{i}") for i in range(WRITER_TASKS)]

    async def stop(self) -> None:
        # Let queued rows be written before stopping; nothing acknowledged can be lost, since no request was
        # answered before its commit, but requests in flight deserve their answer.
        deadline = asyncio.get_running_loop().time() + STOP_GRACE_S
        while not self._queue.empty() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def submit(self, row: NewMessage) -> int | None:
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        await self._queue.put((row, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH_ROWS:
                try:
                    batch.append(self._queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            await self._write(batch)

    async def _write(self, batch: list[tuple[NewMessage, asyncio.Future[int | None]]]) -> None:
        rows = [row for row, _ in batch]
        try:
            stored = await self._insert(rows)
        except StorageUnavailable as exc:
            _settle(batch, exc)
            return
        except asyncpg.PostgresError as exc:
            if len(batch) == 1:
                _settle(batch, RequestError(f"the message cannot be stored: {_db_reason(exc)}"))
                return
            # One row the database refuses (e.g. a \u0000 in JSON text) must not fail its neighbours.
            for item in batch:
                await self._write([item])
            return
        except Exception as exc:  # never leave a request waiting forever
            log.exception("inbox write failed", extra={"action": "inbox_write_failed"})
            _settle(batch, StorageUnavailable(f"the message could not be stored: {exc.__class__.__name__}"))
            return
        taken: set[tuple[str, str]] = set()
        for row, future in batch:
            if future.done():
                continue
            key = (row.external_id, row.status.value)
            message_id = stored.get(key)
            if message_id is not None and key not in taken:
                taken.add(key)  # a duplicate in the same batch is a re-delivery too
                future.set_result(message_id)
            else:
                future.set_result(None)

    async def _insert(self, rows: list[NewMessage]) -> dict[tuple[str, str], int]:
        """One self-committing statement on a plain asyncpg connection (one round trip per group commit).
        A connection the database dropped (it restarted) is replaced and the statement tried once more."""
        parameters = insert_parameters(rows, self.clock.now())
        values = [parameters[name] for name in INSERT_PARAMETERS]
        for attempt in (1, 2):
            try:
                pool = await self.db.raw_pool()
                records = await pool.fetch(INSERT_SQL, *values)
            except asyncpg.PostgresError as exc:
                if not is_connection_error(exc):
                    raise
                failure: BaseException = exc
            except Exception as exc:
                if not is_connection_error(exc) and not isinstance(exc, StorageUnavailable):
                    raise
                failure = exc
            else:
                return {(record["external_id"], record["status"]): record["id"] for record in records}
            if attempt == 2:
                raise StorageUnavailable(f"database unreachable: {failure.__class__.__name__}") from failure
        raise AssertionError("unreachable")


class OmsInbox:
    """The service behind POST /oms/rpc: accept a verified call into the inbox, or journal why it was refused."""

    def __init__(self, writer: InboxWriter, metrics: Metrics | None = None) -> None:
        self.writer = writer
        self.metrics = metrics or Metrics()  # calls stored (queued; not a re-delivery) and refused (rejected)

    async def accept(self, request: RpcRequest, body: bytes, headers: Mapping[str, str]) -> Accepted:
        if request.method in NOT_SERVED:
            refusal = MethodNotServed(f"{request.method} is not served: {NOT_SERVED[request.method]}")
            await self.reject(body, headers, refusal, request=request)
            raise refusal
        if request.method not in OMS_TO_CONNECTOR:
            await self.reject(body, headers, MethodNotFound(f"unknown method {request.method}"), request=request)
            raise MethodNotFound(f"method not found: {request.method}")
        stored_headers = journal_headers(headers)
        if request.method == STOCK_UPDATED:  # whether its rows are all plain: the handler then skips checking them
            stored_headers.update(header_marks(request.params))
        row = NewMessage(
            direction=Direction.IN,
            channel=OMS_CHANNEL,
            topic=request.method,
            external_id=request.message_id,
            lane=lane_for(request.method, request.params),
            document=body.decode("utf-8"),
            headers=stored_headers,
            refs=extract_references(request.params),
        )
        message_id = await self.writer.submit(row)
        if message_id is not None:
            self.metrics.message_received(request.method, Status.QUEUED)
        return Accepted(message_id=message_id)

    async def reject(
        self,
        body: bytes,
        headers: Mapping[str, str],
        error: ConnectorError,
        *,
        request: RpcRequest | None = None,
    ) -> None:
        """Journal a refused call as ``rejected`` (never processed). Best effort: a refusal is answered even
        when the journal cannot be written."""
        params: Any
        if request is None:
            with contextlib.suppress(ConnectorError):
                request = parse_request(body)  # to journal the method and id a forged call claimed
        if request is not None:
            params, topic, external_id = request.params, request.method, request.message_id
        else:
            params = {"body_excerpt": body[:MAX_REJECTED_EXCERPT].decode("utf-8", "replace")}
            topic, external_id = "(unparsed)", "body-sha256:" + hashlib.sha256(body).hexdigest()
        row = NewMessage(
            direction=Direction.IN,
            channel=OMS_CHANNEL,
            topic=topic[:200],
            external_id=external_id[:200],
            lane="rejected",
            document=json.dumps({"params": params}),
            status=Status.REJECTED,
            headers=journal_headers(headers),
            refs=extract_references(params) if isinstance(params, dict) else [],
            last_error=f"{error.__class__.__name__}: {error.message}",
        )
        self.metrics.message_received(topic, Status.REJECTED)
        with contextlib.suppress(ConnectorError):
            await self.writer.submit(row)


def _settle(batch: list[tuple[NewMessage, asyncio.Future[int | None]]], error: Exception) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(error)


def _db_reason(exc: asyncpg.PostgresError) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else exc.__class__.__name__
