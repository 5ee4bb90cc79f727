"""Named sets of message statuses, as the SQL lists the statements test them with (``status IN {PENDING}``).

Built from app/models.py ``Status``, so a status renamed or added there cannot leave a hand-written list behind.
Each list keeps the order it is given in: where a statement's predicate must be the one of a partial index (so that
the planner can use the index), the list is written in the index's order and the statement says so — PENDING is
the predicate of ``ix_message_pending_lane`` and ``ix_message_outbound_due``, UNCLAIMED (with ``direction = 'in'``)
the one of ``ix_message_inbound_pending`` (tests/unit/test_statuses.py holds them equal).
"""

from __future__ import annotations

from app.models import PENDING_STATUSES, Status


def status_in(*statuses: Status) -> str:
    """``statuses`` as the parenthesised SQL list ``IN`` takes, in the order given:
    ``status_in(Status.QUEUED, Status.RETRYING)`` → ``('queued', 'retrying')``."""
    members = [Status(status) for status in statuses]  # a value that is no Status is refused here, not by SQL
    if not members or len(set(members)) != len(members):
        raise ValueError(f"a status list needs distinct statuses, not {statuses!r}")
    return "(" + ", ".join(f"'{member.value}'" for member in members) + ")"


# A lane's head is its oldest message in one of these (queued, processing, retrying): the claims' order rule.
PENDING = status_in(*PENDING_STATUSES)
# Pending and held by no sender (queued, retrying): what a claim takes. An inbound message is never stored
# processing (its claim is a row lock), so for inbound messages this is PENDING.
UNCLAIMED = status_in(Status.QUEUED, Status.RETRYING)
# Not finished (queued, waiting, processing, retrying): the backlog, never pruned.
UNFINISHED = status_in(Status.QUEUED, Status.WAITING, Status.PROCESSING, Status.RETRYING)
# Finished (succeeded, failed, dead, discarded, rejected): nothing happens to them unless an operator asks.
FINISHED = status_in(Status.SUCCEEDED, Status.FAILED, Status.DEAD, Status.DISCARDED, Status.REJECTED)
# Stored finished from the start (rejected, discarded): their finish time is their arrival.
FINISHED_ON_ARRIVAL = status_in(Status.REJECTED, Status.DISCARDED)
# An operator may try these again (failed, dead, retrying).
RETRYABLE = status_in(Status.FAILED, Status.DEAD, Status.RETRYING)
# An operator may discard these (queued, waiting, retrying, failed, dead): not succeeded, not in flight.
DISCARDABLE = status_in(Status.QUEUED, Status.WAITING, Status.RETRYING, Status.FAILED, Status.DEAD)
# Finished without success, and not tried again unless asked (failed, dead, discarded): an order's export or a
# return request the OMS never took. (An outbound call is never rejected.)
GIVEN_UP = status_in(Status.FAILED, Status.DEAD, Status.DISCARDED)
# The failures of the processing-time report (failed, dead): refused, or given up when the retry window closed.
FAILED_OR_DEAD = status_in(Status.FAILED, Status.DEAD)
