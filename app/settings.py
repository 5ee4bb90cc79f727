"""All configuration, read once from the environment (and an optional `.env`).

The environment variable names are the operator contract (README, "Configuration"). Settings are built by the
app factory or the CLI and passed down; nothing imports a global settings object.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from app.protocol.sourcing_rules import SHIP_TOGETHER, normalize_sourcing_rule

if TYPE_CHECKING:
    from app.tokens import KeptToken

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# A pruned message's id is no longer recognised as a duplicate: the journal must keep messages longer than the OMS
# re-delivers a call (its redelivery window is a few days), so no retention below this is accepted.
MIN_JOURNAL_RETENTION_DAYS = 3
POSTGRES_SCHEMES = ("postgres", "postgresql", "postgresql+asyncpg")

# What a list or object setting looks like in the environment, for the message that refuses a value that is not
# that JSON. A setting not listed here gets a generic example of its shape.
JSON_EXAMPLES: dict[str, str] = {
    "handler_plugins": '["my_package.handlers:install"]',
    "oms_labels": '{"env": "production"}',
    "oms_aggregate_websites": '{"EU-WEB": ["base", "de"]}',
    "oms_export_statuses": '["pending"]',
    "oms_store_channels": '{"1": "default"}',
    "oms_product_attributes": '["color", "size"]',
    "oms_shipping_methods": '[{"code": "flatrate_flatrate", "name": "Flat Rate"}]',
    "oms_store_view_locales": '{"de": "de_DE"}',
    "oms_status_map": '{"ONHOLD": "holded"}',
    "oms_cancel_blocked_statuses": '["LOGISTICS", "LOGISTICSCOMPLETE", "COMPLETE"]',
    "adobe_commerce_source_codes": '{"EU-WEB": "eu_source"}',
}
_JSON_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}

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

    # List and object settings are JSON; they are decoded by _json_from_environment (not by pydantic-settings, which
    # stops at the first value that is not JSON with an error that names no variable).
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", enable_decoding=False)

    # --- runtime -------------------------------------------------------------------------------------------
    app_env: Literal["production", "development"] = "production"
    database_url: SecretStr | None = None
    # The embedded PostgreSQL keeps its files under <data_dir>/postgres; generated tokens are kept in
    # <data_dir>/tokens.json (app/tokens.py).
    data_dir: Path = Path(".data")
    run_migrations: bool = True  # apply Alembic migrations at start-up
    run_workers: bool = True  # start the bus workers inside `serve`
    inbound_workers: int = Field(default=4, ge=1, le=256)
    outbound_workers: int = Field(default=16, ge=1, le=1024)
    handler_plugins: list[str] = []  # "module:function" callables that add handlers to the registry
    log_level: str = "INFO"  # one of LOG_LEVELS, any case
    # text | json | auto (text on a terminal, JSON lines anywhere else); app/logs.py
    log_format: Literal["auto", "text", "json"] = "auto"
    log_file: Path | None = None  # also written here; reopened when logrotate moves it away

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

    # --- journal ---------------------------------------------------------------------------------------------
    # Finished messages older than this are deleted, once a day by the workers and on demand (`oms-connector journal
    # prune`, POST /journal/prune): app/services/journal_prune.py. At least MIN_JOURNAL_RETENTION_DAYS.
    oms_journal_retention_days: int = Field(default=30, le=36_500)
    # The processing-time report's per-minute stats (app/workers/stats.py) are kept this long, whatever the journal's
    # retention: they are computed from the journal before it is pruned.
    oms_stats_retention_days: int = Field(default=400, ge=1, le=36_500)

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
    # One OMS line per unit: an order of more units is refused (422) before it is mapped. Mapping costs ~50 µs of
    # CPU and ~600 bytes of JSON per line (bench/orders.py), so 1,000 lines ≈ 50 ms; raise it for B2B stores.
    oms_max_order_lines: int = Field(default=1000, ge=1, le=100_000)

    # --- catalog ----------------------------------------------------------------------------------------------
    # Custom attributes sent with each product (and whose change exports it). Seeds the catalog settings; after
    # that GET/PUT /catalog/attributes is the truth.
    oms_product_attributes: list[str] = []
    # Enabled shipping methods, exported as products whose SKU is the method code (Adobe Commerce has no REST route
    # that lists carriers). Seeds the catalog settings; after that GET/PUT /catalog/shipping-methods.
    oms_shipping_methods: list[ShippingMethod] = []
    oms_product_locale: str = Field(default="en_US", min_length=2, max_length=16)  # the locale of `name[]`
    # Magento store view code → OMS locale: the name of a CSV store-view row is sent as that locale's `name[]` entry.
    # Store-view rows of views not listed (all of them when empty) are reported as skipped, never applied.
    oms_store_view_locales: dict[str, str] = {}
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
    # Orders pulled from Adobe Commerce (app/services/order_pull.py): every this many seconds one replica asks for
    # the orders updated since its cursor (0: never; `oms-connector orders pull` still works). Pages of this many
    # orders (300: the Web API's largest page when its input limits are on), at most this many pages per poll (the
    # next poll follows at once when there is more), each poll reading again this many seconds before its cursor
    # (``updated_at`` has one-second resolution, and an order saved just before another may commit after it).
    adobe_commerce_order_poll_s: float = Field(default=60.0, ge=0, le=86_400)
    adobe_commerce_order_page_size: int = Field(default=100, ge=1, le=300)
    adobe_commerce_order_max_pages: int = Field(default=50, ge=1, le=10_000)
    adobe_commerce_order_overlap_s: float = Field(default=10.0, ge=0, le=3600)

    # --- who may call us ----------------------------------------------------------------------------------
    operator_token: SecretStr | None = None
    commerce_token: SecretStr | None = None
    metrics_token: SecretStr | None = None  # opens GET /metrics only (Prometheus); the operator token does too
    # The console (/admin): a read-only token sees every page and changes nothing; a sign-in lasts this long.
    operator_readonly_token: SecretStr | None = None
    console_session_hours: float = Field(default=8.0, gt=0, le=24 * 30)

    @field_validator("*", mode="before")
    @classmethod
    def _json_from_environment(cls, value: Any, info: ValidationInfo) -> Any:
        """A list or object setting given as text (the environment, `.env`) is JSON of that shape; anything else
        is refused here with the shape expected, e.g. ``OMS_EXPORT_STATUSES=pending``."""
        assert info.field_name is not None
        shape = _json_shape(cls.model_fields[info.field_name].annotation)
        if shape is None or not isinstance(value, str):
            return value
        expected = f"give a JSON {'list' if shape is list else 'object'} such as {json_example(info.field_name)}"
        try:
            decoded = json.loads(value)
        except ValueError as exc:
            where = f" ({exc.msg} at character {exc.pos + 1})" if isinstance(exc, json.JSONDecodeError) else ""
            raise ValueError(f"not valid JSON{where}; {expected}") from None
        if not isinstance(decoded, shape):
            found = _JSON_TYPE_NAMES.get(type(decoded), "a number")
            raise ValueError(f"{found}, not {_JSON_TYPE_NAMES[shape]}; {expected}")
        return decoded

    @field_validator("oms_oauth_server_url", "oms_url", "oms_application_base_url", "database_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("adobe_commerce_url", mode="before")
    @classmethod
    def _empty_url_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "operator_token",
        "commerce_token",
        "metrics_token",
        "operator_readonly_token",
        "adobe_commerce_token",
        mode="before",
    )
    @classmethod
    def _blank_token_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            url = value.get_secret_value()
            scheme = url.partition("://")[0].strip()
            if scheme not in POSTGRES_SCHEMES:
                raise ValueError(
                    f"must be a postgresql:// URL (postgresql://user:password@host:5432/database), not {scheme!r}"
                )
            try:
                urlsplit(url).port  # noqa: B018  (reading the port is what checks it)
            except ValueError:  # its message would quote the URL's netloc, password included
                raise ValueError("the port is not a number from 0 to 65535") from None
        return value

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"{value!r} is not a log level; give one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("log_format", mode="before")
    @classmethod
    def _log_format_any_case(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_file", mode="before")
    @classmethod
    def _empty_log_file_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("handler_plugins")
    @classmethod
    def _plugin_specs(cls, value: list[str]) -> list[str]:
        for spec in value:
            module, _, function = spec.partition(":")
            if not module.strip() or not function.strip():
                raise ValueError(f"{spec!r} must look like module:function")
        return value

    @field_validator("operator_token", "commerce_token", "metrics_token", "operator_readonly_token")
    @classmethod
    def _token_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    @field_validator("oms_journal_retention_days")
    @classmethod
    def _retention_outlasts_redelivery(cls, value: int) -> int:
        if value < MIN_JOURNAL_RETENTION_DAYS:
            raise ValueError(
                f"{value} days is too short: a pruned message's id is no longer recognised as a duplicate, so the "
                f"journal must outlast the OMS's redelivery window; give at least {MIN_JOURNAL_RETENTION_DAYS}"
            )
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

    @field_validator("oms_store_view_locales")
    @classmethod
    def _store_view_locales(cls, value: dict[str, str]) -> dict[str, str]:
        cleaned = {view.strip(): locale.strip() for view, locale in value.items()}
        if any(not view for view in cleaned) or len(cleaned) != len(value):
            raise ValueError("store view codes must not be empty or repeated")
        if any(not 2 <= len(locale) <= 16 or not locale.isprintable() or " " in locale for locale in cleaned.values()):
            raise ValueError("a locale is 2 to 16 printable characters without spaces, e.g. de_DE")
        return cleaned

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
    def order_pull_enabled(self) -> bool:
        """Processes with workers poll Adobe Commerce for orders (it is configured and the interval is not 0)."""
        return self.commerce_configured and self.adobe_commerce_order_poll_s > 0

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
    def signature_warning(self) -> str | None:
        """Why OMS calls are not verified the way they should be (None: they are): printed at start-up and shown
        on /integration."""
        if self.oms_signature == "off":
            return "OMS_SIGNATURE=off: signatures are not verified; anyone who can reach /oms/rpc can post messages"
        if not self.signing_secrets:
            return (
                "OMS_SIGNATURE=required but OMS_SECRET is not set: every OMS call is refused with 401 "
                "until OMS_SECRET is set"
            )
        return None

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


def load_settings(*, keep_tokens: bool = True, **overrides: Any) -> tuple[Settings, list[KeptToken]]:
    """Build the settings from the environment (and ``overrides``).

    With ``keep_tokens`` (what `serve` needs), an access token that is not configured is taken from
    ``DATA_DIR/tokens.json``, or generated and kept there (app/tokens.py); the list says which tokens come from that
    file and whether they were generated just now. Without it, unset tokens stay unset (commands that serve no HTTP).
    Raises ConfigurationError naming each bad variable, one line each.
    """
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigurationError(describe_validation_error(exc)) from exc
    except SettingsError as exc:  # a source that could not be read at all (not a value that is wrong)
        raise ConfigurationError(describe_settings_error(exc)) from exc
    except (OSError, UnicodeDecodeError) as exc:  # the .env file: unreadable, or not UTF-8 text
        env_file = overrides.get("_env_file", Settings.model_config.get("env_file"))
        raise ConfigurationError(f"{env_file}: cannot be read: {exc.__class__.__name__}: {exc}") from exc
    if not keep_tokens:
        return settings, []
    from app.tokens import keep_generated_tokens

    return keep_generated_tokens(settings)


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem, each starting with the variable (and the place inside a JSON value) at fault."""
    lines: list[str] = []
    for error in exc.errors():
        message = str(error.get("msg", "invalid value"))
        for prefix in ("Value error, ", "Assertion failed, "):
            message = message.removeprefix(prefix)
        loc = [part for part in error.get("loc", ()) if part != "__root__"]
        if not loc:  # a rule across settings: its message names the variables
            lines.append(message)
            continue
        where = str(loc[0]).upper() + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc[1:])
        lines.append(f"{where}: {message}")
    return "\n".join(lines)


def describe_settings_error(exc: SettingsError) -> str:
    """pydantic-settings names the field only in prose ('… for field "oms_labels" …'): name the variable."""
    found = re.search(r'field "(\w+)"', str(exc))
    cause = exc.__cause__
    reason = f"{cause.__class__.__name__}: {cause}" if cause else str(exc)
    return f"{found.group(1).upper()}: cannot be read: {reason}" if found else f"configuration: {reason}"


def json_example(field_name: str) -> str:
    """An example of the JSON a list or object setting takes."""
    if field_name in JSON_EXAMPLES:
        return JSON_EXAMPLES[field_name]
    return '["…"]' if _json_shape(Settings.model_fields[field_name].annotation) is list else '{"key": "value"}'


def _json_shape(annotation: Any) -> type | None:
    """list or dict when a setting of this type is written as JSON in the environment, else None."""
    origin = get_origin(annotation) or annotation
    if origin in (list, set, frozenset, tuple):
        return list
    if origin is dict or (isinstance(origin, type) and issubclass(origin, BaseModel)):
        return dict
    shapes = {_json_shape(arg) for arg in get_args(annotation) if arg is not type(None)} - {None}
    return shapes.pop() if len(shapes) == 1 else None
