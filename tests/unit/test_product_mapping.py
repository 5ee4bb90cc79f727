"""The product mapper and the posted-product reader, pure: what the OMS receives per SKU type, the fingerprint that
change detection compares, and the faults a post is refused for."""

from __future__ import annotations

import pytest

from app.errors import ProductRejected
from app.mappers.product_to_mcom import CatalogEntry, encode, fingerprint, product_params, shipping_method_entry
from app.protocol.commerce_product import MAX_PRODUCTS_PER_POST, parse_products


def entry(**fields: object) -> CatalogEntry:
    values: dict[str, object] = {
        "sku": "TEE-ORG",
        "type": "configurable",
        "name": "Organic Tee",
        "enabled": True,
        "children_skus": ["TEE-ORG-S", "TEE-ORG-M"],
        "custom_attributes": {"color": "49", "brand": "7", "description": "long"},
    }
    values.update(fields)
    return CatalogEntry(**values)  # type: ignore[arg-type]


def test_only_configured_attributes_the_product_has_are_sent_in_the_configured_order() -> None:
    params = product_params(entry(), ["brand", "material", "color"], "de_DE")["product"]
    assert params["custom_attributes"] == [
        {"attribute_code": "brand", "value": "7"},
        {"attribute_code": "color", "value": "49"},
    ]
    assert params["name"] == [{"value": "Organic Tee", "locale": "de_DE"}]


@pytest.mark.parametrize(("kind", "children"), [("configurable", 2), ("bundle", 2), ("simple", 0), ("virtual", 0)])
def test_children_are_sent_for_configurables_and_bundles_only(kind: str, children: int) -> None:
    assert len(product_params(entry(type=kind), [], "en_US")["product"]["children_skus"]) == children


def test_a_deleted_product_is_sent_disabled() -> None:
    assert product_params(entry(deleted=True), [], "en_US")["product"]["enabled"] is False
    assert product_params(entry(enabled=False), [], "en_US")["product"]["enabled"] is False


def test_the_fingerprint_follows_what_the_oms_receives_and_nothing_else() -> None:
    base = fingerprint(product_params(entry(), ["color"], "en_US"))
    assert fingerprint(product_params(entry(custom_attributes={"color": "49"}), ["color"], "en_US")) == base
    assert fingerprint(product_params(entry(name="Tee"), ["color"], "en_US")) != base
    assert fingerprint(product_params(entry(children_skus=["TEE-ORG-S"]), ["color"], "en_US")) != base
    params = product_params(entry(), ["color"], "en_US")
    assert fingerprint(params) == fingerprint(encode(params))  # the text sent and the params agree
    assert encode(product_params(entry(), ["color"], "en_US")) == encode(params)  # one product, one text


def test_a_shipping_method_is_a_virtual_product_named_by_its_code() -> None:
    params = product_params(shipping_method_entry("flatrate_flatrate", "Flat rate"), [], "en_US")["product"]
    assert params == {
        "type": "virtual",
        "sku": "flatrate_flatrate",
        "name": [{"value": "Flat rate", "locale": "en_US"}],
        "enabled": True,
        "custom_attributes": [],
        "children_skus": [],
    }


def test_a_posted_product_is_read_tolerantly() -> None:
    [product] = parse_products(
        {
            "id": "12",
            "sku": "A",
            "type_id": "bundle",
            "status": "2",
            "custom_attributes": [
                {"attribute_code": "category_ids", "value": ["3", "4"]},
                {"attribute_code": "weight", "value": 1.5},
            ],
            "extension_attributes": {"bundle_product_options": [{"product_links": [{"sku": "B"}, {"sku": "B"}]}]},
        }
    )
    assert product.id == 12 and product.enabled is False
    assert product.attributes == {"category_ids": "3,4", "weight": "1.5"}
    assert product.bundle_children == ["B"]


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"sku": ""}, "sku"),
        ({"sku": " A"}, "sku"),
        ({"sku": "A" * 65}, "sku"),
        ({"sku": "A", "type_id": "spaceship"}, "type_id"),
        ({"sku": "A", "status": 3}, "status"),
        ({"sku": "A", "id": "x"}, "id"),
        ("not an object", "body"),
    ],
)
def test_a_bad_product_is_refused_naming_the_field(document: object, field: str) -> None:
    with pytest.raises(ProductRejected) as refused:
        parse_products(document)
    assert [error["field"] for error in refused.value.errors] == [field]


def test_too_many_products_in_one_post_are_refused() -> None:
    with pytest.raises(ProductRejected):
        parse_products([{"sku": f"S{n}"} for n in range(MAX_PRODUCTS_PER_POST + 1)])


def test_localized_names_follow_the_default_name_in_locale_order_without_the_default_locale() -> None:
    names = {"fr_FR": "T-shirt bio", "de_DE": "Bio-T-Shirt", "en_US": "Organic T (US)"}
    params = product_params(entry(localized_names=names), [], "en_US")["product"]
    assert params["name"] == [
        {"value": "Organic Tee", "locale": "en_US"},
        {"value": "Bio-T-Shirt", "locale": "de_DE"},
        {"value": "T-shirt bio", "locale": "fr_FR"},
    ]
    without = fingerprint(product_params(entry(), [], "en_US"))
    assert fingerprint(product_params(entry(localized_names={"en_US": "x"}), [], "en_US")) == without
    assert fingerprint(product_params(entry(localized_names={"de_DE": "x"}), [], "en_US")) != without
