"""Line-attribute plugins as a merchant's package would ship them (registered through a dist-info that the tests
write, under the entry-point group ``oms_connector.line_attributes``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def gift_wrap(order: Mapping[str, Any], item: Mapping[str, Any], line: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The item's gift-wrapping choice and the customer's group, per unit line."""
    wrapped = (item.get("extension_attributes") or {}).get("gift_wrap", "no")
    return [
        {"attribute_code": "gift_wrap", "value": wrapped},
        {"attribute_code": "customer_group", "value": str(order.get("customer_group_id"))},
        {"attribute_code": "unit_of", "value": line["id"].rsplit("-", 1)[0]},
    ]


def broken(order: Mapping[str, Any], item: Mapping[str, Any], line: Mapping[str, Any]) -> list[dict[str, Any]]:
    raise KeyError("erp_code")


def sloppy(order: Mapping[str, Any], item: Mapping[str, Any], line: Mapping[str, Any]) -> list[Any]:
    return [("gift_wrap", "yes")]
