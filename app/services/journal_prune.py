"""Journal retention (the seed's ``oms:queue:prune``): finished messages older than OMS_JOURNAL_RETENTION_DAYS are
deleted — once a day by the workers (one replica at a time), and on demand (``oms-connector journal prune``,
``POST /journal/prune``).

What is deleted: messages created before the cutoff (now minus the retention) that are finished — succeeded, failed,
dead, discarded or rejected — before the cutoff and before what the processing-time report has counted
(``counted_until``: a message it has not counted yet is kept, so pruning never changes a report). Never deleted:
pending messages (queued, waiting, processing, retrying) whatever their age, and what an order's state is read from
(its current create, its cancel call, its return requests; PRUNE_JOURNAL_BATCH in app/data/journal.py says why).

**A pruned message's id is no longer recognised as a duplicate**: an OMS re-delivering a call after its message
was pruned would have it stored and applied again (natural keys — shipment ids, credit note numbers, the stock
timestamp filter — still make most replays harmless). Hence the retention's floor, MIN_JOURNAL_RETENTION_DAYS,
above the OMS's redelivery window. Outbound ids never depend on the journal (they are numbered from the order's or
product's own counters, or keyed by rows that stay), so pruning never makes the connector reuse one. Rows that name
a pruned message (``stock.message_id``, an order's history, shipments, refunds) keep its id; the journal answers 404
for it, and a delivery to Adobe Commerce whose message was pruned reads ``pruned`` in the order view.

Ingest never waits behind a prune: it deletes in batches of ``batch_size`` messages by primary key, each batch one
short transaction, and pauses between batches (PAUSE_RATIO; bench/prune.py measures the webhook latency while
pruning millions of rows).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import TextClause
from sqlalchemy.ext.asyncio import AsyncConnection

from app.clock import Clock
from app.data.journal import (
    AUTOVACUUM_LOCK_TIMEOUT,
    HOLD_AUTOVACUUM_SHARED,
    JOURNAL_PRUNE_RUN,
    LAST_DAILY_PRUNE,
    MARK_DAILY_PRUNE,
    MESSAGE_AUTOVACUUM_STOPPED,
    PRUNE_JOURNAL_BATCH,
    RELEASE_AUTOVACUUM_EXCLUSIVE,
    RELEASE_AUTOVACUUM_SHARED,
    RESUME_MESSAGE_AUTOVACUUM,
    STOP_MESSAGE_AUTOVACUUM,
    TRY_AUTOVACUUM_EXCLUSIVE,
    TRY_PRUNE_LOCK,
)
from app.data.outbox import OMS_CHANNEL
from app.data.sql import positional
from app.db import Database
from app.errors import InputRejected
from app.services.orders import order_lane
from app.services.reports import counted_until as report_counted_until
from app.settings import MIN_JOURNAL_RETENTION_DAYS, Settings

log = logging.getLogger(__name__)

PRUNE_TOPIC = "connector.journal.prune"  # each run that deleted messages is journaled under this topic
PRUNE_CHANNEL = "connector"  # the connector's own entries: no peer sent them, no worker claims them
# Pruning writes about 750 bytes of WAL per deleted message (a heap page's first change after a checkpoint is logged
# whole), and every webhook's commit waits for the WAL before it to reach the disk; a gigabyte of WAL also brings a
# checkpoint, whose writes stall commits for a moment. So the prune works in small batches and, after each, pauses
# PAUSE_RATIO times as long as the batch took: it uses the database a ninth of the time at most, whatever its speed.
# A webhook that arrives while a batch runs waits for it, so the batch is kept to a couple of milliseconds
# (bench/prune.py, 5 million messages, 200 webhooks/s, 2-core development machine: batches of 1,000 pruned 20,454
# messages/s with a webhook p99 of 2.95x the same rate without a prune; batches of 250, 7,791/s and 2.29x). What
# costs the webhooks is mostly the autovacuum that a large delete brings, not the delete: with autovacuum of the
# table held off the prune alone made 1.63x; slowed three times while autovacuum ran (so the whole clean-up fell
# inside the prune's window) it made 5.01x. Pacing the prune harder does not help; holding autovacuum off while the
# prune runs does (autovacuum_held; README, "Journal retention").
BATCH_SIZE = 250  # messages examined (and at most deleted) per statement and transaction
PAUSE_RATIO = 8.0
DAILY_S = 24 * 3600.0  # the workers prune at most this often, across all replicas
CHECK_S = 3600.0  # how often a process with workers looks whether the daily prune is due
# pg_try_advisory_lock key of the daily prune: above 2^31, so no hashtext() value can ever be it.
PRUNE_LOCK_KEY = 0x6F6D_735F_7072_756E  # "oms_prun"
HOLD_KEY = 0x6F6D_735F_6176_6163  # "oms_avac": held shared by every running prune (autovacuum_held)
_BEFORE_ANY = datetime(1, 1, 1, tzinfo=UTC)  # the keyset before the first message

# The processing-time report's bound: every message finished before it is counted for good (None: nothing yet).
CountedUntil = Callable[[AsyncConnection], Awaitable[datetime | None]]


@dataclass(frozen=True)
class PruneResult:
    """What one prune did (a dry run: what it would do)."""

    dry_run: bool
    trigger: str  # operator | daily
    older_than_days: int
    cutoff: datetime  # messages created and finished before this are old enough
    counted_until: datetime | None  # the report's bound (None: it has counted nothing, so nothing finished goes)
    finished_before: datetime | None  # the bound applied: the earlier of the two (None: nothing may be deleted)
    examined: int  # messages created before the cutoff that were looked at
    deleted: int  # deleted (in a dry run: that would be)
    kept_pending: int  # not finished: never pruned
    kept_recent: int  # finished after the bound (not old enough, or not counted by the report yet), or retried
    kept_for_orders: int  # an order's current create, cancel call or return request
    batches: int
    seconds: float
    journal_id: int | None  # this run's journal entry (none for a dry run)

    @property
    def rows_per_second(self) -> float:
        return self.deleted / self.seconds if self.seconds > 0 else 0.0


class JournalPrune:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: Settings,
        *,
        counted_until: CountedUntil | None = None,
        batch_size: int | None = None,
        pause_ratio: float | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.counted_until = counted_until or report_counted_until
        self.batch_size = batch_size or BATCH_SIZE
        self.pause_ratio = PAUSE_RATIO if pause_ratio is None else pause_ratio

    async def prune(
        self, older_than_days: int | None = None, *, dry_run: bool = False, trigger: str = "operator"
    ) -> PruneResult:
        """Delete the finished messages older than ``older_than_days`` (default OMS_JOURNAL_RETENTION_DAYS; at
        least MIN_JOURNAL_RETENTION_DAYS, else InputRejected) in batches; ``dry_run`` counts them instead."""
        days = self.settings.oms_journal_retention_days if older_than_days is None else older_than_days
        if days < MIN_JOURNAL_RETENTION_DAYS:
            raise InputRejected(
                [
                    {
                        "field": "older_than_days",
                        "message": f"at least {MIN_JOURNAL_RETENTION_DAYS} days: a pruned message's id is no longer "
                        "recognised as a duplicate, so the journal must outlast the OMS's redelivery window",
                    }
                ]
            )
        started_at = self.clock.now()
        started = time.monotonic()
        cutoff = started_at - timedelta(days=days)
        hold = contextlib.nullcontext() if dry_run else self.autovacuum_held()
        async with hold:
            counted, finished_before, totals, batches = await self._batches(cutoff, dry_run)
        changed_meanwhile = 0 if dry_run else totals["doomed"] - totals["deleted"]  # retried by an operator, say
        result = PruneResult(
            dry_run=dry_run,
            trigger=trigger,
            older_than_days=days,
            cutoff=cutoff,
            counted_until=counted,
            finished_before=finished_before,
            examined=totals["examined"],
            deleted=totals["doomed"] if dry_run else totals["deleted"],
            kept_pending=totals["pending"],
            kept_recent=totals["recent"] + changed_meanwhile,
            kept_for_orders=totals["kept_for_orders"],
            batches=batches,
            seconds=round(time.monotonic() - started, 3),
            journal_id=None,
        )
        if not dry_run and result.deleted:  # a run that deleted nothing leaves the journal alone
            result = await self._journal(result, started_at)
        log.info(
            "journal pruned: %s messages deleted in %s batches%s",
            result.deleted,
            result.batches,
            " (dry run)" if dry_run else "",
            extra={"action": "journal_prune", "deleted": result.deleted, "trigger": trigger, "dry_run": dry_run},
        )
        return result

    async def _batches(
        self, cutoff: datetime, dry_run: bool
    ) -> tuple[datetime | None, datetime | None, dict[str, int], int]:
        """The batches of one run: the report's bound (None: it has counted nothing yet, so nothing finished may
        go), the bound applied (the earlier of it and ``cutoff``), what they found and did, and how many ran."""
        async with self.db.connect() as connection:
            counted = await self.counted_until(connection)
        finished_before = None if counted is None else min(cutoff, counted)
        totals = dict.fromkeys(("examined", "doomed", "pending", "recent", "kept_for_orders", "deleted"), 0)
        batches = 0
        after_at, after_id = _BEFORE_ANY, 0
        while finished_before is not None:
            batch_started = time.monotonic()
            async with self.db.connect() as connection:
                row = (
                    await connection.execute(
                        PRUNE_JOURNAL_BATCH,
                        {
                            "cutoff": cutoff,
                            "after_at": after_at,
                            "after_id": after_id,
                            "batch": self.batch_size,
                            "finished_before": finished_before,
                            "order_channel": OMS_CHANNEL,
                            "order_lane": order_lane(""),
                            "dry_run": dry_run,
                        },
                    )
                ).one()
            batches += 1
            for key in totals:
                totals[key] += int(getattr(row, key))
            if row.examined < self.batch_size:
                break
            after_at, after_id = row.last_created_at, row.last_id
            if not dry_run:  # a dry run writes nothing
                await asyncio.sleep((time.monotonic() - batch_started) * self.pause_ratio)
        return counted, finished_before, totals, batches

    @contextlib.asynccontextmanager
    async def autovacuum_held(self) -> AsyncIterator[bool]:
        """Autovacuum of ``message`` off while a prune deletes, on again after (yields whether the hold took).

        Why: autovacuum cleans up once a fifth of the table is dead, so during a large prune it starts again and
        again, each pass scanning every index of the table, and its I/O and WAL land on the webhooks' commits on top
        of the prune's own (bench/prune.py, 1M messages back to back: webhook p99 18.9 ms without the hold, 8.6 ms with
        it, and the prune a third faster).
        Held, the table is cleaned once, after the prune, at migration 0012's gentle pace. PostgreSQL still runs an
        anti-wraparound vacuum whatever the setting. Prunes may overlap (the daily one and an operator's): each
        holds HOLD_KEY shared, and the setting is given back by whoever then gets the key exclusively, i.e. by the
        last one to finish; one that dies leaves it off until ``resume_autovacuum`` (every process with workers,
        hourly) finds no prune running. If the table cannot be altered (the connector's database role does not own
        it, or a manual VACUUM holds it for more than 5 s), the prune runs without the hold."""
        connection = await self.db.raw_connection()
        try:
            await connection.execute(*_positional(HOLD_AUTOVACUUM_SHARED, key=HOLD_KEY))
            held = True
            try:
                await connection.execute(*_positional(AUTOVACUUM_LOCK_TIMEOUT))
                await connection.execute(*_positional(STOP_MESSAGE_AUTOVACUUM))
            except asyncpg.PostgresError as exc:
                held = False
                log.warning("journal prune: autovacuum of message not held: %s", exc,
                            extra={"action": "journal_prune_hold_failed"})  # fmt: skip
            try:
                yield held
            finally:
                await connection.execute(*_positional(RELEASE_AUTOVACUUM_SHARED, key=HOLD_KEY))
                if held:
                    await self._resume_if_alone(connection)
        finally:
            await connection.close()

    async def resume_autovacuum(self) -> bool:
        """Autovacuum of ``message`` on again if a prune that died left it off and no prune is running now
        (whether it did)."""
        connection = await self.db.raw_connection()
        try:
            await connection.execute(*_positional(AUTOVACUUM_LOCK_TIMEOUT))
            return await self._resume_if_alone(connection)
        finally:
            await connection.close()

    async def _resume_if_alone(self, connection: asyncpg.Connection) -> bool:
        """On ``connection`` (lock_timeout set): resume autovacuum of ``message`` if it is off and no prune holds
        it (HOLD_KEY free for an exclusive lock)."""
        if not await connection.fetchval(*_positional(TRY_AUTOVACUUM_EXCLUSIVE, key=HOLD_KEY)):
            return False  # a prune is running: the last one to finish gives it back
        try:
            if not await connection.fetchval(*_positional(MESSAGE_AUTOVACUUM_STOPPED)):
                return False
            await connection.execute(*_positional(RESUME_MESSAGE_AUTOVACUUM))
            return True
        finally:
            await connection.execute(*_positional(RELEASE_AUTOVACUUM_EXCLUSIVE, key=HOLD_KEY))

    async def prune_if_due(self) -> PruneResult | None:
        """The daily prune, if no replica ran it in the last 24 h and none is running it now (a session advisory
        lock, held on a connection of its own while the batches run on others: no long transaction)."""
        connection = await self.db.raw_connection()
        try:
            if not await connection.fetchval(*_positional(TRY_PRUNE_LOCK, key=PRUNE_LOCK_KEY)):
                return None  # another replica is pruning
            last = await connection.fetchval(*_positional(LAST_DAILY_PRUNE))
            now = self.clock.now()
            if last is not None and (now - last).total_seconds() < DAILY_S:
                return None
            result = await self.prune(trigger="daily")
            await connection.execute(*_positional(MARK_DAILY_PRUNE, at=now))
            return result
        finally:
            await connection.close()  # releases the lock

    async def keep_pruning(self) -> None:
        """Background task of a process with workers: the daily prune, looked for every CHECK_S."""
        while True:
            try:
                await self.resume_autovacuum()  # a prune that died left it off
                await self.prune_if_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is down, say: try again later, never die
                log.warning("journal prune: %s", exc, extra={"action": "journal_prune_error"})
            await asyncio.sleep(CHECK_S)

    async def _journal(self, result: PruneResult, started_at: datetime) -> PruneResult:
        """Record the run in the journal, with what it did."""
        now = self.clock.now()
        params = {"trigger": result.trigger, "older_than_days": result.older_than_days}
        summary = {key: value for key, value in asdict(result).items() if key not in params and key != "journal_id"}
        summary["rows_per_second"] = round(result.rows_per_second)
        async with self.db.connect() as connection:
            journal_id = (
                await connection.execute(
                    JOURNAL_PRUNE_RUN,
                    {
                        "channel": PRUNE_CHANNEL,
                        "topic": PRUNE_TOPIC,
                        "external_id": f"{self.settings.oms_application_id}-journal-prune-{uuid.uuid4().hex}",
                        "payload": json.dumps(params),
                        "result": json.dumps(summary, default=str),
                        "now": now,
                        "started_at": started_at,
                        "duration_ms": int(result.seconds * 1000),
                    },
                )
            ).scalar_one_or_none()
        return PruneResult(**{**asdict(result), "journal_id": journal_id})


def _positional(clause: TextClause, **params: Any) -> tuple[Any, ...]:
    """A named statement and its parameters for a plain asyncpg connection."""
    sql, names = positional(clause)
    return (sql, *[params[name] for name in names])
