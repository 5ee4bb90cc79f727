"""An order's create reaches the OMS before anything else about the order.

Every call about an order other than its create (the cancel, a return authorize request, anything later in lane
``order/<increment_id>`` on the OMS channel) is enqueued by ``enqueue_order_call``, which decides its status:

* **queued** when the OMS has the order — its current export message succeeded, or the OMS acknowledged it (the
  `created` call arrived);
* **waiting** otherwise (the create is queued, being sent or retried, or failed, died or was discarded): out of the
  lane (it neither blocks it nor is claimed), visible in the journal, its ``last_error`` saying what it waits for.

Waiting calls are **released** — queued, due now, in id order behind the create — when a create of the order
succeeds (CREATE_ORDER is the bus's gate topic, ``GATE_TOPICS``: the bus releases the lane in the transaction that
records the success, app/workers/bus.py) or when the OMS acknowledges the order (``release_order_calls``, in the
`created` handler's transaction). No release is missed: the decision reads the export message FOR SHARE under the
order's row lock (ORDER_GATE), so a success recorded meanwhile is either waited for and read, or waits for the held
call to commit and then releases it (the release is a later statement than the record). The acknowledgement
updates the order row first, which waits for the decision's lock in the same way.

Operators (``retry_status``): a waiting call is not retried (409 saying what it waits for and how to get the create
sent: retry the create, or ``orders sync``); a failed or dead call retried while the OMS lacks the order waits
again instead of entering the lane; a create that is no longer the order's current export (``orders sync`` queued
another since) is not retried, so an order never has two creates on their way. Discarding a waiting call is
allowed (the store's request then shows ``discarded``); discarding a create leaves its calls waiting for the next
create ``orders sync`` queues.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.data.bus import NOTIFY_BUS, RELEASE_WAITING_LANE
from app.data.orders import DISCARD_PENDING_CREATES, ORDER_GATE
from app.data.outbox import OMS_CHANNEL, Outbox
from app.errors import OperatorActionRefused
from app.models import Direction, Status
from app.services.orders import CREATE_ORDER, order_lane

GATE_TOPICS = frozenset({CREATE_ORDER})  # for the bus: their success releases their lane's waiting calls
_LANE_PREFIX = order_lane("")
_SYNC = "`oms-connector orders sync` (POST /orders/sync)"


@dataclass(frozen=True)
class OrderGate:
    """Whether the OMS has an order, as far as the connector knows, read under the order's row lock."""

    increment_id: str
    acknowledged: bool  # the OMS's `created` arrived
    export_message_id: int | None  # the current create
    export_status: str | None  # its journal status

    @property
    def open(self) -> bool:
        return self.acknowledged or self.export_status == Status.SUCCEEDED.value

    @property
    def status(self) -> Status:
        """What a call about the order is enqueued as."""
        return Status.QUEUED if self.open else Status.WAITING

    def held_note(self) -> str:
        """Stored with a call held now (``last_error``): stays true whatever happens to the create later."""
        return (
            f"waits for order {self.increment_id}'s create to reach the OMS (when this call was made, the create, "
            f"message {self.export_message_id}, was {self.export_status}); sent once a create of the order succeeds "
            "or the OMS acknowledges the order"
        )

    def reason(self) -> str:
        """Why a call about the order waits now, and what gets it sent."""
        return f"waits for order {self.increment_id}'s create to reach the OMS: {self._create_state()}"

    def _create_state(self) -> str:
        create = f"its create (message {self.export_message_id})"
        retry = f"POST /journal/{self.export_message_id}/retry"
        match self.export_status:
            case None:
                return "the order has no create yet"
            case "queued" | "processing":
                return f"{create} is on its way; this call follows it"
            case "retrying":
                return f"{create} is being retried (the OMS is unavailable); this call follows once it succeeds"
            case "failed":
                return f"{create} was refused by the OMS: once the cause is fixed, retry it ({retry}) or run {_SYNC}"
            case "dead":
                return f"{create} gave up after the retry window: retry it ({retry}) or run {_SYNC}"
            case "discarded":
                return f"{create} was discarded by an operator: run {_SYNC} to export the order again"
            case other:
                return f"{create} is {other}"


