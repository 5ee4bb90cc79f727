"""The journal's full references: a message stored with its ``refs`` full (it names MAX_REFERENCES order numbers
and SKUs or more — a FULL stock page names 5,000) is indexed here, after it is stored, so that the journal finds it
by any of them (app/data/references.py says how a search reads them).

Off the ingest path on purpose: reading the 5,000 SKUs of a page out of its payload and indexing them costs ~20 ms
of database time (bench/ingest.py --full-page-skus 5000 measures it). Every process with workers runs
``keep_indexing``: one message per statement (FOR UPDATE SKIP LOCKED: replicas share the queue), back to back while
messages wait, polling every POLL_S once none does. The bus comes first: while inbound messages wait for a worker,
only those queued more than DEFER_S ago are indexed; meanwhile a search reads the payloads of the newest waiting
messages itself (PENDING_SEARCHED of them), so a message is found from the moment it is stored.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from app.clock import Clock
from app.data.references import INDEX_PENDING_REFERENCES
from app.data.sql import PlainStatement
from app.db import Database

log = logging.getLogger(__name__)

POLL_S = 1.0  # how often an idle indexer looks for messages to index
DEFER_S = 60.0  # the longest a message waits for the bus to be idle before it is indexed anyway
BATCH = 1  # messages per statement: a FULL page's references take ~20 ms, and the bus may need the database next
_INDEX = PlainStatement.of(INDEX_PENDING_REFERENCES)


class ReferenceIndexer:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def index_next(self) -> int:
        """Index the next waiting message, if one may be now; how many were taken off the queue (0: none)."""
        deferred_before = self.clock.now() - timedelta(seconds=DEFER_S)
        async with self.db.bus_connection() as connection:  # one self-committing statement
            row = await connection.fetchrow(_INDEX.sql, *_INDEX.values(deferred_before=deferred_before, batch=BATCH))
        assert row is not None
        return int(row["taken"])

    async def index_all(self) -> int:
        """Index every message that may be now (tests, the bench); how many were taken."""
        taken = 0
        while count := await self.index_next():
            taken += count
        return taken

    async def keep_indexing(self) -> None:
        """Background task of a process with workers; never dies (the database may be down for a while)."""
        while True:
            try:
                if await self.index_next():
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("journal references: %s", exc, extra={"action": "references_index_error"})
            await asyncio.sleep(POLL_S)
