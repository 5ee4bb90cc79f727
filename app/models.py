"""Tables. One `message` table is inbox, outbox and journal at once (ARCHITECTURE §3)."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Double,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# The partial unique index that makes a message id idempotent; referred to when translating conflicts.
MESSAGE_EXTERNAL_ID_INDEX = "uq_message_direction_channel_external_id"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Direction(enum.StrEnum):
    IN = "in"  # the OMS (or the store) called us: inbox
    OUT = "out"  # we call a peer: outbox


class Status(enum.StrEnum):
    """Where a message is in its life.

    Transitions (inbound):  queued → succeeded | retrying → … | failed;  retrying → succeeded | failed
    Transitions (outbound): queued → processing → succeeded | retrying | failed | dead;
                            retrying → processing;  processing (lease expired) → processing (reclaimed);
                            waiting → queued (released: a gate message of its lane succeeded — the order's create —
                            or the OMS acknowledged the order; app/services/order_gate.py)
    Operators:              failed | dead | retrying → queued (retry), or → waiting for a call about an order the
                            OMS does not have yet;  queued | waiting | retrying | failed | dead → discarded
    Rejected messages were never accepted (bad signature, malformed, unknown method) and are kept for the journal.
    A waiting message is not pending: it is in no lane (blocks none, is not claimed) until released.
    """

    QUEUED = "queued"  # stored, waiting for a worker
    WAITING = "waiting"  # outbound only: held until its order's create reaches the OMS (not in the lane yet)
    PROCESSING = "processing"  # outbound only: leased by a sender, a call may be in flight
    RETRYING = "retrying"  # a transient failure; next attempt at next_attempt_at (blocks its lane)
    SUCCEEDED = "succeeded"  # done
    FAILED = "failed"  # permanent failure (bad payload, peer refused); its lane moved on
    DEAD = "dead"  # outbound: still failing when the retry window closed
    REJECTED = "rejected"  # never accepted: bad signature, malformed, unknown method
    DISCARDED = "discarded"  # dropped by an operator


# Statuses a lane still has to work through; their oldest message is the lane's head.
PENDING_STATUSES = (Status.QUEUED, Status.PROCESSING, Status.RETRYING)

_status_enum = Enum(Status, name="message_status", values_callable=lambda e: [m.value for m in e])
_direction_enum = Enum(Direction, name="message_direction", values_callable=lambda e: [m.value for m in e])


class Message(Base):
    __tablename__ = "message"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)  # arrival order
    direction: Mapped[Direction] = mapped_column(_direction_enum)
    channel: Mapped[str] = mapped_column(String(32))  # the peer: "oms" or "commerce"
    topic: Mapped[str] = mapped_column(String(200))  # the JSON-RPC method
    external_id: Mapped[str] = mapped_column(String(200))  # the JSON-RPC id: idempotency key (in), stable id (out)
    lane: Mapped[str] = mapped_column(String(200))  # ordering key; usually the topic
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)  # the JSON-RPC params
    headers: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))  # secrets removed
    refs: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'::text[]"))  # order ids, SKUs
    status: Mapped[Status] = mapped_column(_status_enum)
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # handler summary or the peer's result
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # outbound claim
    first_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # starts the retry window
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    duration_ms: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        # Idempotency: one accepted message per id and peer. Rejected ones don't count, so a forged or
        # malformed call can never block the genuine message that carries the same id.
        Index(
            MESSAGE_EXTERNAL_ID_INDEX,
            "direction",
            "channel",
            "external_id",
            unique=True,
            postgresql_where=text("status <> 'rejected'"),
        ),
        # Workers: find each lane's head (loose index scan over pending messages only).
        Index(
            "ix_message_pending_lane",
            "direction",
            "lane",
            "id",
            postgresql_where=text("status IN ('queued', 'processing', 'retrying')"),
        ),
        # Inbound claims: the oldest pending messages first (CLAIM_INBOUND_OLDEST).
        Index(
            "ix_message_inbound_pending",
            "id",
            postgresql_where=text("direction = 'in' AND status IN ('queued', 'retrying')"),
        ),
        # Outbound claims: a channel's pending messages in due order (CLAIM_OUTBOUND); one channel's backlog (an OMS
        # outage) is never read by the claims of another.
        Index(
            "ix_message_outbound_due",
            "channel",
            "next_attempt_at",
            "id",
            postgresql_where=text("direction = 'out' AND status IN ('queued', 'processing', 'retrying')"),
        ),
        # Journal: newest first, optionally by topic or status.
        Index("ix_message_topic_id", "topic", "id"),
        Index("ix_message_status_id", "status", "id"),
        Index("ix_message_created_at", "created_at"),
        Index("ix_message_external_id", "external_id"),
        Index("ix_message_refs", "refs", postgresql_using="gin"),
        # Released when their order's create succeeds: a lane's waiting messages (few, usually none).
        Index(
            "ix_message_waiting_lane",
            "lane",
            "id",
            postgresql_where=text("direction = 'out' AND status = 'waiting'"),
        ),
        # The processing-time report's rollup reads the messages finished in a few minutes (app/workers/stats.py).
        # Partial: a message enters it once, when it finishes (none at ingest), the one cost on the hot path.
        Index("ix_message_finished_at", "finished_at", postgresql_where=text("finished_at IS NOT NULL")),
    )


class MessageReferences(Base):
    """Every reference a message names, for a message stored with its ``refs`` full (they keep MAX_REFERENCES; a FULL
    stock page names 5,000): written after the message is stored (app/workers/references.py), deleted with it by the
    journal's prune."""

    __tablename__ = "message_refs"

    message_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # message.id (no foreign key: see prune)
    refs: Mapped[list[str]] = mapped_column(ARRAY(Text))

    __table_args__ = (Index("ix_message_refs_refs", "refs", postgresql_using="gin"),)


