"""Each command of the seed (the Magento module's `bin/magento oms:*`) has its `oms-connector` equivalent (issue #16,
item 6; the table in the README), each run here or in its own module as a real subprocess:

    oms:service-bus:register                 register                        here
    oms:catalog-export:status | run [-s]     catalog-export status | run     test_catalog_export_cli.py
      [--cancel]                               [-s | --schedule-only] [--cancel]
    oms:orders:sync [N]                      orders sync [N]                 test_orders_cli.py
    oms:queue:prune                          journal prune [--older-than]    here
    oms:stock:reset                          stock reset                     test_stock_reset.py
"""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta

from app import __version__
from app.db import DatabaseUrl
from tests.integration.test_cli import run
from tests.support.stub_oms import REGISTER, StubOms

PARITY = {
    "oms:service-bus:register": ["register"],
    "oms:catalog-export:status": ["catalog-export", "status"],
    "oms:catalog-export:run": ["catalog-export", "run"],
    "oms:orders:sync": ["orders", "sync"],
    "oms:queue:prune": ["journal", "prune"],
    "oms:stock:reset": ["stock", "reset"],
}


async def test_every_seed_command_has_its_oms_connector_command():
    helps = await asyncio.gather(*(asyncio.to_thread(run, [*command, "--help"]) for command in PARITY.values()))
    for (seed, command), result in zip(PARITY.items(), helps, strict=True):
        assert result.returncode == 0, (seed, result.stderr)
        assert re.search(rf"Usage: .* {' '.join(command)} ", result.stdout), (seed, result.stdout[:300])
    options = dict(zip(PARITY, helps, strict=True))
    for flag in ("-s", "--schedule-only", "--cancel"):
        assert flag in options["oms:catalog-export:run"].stdout
    assert "--older-than" in options["oms:queue:prune"].stdout and "--dry-run" in options["oms:queue:prune"].stdout
    assert "[LIMIT]" in options["oms:orders:sync"].stdout.upper()


async def test_register_registers_this_connector_with_the_oms_like_oms_service_bus_register(raw, database_url):
    with StubOms() as oms:
        result = await asyncio.to_thread(
            run,
            ["register"],
            DATABASE_URL=database_url.libpq,
            RUN_MIGRATIONS="false",
            OMS_URL=oms.rpc_url,
            OMS_APPLICATION_BASE_URL="https://connector.example",
            OMS_SECRET="parity-secret",
        )
        registration = oms.registration()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("register: ok")
    assert registration is not None and registration.method == REGISTER
    assert registration.params == {
        "id": "mdc",
        "url": "https://connector.example/oms/rpc",
        "secret": "parity-secret",
        "version": __version__,
        "labels": {},
    }
    state = await raw.fetchrow("SELECT registered_url, registered_version FROM integration_state WHERE id = 1")
    assert (state["registered_url"], state["registered_version"]) == ("https://connector.example/oms/rpc", __version__)


async def test_journal_prune_deletes_the_old_finished_messages_like_oms_queue_prune(raw, database_url: DatabaseUrl):
    now = datetime.now(UTC)
    for status, age in (("succeeded", 40), ("failed", 40), ("queued", 40), ("succeeded", 20)):
        await raw.execute(
            """
            INSERT INTO message (direction, channel, topic, external_id, lane, payload, status, next_attempt_at,
                                 created_at, finished_at)
            VALUES ('in', 'oms', 't', $1, 't', '{}', $2::message_status, $3::timestamptz, $3::timestamptz,
                    CASE WHEN $2 <> 'queued' THEN $3::timestamptz END)
            """,
            uuid.uuid4().hex,
            status,
            now - timedelta(days=age),
        )
    await raw.execute("UPDATE message_stat_state SET counted_until = $1", now)  # the report counted them
    env = {"DATABASE_URL": database_url.libpq, "RUN_MIGRATIONS": "false"}

    dry = await asyncio.to_thread(run, ["journal", "prune", "--older-than", "30d", "--dry-run"], **env)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("journal prune (dry run): would delete 2 messages created and finished before")
    assert await raw.fetchval("SELECT count(*) FROM message") == 4

    done, too_short = await asyncio.gather(
        asyncio.to_thread(run, ["journal", "prune"], **env),
        asyncio.to_thread(run, ["journal", "prune", "--older-than", "2d"], **env),
    )
    assert done.returncode == 0, done.stderr
    assert "deleted 2 messages" in done.stdout and "(30 days)" in done.stdout and "kept 1 pending" in done.stdout
    assert too_short.returncode == 2 and "at least 3d" in too_short.stderr
    left = await raw.fetch("SELECT status::text FROM message WHERE topic = 't' ORDER BY id")
    assert [row["status"] for row in left] == ["queued", "succeeded"]
