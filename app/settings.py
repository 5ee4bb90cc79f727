"""All configuration, read once from the environment (and an optional `.env`).

The environment variable names are the operator contract (README, "Configuration"). Settings are built by the
app factory or the CLI and passed down; nothing imports a global settings object.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AnyHttpUrl, BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.protocol.sourcing_rules import SHIP_TOGETHER, normalize_sourcing_rule

GENERATED_TOKEN_BYTES = 32

# The inferred mapping of protocol §4. "holded", "complete" and "canceled" name the state the order reaches through
# the matching action (hold, ship + invoice, cancel); see app/mappers/lifecycle_to_commerce.py.
DEFAULT_STATUS_MAP: dict[str, str | None] = {
    "RECEIVED": "processing",
    "ONHOLD": "holded",
    "LOGISTICS": "processing",
    "LOGISTICSCOMPLETE": "processing",
    "COMPLETE": "complete",
    "CANCELED": "canceled",
    "CANCELLED": "canceled",
}


ATTRIBUTE_CODE = re.compile(r"^[a-z][a-z0-9_]{0,59}$")


def normalize_attribute_codes(codes: list[str]) -> list[str]:
    """Magento attribute codes (lower case, digits, underscores; at most 60), each once, in the order given."""
    cleaned: list[str] = []
    for code in codes:
        code = code.strip()
        if not ATTRIBUTE_CODE.fullmatch(code):
            raise ValueError(f"{code!r} is not an attribute code (a-z, 0-9, _; starts with a letter; at most 60)")
        if code not in cleaned:
            cleaned.append(code)
    return cleaned


class ShippingMethod(BaseModel):
    """An enabled shipping method: ``code`` is what orders carry (``flatrate_flatrate``), the SHIPPING line's SKU."""

    code: str = Field(min_length=1, max_length=64, pattern=r"^\S+$")
    name: str = Field(min_length=1, max_length=255)


class ConfigurationError(Exception):
    """The configuration is invalid; the message names the environment variable(s) at fault."""