class MessageReferencesPending(Base):
    """Messages stored with their ``refs`` full (migration 0015's trigger), waiting for ``message_refs``."""

    __tablename__ = "message_refs_pending"

    message_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)


class _MessageStat:
    """What the processing-time report keeps of the messages finished in one period (app/workers/stats.py), per
    direction, channel, topic and outcome: exact counts, sums and maxima, and each duration's histogram.

    Durations (milliseconds): *processing* is the message's ``duration_ms`` (the handler run, or the outbound call;
    rejected messages have none), *end to end* is ``finished_at - created_at`` (received → done inbound; queued →
    acknowledged outbound, retries included). A histogram keeps its non-empty buckets only, as two parallel arrays:
    bucket numbers (app/services/histogram.py: bucket i holds [2^((i-1)/4), 2^(i/4)) ms) and their counts.
    """

    direction: Mapped[Direction] = mapped_column(_direction_enum, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    topic: Mapped[str] = mapped_column(String(200), primary_key=True)
    # the status it finished in: succeeded, failed, dead, discarded or rejected
    outcome: Mapped[Status] = mapped_column(_status_enum, primary_key=True)
    messages: Mapped[int] = mapped_column(Integer)
    processing_count: Mapped[int] = mapped_column(Integer)  # messages with a processing time
    processing_sum_ms: Mapped[int] = mapped_column(BigInteger)
    processing_max_ms: Mapped[int | None] = mapped_column(Integer)
    processing_buckets: Mapped[list[int]] = mapped_column(ARRAY(SmallInteger))
    processing_counts: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    end_to_end_sum_ms: Mapped[float] = mapped_column(Double)
    end_to_end_max_ms: Mapped[float] = mapped_column(Double)
    end_to_end_buckets: Mapped[list[int]] = mapped_column(ARRAY(SmallInteger))
    end_to_end_counts: Mapped[list[int]] = mapped_column(ARRAY(Integer))


class MessageStatMinute(_MessageStat, Base):
    """Per minute (UTC) of ``finished_at``; kept OMS_STATS_RETENTION_DAYS, whatever the journal's pruning."""

    __tablename__ = "message_stat_minute"

    minute: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)


class MessageStatHour(_MessageStat, Base):
    """The minutes of an hour (UTC) merged, once they are final: long reports read 60 times fewer rows."""

    __tablename__ = "message_stat_hour"

    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)


class MessageStatState(Base):
    """One row (id = 1): how far the rollup got (app/workers/stats.py).

    ``rolled_up_until``: minute rows exist for every minute before it (later minutes are read live from the
    journal); ``counted_until``: every message finished before it is counted for good — the rollup never recomputes
    those minutes again, so the journal may prune them; ``hours_until``: hour rows exist for every hour before it.
    """

    __tablename__ = "message_stat_state"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    rolled_up_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    counted_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    hours_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class IntegrationState(Base):
    """One row (id = 1): the integration switch and what was registered with the OMS."""

    __tablename__ = "integration_state"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    registered_url: Mapped[str | None] = mapped_column(Text)
    registered_version: Mapped[str | None] = mapped_column(String(64))
    registered_application_id: Mapped[str | None] = mapped_column(String(64))
    registered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    register_error: Mapped[str | None] = mapped_column(Text)
    register_attempted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    daily_prune_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # the journal's last daily prune


