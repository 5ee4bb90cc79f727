"""The Adobe Commerce order as `GET /V1/orders/{id}` returns it (magento-rest.md §2): the fields the export reads.

Tolerant where stores differ (numbers as strings, ids as numbers or strings, absent optional blocks, unknown
fields ignored); strict where money is concerned (amounts must be finite numbers below 10^13, quantities whole and
positive). Amounts are ``Decimal``: the body is parsed by ``strict_json.loads(decimals=True)``, so nothing passes
through a float.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from app.protocol import strict_json
from app.protocol.commerce_product import MAX_SKU


def _finite(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
    return value


MAX_AMOUNT = Decimal(10) ** 13  # beyond any real order in any currency, and within a double's exact cents


def _check_finite(value: Decimal | None) -> Decimal | None:
    if value is not None and not value.is_finite():
        raise ValueError("must be a finite number")
    if value is not None and abs(value) >= MAX_AMOUNT:
        raise ValueError("must be below 10^13 in magnitude")
    return value


Amount = Annotated[Decimal | None, BeforeValidator(_finite)]


def _as_text(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a string or a number")
    if isinstance(value, int | Decimal):
        return str(value)
    return value


IDENTIFIER_MAX = 64
Identifier = Annotated[str, BeforeValidator(_as_text), Field(min_length=1, max_length=IDENTIFIER_MAX)]


def _blank_as_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


OptionalIdentifier = Annotated[Identifier | None, BeforeValidator(_blank_as_none)]  # "" (an unset id): None


def _truthy(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes"}
    return value


Flag = Annotated[bool | None, BeforeValidator(_truthy)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _finite_amounts(cls, value: Any) -> Any:
        return _check_finite(value) if isinstance(value, Decimal) else value


class CommerceAddress(_Model):
    entity_id: Identifier | None = None
    address_type: str | None = None
    firstname: str | None = None
    lastname: str | None = None
    company: str | None = None
    street: list[str] = []
    city: str | None = None
    region: str | None = None
    region_code: str | None = None
    postcode: str | None = None
    country_id: str | None = Field(default=None, max_length=2)
    telephone: str | None = None
    email: str | None = None

    @field_validator("street", mode="before")
    @classmethod
    def _street_lines(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.splitlines() or [value]
        return [] if value is None else value


class CommercePayment(_Model):
    entity_id: Identifier | None = None
    method: str = Field(min_length=1)
    cc_type: str | None = None
    last_trans_id: str | None = None
    amount_ordered: Amount = None


class ShippingBlock(_Model):
    method: str | None = Field(default=None, max_length=120)  # the SHIPPING line's SKU; Magento keeps 120
    address: CommerceAddress | None = None


class ShippingAssignment(_Model):
    shipping: ShippingBlock | None = None


class GiftCardAccount(_Model):
    id: Identifier | None = None
    code: str = Field(min_length=1)
    amount: Amount = None


def _absent_block(value: Any) -> Any:
    """An extension block Adobe Commerce leaves out, sends as null, or (PHP's empty array) as ``[]``."""
    return {} if value is None or value == [] else value


class GiftWrappingAmounts(_Model):
    """The order's gift wrapping (Adobe Commerce's Magento_GiftWrapping), in order currency; each price excludes tax.
    ``gw_id``: the wrapping chosen for the whole order; ``gw_items_*``: the sum of the item wrappings;
    ``gw_card_*``: a printed card (``gw_add_card``). The ``base_`` twins (base currency) are not read."""

    gw_id: OptionalIdentifier = None
    gw_price: Amount = None
    gw_tax_amount: Amount = None
    gw_price_incl_tax: Amount = None
    gw_items_price: Amount = None
    gw_items_tax_amount: Amount = None
    gw_items_price_incl_tax: Amount = None
    gw_add_card: Flag = None
    gw_card_price: Amount = None
    gw_card_tax_amount: Amount = None
    gw_card_price_incl_tax: Amount = None


class OrderExtension(GiftWrappingAmounts):
    shipping_assignments: list[ShippingAssignment] = []
    gift_cards: list[GiftCardAccount] = []
    gift_cards_amount: Amount = None
    customer_balance_amount: Amount = None
    reward_currency_amount: Amount = None  # reward points redeemed, in order currency


class ItemWrapping(_Model):
    """A wrapped item's wrapping (``gw_id``), its price and tax **per unit**, excluding tax, in order currency."""

    gw_id: OptionalIdentifier = None
    gw_price: Amount = None
    gw_tax_amount: Amount = None


class CommerceItem(ItemWrapping):  # the wrapping fields as the item's own columns: a raw I/O event's
    item_id: Identifier
    parent_item_id: Identifier | None = None
    product_type: str = Field(default="simple", min_length=1)
    sku: str = Field(min_length=1, max_length=MAX_SKU)
    name: str | None = None
    is_virtual: Flag = None
    qty_ordered: Amount = Field(default=None)
    qty_backordered: Amount = None
    price: Amount = None
    original_price: Amount = None
    price_incl_tax: Amount = None
    row_total: Amount = None
    row_total_incl_tax: Amount = None
    discount_amount: Amount = None
    discount_percent: Amount = None
    tax_amount: Amount = None
    tax_percent: Amount = None
    discount_tax_compensation_amount: Amount = None
    # Fixed product taxes (Magento_Weee): ``weee_tax_applied`` is JSON *text* listing each fee; it is read, and a
    # bad one refused naming it, by app/mappers/fixed_taxes.py (so any JSON value is taken here). The two sums
    # (excluding tax) are read when the list is empty.
    weee_tax_applied: Any = None
    weee_tax_applied_amount: Amount = None
    weee_tax_applied_row_amount: Amount = None
    # Gift wrapping: REST puts it in ``extension_attributes``; raw I/O event payloads as columns of the item.
    extension_attributes: ItemWrapping = ItemWrapping()

    @field_validator("extension_attributes", mode="before")
    @classmethod
    def _absent_extension(cls, value: Any) -> Any:
        return value if isinstance(value, dict) else {}  # only the wrapping is read from it: anything else is none

    @field_validator("qty_ordered")
    @classmethod
    def _whole_units(cls, value: Decimal | None) -> Decimal:
        if value is None:
            raise ValueError("is required")
        if value <= 0 or value != value.to_integral_value():
            raise ValueError(f"must be a whole number of units above 0 (the OMS has one line per unit), got {value}")
        return value

    @field_validator("qty_backordered")
    @classmethod
    def _whole_backordered(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and (value < 0 or value != value.to_integral_value()):
            raise ValueError(f"must be a whole number of units, got {value}")
        return value

    @property
    def units(self) -> int:
        assert self.qty_ordered is not None
        return int(self.qty_ordered)

    def wrapping(self, name: str) -> Any:
        """The item's gift wrapping field ``name`` (``gw_id``, ``gw_price``, ``gw_tax_amount``): from
        ``extension_attributes`` (REST), else from the item's own columns (a raw I/O event)."""
        value = getattr(self.extension_attributes, name)
        return value if value is not None else getattr(self, name)


class CommerceOrder(GiftWrappingAmounts):  # the wrapping fields as the order's own columns: a raw I/O event's
    entity_id: Identifier | None = None
    increment_id: Identifier
    status: str = Field(min_length=1)
    state: str | None = None
    store_id: Identifier | None = None
    created_at: str | None = None
    updated_at: str | None = None
    remote_ip: str | None = None
    customer_id: Identifier | None = None
    customer_is_guest: Flag = None
    customer_email: str | None = None
    customer_firstname: str | None = None
    customer_lastname: str | None = None
    order_currency_code: str = Field(min_length=3, max_length=3)
    grand_total: Amount
    shipping_amount: Amount = None
    shipping_incl_tax: Amount = None
    shipping_tax_amount: Amount = None
    shipping_discount_amount: Amount = None
    shipping_discount_tax_compensation_amount: Amount = None
    shipping_description: str | None = None
    discount_description: str | None = None
    coupon_code: str | None = None
    billing_address: CommerceAddress | None = None
    payment: CommercePayment | None = None
    items: list[CommerceItem] = Field(min_length=1)
    extension_attributes: OrderExtension = OrderExtension()
    # Raw I/O event payloads (magento-rest.md §2) may carry these, and the gift wrapping, as top-level columns.
    gift_cards_amount: Amount = None
    customer_balance_amount: Amount = None
    reward_currency_amount: Amount = None

    @field_validator("grand_total")
    @classmethod
    def _required_amount(cls, value: Decimal | None) -> Decimal:
        if value is None:
            raise ValueError("is required")
        return value

    @field_validator("extension_attributes", mode="before")
    @classmethod
    def _absent_extension(cls, value: Any) -> Any:
        return _absent_block(value)

    def wrapping(self, name: str) -> Any:
        """The order's gift wrapping field ``name`` (see ``GiftWrappingAmounts``): from ``extension_attributes``
        (REST), else from the order's own columns (a raw I/O event)."""
        value = getattr(self.extension_attributes, name)
        return value if value is not None else getattr(self, name)

    @property
    def gift_card_total(self) -> Decimal:
        return abs(self.extension_attributes.gift_cards_amount or self.gift_cards_amount or Decimal(0))

    @property
    def store_credit_total(self) -> Decimal:
        return abs(self.extension_attributes.customer_balance_amount or self.customer_balance_amount or Decimal(0))

    @property
    def reward_points_total(self) -> Decimal:
        return abs(self.extension_attributes.reward_currency_amount or self.reward_currency_amount or Decimal(0))


def unwrap_order_document(document: Any) -> Any:
    """The order itself, also when it comes wrapped as an Adobe I/O event (``{"data": {"value": {…}}}``)."""
    if isinstance(document, dict) and "increment_id" not in document:
        data = document.get("data")
        if isinstance(data, dict) and isinstance(data.get("value"), dict):
            return data["value"]
    return document


@dataclass(frozen=True)
class ParsedOrder:
    document: dict[str, Any]  # the order as sent (amounts as Decimal), unwrapped
    order: CommerceOrder
    wrapped: bool  # it came as an Adobe I/O event: the order is the body's data.value


def parse_order_body(body: bytes | str) -> ParsedOrder:
    """Parse and validate a posted order. Raises ValueError (not JSON / not an object) or pydantic's
    ValidationError (a field is unusable)."""
    try:
        raw = strict_json.loads(body, decimals=True)
    except strict_json.UnacceptableJson as exc:
        raise ValueError(f"the body is not JSON this service accepts: {exc}") from None
    document = unwrap_order_document(raw)
    if not isinstance(document, dict):
        raise ValueError("the body must be an Adobe Commerce order object (or an I/O event with data.value)")
    return ParsedOrder(document=document, order=CommerceOrder.model_validate(document), wrapped=document is not raw)


def describe_errors(exc: ValidationError) -> list[dict[str, str]]:
    """One ``{field, message}`` per problem, the field written as in the order (``items[2].qty_ordered``)."""
    problems = []
    for error in exc.errors(include_url=False):
        field = ""
        for part in error["loc"]:
            field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
        problems.append({"field": field or "(order)", "message": error["msg"]})
    return problems
