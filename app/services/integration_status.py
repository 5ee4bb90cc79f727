"""What GET /integration shows: the link with the OMS, the pull of orders from Adobe Commerce, and the backlog
summarised per topic (never a secret).

The backlog is one row per direction, channel and topic (the JSON-RPC method), whatever the number of lanes: order
lanes are one per order, and a row per lane was one per order (millions in production). Lanes that are *blocked* —
their head is retrying, so nothing behind it moves — are listed by name, the oldest head first, at most
BLOCKED_LANES_SHOWN of them; they are looked for among the oldest BLOCKED_LANES_COUNTED retrying messages. Every
statement is bounded by what is pending or by a limit (app/data/monitoring.py), never by the size of the journal.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from app import __version__
from app.clients.oms import OmsClient
from app.data.monitoring import BLOCKED_LANES, LAST_MESSAGE, TOPIC_BACKLOG, TOPIC_FAILED
from app.data.order_pull import PULL_STATE
from app.db import Database
from app.models import Direction
from app.services.integration import IntegrationSwitch, Registrar
from app.settings import Settings

BLOCKED_LANES_SHOWN = 50
BLOCKED_LANES_COUNTED = 10_000  # retrying messages examined, oldest first (an OMS outage blocks a lane per order)
FAILED_COUNTED = 10_000  # failed and dead messages are counted among the newest this many of each status
LAST_MESSAGE_WINDOW = 100_000  # last_in / last_out: the newest of their direction among the newest this many
ERROR_CHARS = 500  # of a blocked head's last error


class SignatureStatus(BaseModel):
    mode: str = Field(description="OMS_SIGNATURE: required or off")
    warning: str | None = Field(
        description="Set when OMS calls are not verified as they should be: OMS_SIGNATURE=off (accepted unsigned) "
        "or OMS_SIGNATURE=required without OMS_SECRET (every call refused with 401)"
    )
    rotation_secret_configured: bool = Field(description="OMS_SECRET_PREVIOUS is set (a secret is being rotated)")


class OmsStatus(BaseModel):
    configured: bool
    url: str | None
    reachable: bool | None = Field(description="Judged by this process's last call, else by the last outbound message")
    last_error: str | None
    token: dict[str, Any] = Field(description="OAuth token state (never the token)")
    send_mode: str


class RegistrationStatus(BaseModel):
    registered: bool
    url: str | None
    version: str | None
    application_id: str | None
    registered_at: datetime | None
    current: bool = Field(description="What is registered is this callback URL and version")
    callback_url: str | None
    error: str | None
    attempted_at: datetime | None


class PullCursor(BaseModel):
    updated_at: datetime = Field(description="Adobe Commerce's updated_at (UTC) of the last order fully handled")
    entity_id: int = Field(description="Its entity_id (orders updated in the same second are read in its order)")


class OrderPullStatus(BaseModel):
    """Orders pulled from Adobe Commerce: where the pull stands and what its last poll did."""

    enabled: bool = Field(
        description="ADOBE_COMMERCE_URL and ADOBE_COMMERCE_TOKEN are set and ADOBE_COMMERCE_ORDER_POLL_S > 0: "
        "processes with workers poll (one replica at a time)"
    )
    poll_interval_s: float
    page_size: int
    max_pages: int = Field(description="Pages per poll at most (the next poll follows at once when there is more)")
    overlap_s: float = Field(description="Each poll reads again from this long before the cursor")
    cursor: PullCursor | None = Field(description="The last order fully handled; null: no poll has run yet")
    next_poll_at: datetime | None = Field(description="When the next poll is due (a failure puts it off)")
    failures: int = Field(description="Polls failed in a row; each is tried again with backoff")
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_outcome: str | None = Field(description="succeeded or failed")
    last_error: str | None
    last_result: dict[str, Any] | None = Field(
        description="What the last poll read and did: pages, read, new, changed, unchanged, exported, held, "
        "rejected (refused: journaled under connector.orders.pull.order), more (the page cap ended it)"
    )
    last_message_id: int | None = Field(
        description="The last poll journaled (topic connector.orders.pull; a poll that found nothing new is not)"
    )


class LastMessage(BaseModel):
    id: int
    topic: str
    status: str
    created_at: datetime
    finished_at: datetime | None
    last_error: str | None


class TopicBacklog(BaseModel):
    """The messages of one topic in one direction and channel that still need something."""

    direction: Direction
    channel: str
    topic: str = Field(description="The JSON-RPC method (or the Adobe Commerce call)")
    queued: int
    waiting: int = Field(description="Outbound calls held until their order's create reached the OMS")
    processing: int
    retrying: int
    failed: int = Field(description="Refused for good and left for an operator (among the newest failed counted)")
    dead: int = Field(description="Retry window closed (among the newest dead counted)")
    oldest_pending_at: datetime | None = Field(description="When the oldest queued/waiting/processing/retrying arrived")


class BlockedLane(BaseModel):
    """A lane whose head is retrying: nothing behind it moves until it succeeds (or an operator discards it)."""

    direction: Direction
    channel: str
    lane: str
    message_id: int = Field(description="The head: see /journal/{message_id}")
    topic: str
    attempts: int
    last_error: str | None = Field(description=f"Its last error (first {ERROR_CHARS} characters)")
    since: datetime = Field(description="When the head was first tried: the lane has been blocked since")
    next_attempt_at: datetime


class Backlog(BaseModel):
    topics: list[TopicBacklog] = Field(description="One row per direction, channel and topic with anything to show")
    blocked_lanes: list[BlockedLane] = Field(
        description=f"Oldest head first, at most {BLOCKED_LANES_SHOWN}; how many there are: blocked_lanes_total"
    )
    blocked_lanes_total: int = Field(
        description=f"Blocked lanes among the oldest {BLOCKED_LANES_COUNTED} retrying messages"
    )
    blocked_lanes_capped: bool = Field(description="There may be more blocked lanes than counted")
    failed_dead_counted: int = Field(
        description="failed and dead are counted among the newest this many messages of each status "
        "(/journal?status=… lists them all)"
    )
    failed_capped: bool = Field(description="There may be more failed messages than counted")
    dead_capped: bool = Field(description="There may be more dead messages than counted")


class IntegrationStatus(BaseModel):
    """Registration, switch, signature mode, OMS reachability, last messages and the backlog."""

    enabled: bool
    enabled_changed_at: datetime | None
    signature: SignatureStatus
    oms: OmsStatus
    registration: RegistrationStatus
    last_in: LastMessage | None = Field(
        description=f"The newest inbound message among the newest {LAST_MESSAGE_WINDOW}"
    )
    last_out: LastMessage | None = Field(
        description=f"The newest outbound message among the newest {LAST_MESSAGE_WINDOW}"
    )
    order_pull: OrderPullStatus
    backlog: Backlog


async def integration_status(
    *, db: Database, settings: Settings, switch: IntegrationSwitch, registrar: Registrar, client: OmsClient | None
) -> IntegrationStatus:
    """Everything /integration shows (never a secret)."""
    state = await registrar.state()
    async with db.connect() as connection:
        pending = (await connection.execute(TOPIC_BACKLOG)).mappings().all()
        failed = (await connection.execute(TOPIC_FAILED, {"limit": FAILED_COUNTED})).mappings().all()
        limits = {"limit": BLOCKED_LANES_SHOWN, "count_limit": BLOCKED_LANES_COUNTED, "error_chars": ERROR_CHARS}
        blocked = (await connection.execute(BLOCKED_LANES, limits)).mappings().all()
        window = {"window": LAST_MESSAGE_WINDOW}
        last_in = (await connection.execute(LAST_MESSAGE, {"direction": "in", **window})).mappings().first()
        last_out = (await connection.execute(LAST_MESSAGE, {"direction": "out", **window})).mappings().first()
        pull = (await connection.execute(PULL_STATE)).mappings().first()
    reachable: bool | None = None
    if client is not None and (client.last_success_at or client.last_error):
        reachable = client.last_error is None  # this process has talked to the OMS
    elif last_out is not None:  # otherwise judge by the last outbound message of any replica
        reachable = {"succeeded": True, "retrying": False, "dead": False}.get(last_out["status"])
    return IntegrationStatus(
        enabled=await switch.is_enabled(),
        enabled_changed_at=state.changed_at,
        signature=SignatureStatus(
            mode=settings.oms_signature,
            warning=settings.signature_warning,
            rotation_secret_configured=bool(settings.oms_secret_previous.get_secret_value()),
        ),
        oms=OmsStatus(
            configured=settings.oms_configured,
            url=str(settings.oms_url) if settings.oms_url else None,
            reachable=reachable,
            last_error=client.last_error if client else None,
            token=client.token_state() if client else {"oauth": False},
            send_mode=settings.oms_send_mode,
        ),
        registration=RegistrationStatus(
            registered=state.registered_at is not None,
            url=state.registered_url,
            version=state.registered_version,
            application_id=state.registered_application_id,
            registered_at=state.registered_at,
            current=state.registered_url == settings.callback_url and state.registered_version == __version__,
            callback_url=settings.callback_url,
            error=state.register_error,
            attempted_at=state.register_attempted_at,
        ),
        last_in=LastMessage.model_validate(dict(last_in)) if last_in else None,
        last_out=LastMessage.model_validate(dict(last_out)) if last_out else None,
        order_pull=_order_pull(settings, pull),
        backlog=_backlog(pending, failed, blocked),
    )


def _order_pull(settings: Settings, row: Any) -> OrderPullStatus:
    """The pull's settings and its state row (PULL_STATE)."""
    state = dict(row) if row is not None else {}
    cursor = None
    if state.get("cursor_updated_at") is not None:
        cursor = PullCursor(updated_at=state["cursor_updated_at"], entity_id=state["cursor_entity_id"] or 0)
    return OrderPullStatus(
        enabled=settings.order_pull_enabled,
        poll_interval_s=settings.adobe_commerce_order_poll_s,
        page_size=settings.adobe_commerce_order_page_size,
        max_pages=settings.adobe_commerce_order_max_pages,
        overlap_s=settings.adobe_commerce_order_overlap_s,
        cursor=cursor,
        next_poll_at=state.get("next_poll_at"),
        failures=state.get("failures") or 0,
        last_started_at=state.get("last_started_at"),
        last_finished_at=state.get("last_finished_at"),
        last_outcome=state.get("last_outcome"),
        last_error=state.get("last_error"),
        last_result=state.get("last_result"),
        last_message_id=state.get("last_message_id"),
    )


