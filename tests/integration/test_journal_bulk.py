"""Bulk retry and discard (issue #16, item 5): `POST /journal/retry` and `POST /journal/discard` act on every message
the filters of GET /journal match (at most 100,000), oldest first, each message as its single action would — an
order's calls keep waiting for its create — and every lane keeps its order."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import respx

from app.runtime import Runtime
from tests.support.handlers import TEST_TOPICS
from tests.support.orders import commerce_order, order_body
from tests.support.recording_oms import CREATE, RecordingOms
from tests.support.signing import COMMERCE_TOKEN, operator_headers

AUTH = operator_headers()
LANE = TEST_TOPICS[1]
OTHER = TEST_TOPICS[2]
OMS_URL = "http://oms.test/api/"


async def stored(
    raw: asyncpg.Connection,
    *,
    status: str = "failed",
    topic: str = LANE,
    lane: str | None = None,
    direction: str = "in",
    channel: str = "oms",
    refs: list[str] | None = None,
    payload: str = "{}",
    created: datetime | None = None,
    external_id: str | None = None,
) -> int:
    return await raw.fetchval(
        """
        INSERT INTO message (direction, channel, topic, external_id, lane, payload, refs, status, last_error,
                             next_attempt_at, created_at, finished_at)
        VALUES ($1::message_direction, $2, $3, $4, $5, $6::jsonb, $7, $8::message_status, 'it broke',
                coalesce($9, now()), coalesce($9, now()),
                CASE WHEN $8 IN ('succeeded', 'failed', 'dead', 'discarded', 'rejected') THEN now() END)
        RETURNING id
        """,
        direction, channel, topic, external_id or uuid.uuid4().hex, lane or topic, payload, refs or [], status,
        created,
    )  # fmt: skip


async def statuses(raw: asyncpg.Connection, *ids: int) -> list[str]:
    rows = await raw.fetch("SELECT id, status::text FROM message WHERE id = ANY($1::bigint[])", list(ids))
    found = {row["id"]: row["status"] for row in rows}
    return [found[message_id] for message_id in ids]


async def bulk(client: httpx.AsyncClient, action: str, **body: Any) -> dict[str, Any]:
    response = await client.post(f"/journal/{action}", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def outcomes(answer: dict[str, Any]) -> dict[str, list[int]]:
    return {outcome["outcome"]: outcome["first_ids"] for outcome in answer["outcomes"]}


async def test_a_bulk_retry_queues_every_failed_dead_or_retrying_message_the_filter_matches(client, raw):
    chosen = [await stored(raw, status=status) for status in ("failed", "dead", "retrying")]
    untouched = [await stored(raw, status=status) for status in ("succeeded", "queued", "discarded", "rejected")]
    other_topic = await stored(raw, topic=OTHER)

    answer = await bulk(client, "retry", topic=LANE)

    assert await statuses(raw, *chosen) == ["queued"] * 3
    assert await statuses(raw, *untouched, other_topic) == ["succeeded", "queued", "discarded", "rejected", "failed"]
    assert (answer["matched"], answer["changed"], answer["more"]) == (3, 3, False)
    assert outcomes(answer) == {"queued": chosen}


async def test_a_dry_run_counts_what_a_bulk_action_would_change_and_changes_nothing(client, raw):
    failed = [await stored(raw) for _ in range(3)]
    queued = await stored(raw, status="queued")

    retry = await bulk(client, "retry", topic=LANE, dry_run=True)
    discard = await bulk(client, "discard", topic=LANE, dry_run=True)

    assert (retry["matched"], retry["changed"], retry["dry_run"], retry["outcomes"]) == (3, 0, True, [])
    assert (discard["matched"], discard["changed"]) == (4, 0)
    assert await statuses(raw, *failed, queued) == ["failed", "failed", "failed", "queued"]


async def test_a_bulk_discard_drops_what_has_not_succeeded_never_a_succeeded_or_in_flight_message(client, raw):
    refs = ["100000042"]
    dropped = [
        await stored(raw, status=status, refs=refs, direction="out")
        for status in ("queued", "waiting", "retrying", "failed", "dead")
    ]
    kept = [await stored(raw, status=status, refs=refs, direction="out") for status in ("processing", "succeeded")]
    elsewhere = await stored(raw, status="failed", refs=["100000043"])

    answer = await bulk(client, "discard", reference="100000042", reason="the store canceled it")

    assert await statuses(raw, *dropped) == ["discarded"] * 5
    assert await statuses(raw, *kept, elsewhere) == ["processing", "succeeded", "failed"]
    reasons = await raw.fetch("SELECT DISTINCT last_error FROM message WHERE id = ANY($1::bigint[])", dropped)
    assert [row["last_error"] for row in reasons] == ["discarded by an operator: the store canceled it"]
    assert outcomes(answer) == {"discarded": dropped}


@pytest.mark.parametrize(
    "which",
    ["direction", "topic", "status", "external_id", "reference", "since", "until"],
)
async def test_each_filter_of_the_journal_narrows_a_bulk_action(client, raw, which):
    base = datetime(2026, 11, 1, 12, tzinfo=datetime.now().astimezone().tzinfo)
    common = {"status": "failed", "topic": LANE, "refs": ["A"], "created": base, "direction": "in"}
    target = await stored(raw, **{**common, "external_id": "the-one"})
    others = {
        "direction": await stored(raw, **{**common, "direction": "out"}),
        "topic": await stored(raw, **{**common, "topic": OTHER}),
        "status": await stored(raw, **{**common, "status": "dead"}),
        "external_id": await stored(raw, **common),
        "reference": await stored(raw, **{**common, "refs": ["B"]}),
        "since": await stored(raw, **{**common, "created": base - timedelta(hours=1)}),
        "until": await stored(raw, **{**common, "created": base + timedelta(hours=1)}),
    }
    filters = {
        "direction": {"direction": "in"},
        "topic": {"topic": LANE},
        "status": {"status": "failed"},
        "external_id": {"external_id": "the-one"},
        "reference": {"reference": "A"},
        "since": {"since": base.isoformat()},
        "until": {"until": (base + timedelta(minutes=30)).isoformat()},
    }[which]

    answer = await bulk(client, "discard", **filters)

    assert await statuses(raw, target, others[which]) == ["discarded", "failed" if which != "status" else "dead"]
    assert target in outcomes(answer)["discarded"]
    assert others[which] not in outcomes(answer)["discarded"]


@pytest.mark.parametrize(
    ("action", "body", "field"),
    [
        ("retry", {}, "(body)"),
        ("discard", {"dry_run": True}, "(body)"),
        ("retry", {"topic": ""}, "(body)"),
        ("discard", {"stauts": "dead"}, "stauts"),
        ("retry", {"status": "succeeded"}, "status"),
        ("retry", {"status": "queued"}, "status"),
        ("discard", {"status": "processing"}, "status"),
        ("discard", {"status": "succeeded"}, "status"),
        ("retry", {"topic": "x" * 201}, "topic"),
        ("discard", {"since": "yesterday"}, "since"),
    ],
)
async def test_a_bulk_action_without_a_filter_or_with_a_bad_one_gets_422_and_changes_nothing(
    client, raw, action, body, field
):
    message_id = await stored(raw)
    response = await client.post(f"/journal/{action}", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == [field]
    assert await statuses(raw, message_id) == ["failed"]


async def test_more_than_100000_matching_messages_are_refused_and_a_dry_run_says_so(client, raw):
    await raw.execute(
        """
        INSERT INTO message (direction, channel, topic, external_id, lane, payload, status, next_attempt_at,
                             created_at, finished_at)
        SELECT 'in', 'oms', $1, 'bulk-' || n, $1, '{}', 'failed', now(), now(), now()
          FROM generate_series(1, 100001) AS n
        """,
        LANE,
    )
    for action in ("retry", "discard"):
        response = await client.post(f"/journal/{action}", json={"topic": LANE}, headers=AUTH)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "(filter)"
        assert "more than 100,000 messages match: narrow the filter" in response.json()["detail"]
        dry = await bulk(client, action, topic=LANE, dry_run=True)
        assert (dry["matched"], dry["more"]) == (100_000, True)
    assert await raw.fetchval("SELECT count(*) FROM message WHERE status = 'failed'") == 100_001

    await raw.execute("DELETE FROM message WHERE external_id = 'bulk-1'")
    dry = await bulk(client, "retry", topic=LANE, dry_run=True)
    assert (dry["matched"], dry["more"]) == (100_000, False)


async def test_a_bulk_retry_works_in_batches_and_names_the_oldest_ids(client, raw):
    await raw.execute(
        """
        INSERT INTO message (direction, channel, topic, external_id, lane, payload, status, next_attempt_at,
                             created_at, finished_at)
        SELECT 'in', 'oms', $1, 'many-' || n, $1, '{}', 'dead', now(), now(), now() FROM generate_series(1, 1234) AS n
        """,
        LANE,
    )
    oldest = [row["id"] for row in await raw.fetch("SELECT id FROM message ORDER BY id LIMIT 20")]

    answer = await bulk(client, "retry", status="dead")

    assert (answer["matched"], answer["changed"]) == (1234, 1234)
    [queued] = answer["outcomes"]
    assert (queued["outcome"], queued["count"], queued["first_ids"]) == ("queued", 1234, oldest)
    assert await raw.fetchval("SELECT count(*) FROM message WHERE status = 'queued'") == 1234


async def test_bulk_actions_need_the_operator_token(client, raw):
    message_id = await stored(raw)
    for action in ("retry", "discard"):
        for headers in ({}, {"Authorization": f"Bearer {COMMERCE_TOKEN}"}):
            response = await client.post(f"/journal/{action}", json={"topic": LANE}, headers=headers)
            assert response.status_code == 401, response.text
    assert await statuses(raw, message_id) == ["failed"]


# --- lane order ----------------------------------------------------------------------------------------------
async def test_a_lanes_messages_retried_newest_first_are_still_processed_oldest_first(client, runtime, raw):
    lane = [await stored(raw, payload=f'{{"seq": {n}}}', external_id=f"seq-{n}") for n in range(1, 5)]

    await bulk(client, "retry", external_id="seq-4")  # the newest first, on its own
    await bulk(client, "retry", external_id="seq-3")
    await bulk(client, "retry", topic=LANE)  # then the rest
    while await runtime.bus.process_next_inbound():
        pass

    effects = await raw.fetch("SELECT message_id, seq FROM test_effect ORDER BY at")
    assert [(row["message_id"], row["seq"]) for row in effects] == list(zip(lane, [1, 2, 3, 4], strict=True))


# --- the order gate --------------------------------------------------------------------------------------------
class TestOrderCalls:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"oms_url": OMS_URL}

    @pytest.fixture
    def recording(self, oms: respx.Router) -> RecordingOms:
        fake = RecordingOms()
        oms.post(OMS_URL).mock(side_effect=fake)
        return fake

    async def export(self, runtime: Runtime, raw: asyncpg.Connection, number: str, status: str) -> int:
        """Post order ``number``; its create (the order's export) ends as ``status``."""
        await runtime.orders.accept(order_body(commerce_order(increment_id=number)))
        return await self.set_export(raw, number, status)

    async def set_export(self, raw: asyncpg.Connection, number: str, status: str) -> int:
        create = await raw.fetchval("SELECT export_message_id FROM sales_order WHERE increment_id = $1", number)
        await raw.execute("UPDATE message SET status = $2::message_status WHERE id = $1", create, status)
        return create

    async def test_a_bulk_retry_decides_each_orders_call_as_a_single_retry_would(self, client, runtime, raw):
        # X: its first create refused, `orders sync` queued a second one (which failed too); its cancel waits
        first_x = await self.export(runtime, raw, "X1", "failed")
        await runtime.orders.sync(None)
        second_x = await self.set_export(raw, "X1", "failed")
        cancel_x = (await runtime.order_actions.cancel("X1", "")).message_id
        # Y: the OMS has it; its cancel was refused
        await self.export(runtime, raw, "Y1", "succeeded")
        cancel_y = (await runtime.order_actions.cancel("Y1", "")).message_id
        await raw.execute("UPDATE message SET status = 'failed' WHERE id = $1", cancel_y)
        # Z: its cancel was sent and refused, then its create discarded: a retried cancel must wait again
        await self.export(runtime, raw, "Z1", "succeeded")
        cancel_z = (await runtime.order_actions.cancel("Z1", "")).message_id
        await raw.execute("UPDATE message SET status = 'failed' WHERE id = $1", cancel_z)
        await self.set_export(raw, "Z1", "discarded")

        answer = await bulk(client, "retry", direction="out")

        assert outcomes(answer) == {
            "queued": [second_x, cancel_y],
            "waiting": [cancel_z],
            "waiting_for_create": [cancel_x],
            "superseded_create": [first_x],
        }
        assert await statuses(raw, first_x, second_x, cancel_x, cancel_y, cancel_z) == [
            "failed", "queued", "waiting", "queued", "waiting",
        ]  # fmt: skip
        note = await raw.fetchval("SELECT last_error FROM message WHERE id = $1", cancel_z)
        assert note.startswith("waits for order Z1's create to reach the OMS")

    async def test_an_orders_create_and_call_retried_together_reach_the_oms_create_first(
        self, client, runtime, raw, recording
    ):
        create = await self.export(runtime, raw, "W1", "succeeded")
        cancel = (await runtime.order_actions.cancel("W1", "")).message_id
        await raw.execute("UPDATE message SET status = 'dead' WHERE id = ANY($1::bigint[])", [create, cancel])

        answer = await bulk(client, "retry", reference="W1")
        while await runtime.bus.send_next_outbound("oms"):
            pass

        assert outcomes(answer) == {"queued": [create], "waiting": [cancel]}  # the gate read the create as dead
        assert recording.methods("W1") == [(CREATE, True), ("magento.sales.order_management.cancel", True)]
        assert await statuses(raw, create, cancel) == ["succeeded", "succeeded"]
