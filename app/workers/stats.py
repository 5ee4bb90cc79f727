"""The processing-time report's rollup: per-minute stats of the finished messages, computed from the journal.

Nothing is counted on the hot path: a handler or a sender only writes its message's ``finished_at`` and
``duration_ms`` as before. Every ROLLUP_INTERVAL_S a background task of each process with workers (one at a time:
a transaction-level advisory lock) recomputes, from the journal, the minutes from its watermark minus SAFETY_WINDOW
up to the last whole minute, and replaces their rows of ``message_stat_minute`` (app/data/reports.py
ROLL_UP_MINUTES): a step run twice gives the same rows, and a message whose finish commits up to SAFETY_WINDOW after
its ``finished_at`` (a slow commit, a replica's clock a little behind) is still counted. Minutes older than that
are final: they are never recomputed, so the journal may prune their messages (``counted_until``, the contract with
app/services/journal_prune.py). Final hours are merged into ``message_stat_hour`` (long reports read 60 times fewer
rows). Stats older than OMS_STATS_RETENTION_DAYS are deleted as it goes.

A message counts once for each finish it reached: failed, retried by an operator, then succeeded, it counts as failed
in one minute and as succeeded in a later one. Only an operator's retry or discard before the failure's minute is
final (SAFETY_WINDOW and a minute or two after it) leaves the failure uncounted: recomputed, the minute sees the
message in its new state.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from app.clock import Clock
from app.data.reports import (
    CLEAR_STAT_HOURS,
    CLEAR_STAT_MINUTES,
    DELETE_OLD_STATS,
    FIRST_FINISHED_AT,
    HOUR,
    MINUTE,
    ROLL_UP_HOURS,
    ROLL_UP_MINUTES,
    SET_STATS_STATE,
    STATS_STATE,
    TRY_STATS_ROLLUP_LOCK,
    floor_time,
)
from app.db import Database
from app.services.histogram import BUCKET_BOUNDS
from app.settings import Settings

log = logging.getLogger(__name__)

ROLLUP_INTERVAL_S = 60.0  # how often the stats catch up with the journal (the report reads later minutes live)
SAFETY_WINDOW = timedelta(minutes=2)  # recomputed again at each run: a finish committed this late still counts
# How many runs aggregate a finished message (the minute it finished in, then SAFETY_WINDOW more): the rollup's work
# per message is this many passes over its row (bench/ingest.py measures one pass).
PASSES_PER_MESSAGE = round(SAFETY_WINDOW.total_seconds() / ROLLUP_INTERVAL_S) + 1
STEP = timedelta(hours=1)  # the most of the journal one transaction rolls up past its next finish (catching up)
ROLLUP_LOCK_KEY = 0x6F6D735F73746174  # pg_try_advisory_xact_lock key of the rollup ("oms_stat")


@dataclass(frozen=True)
class RollupStep:
    """What one step did: the minutes recomputed [minutes_from, minutes_to), how far counts are final."""

    minutes_from: datetime
    minutes_to: datetime
    counted_until: datetime
    hours_until: datetime
    caught_up: bool


class StatsRollup:
    def __init__(self, db: Database, clock: Clock, settings: Settings) -> None:
        self.db = db
        self.clock = clock
        self.retention = timedelta(days=settings.oms_stats_retention_days)

    async def roll_up(self) -> list[RollupStep]:
        """Bring the stats up to the last whole minute, a transaction per step; the steps done (none when another
        process holds the rollup or this minute is done already)."""
        steps: list[RollupStep] = []
        while True:
            step = await self.step()
            if step is None:
                return steps
            steps.append(step)
            if step.caught_up:
                return steps

    async def step(self) -> RollupStep | None:
        """One transaction: recompute the minutes from the watermark minus SAFETY_WINDOW up to the last whole minute
        but at most STEP past the first finish after the watermark (a stretch without any is crossed at once), merge
        the hours that became final, delete what the retention ends, move the watermarks."""
        now = self.clock.now()
        now_minute = floor_time(now, MINUTE)
        not_before = floor_time(now - self.retention, MINUTE)
        async with self.db.connect() as connection:
            locked = await connection.execute(TRY_STATS_ROLLUP_LOCK, {"key": ROLLUP_LOCK_KEY})
            if not locked.scalar_one():
                return None  # another process is rolling up
            state = (await connection.execute(STATS_STATE)).one()
            rolled = state.rolled_up_until
            if rolled is not None and rolled >= now_minute:
                return None  # the minute under way is read live until it is over
            # Minutes from `start` on are new to the stats; those from `minutes_from` on are recomputed (late
            # commits). No message finished between `start` and the next finish time: a gap is crossed in one step.
            start = max(rolled or not_before, not_before)
            minutes_from = start if rolled is None else max(rolled - SAFETY_WINDOW, not_before)
            following = (await connection.execute(FIRST_FINISHED_AT, {"not_before": start})).scalar()
            resume = max(start, floor_time(following, MINUTE)) if following is not None else now_minute
            minutes_to = min(now_minute, resume + STEP)
            await self.recompute_minutes(connection, minutes_from, minutes_to)
            counted_until = minutes_to - SAFETY_WINDOW
            if state.counted_until is not None:
                counted_until = max(counted_until, state.counted_until)
            hours_from = state.hours_until or floor_time(minutes_from, HOUR)
            hours_until = max(floor_time(counted_until, HOUR), hours_from)
            if hours_until > hours_from:
                hours = {"from_ts": hours_from, "to_ts": hours_until}
                await connection.execute(CLEAR_STAT_HOURS, hours)
                await connection.execute(ROLL_UP_HOURS, hours)
            await connection.execute(DELETE_OLD_STATS, {"before": not_before})
            await connection.execute(
                SET_STATS_STATE,
                {
                    "rolled_up_until": minutes_to,
                    "counted_until": counted_until,
                    "hours_until": hours_until,
                    "now": now,
                },
            )
        return RollupStep(minutes_from, minutes_to, counted_until, hours_until, caught_up=minutes_to >= now_minute)

    @staticmethod
    async def recompute_minutes(connection: AsyncConnection, minutes_from: datetime, minutes_to: datetime) -> None:
        """Replace the minute rows of [minutes_from, minutes_to) by what the journal holds for those minutes (in the
        caller's transaction; the watermarks are the caller's business)."""
        if minutes_to > minutes_from:
            span = {"from_ts": minutes_from, "to_ts": minutes_to}
            await connection.execute(CLEAR_STAT_MINUTES, span)
            await connection.execute(
                ROLL_UP_MINUTES,
                {**span, "bounds": list(BUCKET_BOUNDS), "direction": None, "channel": None, "topics": None},
            )

    async def keep_rolling_up(self) -> None:
        """Background task of a process with workers: roll up now, then every ROLLUP_INTERVAL_S; never dies (the
        database may be down for a while: the next run catches up)."""
        while True:
            try:
                steps = await self.roll_up()
                if len(steps) > 1:
                    log.info(
                        "processing stats caught up to %s in %d steps",
                        steps[-1].minutes_to.isoformat(),
                        len(steps),
                        extra={"action": "stats_caught_up", "steps": len(steps)},
                    )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("processing stats rollup: %s", exc, extra={"action": "stats_rollup_error"})
            await asyncio.sleep(ROLLUP_INTERVAL_S)
