"""An Adobe Commerce product as ``GET /V1/products/{sku}`` returns it (reference/magento-rest.md §5), reduced to
what the OMS receives: type, name, enabled, children, custom attributes, websites. Strict where it protects data
(a SKU, a known type, whole-number ids), tolerant where the store is loose (ids and status as strings, attribute
values as numbers or lists)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from app.errors import ProductRejected

MAX_SKU = 64  # the OMS keys products by SKU, at most 64 characters (protocol §3.9)
TYPES = ("simple", "virtual", "bundle", "configurable", "grouped", "downloadable", "giftcard")


def _attribute_value(value: Any) -> str:
    """Attribute values are strings; a multiselect or a list (``category_ids``) is sent comma-separated."""
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


class CustomAttribute(BaseModel):
    model_config = ConfigDict(extra="ignore")

    attribute_code: str = Field(min_length=1, max_length=255)
    value: Annotated[str, BeforeValidator(_attribute_value)] = ""


class ProductLink(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sku: str = Field(min_length=1, max_length=MAX_SKU)


class BundleOption(BaseModel):
    model_config = ConfigDict(extra="ignore")

    product_links: list[ProductLink] = []


class ProductExtension(BaseModel):
    model_config = ConfigDict(extra="ignore")

    website_ids: list[int] = []
    configurable_product_links: list[int] = []  # child product ids (not SKUs: reference §5)
    bundle_product_options: list[BundleOption] = []


class CommerceProduct(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int | None = None
    sku: str = Field(min_length=1, max_length=MAX_SKU)
    name: str = Field(default="", max_length=255)
    type_id: str = "simple"
    status: int = 1  # 1 enabled, 2 disabled
    custom_attributes: list[CustomAttribute] = []
    extension_attributes: ProductExtension = ProductExtension()

    @field_validator("sku")
    @classmethod
    def _sku(cls, value: str) -> str:
        if value != value.strip() or not value.isprintable():
            raise ValueError("has surrounding spaces or unprintable characters")
        return value

    @field_validator("type_id")
    @classmethod
    def _type(cls, value: str) -> str:
        if value not in TYPES:
            raise ValueError(f"unknown product type {value!r} (one of {', '.join(TYPES)})")
        return value

    @field_validator("status")
    @classmethod
    def _status(cls, value: int) -> int:
        if value not in (1, 2):
            raise ValueError("must be 1 (enabled) or 2 (disabled)")
        return value

    @property
    def enabled(self) -> bool:
        return self.status == 1

    @property
    def attributes(self) -> dict[str, str]:
        return {attribute.attribute_code: attribute.value for attribute in self.custom_attributes}

    @property
    def bundle_children(self) -> list[str]:
        """Bundle selections, each SKU once, in option order."""
        skus: list[str] = []
        for option in self.extension_attributes.bundle_product_options:
            for link in option.product_links:
                if link.sku not in skus:
                    skus.append(link.sku)
        return skus


MAX_PRODUCTS_PER_POST = 1000


def parse_products(document: Any) -> list[CommerceProduct]:
    """One product or a list of them (at most MAX_PRODUCTS_PER_POST); every fault named by its field path
    (``[3].sku``), nothing taken from a post with a fault."""
    many = isinstance(document, list)
    items = document if many else [document]
    if many and not items:
        raise ProductRejected([{"field": "body", "message": "an empty list: nothing to store"}])
    if len(items) > MAX_PRODUCTS_PER_POST:
        raise ProductRejected([{"field": "body", "message": f"more than {MAX_PRODUCTS_PER_POST} products in one post"}])
    products: list[CommerceProduct] = []
    errors: list[dict[str, str]] = []
    for index, item in enumerate(items):
        prefix = f"[{index}]" if many else ""
        if not isinstance(item, dict):
            errors.append({"field": prefix or "body", "message": "a product must be a JSON object"})
            continue
        try:
            products.append(CommerceProduct.model_validate(item))
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
                errors.append({"field": (prefix + path).lstrip("."), "message": error["msg"]})
    skus = [product.sku for product in products]
    for sku in {sku for sku in skus if skus.count(sku) > 1}:
        errors.append({"field": "sku", "message": f"{sku!r} is posted more than once"})
    if errors:
        raise ProductRejected(errors)
    return products