@dataclass(frozen=True)
class OrderCall:
    """A call about an order, as enqueued: its message (None when its id was enqueued before) and the gate."""

    message_id: int | None
    gate: OrderGate

    @property
    def note(self) -> str | None:
        return None if self.gate.open else self.gate.reason()


async def order_gate(connection: AsyncConnection, increment_id: str) -> OrderGate | None:
    """The gate of a posted order (None if it was never posted); locks the order row."""
    row = (await connection.execute(ORDER_GATE, {"increment_id": increment_id})).first()
    if row is None:
        return None
    return OrderGate(
        increment_id=increment_id,
        acknowledged=row.acknowledged,
        export_message_id=row.export_message_id,
        export_status=row.export_status,
    )


async def enqueue_order_call(
    connection: AsyncConnection,
    outbox: Outbox,
    *,
    increment_id: str,
    method: str,
    params: dict[str, Any],
    external_id: str,
    now: datetime,
) -> OrderCall:
    """Enqueue a call about a posted order (not its create) in its lane: queued if the OMS has the order, else
    waiting for its create. In the caller's transaction."""
    gate = await order_gate(connection, increment_id)
    if gate is None:
        raise LookupError(f"order {increment_id} was never posted")  # callers check first (404)
    message_id = await outbox.enqueue(
        connection,
        method=method,
        params=params,
        now=now,
        lane=order_lane(increment_id),
        channel=OMS_CHANNEL,
        external_id=external_id,
        refs=[increment_id],
        status=gate.status,
        last_error=None if gate.open else gate.held_note(),
    )
    return OrderCall(message_id=message_id, gate=gate)


async def acknowledged_order_calls(
    connection: AsyncConnection, increment_id: str, now: datetime, message_id: int
) -> tuple[int, int]:
    """The OMS has the order (it acknowledged it in message ``message_id``): a create ``orders sync`` queued again
    (after one whose answer was lost) and not sent yet is discarded — the OMS has the order, and under a new id the
    create would be a second order, sent after the calls released now; then the waiting calls join the lane.
    Returns (creates discarded, calls released). A create already on the wire cannot be stopped; the order's first
    create is left to be sent again under its own id."""
    superseded = (
        await connection.execute(
            DISCARD_PENDING_CREATES,
            {
                "lane": order_lane(increment_id),
                "increment_id": increment_id,
                "topic": CREATE_ORDER,
                "now": now,
                "reason": f"not sent: the OMS acknowledged order {increment_id} (message {message_id})",
            },
        )
    ).scalar_one()
    return int(superseded), await release_order_calls(connection, increment_id, now)


async def release_order_calls(connection: AsyncConnection, increment_id: str, now: datetime) -> int:
    """The OMS has the order (it acknowledged it): its waiting calls join the lane. Returns how many."""
    released = (
        await connection.execute(RELEASE_WAITING_LANE, {"lane": order_lane(increment_id), "now": now})
    ).scalar_one()
    if released:
        await connection.execute(NOTIFY_BUS)
    return int(released)


async def retry_status(connection: AsyncConnection, message: Any) -> tuple[Status, str | None]:
    """What an operator's retry makes of ``message`` (id, direction, channel, topic, lane, status): QUEUED, or
    WAITING with the note to store; raises OperatorActionRefused for a waiting call or a superseded create.
    Messages outside an order's lane are the journal's usual business (QUEUED)."""
    if (
        message.direction != Direction.OUT.value
        or message.channel != OMS_CHANNEL
        or not message.lane.startswith(_LANE_PREFIX)
    ):
        return Status.QUEUED, None
    gate = await order_gate(connection, message.lane.removeprefix(_LANE_PREFIX))
    if gate is None:
        return Status.QUEUED, None
    if message.status == Status.WAITING.value:
        raise OperatorActionRefused(
            f"message {message.id} {gate.reason()}; it is sent by itself then and cannot be retried before "
            "(discard it to drop the call)"
        )
    if message.topic == CREATE_ORDER:
        if gate.export_message_id != message.id:
            raise OperatorActionRefused(
                f"message {message.id} is an earlier create of order {gate.increment_id}: the order's export is "
                f"message {gate.export_message_id} ({gate.export_status}) now; retry that one or run {_SYNC} "
                "(two creates of one order must not both reach the OMS)"
            )
        return Status.QUEUED, None
    if gate.open:
        return Status.QUEUED, None
    return Status.WAITING, gate.held_note()