class Settings(BaseSettings):
    """Every setting of the connector. Field names are the environment variable names, lower-cased."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # --- runtime -------------------------------------------------------------------------------------------
    app_env: Literal["production", "development"] = "production"
    database_url: SecretStr | None = None
    data_dir: Path = Path(".data")  # the embedded PostgreSQL keeps its files under <data_dir>/postgres
    run_migrations: bool = True  # apply Alembic migrations at start-up
    run_workers: bool = True  # start the bus workers inside `serve`
    inbound_workers: int = Field(default=4, ge=1, le=256)
    outbound_workers: int = Field(default=16, ge=1, le=1024)
    handler_plugins: list[str] = []  # "module:function" callables that add handlers to the registry
    log_level: str = "INFO"

    # --- the OMS (the seed's serviceBus block) ------------------------------------------------------------
    oms_url: AnyHttpUrl | None = None
    oms_oauth_server_url: AnyHttpUrl | None = None
    oms_oauth_client_id: str = ""
    oms_oauth_client_secret: SecretStr = SecretStr("")
    oms_application_id: str = Field(default="mdc", min_length=1, max_length=64)
    oms_application_base_url: AnyHttpUrl | None = None
    oms_secret: SecretStr = SecretStr("")
    oms_secret_previous: SecretStr = SecretStr("")
    oms_labels: dict[str, Any] = {}
    oms_signature: Literal["required", "off"] = "required"
    oms_retry_window_hours: float = Field(default=48.0, gt=0)
    oms_max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    oms_http_transport: Literal["aiohttp", "httpx"] = "aiohttp"
    oms_http_timeout_s: float = Field(default=30.0, gt=0)
    oms_send_mode: Literal["single", "rpc-batch"] = "single"
    oms_rpc_batch_size: int = Field(default=100, ge=1, le=5000)
    oms_register_at_startup: bool = True
    oms_timezone: str = "UTC"  # zone of OMS timestamps that carry none (the PHP peer's `created_on`)

    # --- inventory ------------------------------------------------------------------------------------------
    # Which websites (sales channels) each OMS stock aggregate feeds. Seeds the operator-editable mapping
    # (GET/PUT /stock/aggregates) for aggregates it does not know yet; after that the database is the truth.
    oms_aggregate_websites: dict[str, list[str]] = {}

    # --- orders ----------------------------------------------------------------------------------------------
    oms_export_statuses: list[str] = ["pending"]  # store statuses that export an order; others are held
    oms_order_export_mode: Literal["async", "sync"] = "async"  # sync: POST /orders delivers inline (outbox fallback)
    oms_sales_channel_id: str = Field(default="default", min_length=1, max_length=30)  # the OMS `order.store`
    oms_store_channels: dict[str, str] = {}  # Magento store id → OMS sales channel, overriding the one above
    oms_bundle_sourcing_rule: str = SHIP_TOGETHER  # for bundles without a rule of their own (PUT …/sourcing-rule)
    commerce_max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)  # POST /orders and other store calls

    # --- catalog ----------------------------------------------------------------------------------------------
    # Custom attributes sent with each product (and whose change exports it). Seeds the catalog settings; after
    # that GET/PUT /catalog/attributes is the truth.
    oms_product_attributes: list[str] = []
    # Enabled shipping methods, exported as products whose SKU is the method code (Adobe Commerce has no REST route
    # that lists carriers). Seeds the catalog settings; after that GET/PUT /catalog/shipping-methods.
    oms_shipping_methods: list[ShippingMethod] = []
    oms_product_locale: str = Field(default="en_US", min_length=2, max_length=16)  # the locale of `name[]`
    # Full catalog export: products per batch (the unit of progress and resumption), how each batch is sent
    # (single: one call per product over pooled keep-alive connections, what the known peers accept; rpc-batch: one
    # JSON-RPC batch request per batch), and how many single calls are in flight at once.
    oms_catalog_batch_size: int = Field(default=5000, ge=1, le=50_000)
    oms_catalog_send_mode: Literal["single", "rpc-batch"] = "single"
    oms_catalog_concurrency: int = Field(default=32, ge=1, le=512)
    # A running export's lease, renewed as it goes: a process that died leaves it to expire, then a worker resumes.
    catalog_import_max_bytes: int = Field(default=2 * 1024**3, ge=1024)  # POST /catalog/import (spooled to disk)
    oms_catalog_export_lease_s: float = Field(default=60.0, ge=1.0, le=3600.0)

    # --- order lifecycle (what the OMS tells us after the export) ---------------------------------------------
    # OMS order status → Adobe Commerce status, merged over DEFAULT_STATUS_MAP; "" or null: recorded, mapped to
    # nothing. Keys are compared case-insensitively.
    oms_status_map: dict[str, str | None] = {}
    # An order whose OMS status is one of these can no longer be canceled (409).
    oms_cancel_blocked_statuses: list[str] = ["LOGISTICS", "LOGISTICSCOMPLETE", "COMPLETE"]
    # The known peers define no cancel method; this is what the connector calls (protocol §4).
    oms_cancel_method: str = Field(default="magento.sales.order_management.cancel", min_length=1, max_length=200)

    # --- Adobe Commerce REST (where the recorded effects are delivered; unset: recorded only) -----------------
    adobe_commerce_url: AnyHttpUrl | None = None  # e.g. https://shop.example/rest/all/V1
    adobe_commerce_token: SecretStr | None = None  # integration access token (bearer)
    adobe_commerce_invoice_on_shipment: bool = True  # invoice (offline) what a shipment ships, if not invoiced yet
    adobe_commerce_notify_customer: bool = True  # shipments and credit memos e-mail the customer
    adobe_commerce_timeout_s: float = Field(default=30.0, gt=0)
    # OMS stock aggregate → MSI source code; stock of aggregates not listed is not delivered.
    adobe_commerce_source_codes: dict[str, str] = {}
    # Source items per POST /inventory/source-items: 20 is the Web API input limit when it is switched on.
    adobe_commerce_source_items_batch: int = Field(default=20, ge=1, le=5000)

    # --- who may call us ----------------------------------------------------------------------------------
    operator_token: SecretStr | None = None
    commerce_token: SecretStr | None = None

    @field_validator("oms_oauth_server_url", "oms_url", "oms_application_base_url", "database_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("adobe_commerce_url", mode="before")
    @classmethod
    def _empty_url_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("operator_token", "commerce_token", "adobe_commerce_token", mode="before")
    @classmethod
    def _blank_token_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("operator_token", "commerce_token")
    @classmethod
    def _token_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    @field_validator("oms_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin)") from None
        return value

    @field_validator("oms_export_statuses")
    @classmethod
    def _statuses(cls, value: list[str]) -> list[str]:
        cleaned = [status.strip() for status in value if status.strip()]
        if not cleaned:
            raise ValueError('give at least one order status, e.g. ["pending"]')
        return cleaned

    @field_validator("oms_status_map")
    @classmethod
    def _status_map(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        cleaned: dict[str, str | None] = {}
        for status, commerce in value.items():
            if not status.strip():
                raise ValueError("an OMS status must not be empty")
            cleaned[status.strip().upper()] = (commerce or "").strip() or None
        return cleaned

    @field_validator("oms_product_attributes")
    @classmethod
    def _attribute_codes(cls, value: list[str]) -> list[str]:
        return normalize_attribute_codes(value)

    @field_validator("oms_shipping_methods")
    @classmethod
    def _unique_methods(cls, value: list[ShippingMethod]) -> list[ShippingMethod]:
        codes = [method.code for method in value]
        if len(set(codes)) != len(codes):
            raise ValueError("a shipping method code is listed twice")
        return value

    @field_validator("oms_cancel_blocked_statuses")
    @classmethod
    def _upper_statuses(cls, value: list[str]) -> list[str]:
        return [status.strip().upper() for status in value if status.strip()]

    @field_validator("adobe_commerce_source_codes")
    @classmethod
    def _source_codes(cls, value: dict[str, str]) -> dict[str, str]:
        cleaned = {aggregate.strip(): code.strip() for aggregate, code in value.items()}
        if any(not aggregate or not code for aggregate, code in cleaned.items()):
            raise ValueError("aggregate ids and source codes must not be empty")
        return cleaned

    @field_validator("oms_bundle_sourcing_rule")
    @classmethod
    def _sourcing_rule(cls, value: str) -> str:
        return normalize_sourcing_rule(value)

    @field_validator("oms_aggregate_websites")
    @classmethod
    def _websites_fed_once(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        return validate_aggregate_websites(value)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.oms_oauth_server_url and not self.oms_oauth_client_id:
            raise ValueError("OMS_OAUTH_CLIENT_ID is required when OMS_OAUTH_SERVER_URL is set")
        if self.oms_signature == "required" and self.oms_url and not self.oms_secret.get_secret_value():
            raise ValueError("OMS_SECRET is required when OMS_URL is set and OMS_SIGNATURE=required")
        if (self.adobe_commerce_url is None) != (self.adobe_commerce_token is None):
            raise ValueError("ADOBE_COMMERCE_URL and ADOBE_COMMERCE_TOKEN are set together (or neither)")
        return self

    # --- derived --------------------------------------------------------------------------------------------
    @property
    def oms_configured(self) -> bool:
        return self.oms_url is not None

    @property
    def commerce_configured(self) -> bool:
        return self.adobe_commerce_url is not None and self.adobe_commerce_token is not None

    @property
    def status_map(self) -> dict[str, str | None]:
        """OMS status (upper case) → Adobe Commerce status (None: recorded only)."""
        return {**DEFAULT_STATUS_MAP, **self.oms_status_map}

    @property
    def callback_url(self) -> str | None:
        if self.oms_application_base_url is None:
            return None
        return str(self.oms_application_base_url).rstrip("/") + "/oms/rpc"

    @property
    def signing_secrets(self) -> list[bytes]:
        """The secrets a signature may be made with: current first, then the one being rotated out."""
        keys = [self.oms_secret.get_secret_value(), self.oms_secret_previous.get_secret_value()]
        return [key.encode() for key in keys if key]

    @property
    def retry_window_s(self) -> float:
        return self.oms_retry_window_hours * 3600.0

    @property
    def oms_zone(self) -> ZoneInfo:
        return ZoneInfo(self.oms_timezone)


def validate_aggregate_websites(mapping: dict[str, list[str]]) -> dict[str, list[str]]:
    """Clean an aggregate → websites mapping: codes stripped and non-empty, and each website fed by one aggregate
    only (a website shows one stock, as in Adobe Commerce where a website is assigned to exactly one stock)."""
    cleaned: dict[str, list[str]] = {}
    fed_by: dict[str, str] = {}
    for raw_aggregate, websites in mapping.items():
        aggregate = raw_aggregate.strip()
        if not aggregate:
            raise ValueError("an aggregate id must not be empty")
        codes: list[str] = []
        for raw_code in websites:
            code = raw_code.strip()
            if not code:
                raise ValueError(f"aggregate {aggregate!r}: a website code must not be empty")
            if code in fed_by and fed_by[code] != aggregate:
                raise ValueError(f"website {code!r} is fed by both {fed_by[code]!r} and {aggregate!r}")
            fed_by[code] = aggregate
            if code not in codes:
                codes.append(code)
        cleaned[aggregate] = codes
    return cleaned


def load_settings(**overrides: Any) -> tuple[Settings, list[str]]:
    """Build the settings; generate the access tokens that were not configured.

    Returns the settings and the names of the tokens that were generated (so start-up can print them once).
    Raises ConfigurationError naming each bad variable.
    """
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigurationError(describe_validation_error(exc)) from exc
    generated: list[str] = []
    updates: dict[str, SecretStr] = {}
    for name in ("operator_token", "commerce_token"):
        if getattr(settings, name) is None:
            updates[name] = SecretStr(secrets.token_urlsafe(GENERATED_TOKEN_BYTES))
            generated.append(name.upper())
    if updates:
        settings = settings.model_copy(update=updates)
    return settings, generated


def describe_validation_error(exc: ValidationError) -> str:
    lines = ["invalid configuration:"]
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ()) if not str(part).isdigit()]
        name = loc[0].upper() if loc else "(settings)"
        lines.append(f"  {name}: {error.get('msg', 'invalid value')}")
    return "\n".join(lines)
