"""Orders pulled from Adobe Commerce, so that an order the store never posted (its observer failed, a deploy, a
network blip) is exported all the same: the safety net under ``POST /orders``.

Every ADOBE_COMMERCE_ORDER_POLL_S one replica (a session advisory lock; the schedule, ``order_pull.next_poll_at``,
is shared) asks ``GET /V1/orders`` for the orders updated since its **cursor** — the ``updated_at`` and
``entity_id`` of the last order fully handled — in keyset pages (app/protocol/order_search.py) of
ADOBE_COMMERCE_ORDER_PAGE_SIZE, at most ADOBE_COMMERCE_ORDER_MAX_PAGES per poll (the next poll follows at once when
there is more). Each poll reads again from ADOBE_COMMERCE_ORDER_OVERLAP_S before the cursor: ``updated_at`` has
one-second resolution and no zone (it is UTC in Adobe Commerce's REST API), and an order saved just before another
may commit after it, so it can appear behind the cursor after the cursor has passed its time.

Each order goes the way of ``POST /orders`` (app/services/order_feed.py: ``OrderService.accept``, always queued to
the outbox, never sent inline): a new order is stored and exported when its status is exportable, else held; a known
one is stored again and a held one whose status became exportable is exported; an order with an export is never
exported again (the service decides under the order's row lock, so a pull and a post of one order at once export it
once). Orders the connector already has as they are (same ``updated_at``, same status: posted by the store, or read
in an earlier poll's overlap) are left alone without being parsed.

The cursor moves after each page, to the last order handled, and only forward. A failure — Adobe Commerce down or
refusing the token (5xx, 401, a timeout), the database, a line-attribute plugin — ends the poll where it is: the
cursor stays on the last order handled (the failing one is read again), the failure is journaled (one entry per
failure under way, ``retrying`` with its attempts, next try and last error; ``succeeded`` once a poll works again)
and the poll is tried again with backoff (BACKOFF_MIN_S doubling to BACKOFF_MAX_S, with jitter; Retry-After
honoured). An order that cannot be exported as it is (what ``POST /orders`` answers 422, or an order without a
readable ``updated_at`` / ``entity_id``) does not stop the pull: it is journaled ``rejected`` with the reason (once
per content) and the cursor moves past it. It comes back when the store saves it again (its ``updated_at`` moves),
or with ``oms-connector orders pull --since``.

Bounded: a page answer is read up to MAX_PAGE_BYTES (a larger one is asked again in half-size pages), at most
FEED_CONCURRENCY orders of a page are handled at once (app/services/order_feed.py), and a poll reads at most
ADOBE_COMMERCE_ORDER_MAX_PAGES pages.

A cursor never set starts at the store's most recently updated order (and its overlap): a pull switched on for a
store with years of orders does not export them all. ``oms-connector orders pull --since TIME`` reads (and exports)
everything updated since TIME; it moves the cursor forward too, never back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import TextClause

from app.clients.commerce import CommerceClient, OrdersPage
from app.clock import Clock
from app.data.order_pull import (
    FAILED_AGAIN,
    FAILURE_OVER,
    JOURNAL_PULL_ENTRY,
    MOVE_CURSOR,
    POLL_FAILED,
    POLL_SUCCEEDED,
    PULL_STATE,
    START_POLL,
    TAKE_PULL_LOCK,
    TRY_PULL_LOCK,
)
from app.data.sql import positional
from app.db import Database
from app.errors import AnswerTooLarge, ConnectorError, NotConfigured, PeerRejected, PeerUnavailable
from app.models import Status
from app.protocol.order_search import BEGINNING, OrderKey, UnplacedOrder, order_key, overlapped, whole_second
from app.services.order_feed import PULL_CHANNEL, Fed, OrderFeed, order_number, storable_text
from app.services.orders import OrderService
from app.settings import Settings

log = logging.getLogger(__name__)

PULL_TOPIC = "connector.orders.pull"  # a poll that did something, or the failure under way, is journaled here
# pg_try_advisory_lock key of the order pull: above 2^31, so no hashtext() value can ever be it.
PULL_LOCK_KEY = 0x6F6D_735F_7075_6C6C  # "oms_pull"
MAX_PAGE_BYTES = 64 * 1024 * 1024  # of one page's answer (100 orders are a few MB); larger: pages of half the size
CHECK_S = 5.0  # how often a process with workers looks whether a poll is due (at most the poll interval)
BACKOFF_MIN_S = 5.0  # after a failed poll: the first retry (at most the poll interval), doubling …
BACKOFF_MAX_S = 300.0  # … up to this
ERROR_CHARS = 1000  # of a failure's text, as stored
BEGINNING_KEY = OrderKey(BEGINNING, 0)  # the cursor of a store that had no order when the pull started
MAX_REFUSED_LISTED = 20  # orders refused named in a poll's result (the journal has them all) …
REFUSED_REASON_CHARS = 300  # … with the start of the reason


@dataclass
class PullResult:
    """What one poll (or one `orders pull`) read and did."""

    trigger: str  # poll (the workers) | operator (`oms-connector orders pull`)
    started_at: datetime
    since: datetime | None = None  # the first page read orders updated at or after this
    pages: int = 0
    read: int = 0  # orders in the pages read
    new: int = 0  # stored for the first time
    changed: int = 0  # known, and something changed: handled again
    unchanged: int = 0  # known as they are: left alone
    exported: int = 0  # of the new and changed: export queued now
    held: int = 0  # of the new and changed: held (status not exportable)
    rejected: int = 0  # refused (journaled with the reason)
    more: bool = False  # the page cap ended the poll: more orders wait
    cursor: OrderKey | None = None  # the cursor afterwards
    error: str | None = None  # the poll failed (it is tried again with backoff)
    seconds: float = 0.0
    journal_id: int | None = None  # its journal entry (none when it found nothing to do)
    refused: list[dict[str, str]] = field(default_factory=list)  # the first orders refused, with the reason

    @property
    def acted(self) -> bool:
        return bool(self.new or self.changed or self.rejected)

    def summary(self) -> dict[str, Any]:
        """As journaled and shown on /integration (JSON)."""
        summary = {key: value for key, value in asdict(self).items() if key not in ("cursor", "journal_id")}
        summary["cursor"] = _cursor_json(self.cursor)
        return json.loads(json.dumps(summary, default=str))


@dataclass(frozen=True)
class PullState:
    cursor: OrderKey | None
    next_poll_at: datetime | None
    failures: int
    failure_message_id: int | None
    resume: bool  # the last poll was ended by the page cap: the next one goes on after the cursor (no overlap)


class OrderPull:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: Settings,
        orders: OrderService,
        commerce: CommerceClient | None,
        *,
        max_page_bytes: int = MAX_PAGE_BYTES,
        check_s: float | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.orders = orders  # in async mode: a poll queues its exports, it never waits for OMS round trips
        self.feeder = OrderFeed(db, clock, settings, orders)
        self.commerce = commerce
        self.max_page_bytes = max_page_bytes
        poll_s = settings.adobe_commerce_order_poll_s
        if check_s is None:
            check_s = min(CHECK_S, poll_s) if poll_s > 0 else CHECK_S
        self.check_s = check_s
        self.rng = rng or random.Random()

    # --- entry points ----------------------------------------------------------------------------------------
    async def pull(self, since: datetime | None = None) -> PullResult:
        """``oms-connector orders pull [--since]``: read until caught up (from ``since``, else from the cursor),
        waiting for a poll under way to end first. A failure is recorded as a poll's is, and set in ``error``."""
        self._require()
        connection = await self.db.raw_connection()
        try:
            await connection.fetchval(*_positional(TAKE_PULL_LOCK, key=PULL_LOCK_KEY))
            return await self._run("operator", since=since, max_pages=None)
        finally:
            await connection.close()  # releases the lock

    async def pull_if_due(self) -> PullResult | None:
        """One poll, if it is due and no replica is polling (None otherwise)."""
        self._require()
        connection = await self.db.raw_connection()
        try:
            if not await connection.fetchval(*_positional(TRY_PULL_LOCK, key=PULL_LOCK_KEY)):
                return None  # another replica (or an operator's `orders pull`) is at it
            state = await self.state()
            if state.next_poll_at is not None and state.next_poll_at > self.clock.now():
                return None
            return await self._run("poll", since=None, max_pages=self.settings.adobe_commerce_order_max_pages)
        finally:
            await connection.close()

    async def keep_pulling(self) -> None:
        """Background task of a process with workers (ADOBE_COMMERCE_ORDER_POLL_S > 0): poll when due."""
        while True:
            more = False
            try:
                result = await self.pull_if_due()
                more = result is not None and result.more and result.error is None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is down, say: the next check tries again, never die
                log.warning("order pull: %s", exc, extra={"action": "order_pull_error"})
            if not more:  # more: the page cap ended the poll, the next one is due now
                await asyncio.sleep(self.check_s)

    async def state(self) -> PullState:
        async with self.db.connect() as connection:
            row = (await connection.execute(PULL_STATE)).one()
        cursor = None
        if row.cursor_updated_at is not None:
            cursor = OrderKey(row.cursor_updated_at, row.cursor_entity_id or 0)
        resume = row.last_outcome == "succeeded" and bool((row.last_result or {}).get("more"))
        return PullState(cursor, row.next_poll_at, row.failures, row.failure_message_id, resume)

    # --- one poll --------------------------------------------------------------------------------------------
    def _require(self) -> CommerceClient:
        if self.commerce is None:
            raise NotConfigured("Adobe Commerce is not configured (ADOBE_COMMERCE_URL and ADOBE_COMMERCE_TOKEN)")
        return self.commerce

    async def _run(self, trigger: str, *, since: datetime | None, max_pages: int | None) -> PullResult:
        """A poll under the lock: the pages, then what it did (or how it failed) recorded and journaled."""
        started_at = self.clock.now()
        started = time.monotonic()
        await self._execute(START_POLL, now=started_at)
        state = await self.state()
        result = PullResult(trigger=trigger, started_at=started_at, cursor=state.cursor)
        failure: Exception | None = None
        try:
            await self._read(result, state, since, max_pages)
        except Exception as exc:  # whatever it is, the poll is recorded as failed and tried again
            failure = exc
        result.seconds = round(time.monotonic() - started, 3)
        if failure is None:
            await self._succeeded(result, state)
        else:
            await self._failed(result, state, failure)
        return result

    async def _read(self, result: PullResult, state: PullState, since: datetime | None, max_pages: int | None) -> None:
        """Read pages from ``since`` (else from the cursor, less the overlap; right after the cursor when the last
        poll was ended by the page cap, so that a backlog larger than the overlap cannot hold the pull in place)
        until caught up or ``max_pages``."""
        commerce = self._require()
        after: OrderKey | None = None
        if since is not None:
            start = whole_second(since)
        elif state.cursor is not None and state.resume:
            start, after = state.cursor.updated_at, state.cursor
        else:
            start = overlapped(state.cursor or await self._anchor(commerce, result), self.overlap_s)
        result.since = start
        page_size = self.settings.adobe_commerce_order_page_size
        while True:
            if max_pages is not None and result.pages >= max_pages:
                result.more = True
                return
            page, page_size = await self._page(commerce, start, after, page_size)
            result.pages += 1
            result.read += len(page.items)
            last = await self._feed(page.items, result)
            full = len(page.items) >= page_size and page.total_count > len(page.items)
            if last is None:
                if full:
                    raise PeerRejected("Adobe Commerce answered a full page of orders without one readable order key")
                return
            if after is not None and last <= after:  # a keyset page that does not move on would loop forever
                raise PeerRejected(
                    f"Adobe Commerce answered GET /orders with orders not after {after.describe()}: "
                    "it did not apply the search's filters or sort orders"
                )
            after = last
            if not full:
                return

    @property
    def overlap_s(self) -> float:
        return self.settings.adobe_commerce_order_overlap_s

    async def _anchor(self, commerce: CommerceClient, result: PullResult) -> OrderKey:
        """Where a pull that never ran starts: the store's most recently updated order (the beginning when it has
        none yet, so that its first orders are all read). Stored as the cursor at once."""
        newest = await commerce.newest_order(max_bytes=self.max_page_bytes)
        try:
            key = BEGINNING_KEY if newest is None else order_key(newest)
        except UnplacedOrder as exc:
            raise PeerRejected(f"Adobe Commerce's most recently updated order has no place: {exc}") from exc
        result.cursor = await self._move_cursor(key) or key
        log.info(
            "order pull starts at %s",
            key.describe(),
            extra={"action": "order_pull_anchor", "cursor": _cursor_json(key)},
        )
        return key

    async def _page(
        self, commerce: CommerceClient, since: datetime, after: OrderKey | None, page_size: int
    ) -> tuple[OrdersPage, int]:
        """One page, and the page size it was read with: an answer over ``max_page_bytes`` is asked again with
        half the size (down to one order; then the poll fails naming the bound)."""
        while True:
            try:
                page = await commerce.orders_page(
                    since=since, after=after, page_size=page_size, max_bytes=self.max_page_bytes
                )
                return page, page_size
            except AnswerTooLarge:
                if page_size == 1:
                    raise
                page_size = max(1, page_size // 2)
                log.info(
                    "order page too large: asking for %d orders a page",
                    page_size,
                    extra={"action": "order_pull_page_size", "page_size": page_size},
                )

    async def _feed(self, items: Sequence[Any], result: PullResult) -> OrderKey | None:
        """Handle the orders of a page (app/services/order_feed.py), in page order, and move the cursor to the last
        one handled. Returns that order's key (None: none has one); raises the first failure, once the cursor is on
        the order before it (orders after it handled meanwhile are read again next time: nothing acts twice)."""
        keys: list[OrderKey | None] = []
        unplaced: dict[int, str] = {}
        for index, item in enumerate(items):
            try:
                keys.append(order_key(item))
            except UnplacedOrder as exc:
                keys.append(None)
                unplaced[index] = str(exc)
        fed = await self.feeder.feed(items, keys, unplaced)
        last: OrderKey | None = None
        for item, key, outcome in zip(items, keys, fed, strict=True):
            if outcome.failure is not None:
                if last is not None:
                    result.cursor = await self._move_cursor(last) or result.cursor
                raise outcome.failure
            _count(result, outcome, item)
            if key is not None:
                last = key if last is None else max(last, key)
        if last is not None:
            result.cursor = await self._move_cursor(last) or result.cursor
        return last

    # --- what a poll leaves behind ---------------------------------------------------------------------------
    async def _move_cursor(self, key: OrderKey) -> OrderKey | None:
        """The cursor to ``key`` unless it is further already; the cursor moved to (None: it did not move)."""
        async with self.db.connect() as connection:
            row = (
                await connection.execute(MOVE_CURSOR, {"updated_at": key.updated_at, "entity_id": key.entity_id})
            ).first()
        return OrderKey(row.cursor_updated_at, row.cursor_entity_id) if row is not None else None

    async def _succeeded(self, result: PullResult, state: PullState) -> None:
        now = self.clock.now()
        poll_s = self.settings.adobe_commerce_order_poll_s
        next_poll_at = now if result.more or poll_s <= 0 else now + timedelta(seconds=poll_s)
        summary = result.summary()
        if state.failure_message_id is not None:  # the failure under way is over: its entry says how it ended
            await self._execute(
                FAILURE_OVER,
                id=state.failure_message_id,
                result=json.dumps(summary),
                now=now,
                started_at=result.started_at,
                duration_ms=int(result.seconds * 1000),
            )
            result.journal_id = state.failure_message_id
        elif result.acted or result.trigger == "operator":
            result.journal_id = await self._journal(result, Status.SUCCEEDED, summary, finished_at=now)
        await self._execute(
            POLL_SUCCEEDED,
            next_poll_at=next_poll_at,
            now=now,
            result=json.dumps(summary),
            message_id=result.journal_id,
        )
        if result.acted or result.trigger == "operator":
            log.info(
                "orders pulled: %d read in %d pages, %d new, %d changed, %d exported, %d refused",
                result.read,
                result.pages,
                result.new,
                result.changed,
                result.exported,
                result.rejected,
                extra={"action": "order_pull", **{k: summary[k] for k in ("read", "new", "changed", "exported")}},
            )

    async def _failed(self, result: PullResult, state: PullState, failure: Exception) -> None:
        """Record a failed poll: the failure under way gets one more attempt (or is journaled), the next try is
        put off by the backoff."""
        now = self.clock.now()
        error = _describe(failure)[:ERROR_CHARS]
        result.error = error
        failures = state.failures + 1
        retry_after = failure.retry_after_s if isinstance(failure, PeerUnavailable) else None
        next_poll_at = now + timedelta(seconds=self.backoff_s(failures, retry_after))
        summary = result.summary()
        message_id: int | None = None
        if state.failure_message_id is not None:
            async with self.db.connect() as connection:
                message_id = (
                    await connection.execute(
                        FAILED_AGAIN,
                        {"id": state.failure_message_id, "last_error": error, "next_attempt_at": next_poll_at},
                    )
                ).scalar_one_or_none()
        if message_id is None:  # the first failure (or its entry was discarded by an operator)
            message_id = await self._journal(
                result, Status.RETRYING, summary, finished_at=None, last_error=error, next_attempt_at=next_poll_at
            )
        result.journal_id = message_id
        await self._execute(
            POLL_FAILED,
            next_poll_at=next_poll_at,
            message_id=message_id,
            now=now,
            error=error,
            result=json.dumps(summary),
        )
        log.warning(
            "order pull failed (%d in a row), next try at %s: %s",
            failures,
            next_poll_at.isoformat(timespec="seconds"),
            error,
            extra={"action": "order_pull_failed", "failures": failures, "message_id": message_id},
        )

    def backoff_s(self, failures: int, retry_after_s: float | None = None) -> float:
        """The wait after ``failures`` failed polls in a row: BACKOFF_MIN_S (at most the poll interval) doubling
        to BACKOFF_MAX_S, keeping a random share between half and all of it; a Retry-After is a lower bound."""
        poll_s = self.settings.adobe_commerce_order_poll_s
        base = min(BACKOFF_MIN_S, poll_s) if poll_s > 0 else BACKOFF_MIN_S
        delay = min(BACKOFF_MAX_S, base * 2.0 ** min(failures - 1, 32)) * (0.5 + 0.5 * self.rng.random())
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, BACKOFF_MAX_S))
        return delay

    async def _journal(
        self,
        result: PullResult,
        status: Status,
        summary: dict[str, Any],
        *,
        finished_at: datetime | None,
        last_error: str | None = None,
        next_attempt_at: datetime | None = None,
    ) -> int | None:
        async with self.db.connect() as connection:
            return (
                await connection.execute(
                    JOURNAL_PULL_ENTRY,
                    {
                        "channel": PULL_CHANNEL,
                        "topic": PULL_TOPIC,
                        "external_id": f"{self.settings.oms_application_id}-order-pull-{uuid.uuid4().hex}",
                        "payload": json.dumps({"trigger": result.trigger, "since": _iso(result.since)}),
                        "refs": [],
                        "status": status.value,
                        "last_error": last_error,
                        "result": json.dumps(summary),
                        "next_attempt_at": next_attempt_at or result.started_at,
                        "started_at": result.started_at,
                        "finished_at": finished_at,
                        "duration_ms": int(result.seconds * 1000),
                    },
                )
            ).scalar_one_or_none()

    async def _execute(self, clause: TextClause, **params: Any) -> None:
        async with self.db.connect() as connection:
            await connection.execute(clause, params)


def _count(result: PullResult, fed: Fed, item: Any) -> None:
    if fed.outcome == "new":
        result.new += 1
    elif fed.outcome == "changed":
        result.changed += 1
    elif fed.outcome == "unchanged":
        result.unchanged += 1
    else:
        result.rejected += 1
        if len(result.refused) < MAX_REFUSED_LISTED:
            reason = storable_text(fed.reason or "")[:REFUSED_REASON_CHARS]
            result.refused.append({"increment_id": order_number(item) or "", "reason": reason})
    result.exported += int(fed.exported)
    result.held += int(fed.held)


def _describe(failure: BaseException) -> str:
    if isinstance(failure, ConnectorError):
        return failure.message
    return f"{failure.__class__.__name__}: {failure}"


def _cursor_json(key: OrderKey | None) -> dict[str, Any] | None:
    return None if key is None else {"updated_at": key.updated_at.isoformat(), "entity_id": key.entity_id}


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _positional(clause: TextClause, **params: Any) -> tuple[Any, ...]:
    """A named statement and its parameters for a plain asyncpg connection."""
    sql, names = positional(clause)
    return (sql, *[params[name] for name in names])
