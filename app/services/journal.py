"""The journal: every message in and out, searchable, and the operator's retry / discard (an order's calls keep
waiting for its create whatever an operator does: app/services/order_gate.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select

from app.clock import Clock
from app.db import Database
from app.errors import NotFound, OperatorActionRefused
from app.models import Direction, Message, Status
from app.services.order_gate import retry_status
from app.workers import queries

MAX_PAGE = 500
RETRYABLE = frozenset({Status.FAILED.value, Status.DEAD.value, Status.RETRYING.value})
MAX_ID = 2**63 - 1  # message.id is a bigint: a larger id names no message (and must not reach the database)


@dataclass(frozen=True)
class JournalQuery:
    direction: Direction | None = None
    topic: str | None = None
    status: Status | None = None
    external_id: str | None = None
    reference: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    cursor: int | None = None  # the last id of the previous page: newer entries are not repeated


class Journal:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def search(self, query: JournalQuery) -> tuple[list[Message], int | None]:
        """Newest first. Returns the page and the cursor of the next one (None at the end)."""
        limit = max(1, min(query.limit, MAX_PAGE))
        if any("\x00" in value for value in (query.topic, query.external_id, query.reference) if value):
            return [], None  # PostgreSQL text cannot hold NUL, so nothing stored matches (and it must not 500)
        statement: Select[tuple[Message]] = select(Message).order_by(Message.id.desc()).limit(limit + 1)
        if query.direction is not None:
            statement = statement.where(Message.direction == query.direction)
        if query.topic:
            statement = statement.where(Message.topic == query.topic)
        if query.status is not None:
            statement = statement.where(Message.status == query.status)
        if query.external_id:
            statement = statement.where(Message.external_id == query.external_id)
        if query.reference:
            statement = statement.where(Message.refs.contains([query.reference]))
        if query.since is not None:
            statement = statement.where(Message.created_at >= query.since)
        if query.until is not None:
            statement = statement.where(Message.created_at < query.until)
        if query.cursor is not None and query.cursor <= MAX_ID:
            statement = statement.where(Message.id < query.cursor)
        async with self.db.sessions() as session:
            rows = list((await session.scalars(statement)).all())
        next_cursor = rows[limit - 1].id if len(rows) > limit else None
        return rows[:limit], next_cursor

    async def get(self, message_id: int) -> Message:
        if not 0 < message_id <= MAX_ID:
            raise NotFound(f"no message {message_id}")
        async with self.db.sessions() as session:
            message = await session.get(Message, message_id)
        if message is None:
            raise NotFound(f"no message {message_id}")
        return message

    async def retry(self, message_id: int) -> Message:
        """Queue a failed, dead or retrying message again, now. A call about an order the OMS does not have yet
        waits for the order's create instead; a waiting call and a superseded create are refused
        (app/services/order_gate.py)."""
        if not 0 < message_id <= MAX_ID:
            raise NotFound(f"no message {message_id}")
        async with self.db.connect() as connection:
            row = (await connection.execute(queries.MESSAGE_FOR_RETRY, {"id": message_id})).first()
            if row is None:
                raise NotFound(f"no message {message_id}")
            status, note = Status.QUEUED, None
            if row.status in RETRYABLE or row.status == Status.WAITING.value:
                status, note = await retry_status(connection, row)
            changed = await connection.execute(
                queries.RETRY_MESSAGE,
                {"id": message_id, "now": self.clock.now(), "status": status.value, "last_error": note},
            )
            if changed.first() is None:
                message = await self.get(message_id)
                raise OperatorActionRefused(
                    f"message {message_id} is {message.status.value}; only failed, dead or retrying messages "
                    "can be retried"
                )
            await connection.execute(queries.NOTIFY_BUS)
        return await self.get(message_id)

    async def discard(self, message_id: int, reason: str | None) -> Message:
        """Drop a message that has not succeeded; its lane moves on."""
        if not 0 < message_id <= MAX_ID:
            raise NotFound(f"no message {message_id}")
        note = f"discarded by an operator: {reason}" if reason else None
        async with self.db.connect() as connection:
            changed = await connection.execute(
                queries.DISCARD_MESSAGE, {"id": message_id, "now": self.clock.now(), "reason": note}
            )
            if changed.first() is None:
                message = await self.get(message_id)
                raise OperatorActionRefused(
                    f"message {message_id} is {message.status.value}; only queued, waiting, retrying, failed or dead "
                    "messages can be discarded"
                )
            await connection.execute(queries.NOTIFY_BUS)
        return await self.get(message_id)
