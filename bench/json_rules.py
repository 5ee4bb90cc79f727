"""What the JSON rules cost (app/protocol/strict_json.py): ``strict_json.loads`` against plain ``json.loads`` of the
same bodies, in one process, one core. No server, no database.

    .venv/bin/python bench/json_rules.py [--seconds S]

Bodies: a webhook call as bench/ingest.py posts it (~420 bytes), a 5,000-SKU FULL stock page as bench/stock.py
posts it (~300 KiB), and a 10-item order read with Decimal amounts as POST /orders reads it (the baseline is
``json.loads(parse_float=Decimal)``, what the order parser used before). Prints µs per body and the ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.protocol import strict_json


def _webhook_body() -> bytes:
    params = {"order": {"id": "000000101", "store": "default", "created_at": "2025-02-10T17:42:05+01:00"}}
    call = {"jsonrpc": "2.0", "id": "bench-0001", "method": "magento.sales.order_management.created", "params": params}
    return json.dumps({**call, "client": "oms", "note": "x" * 200}).encode()


def _stock_page(skus: int = 5000) -> bytes:
    stock = [{"sku": f"SKU-{n:07d}", "quantity": str(n % 500), "unlimited": False} for n in range(skus)]
    snapshot = {"aggregate_id": "EU-WEB", "mode": "FULL", "created_on": "2025-02-11 09:30:00", "stock": stock}
    call = {"jsonrpc": "2.0", "id": "p1", "method": "magento.inventory.aggregate_stock_management.updated"}
    return json.dumps({**call, "params": {"snapshot": snapshot}}).encode()


def _order(items: int = 10) -> bytes:
    lines = [
        {"item_id": 1000 + n, "sku": f"SKU-{n}", "qty_ordered": 2, "price": 12.5, "row_total": 25.0,
         "row_total_incl_tax": 29.75, "tax_amount": 4.75, "tax_percent": 19, "discount_amount": 0.0,
         "product_options": {"info_buyRequest": {"qty": 2, "options": [{"id": n, "value": "red"}]}}}
        for n in range(items)
    ]  # fmt: skip
    address = {"firstname": "Lena", "lastname": "Vogel", "street": ["Hauptstraße 5"], "city": "Berlin"}
    order = {"increment_id": "000000101", "status": "pending", "grand_total": 302.5, "items": lines}
    return json.dumps({**order, "billing_address": address}).encode()


def _per_call_us(function: Callable[[], Any], seconds: float) -> float:
    function()
    calls, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        function()
        calls += 1
    return elapsed / calls * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    args = parser.parse_args()
    cases = [
        ("webhook call", _webhook_body(), lambda b: json.loads(b), lambda b: strict_json.loads(b)),
        ("FULL stock page", _stock_page(), lambda b: json.loads(b), lambda b: strict_json.loads(b)),
        (
            "order (Decimal amounts)",
            _order(),
            lambda b: json.loads(b, parse_float=Decimal),
            lambda b: strict_json.loads(b, decimals=True),
        ),
    ]
    print(f"{'body':<26}{'bytes':>9}{'json.loads µs':>16}{'strict µs':>12}{'ratio':>8}")
    for name, body, plain, strict in cases:
        assert strict(body) == plain(body)
        baseline = _per_call_us(lambda body=body, plain=plain: plain(body), args.seconds)
        ours = _per_call_us(lambda body=body, strict=strict: strict(body), args.seconds)
        print(f"{name:<26}{len(body):>9}{baseline:>16.1f}{ours:>12.1f}{ours / baseline:>7.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