class OrderPullState(Base):
    """One row (id = 1): where the pull of orders from Adobe Commerce stands (app/services/order_pull.py).

    The cursor is the (``updated_at``, ``entity_id``) of the last order fully handled, in Adobe Commerce's sort order;
    it only moves forward. ``next_poll_at`` is shared by every replica: a poll is due once it has passed."""

    __tablename__ = "order_pull"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    cursor_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # NULL: never anchored
    cursor_entity_id: Mapped[int | None] = mapped_column(BigInteger)
    next_poll_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # NULL: due now
    failures: Mapped[int] = mapped_column(Integer, server_default=text("0"))  # consecutive failed polls
    failure_message_id: Mapped[int | None] = mapped_column(BigInteger)  # the journal entry of the failure under way
    last_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_outcome: Mapped[str | None] = mapped_column(String(16))  # succeeded | failed
    last_error: Mapped[str | None] = mapped_column(Text)
    last_result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # what the last poll read and did
    last_message_id: Mapped[int | None] = mapped_column(BigInteger)  # the last journaled poll (none when idle)


class Stock(Base):
    """Salable stock of one SKU in one OMS aggregate, as the OMS last set it (ARCHITECTURE §5).

    ``source_ts`` is the timestamp of the message that set the row: a message older than it is discarded for this
    SKU (the timestamp filter). Only OMS messages and the development-only reset write here.
    """

    __tablename__ = "stock"

    sku: Mapped[str] = mapped_column(Text, primary_key=True)
    aggregate_id: Mapped[str] = mapped_column(Text, primary_key=True)
    quantity: Mapped[Decimal] = mapped_column(Numeric(20, 4))  # absolute; 0 when unlimited
    unlimited: Mapped[bool] = mapped_column(Boolean)  # stock not managed: always salable
    source_ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    message_id: Mapped[int] = mapped_column(BigInteger)  # the message that set it (no FK: the journal is pruned)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # Bulk reads per website page through one aggregate in SKU order.
        Index("ix_stock_aggregate_id_sku", "aggregate_id", "sku"),
    )


class StockAggregate(Base):
    """Which websites (sales channels) an OMS stock aggregate feeds. A row with no websites is kept (an operator
    unassigned it), so re-seeding from OMS_AGGREGATE_WEBSITES at start-up never undoes an operator's change."""

    __tablename__ = "stock_aggregate"

    aggregate_id: Mapped[str] = mapped_column(Text, primary_key=True)
    websites: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'::text[]"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SalesOrder(Base):
    """An Adobe Commerce order posted to `POST /orders`, and its export to the OMS (the seed's export column).

    The export status is not stored: it is read from the export message (app/data/orders.py,
    ORDER_EXPORT_STATUS), so the journal and the order can never disagree. ``mcom`` is the create call's params as
    queued (the OMS line ids in it map back to Magento items); ``export_message_ids`` every export attempt queued.
    """

    __tablename__ = "sales_order"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)  # arrival order; cursor
    increment_id: Mapped[str] = mapped_column(Text, unique=True)  # the order number: the idempotency key
    entity_id: Mapped[str | None] = mapped_column(Text)
    store_id: Mapped[str | None] = mapped_column(Text)
    commerce_status: Mapped[str] = mapped_column(Text)  # the store's status when last posted
    commerce_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # older posts are stale
    document: Mapped[dict[str, Any]] = mapped_column(JSONB)  # the order as last posted (unwrapped)
    mcom: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # the create params as queued
    export_message_id: Mapped[int | None] = mapped_column(BigInteger)  # the current export message (no FK: pruning)
    export_message_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), server_default=text("'{}'::bigint[]"))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # the OMS's `created` arrived
    acknowledged_message_id: Mapped[int | None] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # What the OMS said since (order lifecycle): its current status, a cancel asked for / confirmed, store credit.
    oms_status: Mapped[str | None] = mapped_column(Text)  # upper case
    oms_status_reason: Mapped[str | None] = mapped_column(Text)
    oms_status_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    cancel_message_id: Mapped[int | None] = mapped_column(BigInteger)  # the cancel call to the OMS
    canceled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # the OMS confirmed it
    cancel_commerce_message_id: Mapped[int | None] = mapped_column(BigInteger)
    store_credit: Mapped[Decimal | None] = mapped_column(Numeric(20, 4))  # issued for the gift-card part (seed O16)
    store_credit_note: Mapped[str | None] = mapped_column(Text)  # why it was issued, or why not
    store_credit_message_id: Mapped[int | None] = mapped_column(BigInteger)  # its comment to Adobe Commerce

    __table_args__ = (
        Index("ix_sales_order_received_at", "received_at"),
        # The export-status filter of the order list (app/data/orders.py order_page): orders by their export message,
        # and the few held ones without reading the rest.
        Index("ix_sales_order_export_message_id", "export_message_id"),
        Index(
            "ix_sales_order_held",
            "id",
            postgresql_where=text("export_message_id IS NULL AND acknowledged_at IS NULL"),
        ),
    )


