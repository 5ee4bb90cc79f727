"""The journal: every message in and out, searchable, and the operator's retry / discard, one message or every
message a filter matches (an order's calls keep waiting for its create whatever an operator does:
app/services/order_gate.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, TextClause, func, select

from app.clock import Clock
from app.data.bus import NOTIFY_BUS
from app.data.journal import (
    DISCARD_MESSAGE,
    DISCARD_MESSAGES,
    MESSAGE_FOR_RETRY,
    NEWEST_MESSAGE_ID,
    RETRY_MESSAGE,
    RETRY_MESSAGES,
)
from app.data.outbox import OMS_CHANNEL
from app.data.references import MESSAGE_NAMES_REFERENCE
from app.db import Database
from app.errors import InputRejected, NotFound, OperatorActionRefused
from app.models import Direction, Message, Status
from app.protocol.references import MAX_REFERENCE_LENGTH
from app.services.order_gate import retry_status
from app.services.orders import order_lane

MAX_PAGE = 500
RETRYABLE = frozenset({Status.FAILED.value, Status.DEAD.value, Status.RETRYING.value})
DISCARDABLE = frozenset({*RETRYABLE, Status.QUEUED.value, Status.WAITING.value})
MAX_ID = 2**63 - 1  # message.id is a bigint: a larger id names no message (and must not reach the database)
MAX_BULK = 100_000  # messages one bulk retry / discard may change: more must be split by a narrower filter
BULK_BATCH = 500  # messages per transaction of a bulk action (an order's call locks its order row meanwhile)
SHOWN_IDS = 20  # ids named per outcome in a bulk action's answer


@dataclass(frozen=True)
class JournalFilter:
    """What GET /journal filters by, and what a bulk retry / discard acts on."""

    direction: Direction | None = None
    topic: str | None = None
    status: Status | None = None
    external_id: str | None = None
    reference: str | None = None  # an order number or SKU the message names
    since: datetime | None = None
    until: datetime | None = None

    @property
    def empty(self) -> bool:
        return all(getattr(self, name) in (None, "") for name in JournalFilter.__dataclass_fields__)


@dataclass(frozen=True)
class JournalQuery(JournalFilter):
    limit: int = 50
    cursor: int | None = None  # the last id of the previous page: newer entries are not repeated


def _conditions(query: JournalFilter) -> list[ColumnElement[bool] | TextClause] | None:
    """The filter as conditions on Message; None when nothing stored can match. InputRejected for a reference
    longer than any kept (a reference is kept to its first MAX_REFERENCE_LENGTH characters)."""
    if query.reference and len(query.reference) > MAX_REFERENCE_LENGTH:
        raise InputRejected(
            [{"field": "reference", "message": f"at most {MAX_REFERENCE_LENGTH} characters (references are kept to "
              "their first ones)"}]
        )  # fmt: skip
    if any("\x00" in value for value in (query.topic, query.external_id, query.reference) if value):
        return None  # PostgreSQL text cannot hold NUL, so nothing stored matches (and it must not 500)
    conditions: list[ColumnElement[bool] | TextClause] = []
    if query.direction is not None:
        conditions.append(Message.direction == query.direction)
    if query.topic:
        conditions.append(Message.topic == query.topic)
    if query.status is not None:
        conditions.append(Message.status == query.status)
    if query.external_id:
        conditions.append(Message.external_id == query.external_id)
    if query.reference:  # whatever the message's size: app/data/references.py
        conditions.append(MESSAGE_NAMES_REFERENCE.bindparams(reference=query.reference))
    if query.since is not None:
        conditions.append(Message.created_at >= query.since)
    if query.until is not None:
        conditions.append(Message.created_at < query.until)
    return conditions


@dataclass
class BulkOutcome:
    """One outcome of a bulk action: how many messages, the first ids, what it means."""

    outcome: str
    applied: bool  # the action changed these messages
    note: str
    count: int = 0
    first_ids: list[int] = field(default_factory=list)

    def add(self, message_id: int) -> None:
        self.count += 1
        if len(self.first_ids) < SHOWN_IDS:
            self.first_ids.append(message_id)


@dataclass
class BulkResult:
    action: str  # retry | discard
    dry_run: bool
    matched: int  # messages the filter matches among those the action applies to, when it started (≤ MAX_BULK)
    more: bool  # more than MAX_BULK matched (a dry run says so; otherwise the action is refused)
    changed: int  # retried or discarded
    outcomes: list[BulkOutcome]


# What a bulk action can make of a message, in the order answers list them.
_RETRY_OUTCOMES = {
    "queued": (True, "retried: queued now, with a fresh retry window"),
    "waiting": (True, "retried, and waits for its order's create to reach the OMS (the OMS lacks the order)"),
    "waiting_for_create": (
        False,
        "not retried: waits for its order's create and is sent by itself once the create reaches the OMS "
        "(retry the create, or run `oms-connector orders sync`)",
    ),
    "superseded_create": (
        False,
        "not retried: an earlier create of an order that `orders sync` queued again since (two creates of one "
        "order must not both reach the OMS)",
    ),
    "changed": (False, "not retried: no longer failed, dead or retrying when its turn came"),
}
_DISCARD_OUTCOMES = {
    "discarded": (True, "discarded: its lane moves on"),
    "changed": (False, "not discarded: succeeded or in flight when its turn came"),
}


class Journal:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def search(self, query: JournalQuery) -> tuple[list[Message], int | None]:
        """Newest first. Returns the page and the cursor of the next one (None at the end)."""
        limit = max(1, min(query.limit, MAX_PAGE))
        conditions = _conditions(query)
        if conditions is None:
            return [], None
        statement: Select[tuple[Message]] = (
            select(Message).where(*conditions).order_by(Message.id.desc()).limit(limit + 1)
        )
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
            row = (await connection.execute(MESSAGE_FOR_RETRY, {"id": message_id})).first()
            if row is None:
                raise NotFound(f"no message {message_id}")
            status, note = Status.QUEUED, None
            if row.status in RETRYABLE or row.status == Status.WAITING.value:
                status, note = await retry_status(connection, row)
            changed = await connection.execute(
                RETRY_MESSAGE,
                {"id": message_id, "now": self.clock.now(), "status": status.value, "last_error": note},
            )
            if changed.first() is None:
                message = await self.get(message_id)
                raise OperatorActionRefused(
                    f"message {message_id} is {message.status.value}; only failed, dead or retrying messages "
                    "can be retried"
                )
            await connection.execute(NOTIFY_BUS)
        return await self.get(message_id)

    async def discard(self, message_id: int, reason: str | None) -> Message:
        """Drop a message that has not succeeded; its lane moves on."""
        if not 0 < message_id <= MAX_ID:
            raise NotFound(f"no message {message_id}")
        note = f"discarded by an operator: {reason}" if reason else None
        async with self.db.connect() as connection:
            changed = await connection.execute(
                DISCARD_MESSAGE, {"id": message_id, "now": self.clock.now(), "reason": note}
            )
            if changed.first() is None:
                message = await self.get(message_id)
                raise OperatorActionRefused(
                    f"message {message_id} is {message.status.value}; only queued, waiting, retrying, failed or dead "
                    "messages can be discarded"
                )
            await connection.execute(NOTIFY_BUS)
        return await self.get(message_id)

    # --- bulk: every message a filter matches ----------------------------------------------------------------
    async def retry_matching(self, filters: JournalFilter, *, dry_run: bool = False) -> BulkResult:
        """Retry every failed, dead or retrying message the filter matches (waiting ones are matched and reported,
        not retried), oldest first, in batches of BULK_BATCH, each message as ``retry`` would: a call about an
        order the OMS lacks waits again, a waiting call and a superseded create are skipped. Lane order is kept by
        construction: statuses change, ids (arrival order) do not."""
        statuses = RETRYABLE | {Status.WAITING.value}
        matched, upto = await self._match(filters, statuses, "retry", dry_run)
        outcomes = {name: BulkOutcome(name, *meaning) for name, meaning in _RETRY_OUTCOMES.items()}
        if not dry_run:
            await self._in_batches(filters, statuses, upto, lambda rows: self._retry_batch(rows, outcomes))
        return _result("retry", dry_run, matched, outcomes)

    async def discard_matching(
        self, filters: JournalFilter, reason: str | None, *, dry_run: bool = False
    ) -> BulkResult:
        """Discard every queued, waiting, retrying, failed or dead message the filter matches, oldest first, in
        batches of BULK_BATCH (never a succeeded one, nor one in flight); their lanes move on."""
        matched, upto = await self._match(filters, DISCARDABLE, "discard", dry_run)
        outcomes = {name: BulkOutcome(name, *meaning) for name, meaning in _DISCARD_OUTCOMES.items()}
        note = f"discarded by an operator: {reason}" if reason else None

        async def discard(rows: Sequence[Any]) -> None:
            ids = [row.id for row in rows]
            async with self.db.connect() as connection:
                changed = await connection.execute(
                    DISCARD_MESSAGES, {"ids": ids, "now": self.clock.now(), "reason": note}
                )
                done = {row.id for row in changed}
                if done:
                    await connection.execute(NOTIFY_BUS)
            for message_id in ids:
                outcomes["discarded" if message_id in done else "changed"].add(message_id)

        if not dry_run:
            await self._in_batches(filters, DISCARDABLE, upto, discard)
        return _result("discard", dry_run, matched, outcomes)

    async def _match(
        self, filters: JournalFilter, statuses: frozenset[str], action: str, dry_run: bool
    ) -> tuple[int, int]:
        """How many messages the action applies to (counted up to MAX_BULK + 1) and the newest id it may touch
        (messages stored later are left alone). InputRejected for no filter, a status the action does not apply
        to, or (unless a dry run) more than MAX_BULK messages — before anything is changed."""
        if filters.empty:
            raise InputRejected(
                [{"field": "(body)", "message": f"give at least one filter: {action} acts on every message it matches"}]
            )
        if filters.status is not None and filters.status.value not in statuses:
            allowed = ", ".join(sorted(statuses))
            raise InputRejected(
                [{"field": "status", "message": f"{action} applies to {allowed} messages, not {filters.status.value}"}]
            )
        conditions = _conditions(filters)
        async with self.db.connect() as connection:
            upto = int((await connection.execute(NEWEST_MESSAGE_ID)).scalar_one())
            if conditions is None:
                return 0, upto
            matching = (
                select(Message.id)
                .where(*conditions, Message.status.in_(statuses), Message.id <= upto)
                .limit(MAX_BULK + 1)
                .subquery()
            )
            matched = int((await connection.execute(select(func.count()).select_from(matching))).scalar_one())
        if matched > MAX_BULK and not dry_run:
            raise InputRejected(
                [
                    {
                        "field": "(filter)",
                        "message": f"more than {MAX_BULK:,} messages match: narrow the filter (status, topic, "
                        "since / until …) and repeat; a dry run counts them",
                    }
                ]
            )
        return matched, upto

    async def _in_batches(
        self,
        filters: JournalFilter,
        statuses: frozenset[str],
        upto: int,
        act: Callable[[Sequence[Any]], Awaitable[None]],
    ) -> None:
        """``act(rows)`` on the matching messages up to id ``upto``, oldest first, BULK_BATCH at a time (the rows
        read in a short transaction of their own; ``act`` changes them in its own)."""
        conditions = _conditions(filters)
        if conditions is None:
            return
        after = 0
        while True:
            statement = (
                select(Message.id, Message.direction, Message.channel, Message.topic, Message.lane, Message.status)
                .where(*conditions, Message.status.in_(statuses), Message.id > after, Message.id <= upto)
                .order_by(Message.id)
                .limit(BULK_BATCH)
            )
            async with self.db.connect() as connection:
                rows = list(await connection.execute(statement))
            if rows:
                await act(rows)
            if len(rows) < BULK_BATCH:
                return
            after = rows[-1].id

    async def _retry_batch(self, rows: Sequence[Any], outcomes: dict[str, BulkOutcome]) -> None:
        """One batch of a bulk retry. Calls in an order's lane are decided by ``retry_status`` under their order's
        row lock, in a transaction of their own, orders locked in lane order and before any message is changed
        (as every other path locks an order before its calls: no wait cycle); the others in another transaction."""
        messages = [_RetryRow(row) for row in rows]
        gated = sorted((m for m in messages if m.in_order_lane), key=lambda m: (m.lane, m.id))
        for group in ([m for m in messages if not m.in_order_lane], gated):
            if not group:
                continue
            async with self.db.connect() as connection:
                decided: list[tuple[int, str, str | None]] = []
                for message in group:
                    if message.status == Status.WAITING.value:
                        outcomes["waiting_for_create"].add(message.id)
                        continue
                    try:
                        status, note = await retry_status(connection, message)
                    except OperatorActionRefused:
                        outcomes["superseded_create"].add(message.id)
                        continue
                    decided.append((message.id, status.value, note))
                if not decided:
                    continue
                decided.sort()
                changed = await connection.execute(
                    RETRY_MESSAGES,
                    {
                        "ids": [item[0] for item in decided],
                        "statuses": [item[1] for item in decided],
                        "notes": [item[2] for item in decided],
                        "now": self.clock.now(),
                    },
                )
                done = {row.id: row.status for row in changed}
                if done:
                    await connection.execute(NOTIFY_BUS)
            for message_id, _, _ in decided:
                outcomes[done.get(message_id, "changed")].add(message_id)


@dataclass(frozen=True)
class _RetryRow:
    """A matched message as ``retry_status`` reads it (enum columns as their text)."""

    id: int
    direction: str
    channel: str
    topic: str
    lane: str
    status: str

    def __init__(self, row: Any) -> None:
        for name in ("id", "channel", "topic", "lane"):
            object.__setattr__(self, name, getattr(row, name))
        object.__setattr__(self, "direction", Direction(row.direction).value)
        object.__setattr__(self, "status", Status(row.status).value)

    @property
    def in_order_lane(self) -> bool:
        """A call in an order's lane, which ``retry_status`` decides under the order's row lock (the same test as
        order_gate's; it only groups transactions, ``retry_status`` still decides)."""
        return (
            self.direction == Direction.OUT.value
            and self.channel == OMS_CHANNEL
            and self.lane.startswith(order_lane(""))
        )


def _result(action: str, dry_run: bool, matched: int, outcomes: dict[str, BulkOutcome]) -> BulkResult:
    return BulkResult(
        action=action,
        dry_run=dry_run,
        matched=min(matched, MAX_BULK),
        more=matched > MAX_BULK,
        changed=sum(outcome.count for outcome in outcomes.values() if outcome.applied),
        outcomes=[outcome for outcome in outcomes.values() if outcome.count],
    )
