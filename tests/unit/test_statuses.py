"""The named status sets of app/data/statuses.py are what their names say, as ``Status`` and its documented
transitions define them, and the predicates partial indexes depend on are written exactly as the indexes' own."""

from __future__ import annotations

import re

import pytest

from app.data import statuses
from app.data.statuses import (
    DISCARDABLE,
    FAILED_OR_DEAD,
    FINISHED,
    FINISHED_ON_ARRIVAL,
    GIVEN_UP,
    PENDING,
    RETRYABLE,
    UNCLAIMED,
    UNFINISHED,
    status_in,
)
from app.models import PENDING_STATUSES, Message, Status

EVERY = set(Status)


def members(fragment: str) -> set[Status]:
    """The statuses of an SQL list such as ``('queued', 'retrying')``, each listed once."""
    assert re.fullmatch(r"\('[a-z]+'(, '[a-z]+')*\)", fragment), fragment
    values = re.findall(r"'([a-z]+)'", fragment)
    assert len(values) == len(set(values)), fragment
    return {Status(value) for value in values}


def index_predicate(name: str) -> str:
    (index,) = [index for index in Message.__table__.indexes if index.name == name]
    return index.dialect_options["postgresql"]["where"].text


def test_status_in_lists_the_statuses_in_the_order_given():
    assert status_in(Status.RETRYING, Status.QUEUED) == "('retrying', 'queued')"


@pytest.mark.parametrize("statuses", [(), (Status.QUEUED, Status.QUEUED), ("bogus",)], ids=["none", "twice", "bogus"])
def test_status_in_refuses_an_empty_list_a_repeated_status_and_a_value_that_is_no_status(statuses):
    with pytest.raises(ValueError):
        status_in(*statuses)


def test_pending_is_what_a_lane_still_has_to_work_through():
    assert members(PENDING) == set(PENDING_STATUSES) == {Status.QUEUED, Status.PROCESSING, Status.RETRYING}


def test_unclaimed_is_pending_but_held_by_no_sender():
    assert members(UNCLAIMED) == members(PENDING) - {Status.PROCESSING}


def test_unfinished_is_pending_or_waiting_and_finished_is_every_other_status():
    assert members(UNFINISHED) == members(PENDING) | {Status.WAITING}
    assert members(FINISHED) == EVERY - members(UNFINISHED)


def test_finished_on_arrival_are_the_finished_statuses_a_message_may_be_stored_with():
    assert members(FINISHED_ON_ARRIVAL) == {Status.REJECTED, Status.DISCARDED} <= members(FINISHED)


def test_retryable_and_discardable_are_the_operator_transitions_status_documents():
    # Status's docstring: "failed | dead | retrying → queued (retry)"; "queued | waiting | retrying | failed | dead →
    # discarded".
    assert members(RETRYABLE) == {Status.FAILED, Status.DEAD, Status.RETRYING}
    assert members(DISCARDABLE) == members(UNFINISHED) - {Status.PROCESSING} | {Status.FAILED, Status.DEAD}
    assert "failed | dead | retrying → queued" in Status.__doc__
    assert "queued | waiting | retrying | failed | dead → discarded" in Status.__doc__


def test_given_up_is_finished_without_success_for_a_call_that_is_never_rejected():
    assert members(GIVEN_UP) == members(FINISHED) - {Status.SUCCEEDED, Status.REJECTED}


def test_failed_or_dead_is_failed_or_dead():
    assert members(FAILED_OR_DEAD) == {Status.FAILED, Status.DEAD}


def test_every_named_set_is_tested_here():
    named = {name for name, value in vars(statuses).items() if name.isupper() and isinstance(value, str)}
    assert named == {
        "PENDING", "UNCLAIMED", "UNFINISHED", "FINISHED", "FINISHED_ON_ARRIVAL", "RETRYABLE", "DISCARDABLE",
        "GIVEN_UP", "FAILED_OR_DEAD",
    }  # fmt: skip


def test_the_claims_predicates_are_written_as_their_partial_indexes_are():
    assert index_predicate("ix_message_pending_lane") == f"status IN {PENDING}"
    assert index_predicate("ix_message_outbound_due") == f"direction = 'out' AND status IN {PENDING}"
    assert index_predicate("ix_message_inbound_pending") == f"direction = 'in' AND status IN {UNCLAIMED}"