class OrderLine(Base):
    """One line of the create call as the OMS knows it (a unit of a Magento item, or SHIPPING), and what happened to
    it since: its OMS status, and the shipment, return and refund that took it. Written with the export."""

    __tablename__ = "order_line"

    order_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("sales_order.id", ondelete="CASCADE"), primary_key=True
    )
    line_id: Mapped[str] = mapped_column(Text, primary_key=True)
    line_number: Mapped[int] = mapped_column(Integer)
    item_id: Mapped[str | None] = mapped_column(Text)  # the Magento order item; None for SHIPPING
    sku: Mapped[str] = mapped_column(Text)
    product_type: Mapped[str] = mapped_column(Text)
    gross: Mapped[Decimal] = mapped_column(Numeric(20, 4))
    status: Mapped[str | None] = mapped_column(Text)  # the OMS line status, as last sent
    status_reason: Mapped[str | None] = mapped_column(Text)
    shipment_id: Mapped[int | None] = mapped_column(BigInteger)
    return_id: Mapped[int | None] = mapped_column(BigInteger)
    refund_id: Mapped[int | None] = mapped_column(BigInteger)
    refunded_before_shipment: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class OrderStatusChange(Base):
    """The status history trail (the seed's order comments): one row per status change the OMS reported."""

    __tablename__ = "order_status_change"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("sales_order.id", ondelete="CASCADE"))
    oms_status: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    commerce_status: Mapped[str | None] = mapped_column(Text)  # OMS_STATUS_MAP; None: not mapped
    status_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # the OMS's status_date
    line_statuses: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    message_id: Mapped[int] = mapped_column(BigInteger)  # the OMS message (no FK: the journal is pruned)
    commerce_message_id: Mapped[int | None] = mapped_column(BigInteger)  # its delivery to Adobe Commerce
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_order_status_change_order_id", "order_id", "id"),)


class OrderShipment(Base):
    """A shipment the OMS reported (`customer_shipment_done`), keyed per order by its shipment id (or a derived
    key), with its items (Magento item + quantity) and packages (carrier, tracking)."""

    __tablename__ = "order_shipment"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("sales_order.id", ondelete="CASCADE"))
    shipment_key: Mapped[str] = mapped_column(Text)
    source_id: Mapped[str | None] = mapped_column(Text)
    method: Mapped[str | None] = mapped_column(Text)
    shipped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    packages: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    message_id: Mapped[int] = mapped_column(BigInteger)
    invoice_message_id: Mapped[int | None] = mapped_column(BigInteger)
    commerce_message_id: Mapped[int | None] = mapped_column(BigInteger)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("order_id", "shipment_key"),)


class OrderReturn(Base):
    """A return (RMA): asked for by the store (`POST /orders/{id}/returns`) and/or reported by the OMS; its state
    changes update the same row, keyed per order by ``rma`` once the OMS has named it."""

    __tablename__ = "order_return"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("sales_order.id", ondelete="CASCADE"))
    rma: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    status_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    source_id: Mapped[str | None] = mapped_column(Text)
    tracking: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    request_message_id: Mapped[int | None] = mapped_column(BigInteger)  # the authorize call, if the store asked
    message_id: Mapped[int | None] = mapped_column(BigInteger)  # the last OMS update
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("order_id", "rma"),)


