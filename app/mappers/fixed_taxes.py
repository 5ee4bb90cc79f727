"""Fixed product taxes (FPT: the EU's WEEE recycling fees and the like; Adobe Commerce's ``Magento_Weee``) of one
order item, as ``GET /V1/orders/{id}`` returns them (magento-rest.md §2). Pure: no I/O.

What is read, in order currency (the ``base_`` twins are in base currency and, like every ``base_`` amount, not read):

* ``weee_tax_applied``: JSON *text* listing each fee, ``{title, amount, row_amount, amount_incl_tax,
  row_amount_incl_tax, …}`` (``amount`` per unit, ``row_amount`` for the row, both excluding tax). A fee's row is
  ``row_amount`` (else ``amount`` * qty); the tax charged on it (a store that taxes FPT) is ``row_amount_incl_tax``
  - ``row_amount`` (else ``amount_incl_tax`` * qty - the row; else none). Fees of the same title are added up;
* ``weee_tax_applied_row_amount`` (else ``weee_tax_applied_amount`` * qty): the row of all fees excluding tax, read
  only when the list is absent or empty (one fee titled ``FPT``, its tax unknown);
* ``weee_tax_disposition`` / ``weee_tax_row_disposition`` are not read: Magento 2 resets them to 0 and never sets
  them (``Magento\\Weee\\Model\\Total\\Quote\\Weee::resetItemData``).

The item's ``price`` and ``row_total`` never hold the fee; ``grand_total`` does; where the tax on the fee and the
"including FPT" display settings put it is decided by the order mapper from the amounts (app/mappers/order_to_mcom.py).

A list that is not usable — not JSON, not a list of objects, a title that is not text, an amount that is not a
finite number ≥ 0 (or a numeric string), a fee with no amount, more than ``MAX_TEXT`` characters or ``MAX_FEES``
fees — is refused: ``MappingError`` naming ``items[<n>].weee_tax_applied``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from app.mappers.mapping_error import MappingError
from app.mappers.money import split_evenly, to_quantum
from app.protocol import strict_json
from app.protocol.commerce_order import MAX_AMOUNT, CommerceItem

MAX_TEXT = 16_384  # characters of weee_tax_applied; a real one (a few fees) is a few hundred
MAX_FEES = 32  # fees listed for one item
MAX_TITLE = 255  # characters of a fee's title (Magento's attribute label column)
UNTITLED = "FPT"  # the title of a fee known only from weee_tax_applied_row_amount, or listed without one
_ZERO = Decimal(0)


@dataclass(frozen=True)
class FixedTaxes:
    """One row's fixed product taxes: each fee's row amount by title (excluding tax; first-seen order), and the tax
    charged on them all (0 when the store does not tax FPT). Amounts in whole quanta."""

    fees: tuple[tuple[str, Decimal], ...] = ()
    tax: Decimal = _ZERO

    @property
    def amount(self) -> Decimal:
        """The fees, excluding their tax."""
        return sum((amount for _, amount in self.fees), _ZERO)

    @property
    def gross(self) -> Decimal:
        """The fees with their tax: what the customer pays for them."""
        return self.amount + self.tax

    def __bool__(self) -> bool:
        return bool(self.fees) or bool(self.tax)

    def plus(self, other: FixedTaxes) -> FixedTaxes:
        """Both rows' fees together (a fixed-price bundle's children, for the bundle's row)."""
        return _merged([*self.fees, *other.fees], self.tax + other.tax)

    def per_unit(self, units: int, quantum: Decimal) -> list[FixedTaxes]:
        """The row as ``units`` per-unit parts that add up exactly to it: each fee and the tax split evenly, the
        left-over quanta on the first units (so units differ by at most one quantum per fee and in the tax)."""
        shares = [split_evenly(amount, units, quantum) for _, amount in self.fees]
        taxes = split_evenly(self.tax, units, quantum)
        titles = [title for title, _ in self.fees]
        return [
            FixedTaxes(tuple(zip(titles, (share[unit] for share in shares), strict=True)), taxes[unit])
            for unit in range(units)
        ]


NO_FIXED_TAXES = FixedTaxes()


