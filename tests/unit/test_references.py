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