class OrderRefund(Base):
    """A refund the OMS released (`refund_management.updated`), keyed per order by its credit note number. It makes
    a credit memo for the lines already shipped (or, for an appeasement, an adjustment); lines not shipped yet are
    recorded as refunded before shipment and make none."""

    __tablename__ = "order_refund"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("sales_order.id", ondelete="CASCADE"))
    credit_note_number: Mapped[str] = mapped_column(Text)
    credit_note_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rma: Mapped[str | None] = mapped_column(Text)
    refund_type: Mapped[str] = mapped_column(Text)
    refund_reason: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))  # return | appeasement
    credit_memo: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # None: no credit memo (nothing shipped)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)  # every refunded line with its amounts
    before_shipment: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'::text[]"))
    total: Mapped[Decimal] = mapped_column(Numeric(20, 4))
    message_id: Mapped[int] = mapped_column(BigInteger)
    commerce_message_id: Mapped[int | None] = mapped_column(BigInteger)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("order_id", "credit_note_number"),)


class BundleSourcingRule(Base):
    """How the OMS must source a bundle's items (ship together | simultaneously | separately), per bundle SKU; a
    bundle without a row uses OMS_BUNDLE_SOURCING_RULE."""

    __tablename__ = "bundle_sourcing_rule"

    sku: Mapped[str] = mapped_column(Text, primary_key=True)
    rule: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CatalogProduct(Base):
    """The connector's own catalog: each product as the store last posted it (or as a CSV row gave it), reduced to
    what the OMS receives. ``params``/``fingerprint`` are those fields encoded as the OMS receives them, kept by a
    trigger (migration 0008) for the settings ``encoded_for`` names, so a full export reads them ready to send."""

    __tablename__ = "catalog_product"

    sku: Mapped[str] = mapped_column(Text, primary_key=True)
    product_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)  # Adobe Commerce's id (child links)
    type: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean)
    deleted: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    children_skus: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'::text[]"))
    child_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), server_default=text("'{}'::bigint[]"))
    custom_attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    # locale → name, from CSV store-view rows (OMS_STORE_VIEW_LOCALES): sent after the default name in `name[]`
    localized_names: Mapped[dict[str, str]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    website_ids: Mapped[list[int]] = mapped_column(ARRAY(Integer), server_default=text("'{}'::integer[]"))
    # a shipping method's row (SKU = method code), never a store product's: neither may overwrite the other
    shipping_method: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    params: Mapped[str | None] = mapped_column(Text)
    fingerprint: Mapped[str | None] = mapped_column(Text)
    encoded_for: Mapped[str | None] = mapped_column(Text)
    exports: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    export_message_id: Mapped[int | None] = mapped_column(BigInteger)
    exported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_catalog_product_child_ids", "child_ids", postgresql_using="gin"),
        Index("ix_catalog_product_shipping_method", "sku", postgresql_where=text("shipping_method")),
    )


class CatalogProductExported(Base):
    """The fingerprint of the params the OMS last acknowledged per product (change detection): narrow and half-full
    pages, so a full export records five thousand of them cheaply (HOT updates)."""

    __tablename__ = "catalog_product_exported"
    __table_args__ = ({"postgresql_with": {"fillfactor": 50}},)

    sku: Mapped[str] = mapped_column(Text, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(Text)


class CatalogSetting(Base):
    """Catalog settings operators change at run time (GET/PUT /catalog/attributes, /catalog/shipping-methods);
    seeded from OMS_PRODUCT_ATTRIBUTES / OMS_SHIPPING_METHODS when absent."""

    __tablename__ = "catalog_setting"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CatalogExport(Base):
    """A full catalog export (the seed's oms:catalog-export): products read in keyset order and sent in batches;
    ``cursor`` is the last SKU of the last acknowledged batch (the unit of progress), ``batch_acked`` the SKUs of
    the batch under way the OMS already acknowledged, so a resumed export sends neither again."""

    __tablename__ = "catalog_export"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    status: Mapped[str] = mapped_column(String(16))  # pending | running | done | canceled | failed
    source: Mapped[str] = mapped_column(String(16))  # catalog (the connector's table)
    send_mode: Mapped[str] = mapped_column(String(16))
    batch_size: Mapped[int] = mapped_column(Integer)
    cursor: Mapped[str | None] = mapped_column(Text)
    batch_acked: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'::text[]"))
    batch_open: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))  # a batch is under way
    products_read: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    products_sent: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    batches_sent: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    batches_acknowledged: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    error_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    last_error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(Text)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # One export at a time: at most one pending or running row.
        Index(
            "uq_catalog_export_active",
            text("(true)"),
            unique=True,
            postgresql_where=text("status IN ('pending', 'running')"),
        ),
    )
