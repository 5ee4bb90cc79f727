from __future__ import annotations

from app.protocol.references import MAX_REFERENCES, extract_references


def test_order_ids_and_skus_are_found_anywhere():
    params = {
        "order": {"id": "000000042", "lines": [{"sku": "MUG"}, {"sku": "CUP"}, {"sku": "MUG"}]},
        "shipment": {"order_id": "000000042", "shimpent_id": "S-1"},
    }
    assert extract_references(params) == ["000000042", "MUG", "CUP", "S-1"]


def test_the_number_of_references_is_bounded():
    params = {"stock": [{"sku": f"SKU-{i}"} for i in range(MAX_REFERENCES * 3)]}
    assert len(extract_references(params)) == MAX_REFERENCES


def test_non_scalar_and_empty_values_are_ignored():
    assert extract_references({"sku": ["a"], "order_id": "", "rma": True, "increment_id": 7}) == ["7"]


def test_without_a_limit_every_reference_is_found():
    params = {"stock": [{"sku": f"SKU-{i}"} for i in range(MAX_REFERENCES * 3)]}
    assert extract_references(params, limit=None) == [f"SKU-{i}" for i in range(MAX_REFERENCES * 3)]


def test_the_id_of_an_object_under_order_is_a_reference_and_a_list_of_children_skus_too():
    params = {
        "order": {"lines": [{"sku": "MUG"}], "id": 42},
        "orders": [{"id": "not-an-order-key"}],
        "product": {"sku": "TEE", "children_skus": ["TEE-S", "TEE-M", 7, None, {"sku": "TEE-L"}]},
        "id": "not-under-order",
    }
    assert extract_references(params) == ["42", "MUG", "TEE", "TEE-S", "TEE-M", "7", "TEE-L"]


def test_a_reference_is_stripped_and_kept_to_its_first_200_characters():
    assert extract_references({"sku": "\u00a0 " + "x" * 250 + "\t"}) == ["x" * 200]
