"""Money allocation in ``Decimal``: split an amount into parts that add up exactly, to the smallest currency unit.

Largest-remainder method: every part first gets its proportional share rounded *down* to the quantum (the cent,
for most currencies); the quanta left over go one each to the parts whose shares lost most in the rounding (ties:
the earlier part). So the parts always sum to the total, none is negative, and each is within one quantum of its
exact proportional share.

``split_row`` cuts one order item's row amounts into per-unit amounts so that every amount of every unit differs
from the same amount of another unit of that item by at most one quantum, and net = gross - tax ≥ 0 and
original = gross + discount hold for each unit. How: gross and tax give their left-over quanta to the *first*
units and the discount gives its left-over quanta to the *last* units (see ``split_row``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")

# ISO 4217 minor units where they are not 2 (the amounts Adobe Commerce stores for these are whole or 3-decimal).
_MINOR_UNITS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND"), 0),
    **dict.fromkeys(("VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}


def quantum_for(currency: str) -> Decimal:
    """The smallest unit of ``currency`` (0.01 for EUR, 1 for JPY, 0.001 for KWD)."""
    return Decimal(1).scaleb(-_MINOR_UNITS.get(currency.upper(), 2))


def to_quantum(amount: Decimal, quantum: Decimal = CENT) -> Decimal:
    """``amount`` rounded half-up to ``quantum`` (Adobe Commerce stores 4 decimals; amounts are whole cents)."""
    return amount.quantize(quantum, rounding=ROUND_HALF_UP)


def allocate(total: Decimal, weights: Sequence[Decimal], quantum: Decimal = CENT) -> list[Decimal]:
    """Split ``total`` (a whole number of quanta, ≥ 0) in proportion to ``weights`` (≥ 0). All-zero weights split
    equally. The parts sum to ``total`` exactly."""
    if total < 0:
        raise ValueError(f"cannot allocate a negative amount ({total})")
    if not weights:
        if total:
            raise ValueError("cannot allocate an amount over no parts")
        return []
    if any(weight < 0 for weight in weights):
        raise ValueError("weights must not be negative")
    weight_sum = sum(weights, Decimal(0))
    if weight_sum == 0:
        weights, weight_sum = [Decimal(1)] * len(weights), Decimal(len(weights))
    units = int((total / quantum).to_integral_value(rounding=ROUND_HALF_UP))
    if Decimal(units) * quantum != total:
        raise ValueError(f"{total} is not a whole number of {quantum}")
    # Work in whole quanta (integers) so nothing is rounded twice.
    exact = [Decimal(units) * weight / weight_sum for weight in weights]
    floors = [int(share.to_integral_value(rounding=ROUND_DOWN)) for share in exact]
    left = units - sum(floors)
    by_remainder = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in by_remainder[:left]:
        floors[i] += 1
    return [Decimal(part) * quantum for part in floors]


def split_evenly(total: Decimal, count: int, quantum: Decimal = CENT, *, extras_last: bool = False) -> list[Decimal]:
    """Split ``total`` into ``count`` parts differing by at most one quantum; the left-over quanta go to the first
    parts (or the last, with ``extras_last``)."""
    parts = allocate(total, [Decimal(1)] * count, quantum)
    return parts[::-1] if extras_last else parts


@dataclass(frozen=True)
class RowAmounts:
    """What one order item (or one line of it) costs, all in whole quanta, after discounts.

    ``gross`` is what the customer pays for it (tax included), ``tax`` the tax in it, ``discount`` what promotions
    took off the ``original`` (gross) price. Invariants: 0 ≤ tax ≤ gross, discount ≥ 0.
    """

    gross: Decimal
    tax: Decimal
    discount: Decimal

    def __post_init__(self) -> None:
        if self.tax < 0 or self.discount < 0 or self.gross < self.tax:
            raise ValueError(f"inconsistent amounts: gross {self.gross}, tax {self.tax}, discount {self.discount}")

    @property
    def net(self) -> Decimal:
        return self.gross - self.tax

    @property
    def original(self) -> Decimal:
        return self.gross + self.discount


def split_row(row: RowAmounts, units: int, quantum: Decimal = CENT) -> list[RowAmounts]:
    """One item's row amounts as ``units`` per-unit amounts that add up exactly to the row.

    Gross and tax put their left-over quanta on the first units: a unit with an extra tax quantum then also has an
    extra gross quantum whenever the floors tie, so net never goes negative and differs by at most one quantum.
    The discount puts its left-over quanta on the last units, so original = gross + discount also differs by at
    most one quantum between units.
    """
    gross = split_evenly(row.gross, units, quantum)
    tax = split_evenly(row.tax, units, quantum)
    discount = split_evenly(row.discount, units, quantum, extras_last=True)
    return [RowAmounts(gross=g, tax=t, discount=d) for g, t, d in zip(gross, tax, discount, strict=True)]


def allocate_rows(row: RowAmounts, weights: Sequence[Decimal], quantum: Decimal = CENT) -> list[RowAmounts]:
    """Share one row (a fixed-price bundle's) among parts in proportion to ``weights`` (the children's prices).

    Gross follows the weights; tax and discount follow each part's gross, so no part's tax exceeds its gross (a
    share of T·g/G is at most g) and each part is within one quantum of its proportional share of the gross.
    """
    gross = allocate(row.gross, weights, quantum)
    by_gross = gross if row.gross > 0 else list(weights)
    tax = allocate(row.tax, by_gross, quantum)
    discount = allocate(row.discount, by_gross, quantum)
    return [RowAmounts(gross=g, tax=t, discount=d) for g, t, d in zip(gross, tax, discount, strict=True)]
