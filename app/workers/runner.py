"""Runs the bus: named asyncio tasks for inbound workers, outbound senders, and the LISTEN/NOTIFY wake-up.

A supervisor stops everything if a side task dies; shutdown stops claiming, lets in-flight messages finish
within a grace period, then cancels (an inbound transaction then rolls back and the message stays queued; an
outbound lease expires and the message is sent again with the same id).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg

from app.data.bus import BUS_CHANNEL
from app.db import Database, is_connection_error
from app.errors import StorageUnavailable
from app.workers.bus import Bus

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 2.0  # fallback when a notification is missed, and for retries coming due
ERROR_BACKOFF_S = 1.0  # pause after an unexpected error (e.g. the database is down)
MAX_ERROR_BACKOFF_S = 10.0
LISTEN_RECONNECT_S = 1.0
SHUTDOWN_GRACE_S = 10.0


class Wakeup:
    """Wakes one waiting worker per notification; a worker that finds work wakes the next one (``_loop``), so a
    burst gets every worker while a single message wakes a single worker (waking all of them made each message
    cost one empty claim per worker). A notification with nobody waiting is kept (one permit), so a worker that
    was just about to wait does not miss it."""

    def __init__(self) -> None:
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._permit = False

    def notify(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._permit = True

    def notify_all(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        self._permit = True

    async def wait(self, timeout_s: float) -> None:
        if self._permit:
            self._permit = False
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout_s)
        except TimeoutError:
            pass
        finally:
            if not waiter.done():
                waiter.cancel()
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)


class Wakeups:
    """One Wakeup per kind of worker: ``in`` (inbound) and ``out/<channel>``. A notification names the kinds of
    what was stored (``in/oms,out/commerce``: the insert trigger of migration 0014) and wakes one worker of each of
    them; an empty one (NOTIFY_BUS: a gate released messages) wakes one of every kind."""

    def __init__(self) -> None:
        self.kinds: dict[str, Wakeup] = {}

    def of(self, kind: str) -> Wakeup:
        return self.kinds.setdefault(kind, Wakeup())

    def notify(self, payload: str = "") -> None:
        if not payload:
            for wakeup in self.kinds.values():
                wakeup.notify()
            return
        for stored in set(payload.split(",")):
            kind = "in" if stored.startswith("in/") else stored
            if (wakeup := self.kinds.get(kind)) is not None:
                wakeup.notify()

    def notify_all(self) -> None:
        for wakeup in self.kinds.values():
            wakeup.notify_all()


class WorkerPool:
    def __init__(self, bus: Bus, db: Database, *, inbound: int, outbound: int) -> None:
        self.bus = bus
        self.db = db
        self.inbound = inbound
        self.outbound = outbound
        self.wakeups = Wakeups()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._listener is not None:  # already started (e.g. by Runtime.start before run_until_stopped)
            return
        self._listener = asyncio.create_task(self._listen(), name="bus-listener")
        for index in range(self.inbound):
            self._tasks.append(
                asyncio.create_task(
                    self._loop(self.bus.process_next_inbound, self.wakeups.of("in")), name=f"bus-inbound-{index}"
                )
            )
        for channel in self.bus.senders:
            for index in range(self.outbound):
                step = _outbound_step(self.bus, channel)
                wakeup = self.wakeups.of(f"out/{channel}")
                self._tasks.append(
                    asyncio.create_task(self._loop(step, wakeup), name=f"bus-outbound-{channel}-{index}")
                )
        log.info(
            "workers started",
            extra={"action": "start_workers", "inbound": self.inbound, "outbound": self.outbound},
        )

    async def stop(self, grace_s: float = SHUTDOWN_GRACE_S) -> None:
        self._stopping.set()
        self.wakeups.notify_all()
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        log.info("workers stopped", extra={"action": "stop_workers"})

    async def run_until_stopped(self) -> None:
        """Run until ``stop`` is called or a task dies (the supervisor: a dead task stops the pool)."""
        await self.start()
        stopper = asyncio.create_task(self._stopping.wait(), name="bus-stop-signal")
        watched: set[asyncio.Task[object]] = {stopper, *self._tasks}
        if self._listener is not None:
            watched.add(self._listener)
        done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if stopper not in done:
            for task in done:
                if task.exception() is not None:
                    log.error("worker task died", exc_info=task.exception(), extra={"action": "task_died"})
            await self.stop()

    async def _loop(self, step: Callable[[], Awaitable[object]], wakeup: Wakeup) -> None:
        backoff = ERROR_BACKOFF_S
        while not self._stopping.is_set():
            try:
                # A shutdown lets the current step finish (stop() waits SHUTDOWN_GRACE_S before cancelling); a
                # cancelled step is safe: an inbound transaction rolls back, an outbound lease expires.
                did_work = await step()
                backoff = ERROR_BACKOFF_S
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if isinstance(exc, StorageUnavailable) or is_connection_error(exc):
                    log.warning("database unavailable: %s", exc, extra={"action": "db_unavailable"})
                else:
                    log.exception("worker step failed", extra={"action": "worker_error"})
                await wakeup.wait(backoff)
                backoff = min(MAX_ERROR_BACKOFF_S, backoff * 2)
                continue
            if did_work:  # there may be more (a sender says so only when it may: Bus.outbound_step)
                wakeup.notify()  # bring a sibling in (it goes back to sleep if there is nothing)
            else:
                await wakeup.wait(POLL_INTERVAL_S)

    async def _listen(self) -> None:
        """Keep a LISTEN connection open; reconnect when the database restarts (polling covers the gap)."""
        while not self._stopping.is_set():
            connection: asyncpg.Connection | None = None
            try:
                connection = await self.db.raw_connection()
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _c, lost=lost: lost.set())
                await connection.add_listener(BUS_CHANNEL, lambda *args: self.wakeups.notify(args[-1]))
                self.wakeups.notify_all()  # anything stored while we were not listening
                while not lost.is_set() and not self._stopping.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), POLL_INTERVAL_S * 5)
                    if not lost.is_set() and connection.is_closed():
                        break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.info("bus listener reconnecting: %s", exc, extra={"action": "listener_reconnect"})
            finally:
                if connection is not None and not connection.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(connection.close(), 2)
            await asyncio.sleep(LISTEN_RECONNECT_S)


def _outbound_step(bus: Bus, channel: str) -> Callable[[], Awaitable[bool]]:
    async def step() -> bool:
        return await bus.outbound_step(channel)

    return step
