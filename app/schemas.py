"""Response and request shapes of the operator API (pydantic v2)."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, field_validator

from app.models import Direction, Status
from app.protocol.sourcing_rules import normalize_sourcing_rule
from app.settings import ShippingMethod, validate_aggregate_websites


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


def _representable(value: datetime) -> datetime:
    """A time the database can compare with (e.g. 0001-01-01T00:00+14:00 is before year 1 in UTC): 422, not 500."""
    if value.tzinfo is not None:
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValueError("date out of range") from None
    return value


JournalTime = Annotated[datetime, AfterValidator(_representable)]


class JournalFilterBody(BaseModel):
    """The filters of GET /journal, for a bulk action: every message they match (at least one filter; an unknown
    key is refused, so a misspelt filter never widens the action)."""

    model_config = ConfigDict(extra="forbid")

    direction: Direction | None = None
    topic: str | None = Field(default=None, max_length=200)
    status: Status | None = None
    external_id: str | None = Field(default=None, max_length=200, description="The JSON-RPC id")
    reference: str | None = Field(default=None, max_length=200, description="An order number or SKU it names")
    since: JournalTime | None = Field(default=None, description="Created at or after")
    until: JournalTime | None = Field(default=None, description="Created before")
    dry_run: bool = Field(default=False, description="Only count the messages the action would change")


class BulkRetryRequest(JournalFilterBody):
    pass


class BulkDiscardRequest(JournalFilterBody):
    reason: str | None = Field(default=None, max_length=1000, pattern=r"^[^\x00]*$")


class BulkOutcome(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    outcome: str = Field(
        description="queued, waiting (retried; waits for its order's create), discarded; or not changed: "
        "waiting_for_create, superseded_create, changed (its status changed meanwhile)"
    )
    applied: bool = Field(description="The action changed these messages")
    note: str
    count: int
    first_ids: list[int] = Field(description="The first (oldest) of them")


class BulkActionResult(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    action: str
    dry_run: bool
    matched: int = Field(description="Messages matched (among those the action applies to), at most 100,000")
    more: bool = Field(description="More than 100,000 matched: narrow the filter (only a dry run answers so)")
    changed: int = Field(description="Messages retried or discarded (0 in a dry run)")
    outcomes: list[BulkOutcome]


class PruneRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    older_than_days: int | None = Field(
        default=None, le=36_500, description="Default OMS_JOURNAL_RETENTION_DAYS; at least 3"
    )
    dry_run: bool = Field(default=False, description="Only count what would be deleted")


class PruneAnswer(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    dry_run: bool
    trigger: str
    older_than_days: int
    cutoff: datetime = Field(description="Messages created and finished before this are old enough")
    counted_until: datetime | None = Field(description="What the processing-time report has counted")
    finished_before: datetime | None = Field(description="The bound applied; null: nothing may be deleted")
    examined: int = Field(description="Messages created before the cutoff, looked at")
    deleted: int = Field(description="Deleted (a dry run: that would be)")
    kept_pending: int = Field(description="Not finished: never pruned")
    kept_recent: int = Field(description="Finished after the bound, or retried meanwhile")
    kept_for_orders: int = Field(description="An order's current create, cancel call or return request")
    batches: int
    seconds: float
    rows_per_second: float
    journal_id: int | None = Field(
        description="This run's journal entry (topic connector.journal.prune); none when it deleted nothing"
    )


# --- stock ------------------------------------------------------------------------------------------------------
def _quantity_number(value: Decimal | None) -> int | float | None:
    """Quantities as JSON numbers (stored as numeric(20, 4)): whole ones as integers."""
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


Quantity = Annotated[Decimal, PlainSerializer(_quantity_number, return_type=int | float)]
# Money leaves as a decimal string: exact, whatever the client parses JSON numbers into.
Money = Annotated[Decimal, PlainSerializer(str, return_type=str)]


class AggregateStock(BaseModel):
    """What the OMS last said about a SKU in one aggregate."""

    aggregate_id: str
    quantity: Quantity = Field(description="Absolute quantity from the OMS (0 when unlimited)")
    unlimited: bool = Field(description="Stock not managed: always salable in every website of this aggregate")
    manage_stock: bool = Field(description="The opposite of `unlimited` (Adobe Commerce's manage-stock flag)")
    source_timestamp: datetime = Field(description="`created_on` of the message that set it (the timestamp filter)")
    message_id: int = Field(description="The journal id of that message (`GET /journal/{id}`)")
    updated_at: datetime
    websites: list[str] = Field(description="Websites this aggregate feeds; empty ⇒ unassigned")


class WebsiteStock(BaseModel):
    """What one website can sell of a SKU."""

    website: str
    aggregate_id: str = Field(description="The aggregate that feeds this website")
    salable_quantity: Quantity | None = Field(description="null when unlimited (not managed)")
    is_salable: bool = Field(description="The website shows the product as in stock")
    stock_received: bool = Field(description="False when the OMS never sent stock of this SKU for the aggregate")


class SkuStock(BaseModel):
    sku: str
    aggregates: list[AggregateStock]
    websites: list[WebsiteStock] = Field(description="Every configured website, salable or not")
    unassigned_aggregates: list[str] = Field(description="Aggregates with stock of this SKU that feed no website")


class WebsiteStockItem(BaseModel):
    sku: str
    quantity: Quantity | None = Field(description="null when the OMS never sent stock of this SKU")
    unlimited: bool
    salable_quantity: Quantity | None = Field(description="null when unlimited (not managed)")
    is_salable: bool
    source_timestamp: datetime | None
    message_id: int | None


class WebsiteStockPage(BaseModel):
    website: str
    aggregate_id: str
    items: list[WebsiteStockItem]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page (listing without `skus`)")


class AggregateWebsites(BaseModel):
    """Which websites (sales channels) each OMS aggregate feeds. A website is fed by one aggregate at most."""

    aggregates: dict[str, list[str]] = Field(
        description="aggregate id → website codes", examples=[{"EU-WEB": ["base", "de"], "US-WEB": ["us"]}]
    )

    @field_validator("aggregates")
    @classmethod
    def _fed_once(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        return validate_aggregate_websites(value)


class AggregateWebsitesView(AggregateWebsites):
    unassigned: list[str] = Field(description="Aggregates the OMS sent stock for that feed no website")


class StockResetResult(BaseModel):
    skus: int
    aggregates: list[str]
    messages: int = Field(description="Stock messages queued in the inbox (pages of up to 5,000 SKUs)")


# --- orders ----------------------------------------------------------------------------------------------------
class ExportStatus(enum.StrEnum):
    """An order's export to the OMS (the seed's order-grid column)."""

    HELD = "held"  # its store status is not in OMS_EXPORT_STATUSES: not exported (a later post may export it)
    QUEUED = "queued"  # in the outbox: waiting, being sent or retrying (see export_error)
    SENT = "sent"  # the OMS accepted the create call
    ACKNOWLEDGED = "acknowledged"  # the OMS confirmed it (magento.sales.order_management.created)
    FAILED = "failed"  # the OMS refused it, or an operator discarded the export (see export_error)
    DEAD = "dead"  # the OMS could not be reached for the whole retry window


class OrderDelivery(BaseModel):
    """Sync mode: what happened to the inline delivery."""

    delivered: bool
    result: Any = Field(default=None, description="The OMS's JSON-RPC result when delivered")
    error: str | None = Field(default=None, description="Why the inline delivery did not succeed")
    fallback: str | None = Field(default=None, description='"outbox": the workers deliver it (or it waits there)')


class OrderExportAnswer(BaseModel):
    """The answer to POST /orders."""

    increment_id: str
    export_status: ExportStatus
    message_id: int | None = Field(description="The outbox message of the export (journal id)")
    exported_now: bool = Field(description="This post queued the export (false: held, or exported before)")
    mode: str = Field(description="async | sync (OMS_ORDER_EXPORT_MODE)")
    reason: str | None = Field(default=None, description="Why the order is held, or why its export failed")
    delivery: OrderDelivery | None = None


class OrderSummary(BaseModel):
    increment_id: str
    entity_id: str | None
    store_id: str | None
    commerce_status: str = Field(description="The store's status when the order was last posted")
    oms_status: str | None = Field(default=None, description="The OMS's last status of it; null until it sends one")
    export_status: ExportStatus
    export_error: str | None = Field(description="Why the export is held, retrying or failed")
    export_attempts: int | None
    message_id: int | None = Field(description="The current export message (journal id)")
    message_ids: list[int] = Field(description="Every export message queued for this order (journal ids)")
    acknowledged_message_id: int | None = Field(description="The OMS's `created` message (journal id)")
    received_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    acknowledged_at: datetime | None


Delivery = Field(
    description="Delivery of this effect to Adobe Commerce: recorded_only (ADOBE_COMMERCE_* not set, or nothing to "
    "deliver), pending, delivered, retrying, failed, dead or discarded (see the journal message), or pruned (its "
    "journal message finished longer ago than OMS_JOURNAL_RETENTION_DAYS)"
)


class StatusChange(BaseModel):
    oms_status: str
    reason: str | None
    commerce_status: str | None = Field(description="OMS_STATUS_MAP's status for it; null when unmapped")
    status_at: datetime | None = Field(description="When the OMS says the status changed")
    recorded_at: datetime
    message_id: int = Field(description="The OMS message (journal id)")
    line_statuses: list[dict[str, Any]]
    delivery: str = Delivery
    commerce_message_id: int | None


class Package(BaseModel):
    id: str | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    tracking_link: str | None = None
    tracking_comment: str | None = None
    line_ids: list[str] = []


class ShipmentView(BaseModel):
    shipment_key: str = Field(description="The OMS's shipment id, or the key derived when it sent none")
    source_id: str | None
    method: str | None
    shipped_at: datetime | None
    items: list[dict[str, Any]] = Field(description="Adobe Commerce items and quantities, with the OMS line ids")
    packages: list[Package]
    message_id: int
    recorded_at: datetime
    invoice_delivery: str = Field(description="The invoice sent before the shipment (same states as delivery)")
    invoice_message_id: int | None
    delivery: str = Delivery
    commerce_message_id: int | None


class ReturnView(BaseModel):
    rma: str | None = Field(description="The OMS's RMA id; null until the OMS answers a return the store asked for")
    status: str
    status_at: datetime | None
    source_id: str | None
    tracking: dict[str, Any]
    lines: list[dict[str, Any]]
    history: list[dict[str, Any]]
    request_message_id: int | None = Field(description="The authorize call to the OMS, when the store asked")
    request_delivery: str | None = Field(
        description="State of that call (pending, waiting for the order's create, delivered, failed…)"
    )
    created_at: datetime
    updated_at: datetime


class CreditMemoView(BaseModel):
    credit_note_number: str
    credit_note_date: datetime | None
    rma: str | None
    refund_type: str
    refund_reason: str | None
    kind: str = Field(description="return | appeasement")
    credit_memo: dict[str, Any] | None = Field(
        description="The credit memo for shipped lines; null when every refunded line was refunded before shipment"
    )
    lines: list[dict[str, Any]]
    refunded_before_shipment: list[str] = Field(description="Line ids refunded before they shipped: no credit memo")
    total: Money
    message_id: int
    recorded_at: datetime
    delivery: str = Delivery
    commerce_message_id: int | None


class CancelView(BaseModel):
    requested_at: datetime | None = Field(description="When the store or an operator asked (POST .../cancel)")
    reason: str | None
    message_id: int | None = Field(description="The cancel call to the OMS (journal id)")
    request_delivery: str | None = Field(
        description="State of that call (pending, waiting for the order's create, delivered, failed…)"
    )
    canceled_at: datetime | None = Field(description="When the OMS confirmed it (a CANCELED update)")
    delivery: str = Delivery
    commerce_message_id: int | None


class StoreCreditView(BaseModel):
    amount: Money | None = Field(description="Issued for the gift-card part; null when none was issued")
    note: str = Field(description="Why it was issued, or why not")
    delivery: str = Delivery
    commerce_message_id: int | None


class OrderLifecycle(BaseModel):
    """What the OMS said about the order since the export (the seed's admin view of it)."""

    oms_status: str | None
    oms_status_reason: str | None
    oms_status_at: datetime | None
    history: list[StatusChange] = Field(description="One entry per OMS status change, oldest first")
    lines: list[dict[str, Any]] = Field(description="The OMS unit lines: status, shipped, returned, refunded")
    shipments: list[ShipmentView]
    returns: list[ReturnView]
    credit_memos: list[CreditMemoView]
    cancel: CancelView | None
    store_credit: StoreCreditView | None


class OrderView(OrderSummary):
    order: dict[str, Any] = Field(description="The order as the store last posted it")
    mcom: dict[str, Any] | None = Field(description="The magento.sales.order_management.create params as queued")
    lifecycle: OrderLifecycle | None = None


class CancelRequest(BaseModel):
    reason: str = Field(default="", max_length=500, description="Why; sent to the OMS with the cancel")


class CancelAnswer(BaseModel):
    increment_id: str
    outcome: str = Field(description="requested | already_requested | already_canceled")
    oms_status: str | None
    message_id: int | None = Field(description="The cancel call to the OMS (journal id)")
    method: str = Field(description="The JSON-RPC method used (OMS_CANCEL_METHOD)")
    request_delivery: str | None = Field(
        default=None,
        description="State of the cancel call: pending (queued behind the order's create), waiting (held until the "
        "order's create reaches the OMS), delivered, failed…; null when the order is canceled already",
    )
    note: str | None = Field(
        default=None, description="When the call waits: what for, and what gets the order's create sent"
    )


class ReturnItem(BaseModel):
    model_config = ConfigDict(coerce_numbers_to_str=True)

    item_id: str = Field(min_length=1, max_length=40, description="The Adobe Commerce order item id")
    qty: int = Field(ge=1, le=10_000)
    reason: str = Field(default="", max_length=100)
    reason_description: str = Field(default="", max_length=1000)
    condition: str = Field(default="", max_length=100)
    condition_description: str = Field(default="", max_length=1000)


class ReturnRequest(BaseModel):
    items: list[ReturnItem] = Field(min_length=1, max_length=1000)
    source_id: str = Field(default="", max_length=100, description="The source that receives the return")
    return_tracking_number: str = Field(default="", max_length=30)
    return_tracking_carrier: str = Field(default="", max_length=100)
    return_tracking_label_url: str = Field(default="", max_length=2000)


class ReturnAnswer(BaseModel):
    increment_id: str
    message_id: int = Field(description="The authorize call to the OMS (journal id)")
    lines: list[dict[str, Any]] = Field(description="The OMS unit lines asked back (line_number, sku, item_id)")
    request_delivery: str = Field(
        default="pending",
        description="pending (queued) or waiting (held until the order's create reaches the OMS)",
    )
    note: str | None = Field(
        default=None, description="When the call waits: what for, and what gets the order's create sent"
    )


class OrderPage(BaseModel):
    items: list[OrderSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class OrderSyncRequest(BaseModel):
    limit: int | None = Field(default=None, ge=1, le=1_000_000, description="At most this many orders; omit for all")


class OrderSyncResult(BaseModel):
    queued: int = Field(description="How many orders were queued for export again")
    increment_ids: list[str] = Field(description="The first 1,000 of them")
    message_ids: list[int] = Field(description="Their export messages (journal ids)")
    skipped: list[dict[str, str]] = Field(
        default=[],
        description="Orders that can no longer be mapped (increment_id, reason; the first 1,000): not queued",
    )


class SourcingRuleUpdate(BaseModel):
    rule: str = Field(description="ship together | ship simultaneously | ship separately")

    @field_validator("rule")
    @classmethod
    def _known(cls, value: str) -> str:
        return normalize_sourcing_rule(value)


class SourcingRuleView(BaseModel):
    sku: str
    rule: str = Field(description="SHIP_TOGETHER | SHIP_SIMULTANEOUSLY | SHIP_SEPARATELY, sent on the bundle's lines")
    source: str = Field(description='"bundle": set for this SKU; "default": OMS_BUNDLE_SOURCING_RULE')
    updated_at: datetime | None


class ProductOutcome(BaseModel):
    sku: str
    exported: bool = Field(description="An export to the OMS was queued by this call")
    reason: str = Field(description="new | changed | unchanged (nothing the OMS receives changed)")
    message_id: int | None = Field(default=None, description="The queued export (journal id)")


class ProductsAnswer(BaseModel):
    products: list[ProductOutcome]


class AttributesBody(BaseModel):
    attributes: list[str] = Field(max_length=200, description="Custom attribute codes sent with each product")


class ShippingMethodsBody(BaseModel):
    methods: list[ShippingMethod] = Field(max_length=500)


class ShippingMethodsAnswer(BaseModel):
    methods: list[ShippingMethod]
    outcomes: list[ProductOutcome] = Field(description="Each method's export as a product (removed ones: disabled)")


class CatalogExportRequest(BaseModel):
    schedule_only: bool = Field(
        default=False, description="true: leave it to the workers (pending); false: start it now in this process"
    )


class CatalogExportView(BaseModel):
    id: int
    status: str = Field(description="pending | running | done | canceled | failed")
    source: str = Field(description="commerce: Adobe Commerce (GET /products); catalog: the connector's table")
    send_mode: str = Field(description="single | rpc-batch (OMS_CATALOG_SEND_MODE)")
    batch_size: int
    products_read: int = Field(description="Products of acknowledged batches")
    products_sent: int = Field(description="Products the OMS acknowledged (or refused: see errors)")
    batches_sent: int
    batches_acknowledged: int
    error_count: int
    errors: list[dict[str, Any]] = Field(description="The first 100 products the OMS refused, with its message")
    last_error: str | None = Field(description="Why the export is waiting (the OMS unreachable) or failed")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    products_per_second: float | None = Field(description="Products sent per second since the start")


class CatalogImportAnswer(BaseModel):
    rows: int = Field(description="Data rows read (the header not counted)")
    batches: int = Field(description="Batches of OMS_CATALOG_BATCH_SIZE rows, each one transaction")
    stored: int = Field(description="Products upserted into the catalog")
    exported: int = Field(description="Of those, new or changed: queued for export to the OMS")
    unchanged: int
    error_count: int
    errors: list[dict[str, Any]] = Field(
        description="Bad rows (the first 1,000): row number (1 = first data row), field, message"
    )
    skipped_count: int = 0
    skipped: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Values of good rows not applied (the first 1,000): store-view rows without a locale in "
        "OMS_STORE_VIEW_LOCALES or for a product not in the catalog, per-store-view values the OMS does not take",
    )
    journal_message_id: int | None = Field(description="The import's journal entry")
