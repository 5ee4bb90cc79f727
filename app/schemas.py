"""Response and request shapes of the operator API (pydantic v2)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.models import Direction, Status


class JournalEntry(BaseModel):
    """One message in or out, as listed by /journal."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    direction: Direction
    channel: str
    topic: str
    external_id: str = Field(description="The JSON-RPC id: the OMS's message id (in) or our stable id (out)")
    lane: str
    status: Status
    attempts: int
    last_error: str | None
    refs: list[str]
    created_at: datetime
    finished_at: datetime | None
    next_attempt_at: datetime | None


class JournalDetail(JournalEntry):
    """A message with everything known about it (headers never carry secrets)."""

    payload: dict[str, Any]
    headers: dict[str, Any]
    result: dict[str, Any] | None
    started_at: datetime | None
    first_attempt_at: datetime | None
    lease_until: datetime | None
    duration_ms: int | None


class JournalPage(BaseModel):
    items: list[JournalEntry]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next (older) page; null at the end")


class DiscardRequest(BaseModel):
    reason: str | None = Field(default=None, max_length=1000, pattern=r"^[^\x00]*$")  # PostgreSQL text has no NUL


class OperatorActionResult(BaseModel):
    id: int
    status: Status
