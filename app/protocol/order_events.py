"""What the OMS tells us about an order after the export (protocol §3.5, 3.6, 3.12, 3.13), read tolerantly.

Real peers are sloppy (protocol §6): numbers come as strings and strings as numbers, keys are misspelt
(``shimpent_id``), strings carry stray spaces, lists come where objects are expected. These models accept all of
that and keep only what the connector acts on; anything the connector cannot act on safely (no order id, a PHP
template placeholder left in) raises InvalidEvent, which fails the message in the journal with the field named.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from app.errors import PermanentHandlerError
from app.protocol.timestamps import InvalidTimestamp, parse_oms_timestamp

ORDER_CREATED = "magento.sales.order_management.created"
ORDER_UPDATED = "magento.sales.order_management.updated"
SHIPMENT_DONE = "magento.logistics.fulfillment_management.customer_shipment_done"
RETURN_UPDATED = "magento.postsales.return_management.updated"
REFUND_UPDATED = "magento.postsales.refund_management.updated"
RETURN_AUTHORIZE = "magento.postsales.return_management.authorize"
SHIPPING_LINE_ID = "SHIPPING"
PLACEHOLDER = "{{"
MAX_TEXT = 1000


class InvalidEvent(PermanentHandlerError):
    """The message cannot be acted on; the text names the field."""


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        raise ValueError("expected text")
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, str):
        return value.strip()[:MAX_TEXT]
    raise ValueError("expected text")


def _optional_int(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError("expected a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():  # the Go peer re-serialises numbers as floats
        return int(value)
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"expected a whole number, got {value!r}")
    return int(text)


def _optional_decimal(value: Any) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError("expected a number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"expected a number, got {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"expected a number, got {value!r}")
    return number


def _list(value: Any) -> list[Any]:
    """A list; null or an empty object (PHP's ``{}`` for an empty array) is an empty list."""
    if value is None or value == {}:
        return []
    return value if isinstance(value, list) else [value]


Text = Annotated[str, BeforeValidator(_text)]
OptionalInt = Annotated[int | None, BeforeValidator(_optional_int)]
OptionalDecimal = Annotated[Decimal | None, BeforeValidator(_optional_decimal)]


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class LineStatus(_Tolerant):
    id: Text = ""
    line_number: OptionalInt = None
    status: Text = ""
    status_reason: Text = ""


class OrderStatus(_Tolerant):
    id: Text = ""
    status: Text = ""
    status_reason: Text = ""
    status_date: Text = ""
    lines: Annotated[list[LineStatus], BeforeValidator(_list)] = Field(default_factory=list)


class OrderUpdate(_Tolerant):
    order: OrderStatus


class ShipmentItem(_Tolerant):
    order_line_id: Text = ""
    order_line_number: OptionalInt = None
    sku: Text = ""
    item_type: Text = ""


class Package(_Tolerant):
    id: Text = ""
    items: Annotated[list[Text], BeforeValidator(_list)] = Field(default_factory=list)
    carrier: Text = ""
    tracking_number: Text = ""
    tracking_link: Text = ""
    tracking_comment: Text = ""


class Shipment(_Tolerant):
    shipment_id: Text = ""
    shimpent_id: Text = ""  # the Go peer's spelling (protocol §6, row 5)
    order_id: Text = ""
    store_id: Text = ""
    source_id: Text = ""
    method: Text = ""
    shipment_date: Text = ""
    items: Annotated[list[ShipmentItem], BeforeValidator(_list)] = Field(default_factory=list)
    packages: Annotated[list[Package], BeforeValidator(_list)] = Field(default_factory=list)


class ShipmentDone(_Tolerant):
    shipment: Shipment


class ReturnStatus(_Tolerant):
    code: Text = ""
    name: Text = ""
    date: Text = ""
    reason_code: Text = ""


class ReturnLine(_Tolerant):
    id: Text = ""
    line_number: OptionalInt = None
    sku: Text = ""
    reason: Text = ""
    reason_description: Text = ""
    condition: Text = ""
    condition_description: Text = ""
    status: Text = ""


def _status_object(value: Any) -> Any:
    if value is None or value == []:
        return {}
    return {"code": value} if isinstance(value, str) else value


def _object(value: Any) -> Any:
    """An object; null or an empty list (PHP's ``[]`` for an empty object) is an empty one."""
    return {} if value is None or value == [] else value


class Return(_Tolerant):
    rma: Text = ""
    order_id: Text = ""
    sales_channel_id: Text = ""
    source_id: Text = ""
    status: Annotated[ReturnStatus, BeforeValidator(_status_object)] = ReturnStatus()
    return_tracking_number: Text = ""
    return_tracking_carrier: Text = ""
    return_tracking_label_url: Text = ""
    return_tracking_url: Text = ""
    lines: Annotated[list[ReturnLine], BeforeValidator(_list)] = Field(default_factory=list)


class ReturnUpdate(_Tolerant):
    return_: Return = Field(alias="return")


class RefundDetails(_Tolerant):
    cost_gross: OptionalDecimal = None
    cost_net: OptionalDecimal = None
    cost_vat: OptionalDecimal = None
    vat_rate: OptionalDecimal = None


class RefundPayment(_Tolerant):
    details: Annotated[RefundDetails, BeforeValidator(_object)] = RefundDetails()


class RefundLine(_Tolerant):
    order_item_id: Text = ""
    order_line: OptionalInt = None
    reason: Text = ""
    reason_description: Text = ""
    payments: Annotated[list[RefundPayment], BeforeValidator(_list)] = Field(default_factory=list)

    @property
    def gross(self) -> Decimal:
        return sum((p.details.cost_gross or Decimal(0) for p in self.payments), Decimal(0))

    @property
    def tax(self) -> Decimal:
        return sum((p.details.cost_vat or Decimal(0) for p in self.payments), Decimal(0))


class Refund(_Tolerant):
    rma: Text = ""
    order_id: Text = ""
    credit_note_number: Text = ""
    credit_note_date: Text = ""
    refund_type: Text = ""
    refund_reason: Text = ""
    status: Annotated[ReturnStatus, BeforeValidator(_status_object)] = ReturnStatus()
    lines: Annotated[list[RefundLine], BeforeValidator(_list)] = Field(default_factory=list)


class RefundUpdate(_Tolerant):
    refund: Refund


def reject_placeholders(value: Any, path: str = "params") -> None:
    """The PHP peer fills templates by text substitution; an unmatched one leaves ``{{…}}`` in place (protocol §6,
    row 15). Acting on such a message would apply made-up data."""
    if isinstance(value, str):
        if PLACEHOLDER in value:
            raise InvalidEvent(f"{path}: holds an unfilled template placeholder {value[:80]!r}")
    elif isinstance(value, dict):
        for key, item in value.items():
            reject_placeholders(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            reject_placeholders(item, f"{path}[{index}]")


def required(value: str, field: str) -> str:
    if not value:
        raise InvalidEvent(f"{field}: missing")
    return value


def optional_time(value: str, field: str, zone: tzinfo) -> datetime | None:
    """An OMS timestamp in any of its three shapes; empty is None."""
    if not value:
        return None
    try:
        return parse_oms_timestamp(value, zone)
    except InvalidTimestamp as exc:
        raise InvalidEvent(f"{field}: {exc}") from None


def order_number_of(method: str, params: dict[str, Any]) -> str | None:
    """The order a lifecycle call is about, read cheaply at ingest (it picks the inbound lane)."""
    container = {
        ORDER_CREATED: "order",
        ORDER_UPDATED: "order",
        SHIPMENT_DONE: "shipment",
        RETURN_UPDATED: "return",
        REFUND_UPDATED: "refund",
    }.get(method)
    if container is None:
        return None
    body = params.get(container)
    if not isinstance(body, dict):
        return None
    number = body.get("id" if container == "order" else "order_id")
    if isinstance(number, int) and not isinstance(number, bool):
        return str(number)
    if isinstance(number, str) and number.strip():
        return number.strip()
    return None
