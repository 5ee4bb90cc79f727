"""Bundle sourcing rules: how the OMS must source the items of one bundle (the seed's per-bundle overwrite of the
OMS's generic sourcing rule). Sent on each of the bundle's unit lines as the ``sourcing_rule`` custom attribute."""

from __future__ import annotations

SHIP_TOGETHER = "SHIP_TOGETHER"  # one source ships every item of the bundle in one package
SHIP_SIMULTANEOUSLY = "SHIP_SIMULTANEOUSLY"  # several sources may ship, all on the same day
SHIP_SEPARATELY = "SHIP_SEPARATELY"  # each item ships when and where it can
SOURCING_RULES = (SHIP_TOGETHER, SHIP_SIMULTANEOUSLY, SHIP_SEPARATELY)


def normalize_sourcing_rule(value: str) -> str:
    """``SHIP_TOGETHER`` from "ship together", "ship-together", "Ship_Together" or "together". Raises ValueError."""
    key = "_".join(value.strip().upper().replace("-", " ").replace("_", " ").split())
    if not key.startswith("SHIP_"):
        key = f"SHIP_{key}"
    if key not in SOURCING_RULES:
        raise ValueError(
            f"unknown sourcing rule {value!r}; use one of: ship together, ship simultaneously, ship separately"
        )
    return key
