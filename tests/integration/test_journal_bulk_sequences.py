"""Operator sequences with bulk actions and pruning keep every guarantee (issue #16, items 4 and 5): the sequences of
tests/integration/test_order_create_first_sequences.py (post, cancel, ship, return, single retry / discard, orders
sync, deliveries, acknowledgements) mixed with bulk retry and bulk discard by reference, status, topic or direction,
and journal prunes (the clock moved past the retention first, the report having counted everything). After every
step: per order, the first call the OMS receives is a create, nothing reaches it before a create was accepted, no
create after one was accepted, no call accepted twice; at the end every order's create and every call still wanted
reach the OMS, none left waiting (the same Scenario and invariants)."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest
import respx
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.clock import FrozenClock
from app.runtime import Runtime
from app.workers.registry import HandlerRegistry, build_registry
from tests.conftest import make_settings
from tests.integration.test_order_create_first_sequences import (
    KNOWN,
    OMS_URL,
    OPERATOR,
    Scenario,
    action,
    clear,
    delivery,
    order_index,
)
from tests.support.recording_oms import CREATE, RecordingOms


# The fixtures of test_order_create_first_sequences.py: the real handlers, an OMS that records what it receives.
@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"oms_url": OMS_URL}


@pytest.fixture
def registry() -> HandlerRegistry:
    return build_registry(make_settings())


@pytest.fixture
def recording(oms: respx.Router) -> RecordingOms:
    fake = RecordingOms()
    oms.post(OMS_URL).mock(side_effect=fake)
    return fake


# A bulk action's filter: an order's messages (by reference), or every message of a status, topic or direction.
bulk_filter = st.one_of(
    st.tuples(st.just("reference"), order_index),
    st.sampled_from([("status", "failed"), ("status", "dead"), ("topic", CREATE), ("direction", "out")]),
)
bulk_action = st.one_of(
    st.tuples(st.just("bulk retry"), bulk_filter),
    st.tuples(st.just("bulk discard"), bulk_filter),
    st.tuples(st.just("prune"), st.sampled_from([3, 30])),
)
any_action = st.one_of(action, bulk_action, bulk_action)  # single and bulk actions alike, bulk ones twice as often
Step = tuple[tuple[Any, ...], tuple[str, int] | None]
sequences = st.lists(st.tuples(any_action, delivery), min_size=1, max_size=20)


class BulkScenario(Scenario):
    async def act(self, action: tuple[Any, ...]) -> None:
        match action:
            case ("bulk retry" | "bulk discard" as operation, (key, value)):
                body = {key: self.numbers[value] if key == "reference" else value}
                response = await self.client.post(f"/journal/{operation.split()[1]}", json=body, headers=OPERATOR)
                assert response.status_code == 200, response.text
            case ("prune", days):
                self.clock.advance(days=days, hours=1)
                await self.raw.execute("UPDATE message_stat_state SET counted_until = $1", self.clock.now())
                response = await self.client.post("/journal/prune", json={"older_than_days": days}, headers=OPERATOR)
                assert response.status_code == 200, response.text
            case _:
                await super().act(action)


async def play(
    steps: list[Step],
    client: httpx.AsyncClient,
    runtime: Runtime,
    raw: asyncpg.Connection,
    recording: RecordingOms,
    clock: FrozenClock,
) -> None:
    await clear(raw)
    recording.reset()
    scenario = BulkScenario(client, runtime, raw, recording, clock)
    for step in steps:
        await scenario.run(step)
        scenario.check()
    await scenario.settle()


KNOWN_BULK: list[list[Step]] = [
    # the create refused and synced again; a bulk retry of the order must not send the superseded create
    [(("post", 0), ("refuse", 0)), (("sync", None), None), (("bulk retry", ("reference", 0)), ("ok", 0))],
    # a cancel waits behind a refused create; a bulk retry of everything failed sends the create first
    [(("post", 0), ("refuse", 0)), (("cancel", 0), None), (("bulk retry", ("status", "failed")), ("ok", 0))],
    # the create dead, its cancel waiting; a bulk discard of every create, then a prune: sync must still export it
    [
        (("post", 0), ("unavailable", 49 * 3600)),
        (("cancel", 0), None),
        (("bulk discard", ("topic", CREATE)), None),
        (("prune", 3), None),
        (("sync", None), ("ok", 0)),
    ],
    # an order the OMS has, pruned, then cancelled and retried in bulk
    [
        (("post", 1), ("ok", 0)),
        (("prune", 30), None),
        (("cancel", 1), ("refuse", 0)),
        (("bulk retry", ("direction", "out")), ("ok", 0)),
    ],
]


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=sequences)
@example(steps=KNOWN_BULK[0])
@example(steps=KNOWN_BULK[1])
@example(steps=KNOWN_BULK[2])
@example(steps=KNOWN_BULK[3])
@example(steps=KNOWN[0])
async def test_any_sequence_of_bulk_and_single_operator_actions_and_prunes_keeps_every_guarantee(
    client: httpx.AsyncClient,
    runtime: Runtime,
    raw: asyncpg.Connection,
    recording: RecordingOms,
    clock: FrozenClock,
    steps: list[Step],
) -> None:
    await play(steps, client, runtime, raw, recording, clock)
