"""Writing messages: the outbox (inside the caller's transaction) and the rows INSERT_MESSAGES takes; and the
outbound message a sender delivers once it is leased (app/workers/bus.py)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.data.bus import INSERT_MESSAGES
from app.models import Direction, Status
from app.protocol.jsonrpc import request_envelope
from app.protocol.references import extract_references

OMS_CHANNEL = "oms"  # the channel of every call to and from the OMS (the other is "commerce")


@dataclass(frozen=True)
class NewMessage:
    """A row to insert. ``document`` is JSON text whose "params" member becomes the payload."""

    direction: Direction
    channel: str
    topic: str
    external_id: str
    lane: str
    document: str
    status: Status = Status.QUEUED
    headers: dict[str, Any] = field(default_factory=dict)
    refs: Sequence[str] = ()
    last_error: str | None = None


@dataclass(frozen=True)
class OutboundMessage:
    """An outgoing message leased for delivery (CLAIM_OUTBOUND, or LEASE_FOR_INLINE_SEND for a sync export).

    Its params come as the stored JSON text: the OMS sender puts that text on the wire as it is (a 10-item order's
    params are ~10 kB: decoding and encoding them again cost more than the claim); ``payload`` decodes it for a
    sender that reads the params (Adobe Commerce's)."""

    id: int
    topic: str
    external_id: str
    lane: str
    channel: str
    encoded_payload: str  # the params as JSON text
    attempts: int  # including the current one
    first_attempt_at: datetime
    lease_until: datetime
    created_at: datetime | None = None  # its arrival in the outbox (the end-to-end duration in app/metrics.py)

    @cached_property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.encoded_payload)


def insert_parameters(rows: Sequence[NewMessage], now: datetime) -> dict[str, Any]:
    """Column arrays for INSERT_MESSAGES (one statement for any number of rows)."""
    return {
        "now": now,
        "directions": [row.direction.value for row in rows],
        "channels": [row.channel for row in rows],
        "topics": [row.topic for row in rows],
        "external_ids": [row.external_id for row in rows],
        "lanes": [row.lane for row in rows],
        "documents": [row.document for row in rows],
        "headers": [json.dumps(row.headers) for row in rows],
        "refs": [json.dumps(list(row.refs)) for row in rows],
        "statuses": [row.status.value for row in rows],
        "last_errors": [row.last_error for row in rows],
    }


async def insert_messages(
    connection: AsyncConnection, rows: Sequence[NewMessage], now: datetime
) -> dict[tuple[str, str], int]:
    """Insert ``rows``; returns (external id, status) → new message id for the rows stored (a duplicate of an
    accepted id is skipped, so it is absent)."""
    result = await connection.execute(INSERT_MESSAGES, insert_parameters(rows, now))
    return {(row.external_id, row.status): row.id for row in result}


class Outbox:
    """Enqueue outgoing calls in the caller's transaction (transactional outbox: ARCHITECTURE §2.1)."""

    def __init__(self, application_id: str) -> None:
        self._application_id = application_id

    def new_id(self) -> str:
        return f"{self._application_id}-{uuid.uuid4()}"

    async def enqueue(
        self,
        connection: AsyncConnection,
        *,
        method: str,
        params: dict[str, Any],
        now: datetime,
        lane: str | None = None,
        channel: str = OMS_CHANNEL,
        external_id: str | None = None,
        refs: Sequence[str] | None = None,
        status: Status = Status.QUEUED,
        last_error: str | None = None,
    ) -> int | None:
        """Store one JSON-RPC call to send. Returns its message id, or None when ``external_id`` was already
        enqueued (so a caller can make an export idempotent by choosing a natural id). ``refs``: what the journal
        finds the message by, when the caller knows better (and cheaper) than a walk through ``params``.
        ``status``: QUEUED (its lane sends it in turn) or WAITING (held out of its lane until a gate message of the
        lane succeeds, see app/workers/bus.py; ``last_error`` then says what it waits for)."""
        if status not in (Status.QUEUED, Status.WAITING):
            raise ValueError(f"an outgoing call is enqueued queued or waiting, not {status.value}")
        message_id = external_id or self.new_id()
        row = NewMessage(
            direction=Direction.OUT,
            channel=channel,
            topic=method,
            external_id=message_id,
            lane=lane or method,
            document=json.dumps(request_envelope(message_id, method, params)),
            refs=extract_references(params) if refs is None else refs,
            status=status,
            last_error=last_error,
        )
        stored = await insert_messages(connection, [row], now)
        return stored.get((message_id, status.value))
