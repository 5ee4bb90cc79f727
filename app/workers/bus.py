"""The bus engine: claim a lane's head, run it, record the outcome. One engine for inbox and outbox.

Inbound: claim, handler effects and status change happen in one transaction; a crash anywhere rolls it all back.
A failing handler's transaction is rolled back whole and the failure recorded in a second one (no savepoint on
the happy path: two round trips fewer per message).
Outbound: a sender cannot hold a transaction over an HTTP call, so it leases the message (committed), calls the
peer with the message's stable JSON-RPC id, then records the result if it still holds the lease. A crash between
send and record leaves an expired lease: the message is sent again with the same id.

Gates: a service may enqueue an outbound message *waiting* (Status.WAITING: outside its lane, neither blocking it
nor claimed) until something else in the lane has reached the peer — an order's cancel waits for the order's
create (app/services/order_gate.py). The bus knows only *gate topics* (given by whoever builds it; the engine
imports no service): when an outbound message whose topic is a gate topic succeeds, its lane's waiting messages
become queued, due now, behind it (RELEASE_WAITING), in the transaction that records the success — for the workers
and for a caller's inline send alike, both record through ``record_outbound``. Only a batch holding a succeeded
gate message pays for it: one more statement, one probe of a normally empty partial index.

Error policy (README, "Failures"):
  inbound  PermanentHandlerError / pydantic ValidationError ⇒ failed, the lane moves on;
           anything else ⇒ retrying with backoff, the lane waits (order matters) until it succeeds or an operator
           retries / discards it.
  outbound PeerRejected ⇒ failed; PeerUnavailable ⇒ retrying (Retry-After honoured) until the retry window
           closes ⇒ dead.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import pydantic

from app.clock import Clock
from app.data.bus import (
    CLAIM_INBOUND,
    CLAIM_INBOUND_HEAD,
    CLAIM_INBOUND_OLDEST,
    CLAIM_OUTBOUND,
    FINISH_INBOUND,
    FINISH_INBOUND_BATCH,
    FINISH_OUTBOUND,
    FOLLOWERS_OF_HEAD,
    INBOUND_CLAIM_WINDOW,
    LARGE_PAYLOAD_BYTES,
    NOTIFY_BUS,
    RELEASE_WAITING,
    RETRY_INBOUND,
)
from app.data.outbox import OMS_CHANNEL, OutboundMessage, Outbox
from app.data.sql import PlainStatement
from app.db import Database
from app.errors import PeerError, PeerRejected, PeerUnavailable, PermanentHandlerError
from app.logs import log_context, message_fields
from app.metrics import Metrics
from app.models import Direction, Status
from app.settings import Settings
from app.workers.registry import HandlerContext, HandlerRegistry, InboundMessage
from app.workers.retry import Outcome, RetryPolicy

log = logging.getLogger(__name__)

INBOUND_MAX_DELAY_S = 300.0  # a blocked inbound lane is retried at least every 5 minutes
OUTBOUND_MAX_DELAY_S = 900.0
MIN_LEASE_S = 60.0
MAX_ERROR_CHARS = 2000
# Inbound batches: a lane's head and the ready messages behind it are applied in one transaction — one claim and
# one record for all of them instead of a round trip or three per message (bench/ingest.py, bench/stock.py). At
# most this many messages and this much stored payload (the head always goes, whatever its size): a long batch
# holds its rows' locks (stock of an aggregate, an order) until it commits.
INBOUND_BATCH = 100
INBOUND_BATCH_BYTES = 1024 * 1024


class Sender(Protocol):
    """Delivers outbound messages of one channel. ``deliver`` returns, per message, a result or a PeerError.

    ``batch_size``: how many ready lane heads one claim leases. ``one_request``: ``deliver`` sends them all in one
    request (a JSON-RPC batch); otherwise the bus delivers each on its own, concurrently, and times each — one claim
    and one record for the lot, where one claim per message cost more than the call itself (bench/orders.py)."""

    batch_size: int
    one_request: bool

    async def deliver(self, messages: Sequence[OutboundMessage]) -> list[Any | PeerError]: ...


class Bus:
    def __init__(
        self,
        *,
        db: Database,
        registry: HandlerRegistry,
        settings: Settings,
        clock: Clock,
        senders: dict[str, Sender] | None = None,
        is_enabled: Callable[[], Awaitable[bool]] | None = None,
        gate_topics: Iterable[str] = (),
        metrics: Metrics | None = None,
    ) -> None:
        self.db = db
        self.registry = registry
        self.settings = settings
        self.clock = clock
        self.senders = senders or {}
        self.outbox = Outbox(settings.oms_application_id)
        self._is_enabled = is_enabled
        self.gate_topics = frozenset(gate_topics)  # their success releases their lane's waiting messages
        self.inbound_policy = RetryPolicy(max_delay_s=INBOUND_MAX_DELAY_S)
        self.outbound_policy = RetryPolicy(max_delay_s=OUTBOUND_MAX_DELAY_S, window_s=settings.retry_window_s)
        self.lease_s = max(MIN_LEASE_S, settings.oms_http_timeout_s * 2)
        self.metrics = metrics or Metrics()  # each outcome is counted once its record is committed
        self.inbound_batch = INBOUND_BATCH

    # --- inbound ------------------------------------------------------------------------------------------
    async def process_next_inbound(self) -> bool:
        """Process the oldest ready lane head that has a handler, with the ready messages behind it in its lane (a
        batch, INBOUND_BATCH at most), in one transaction. Returns False when there was none."""
        if not self.registry.topics:
            return False
        outcome = await self._run_inbound_batch(None)
        if outcome is None:
            return False
        while isinstance(outcome, _Redo):  # ends: each redo is shorter, or the same batch one message at a time
            outcome = await self._run_inbound_batch(outcome)
        return True

    async def _run_inbound_batch(self, redo: _Redo | None) -> _Redo | bool | None:
        """Claim a batch (``redo``: again, the first ``redo.limit`` messages of a batch that failed), apply it in
        one transaction — with the topic's batch handler if it has one, else each message's handler in turn — and
        record every success in it. A failure rolls the whole batch back:
          - a handler failing on the head: its failure is recorded alone, as for a single message;
          - a handler failing behind the head: a _Redo of the messages before it (applied again without it; the
            failing one, then the head, fails alone on the next claim — its effects rolled back both times);
          - the batch handler failing: a _Redo of the same messages one by one, which finds the bad one.
        Returns None when there was nothing to claim."""
        failure: _Failure | None = None
        batch: list[InboundMessage] = []
        done: list[_Done] = []
        one_by_one = redo is not None and redo.one_by_one
        try:
            async with self.db.connect() as connection:
                batch = await self._claim_inbound_batch(connection, redo)
                if not batch:
                    return None
                batch_handler = None if one_by_one or len(batch) == 1 else self.registry.get_batch(batch[0].topic)
                if batch_handler is not None and all(message.topic == batch[0].topic for message in batch):
                    started_at = self.clock.now()
                    started = time.monotonic()
                    context = HandlerContext(
                        connection=connection, outbox=self.outbox, settings=self.settings, now=started_at
                    )
                    with log_context(topic=batch[0].topic, lane=batch[0].lane, message_count=len(batch)):
                        try:
                            summaries = await batch_handler(context, batch)
                        except Exception as exc:
                            failure = _Failure(batch[0], exc, started_at, started, _BATCH_HANDLER)
                            raise _HandlerFailed from exc
                    if summaries is not None:
                        if len(summaries) != len(batch):
                            raise RuntimeError(f"{batch[0].topic}: {len(summaries)} summaries for {len(batch)}")
                        share = (time.monotonic() - started) / len(batch)  # each message's processing time
                        done = [
                            _Done(m, summary, started_at, share) for m, summary in zip(batch, summaries, strict=True)
                        ]
                for index, message in enumerate(batch if not done else ()):
                    handler = self.registry.get(message.topic)
                    assert handler is not None  # the claims only take topics with a handler
                    started_at = self.clock.now()
                    started = time.monotonic()
                    context = HandlerContext(
                        connection=connection, outbox=self.outbox, settings=self.settings, now=started_at
                    )
                    with log_context(**_inbound_fields(message)):  # on every line the handler logs
                        try:
                            summary = await handler(context, message)
                        except Exception as exc:
                            failure = _Failure(message, exc, started_at, started, index)
                            raise _HandlerFailed from exc  # roll back every effect of the batch
                    done.append(_Done(message, summary, started_at, time.monotonic() - started))
                await self._finish_inbound_batch(connection, done)
        except _HandlerFailed:
            assert failure is not None
            if failure.index == _BATCH_HANDLER:
                log.info(
                    "batch of %s messages failed (%s): applying them one by one",
                    len(batch),
                    _describe(failure.exc),
                    extra={"action": "batch_failed", "lane": batch[0].lane, "message_count": len(batch)},
                )
                return _Redo(head_id=batch[0].id, limit=len(batch), one_by_one=True)
            if failure.index > 0:
                return _Redo(head_id=batch[0].id, limit=failure.index, one_by_one=one_by_one)
            with log_context(**_inbound_fields(failure.message)):
                status = await self._record_inbound_failure(
                    failure.message, failure.exc, failure.started_at, failure.started
                )
            self._count_inbound(failure.message, status, time.monotonic() - failure.started)
            return True
        for item in done:
            self._count_inbound(item.message, Status.SUCCEEDED, item.seconds)
            if log.isEnabledFor(logging.DEBUG):
                with log_context(**_inbound_fields(item.message)):
                    log.debug("message processed", extra=_processed_fields(item.summary))
        return True

    async def _claim_inbound_batch(self, connection: Any, redo: _Redo | None) -> list[InboundMessage]:
        """Lock a lane's ready head and the ready messages behind it, in lane order: at most INBOUND_BATCH (or
        ``redo.limit``) messages and INBOUND_BATCH_BYTES of stored payload (the head always), up to the first
        that is not ready (due later, or of a topic without a handler)."""
        topics = self.registry.topics
        claim = {
            "direction": Direction.IN.value,
            "now": self.clock.now(),
            "topics": topics,
            "topics_leaving_large_payloads": self.registry.topics_leaving_large_payloads,
            "large_payload_bytes": LARGE_PAYLOAD_BYTES,
            "window": INBOUND_CLAIM_WINDOW,
        }
        if redo is not None:
            row = (await connection.execute(CLAIM_INBOUND_HEAD, {**claim, "head_id": redo.head_id})).first()
        else:
            row = (await connection.execute(CLAIM_INBOUND_OLDEST, claim)).first()
            if row is None:  # nothing claimable among the oldest: look at every lane's head
                row = (await connection.execute(CLAIM_INBOUND, claim)).first()
        if row is None:
            return []
        batch = [_inbound_message(row)]
        limit = min(self.inbound_batch, redo.limit) if redo is not None else self.inbound_batch
        if limit <= 1 or not row.has_followers:
            return batch
        size = row.size or 0
        followers = await connection.execute(
            FOLLOWERS_OF_HEAD, {**claim, "lane": row.lane, "head_id": row.id, "limit": limit - 1}
        )
        handled = frozenset(topics)
        for position, follower in enumerate(followers, start=1):
            size += follower.size or 0
            if (
                follower.position != position  # a hole: one of them is held by someone else
                or follower.status not in _CLAIMABLE
                or follower.next_attempt_at > claim["now"]
                or follower.topic not in handled
                or size > INBOUND_BATCH_BYTES
            ):
                break  # the rest stays locked until the batch commits, then is claimed as usual
            batch.append(_inbound_message(follower))
        return batch

    def _count_inbound(self, message: InboundMessage, status: Status, duration_s: float) -> None:
        now = self.clock.now()
        self.metrics.message_attempted(
            "in", message.channel, message.topic, status, duration_s, message.received_at, now
        )

    async def _finish_inbound_batch(self, connection: Any, done: Sequence[_Done]) -> None:
        """Record every message of a batch succeeded, each with its own start, duration and summary."""
        recorded = (
            await connection.execute(
                FINISH_INBOUND_BATCH,
                {
                    "ids": [item.message.id for item in done],
                    "results": [json.dumps(item.summary) if item.summary is not None else None for item in done],
                    "started_ats": [item.started_at for item in done],
                    "durations_ms": [int(item.seconds * 1000) for item in done],
                    "now": self.clock.now(),
                },
            )
        ).scalar_one()
        if recorded != len(done):  # cannot happen while the batch holds the rows; never record half a batch
            raise RuntimeError(f"recorded {recorded} of a batch of {len(done)} messages: rolled back")

    async def _record_inbound_failure(
        self, message: InboundMessage, exc: BaseException, started_at: datetime, started: float
    ) -> Status:
        """Record a failed attempt in a transaction of its own (the handler's was rolled back); return the status
        recorded. The status guard makes this a no-op if another worker took the message meanwhile and finished
        it."""
        async with self.db.connect() as connection:
            if isinstance(exc, PermanentHandlerError | pydantic.ValidationError):
                await self._finish_inbound(connection, message, Status.FAILED, started_at, started, error=exc)
                log.warning(
                    "message failed permanently: %s",
                    _describe(exc),
                    extra={"action": "message_failed", "message_id": message.id},
                )
                return Status.FAILED
            decision = self.inbound_policy.decide(
                attempts=message.attempts + 1, now=self.clock.now(), first_attempt_at=None
            )
            await connection.execute(
                RETRY_INBOUND,
                {
                    "id": message.id,
                    "last_error": _describe(exc),
                    "next_attempt_at": decision.next_attempt_at,
                    "started_at": started_at,
                },
            )
            log.warning(
                "message will be retried: %s",
                _describe(exc),
                extra={"action": "message_retry", "message_id": message.id},
            )
            return Status.RETRYING

    async def _finish_inbound(
        self,
        connection: Any,
        message: InboundMessage,
        status: Status,
        started_at: datetime,
        started: float,
        *,
        error: BaseException | None = None,
        summary: dict[str, Any] | None = None,
    ) -> None:
        await connection.execute(
            FINISH_INBOUND,
            {
                "id": message.id,
                "status": status.value,
                "last_error": _describe(error) if error else None,
                "result": json.dumps(summary) if summary is not None else None,
                "started_at": started_at,
                "now": self.clock.now(),
                "duration_ms": int((time.monotonic() - started) * 1000),
            },
        )

    # --- outbound -----------------------------------------------------------------------------------------
    async def enabled(self) -> bool:
        return True if self._is_enabled is None else await self._is_enabled()

    async def send_next_outbound(self, channel: str = "oms") -> int:
        """Lease ready lane heads of ``channel``, deliver them, record the outcomes. Returns how many."""
        return (await self._send_outbound(channel))[0]

    async def outbound_step(self, channel: str) -> bool:
        """A sender's step (app/workers/runner.py): ``send_next_outbound``, then whether to claim again at once —
        the claim was full, or a message it sent had others waiting behind it in its lane (now their head). Else
        the sender waits for a notification: claiming again would find nothing (one empty claim per message sent,
        half of an order export's transactions, bench/orders.py)."""
        return (await self._send_outbound(channel))[1]

    async def _send_outbound(self, channel: str) -> tuple[int, bool]:
        sender = self.senders.get(channel)
        if sender is None or not await self.enabled():
            return 0, False
        messages, followed = await self._claim_outbound(channel, limit=sender.batch_size)
        if not messages:
            return 0, False
        await self._deliver_and_record(sender, messages)
        return len(messages), followed or len(messages) >= sender.batch_size

    async def _deliver_and_record(self, sender: Sender, messages: Sequence[OutboundMessage]) -> list[Any | PeerError]:
        batches: list[Sequence[OutboundMessage]]
        results: list[tuple[list[Any | PeerError], int] | BaseException]
        if sender.one_request and len(messages) > 1:
            with log_context(message_count=len(messages)):
                batches, results = [messages], [await self._deliver(sender, messages)]
        else:  # each message on its own (its context on every line it logs), concurrently
            batches = [[message] for message in messages]
            results = list(
                await asyncio.gather(*(self._deliver_one(sender, m) for m in messages), return_exceptions=True)
            )
        # A delivery that raised (not a PeerError: a bug) leaves its message unrecorded — its lease expires and it is
        # sent again with the same id, as after a crash — but not the others, which the peer has answered.
        answered = [
            (batch, result) for batch, result in zip(batches, results, strict=True) if isinstance(result, tuple)
        ]
        recorded = [message for batch, _ in answered for message in batch]
        outcomes = [outcome for _, (batch_outcomes, _) in answered for outcome in batch_outcomes]
        durations_ms = [duration for _, (batch_outcomes, duration) in answered for _ in batch_outcomes]
        if recorded:  # shielded: once the peer has answered, a shutdown must not turn a delivery into a resend
            await asyncio.shield(self.record_outbound(recorded, outcomes, durations_ms))
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return outcomes

    async def _deliver_one(self, sender: Sender, message: OutboundMessage) -> tuple[list[Any | PeerError], int]:
        with log_context(**_outbound_fields(message)):
            return await self._deliver(sender, [message])

    @staticmethod
    async def _deliver(sender: Sender, messages: Sequence[OutboundMessage]) -> tuple[list[Any | PeerError], int]:
        """The outcomes of one delivery, and how long it took (ms)."""
        started = time.monotonic()
        try:
            outcomes = await sender.deliver(messages)
        except PeerError as exc:
            outcomes = [exc] * len(messages)
        return outcomes, int((time.monotonic() - started) * 1000)

    def can_send(self, channel: str) -> bool:
        return channel in self.senders

    async def send_inline(self, message: OutboundMessage) -> Any | PeerError:
        """Deliver one message that the caller leased (LEASE_FOR_INLINE_SEND) and record the outcome exactly as a
        worker would: on failure it stays in the outbox (retrying or failed) under the usual rules."""
        return (await self._deliver_and_record(self.senders[message.channel], [message]))[0]

    def leased_message(self, row: Mapping[str, Any], lease_until: datetime) -> OutboundMessage:
        return OutboundMessage(
            id=row["id"],
            topic=row["topic"],
            external_id=row["external_id"],
            lane=row["lane"],
            channel=row["channel"],
            encoded_payload=row["encoded_payload"],
            attempts=row["attempts"],
            first_attempt_at=row["first_attempt_at"],
            lease_until=lease_until,
            created_at=row["created_at"],
        )

    async def claim_outbound(self, channel: str, *, limit: int) -> list[OutboundMessage]:
        return (await self._claim_outbound(channel, limit=limit))[0]

    async def _claim_outbound(self, channel: str, *, limit: int) -> tuple[list[OutboundMessage], bool]:
        """Leased messages in id order, and whether any of them has others waiting behind it in its lane."""
        now = self.clock.now()
        lease_until = now + timedelta(seconds=self.lease_s)
        async with self.db.bus_connection() as connection:  # one self-committing statement
            rows = await connection.fetch(
                _CLAIM_OUTBOUND.sql,
                *_CLAIM_OUTBOUND.values(channel=channel, now=now, lease_until=lease_until, limit=limit),
            )
        messages = [self.leased_message(row, lease_until) for row in sorted(rows, key=lambda r: r["id"])]
        return messages, any(row["has_followers"] for row in rows)

    async def record_outbound(
        self,
        messages: Sequence[OutboundMessage],
        outcomes: Sequence[Any | PeerError],
        durations_ms: Sequence[int],
    ) -> None:
        """Record each message's outcome (and how long its delivery took, ms) in one transaction."""
        now = self.clock.now()
        params = [
            self._outbound_outcome(m, o, now, d) for m, o, d in zip(messages, outcomes, durations_ms, strict=True)
        ]
        gates = [
            message.id
            for message, record in zip(messages, params, strict=True)
            if message.topic in self.gate_topics and record["status"] == Status.SUCCEEDED.value
        ]
        finish = _FINISH_OUTBOUND.values(
            now=now,
            ids=[record["id"] for record in params],
            lease_untils=[record["lease_until"] for record in params],
            statuses=[record["status"] for record in params],
            last_errors=[record["last_error"] for record in params],
            results=[record["result"] for record in params],
            next_attempt_ats=[record["next_attempt_at"] for record in params],
            finished=[record["finished"] for record in params],
            durations_ms=[record["duration_ms"] for record in params],
        )
        async with self.db.bus_connection() as connection:
            if not gates:  # one self-committing statement
                await connection.execute(_FINISH_OUTBOUND.sql, *finish)
            else:
                async with connection.transaction():  # RELEASE_WAITING after the record, in its transaction
                    await connection.execute(_FINISH_OUTBOUND.sql, *finish)
                    released = await connection.fetchval(
                        _RELEASE_WAITING.sql, *_RELEASE_WAITING.values(ids=gates, now=now)
                    )
                    if released:
                        await connection.execute(_NOTIFY_BUS.sql)
        _log_outbound_outcomes(messages, params)
        for message, record in zip(messages, params, strict=True):
            self.metrics.message_attempted(
                "out",
                message.channel,
                message.topic,
                record["status"],
                record["duration_ms"] / 1000,
                message.created_at,
                now,
            )

    def _outbound_outcome(
        self, message: OutboundMessage, outcome: Any | PeerError, now: datetime, duration_ms: int
    ) -> dict[str, Any]:
        record: dict[str, Any] = {
            "id": message.id,
            "lease_until": message.lease_until,
            "now": now,
            "duration_ms": duration_ms,
            "next_attempt_at": None,
            "last_error": None,
            "result": None,
            "finished": True,
        }
        if isinstance(outcome, PeerRejected):
            record.update(status=Status.FAILED.value, last_error=_describe(outcome))
        elif isinstance(outcome, PeerError):
            retry_after = outcome.retry_after_s if isinstance(outcome, PeerUnavailable) else None
            decision = self.outbound_policy.decide(
                attempts=message.attempts,
                now=now,
                first_attempt_at=message.first_attempt_at,
                retry_after_s=retry_after,
            )
            if decision.outcome is Outcome.GIVE_UP:
                hours = self.settings.oms_retry_window_hours
                record.update(
                    status=Status.DEAD.value,
                    last_error=f"gave up after {message.attempts} attempts over {hours:g} h: {_describe(outcome)}",
                )
            else:
                record.update(
                    status=Status.RETRYING.value,
                    last_error=_describe(outcome),
                    next_attempt_at=decision.next_attempt_at,
                    finished=False,
                )
        else:
            record.update(status=Status.SUCCEEDED.value, result=json.dumps({"result": outcome}, default=str))
        return record


class _HandlerFailed(Exception):
    """Raised inside the claim transaction to roll it back when a handler fails."""


@dataclass(frozen=True)
class _Done:
    """A message of a batch whose handler succeeded (recorded when the whole batch has)."""

    message: InboundMessage
    summary: dict[str, Any] | None
    started_at: datetime
    seconds: float


@dataclass(frozen=True)
class _Failure:
    message: InboundMessage
    exc: BaseException
    started_at: datetime
    started: float
    index: int  # its place in the batch (0: the head; _BATCH_HANDLER: the batch handler failed)


@dataclass(frozen=True)
class _Redo:
    """A batch to apply again from its head ``head_id``: its first ``limit`` messages (those before the one that
    failed), ``one_by_one`` if its topic's batch handler failed on it."""

    head_id: int
    limit: int
    one_by_one: bool = False


_BATCH_HANDLER = -1  # _Failure.index of a failing batch handler


# Outbound claims and records go on plain asyncpg (Database.bus_connection).
_CLAIM_OUTBOUND = PlainStatement.of(CLAIM_OUTBOUND)
_FINISH_OUTBOUND = PlainStatement.of(FINISH_OUTBOUND)
_RELEASE_WAITING = PlainStatement.of(RELEASE_WAITING)
_NOTIFY_BUS = PlainStatement.of(NOTIFY_BUS)


_CLAIMABLE = frozenset({Status.QUEUED.value, Status.RETRYING.value})


def _inbound_message(row: Any) -> InboundMessage:
    return InboundMessage(
        id=row.id,
        topic=row.topic,
        external_id=row.external_id,
        lane=row.lane,
        channel=row.channel,
        payload=row.payload,
        attempts=row.attempts,
        received_at=row.created_at,
    )


def _inbound_fields(message: InboundMessage) -> dict[str, Any]:
    return message_fields(
        message_id=message.id,
        direction=Direction.IN.value,
        channel=message.channel,
        topic=message.topic,
        lane=message.lane,
        external_id=message.external_id,
        payload=message.payload,
    )


def _outbound_fields(message: OutboundMessage) -> dict[str, Any]:
    return message_fields(
        message_id=message.id,
        direction=Direction.OUT.value,
        channel=message.channel,
        topic=message.topic,
        lane=message.lane,
        external_id=message.external_id,
        # Only Adobe Commerce deliveries carry SKUs to count (source items); an OMS call's params stay undecoded.
        payload=message.payload if message.channel != OMS_CHANNEL else None,
    )


def _processed_fields(summary: dict[str, Any] | None) -> dict[str, Any]:
    """The fields of a processed message's line: the SKU count its handler reports (a stock message left in the
    database has no payload to count them from)."""
    skus = summary.get("skus") if isinstance(summary, dict) else None
    return {"action": "message_processed", **({"sku_count": skus} if isinstance(skus, int) else {})}


_OUTCOME_LOGS = {  # recorded status → (level, message, action); a success is logged at DEBUG
    Status.RETRYING.value: (logging.WARNING, "message will be retried", "message_retry"),
    Status.FAILED.value: (logging.WARNING, "message failed permanently", "message_failed"),
    Status.DEAD.value: (logging.ERROR, "message is dead", "message_dead"),
}


def _log_outbound_outcomes(messages: Sequence[OutboundMessage], records: Sequence[dict[str, Any]]) -> None:
    """A line per delivery as recorded (its last error too), each with its message's context."""
    for message, record in zip(messages, records, strict=True):
        level, text, action = _OUTCOME_LOGS.get(record["status"], (logging.DEBUG, "message sent", "message_sent"))
        if not log.isEnabledFor(level):
            continue
        with log_context(**_outbound_fields(message)):
            if record["last_error"]:
                log.log(level, "%s: %s", text, record["last_error"], extra={"action": action})
            else:
                log.log(level, text, extra={"action": action})


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    if isinstance(exc, pydantic.ValidationError):
        parts = [f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors(include_url=False)]
        text = "invalid payload: " + "; ".join(parts)
    else:
        message = str(exc) or exc.__class__.__name__
        text = message if isinstance(exc, PeerError | PermanentHandlerError) else f"{exc.__class__.__name__}: {message}"
    return text[:MAX_ERROR_CHARS]
