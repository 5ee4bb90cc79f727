"""`oms-connector catalog-export status | run [-s | --schedule-only] [--cancel]` (the seed's oms:catalog-export:*)
as operators run them, against a stub OMS on loopback."""

from __future__ import annotations

import asyncio
from collections import Counter

import asyncpg

from app.db import DatabaseUrl
from tests.integration.test_cli import run
from tests.support.stub_oms import StubOms

UPDATED = "magento.catalog.product_management.updated"


async def test_catalog_export_run_schedule_status_and_cancel(raw: asyncpg.Connection, database_url: DatabaseUrl):
    await raw.execute(
        """
        INSERT INTO catalog_product (sku, type, name, enabled, created_at, updated_at)
        SELECT 'SKU-' || n, 'simple', 'Product ' || n, true, now(), now() FROM generate_series(1, 30) AS n
        """
    )
    with StubOms() as oms:
        env = {"DATABASE_URL": database_url.libpq, "RUN_MIGRATIONS": "false", "OMS_URL": oms.rpc_url,
               "OMS_CATALOG_BATCH_SIZE": "7", "OMS_SECRET": "cli-test-secret"}  # fmt: skip

        def cli(*args: str):  # type: ignore[no-untyped-def]
            return asyncio.to_thread(run, ["catalog-export", *args], **env)

        both = await cli("run", "-s", "--schedule-only")
        assert both.returncode == 2 and "not both" in both.stderr
        assert (await cli("status")).returncode == 1  # none yet

        scheduled = await cli("run", "-s")
        assert scheduled.returncode == 0, scheduled.stderr
        assert "pending" in scheduled.stdout
        busy = await cli("run")
        assert busy.returncode == 1 and "already pending" in busy.stderr
        canceled = await cli("run", "--cancel")
        assert canceled.returncode == 0 and "canceled" in canceled.stdout
        assert oms.calls_of(UPDATED) == []

        done = await cli("run")
        assert done.returncode == 0, done.stderr
        assert "done; 30 products sent, batches 5/5 acknowledged (of 7)" in done.stdout
        status = await cli("status")
        assert "done" in status.stdout
        received = Counter(call.params["product"]["sku"] for call in oms.calls_of(UPDATED))
        assert received == Counter({f"SKU-{n}": 1 for n in range(1, 31)})