def _backlog(pending: Any, failed: Any, blocked: Any) -> Backlog:
    """The rows of TOPIC_BACKLOG and TOPIC_FAILED merged per topic, and the blocked lanes."""
    total = blocked[0]["counted"] if blocked else 0
    topics: dict[tuple[str, str, str], dict[str, Any]] = {}
    empty = {"queued": 0, "waiting": 0, "processing": 0, "retrying": 0, "failed": 0, "dead": 0}
    for row in [*pending, *failed]:
        key = (row["direction"], row["channel"], row["topic"])
        entry = topics.setdefault(
            key, {"direction": key[0], "channel": key[1], "topic": key[2], **empty, "oldest_pending_at": None}
        )
        entry.update({name: value for name, value in row.items() if name not in {"direction", "channel", "topic"}})
    return Backlog(
        topics=[TopicBacklog.model_validate(topics[key]) for key in sorted(topics)],
        blocked_lanes=[
            BlockedLane.model_validate({k: v for k, v in row.items() if k not in {"counted", "examined"}})
            for row in blocked
        ],
        blocked_lanes_total=total,
        blocked_lanes_capped=bool(blocked) and blocked[0]["examined"] >= BLOCKED_LANES_COUNTED,
        failed_dead_counted=FAILED_COUNTED,
        failed_capped=sum(row["failed"] for row in failed) >= FAILED_COUNTED,
        dead_capped=sum(row["dead"] for row in failed) >= FAILED_COUNTED,
    )
