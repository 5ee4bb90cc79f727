"""Rows of a Magento product-import CSV, pure: a default row applied over the product as it stands (an empty cell
changes nothing), a store-view row that changes only its locale's name and reports what it does not apply; the store
view → locale setting."""

from __future__ import annotations

import pytest

from app.mappers.product_to_mcom import CatalogEntry
from app.protocol.catalog_csv import RowError, RowSkipped, row_entry, store_view_row
from app.settings import ConfigurationError, load_settings

ATTRIBUTES = ["color", "size"]
STORED = CatalogEntry(sku="TEE", type="configurable", name="Organic Tee", enabled=True, children_skus=["TEE-S"],
                      custom_attributes={"color": "red", "material": "cotton"},
                      localized_names={"de_DE": "Bio-T-Shirt"})  # fmt: skip
LOCALES = {"de": "de_DE", "fr": "fr_FR", "us": "en_US"}


def test_a_default_row_of_a_new_product_takes_its_cells_and_defaults_to_enabled() -> None:
    row = {"sku": "MUG", "name": "Mug", "product_type": "simple", "product_online": "", "color": "blue"}
    assert row_entry(1, row, ATTRIBUTES) == CatalogEntry(
        sku="MUG", type="simple", name="Mug", enabled=True, children_skus=[], custom_attributes={"color": "blue"}
    )


def test_empty_cells_of_a_default_row_change_nothing_of_the_product_as_it_stands() -> None:
    row = {
        "sku": "TEE",
        "name": "",
        "product_type": "",
        "product_online": "",
        "color": "",
        "configurable_variations": "",
    }
    assert row_entry(1, row, ATTRIBUTES, STORED) == STORED


def test_a_default_row_sets_what_it_gives_and_the_empty_value_constant_empties_an_attribute() -> None:
    row = {"sku": "TEE", "product_online": "0", "color": "__EMPTY__VALUE__", "additional_attributes": "size=M"}
    entry = row_entry(1, row, ATTRIBUTES, STORED)
    assert isinstance(entry, CatalogEntry)
    assert (entry.enabled, entry.name, entry.children_skus) == (False, "Organic Tee", ["TEE-S"])
    assert entry.custom_attributes == {"material": "cotton", "size": "M"}
    assert entry.localized_names == {"de_DE": "Bio-T-Shirt"}


def test_a_store_view_row_changes_only_its_locales_name_and_reports_the_global_values_it_carries() -> None:
    row = {"sku": "TEE", "store_view_code": "fr", "name": "T-shirt bio", "product_online": "0", "color": "red",
           "product_type": "configurable"}  # fmt: skip
    outcome = store_view_row(3, row, ATTRIBUTES, STORED, LOCALES, "en_US")
    assert not isinstance(outcome, RowError)
    entry, skipped = outcome
    assert entry is not None and entry.localized_names == {"de_DE": "Bio-T-Shirt", "fr_FR": "T-shirt bio"}
    assert (entry.name, entry.enabled, entry.custom_attributes) == (STORED.name, True, STORED.custom_attributes)
    # the same type and color as the product's are no override: only the status is reported
    assert [(s.row, s.field) for s in skipped] == [(3, "product_online")]


def test_a_store_view_name_without_a_locale_or_in_the_default_locale_is_skipped_never_applied() -> None:
    for view, locales in (("fr", {}), ("us", LOCALES)):
        row = {"sku": "TEE", "store_view_code": view, "name": "Other name"}
        outcome = store_view_row(2, row, ATTRIBUTES, STORED, locales, "en_US")
        assert not isinstance(outcome, RowError)
        entry, skipped = outcome
        assert entry is None and [(s.row, s.field) for s in skipped] == [(2, "name")]


def test_a_store_view_row_for_a_product_not_known_is_skipped() -> None:
    row = {"sku": "GHOST", "store_view_code": "de", "name": "Geist"}
    assert store_view_row(4, row, ATTRIBUTES, None, LOCALES, "en_US") == (
        None,
        [RowSkipped(4, "store_view_code", "store view 'de': no product 'GHOST' in the catalog or in an earlier "
                                          "default row; not applied")],
    )  # fmt: skip


def test_the_empty_value_constant_in_a_store_view_name_removes_that_locales_name() -> None:
    row = {"sku": "TEE", "store_view_code": "de", "name": "__EMPTY__VALUE__"}
    outcome = store_view_row(2, row, ATTRIBUTES, STORED, LOCALES, "en_US")
    assert not isinstance(outcome, RowError) and outcome[0] is not None and outcome[0].localized_names == {}


def test_a_bad_store_view_row_is_a_row_error() -> None:
    assert store_view_row(5, {"sku": "", "store_view_code": "de"}, ATTRIBUTES, None, LOCALES, "en_US") == RowError(
        5, "sku", "missing"
    )


def test_store_view_locales_are_read_as_json_and_a_bad_one_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OMS_STORE_VIEW_LOCALES", '{" de ": "de_DE", "fr": "fr_FR"}')
    settings, _ = load_settings(_env_file=None, keep_tokens=False)
    assert settings.oms_store_view_locales == {"de": "de_DE", "fr": "fr_FR"}
    for bad in ('{"de": "d"}', '{"": "de_DE"}', '{"de": "de DE"}'):
        monkeypatch.setenv("OMS_STORE_VIEW_LOCALES", bad)
        with pytest.raises(ConfigurationError, match="OMS_STORE_VIEW_LOCALES"):
            load_settings(_env_file=None, keep_tokens=False)