def fixed_taxes(item: CommerceItem, field: str, quantum: Decimal) -> FixedTaxes:
    """``item``'s fixed product taxes (see the module docstring). ``field`` names the item in errors
    (``items[3]``). Raises MappingError."""
    listed = _listed(item.weee_tax_applied, f"{field}.weee_tax_applied")
    units = Decimal(item.units)
    if not listed:
        row = item.weee_tax_applied_row_amount
        if row is None and item.weee_tax_applied_amount is not None:
            row = item.weee_tax_applied_amount * units
        if not row:
            return NO_FIXED_TAXES
        if row < 0:
            raise MappingError(f"{field}.weee_tax_applied_row_amount", "must not be negative")
        return FixedTaxes(((UNTITLED, to_quantum(row, quantum)),))
    fees: list[tuple[str, Decimal]] = []
    tax = _ZERO
    for number, entry in enumerate(listed):
        where = f"{field}.weee_tax_applied[{number}]"
        amount = _amount(entry, "amount", where)
        row = _amount(entry, "row_amount", where)
        if row is None:
            if amount is None:
                raise MappingError(where, "has neither row_amount nor amount")
            row = amount * units
        row = to_quantum(row, quantum)
        row_incl = _amount(entry, "row_amount_incl_tax", where)
        if row_incl is None and (unit_incl := _amount(entry, "amount_incl_tax", where)) is not None:
            row_incl = unit_incl * units
        fee_tax = to_quantum(row_incl, quantum) - row if row_incl is not None else _ZERO
        if fee_tax < 0:
            raise MappingError(where, f"its amount including tax ({row_incl}) is below its amount ({row})")
        fees.append((_title(entry.get("title"), where), row))
        tax += fee_tax
    return _merged(fees, tax)


def _merged(fees: list[tuple[str, Decimal]], tax: Decimal) -> FixedTaxes:
    by_title: dict[str, Decimal] = {}
    for title, amount in fees:
        by_title[title] = by_title.get(title, _ZERO) + amount
    return FixedTaxes(tuple((title, amount) for title, amount in by_title.items() if amount), tax)


def _listed(value: Any, field: str) -> list[Mapping[str, Any]]:
    """The fees of ``weee_tax_applied`` (JSON text, or a list already decoded), each checked to be an object."""
    if value is None:
        return []
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise MappingError(field, f"is {len(value)} characters long; at most {MAX_TEXT} are read")
        if not value.strip():
            return []
        try:
            value = strict_json.loads(value, decimals=True)
        except strict_json.UnacceptableJson as exc:
            raise MappingError(field, f"is not JSON text this service reads: {exc}") from None
        if value is None:
            return []
    if not isinstance(value, list):
        raise MappingError(field, f"must be a JSON list of fixed product taxes, not {_kind(value)}")
    if len(value) > MAX_FEES:
        raise MappingError(field, f"lists {len(value)} fixed product taxes; at most {MAX_FEES} are read")
    for number, entry in enumerate(value):
        if not isinstance(entry, Mapping):
            raise MappingError(f"{field}[{number}]", f"must be an object {{title, amount, …}}, not {_kind(entry)}")
    return value


def _amount(entry: Mapping[str, Any], key: str, where: str) -> Decimal | None:
    value = entry.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal | float | str):
        raise MappingError(f"{where}.{key}", f"must be a number, not {_kind(value)}")
    try:
        amount = Decimal(value.strip()) if isinstance(value, str) else Decimal(str(value))
    except InvalidOperation:
        raise MappingError(f"{where}.{key}", f"must be a number, not {str(value)[:40]!r}") from None
    if not amount.is_finite() or abs(amount) >= MAX_AMOUNT:
        raise MappingError(f"{where}.{key}", "must be a finite number below 10^13 in magnitude")
    if amount < 0:
        raise MappingError(f"{where}.{key}", "must not be negative")
    return amount


def _title(value: Any, where: str) -> str:
    if value is None:
        return UNTITLED
    if not isinstance(value, str):
        raise MappingError(f"{where}.title", f"must be text, not {_kind(value)}")
    title = " ".join(value.split())
    if len(title) > MAX_TITLE:
        raise MappingError(f"{where}.title", f"is {len(title)} characters long; at most {MAX_TITLE}")
    return title or UNTITLED


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "text", bool: "a boolean", type(None): "null"}
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    return "a number" if isinstance(value, int | float | Decimal) else type(value).__name__
