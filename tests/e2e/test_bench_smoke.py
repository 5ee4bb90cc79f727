"""Every benchmark runs, at a tiny size (seconds each), so a rename in app/ cannot leave one broken until someone
needs its figures (bench/ingest.py was, for a while). The full runs stay out of CI: `make bench`.

A new bench/*.py must be given its tiny size here; the test of a script without one fails.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"

TINY: dict[str, list[str]] = {
    "json_rules.py": ["--seconds", "0.05"],
    "ingest.py": [
        "--messages", "200", "--warmup", "20", "--concurrency", "8", "--workers", "2", "--full-page-skus", "500",
        "--full-page-every", "50",
    ],
    "stock.py": ["--skus", "2000", "--page", "500", "--deltas", "100", "--warmup", "10"],
    "orders.py": [
        "--rate", "20", "--duration", "1", "--warmup", "5", "--variants", "2", "--mapper-seconds", "0.1",
        "--drain-timeout", "30",
    ],
    "order_pull.py": [
        "--orders", "60", "--concurrency", "8", "--page-size", "25", "--variants", "2", "--timeout", "60",
    ],
    "lifecycle.py": ["-n", "40", "--warmup", "5", "-c", "4"],
    "catalog.py": ["--sizes", "2000", "--baseline-calls", "300"],
    "prune.py": ["--rows", "5000", "--rate", "50", "--seconds", "1", "--baseline-seconds", "1", "--after-max", "1"],
    "console.py": ["--messages", "5000", "--orders", "1000", "--products", "1000", "--requests", "3", "--warmup", "1"],
}  # fmt: skip
SMOKE_TIMEOUT_S = 240
RATIO = re.compile(r"\b\d+\.\d+x\b")  # every bench prints its figures as ratios against a baseline (e.g. 1.10x)


def _own_variables_removed() -> dict[str, str]:
    """The bench starts its own servers and databases: nothing of the caller's connector settings may leak in."""
    prefixes = ("OMS_", "DATABASE_URL", "OPERATOR_TOKEN", "COMMERCE_TOKEN", "METRICS_TOKEN", "LOG_", "DATA_DIR")
    return {key: value for key, value in os.environ.items() if not key.startswith(prefixes)}


@pytest.mark.parametrize("script", sorted(path.name for path in BENCH.glob("*.py")))
def test_every_benchmark_runs_at_a_tiny_size(script: str, tmp_path: Path) -> None:
    assert script in TINY, f"bench/{script} has no tiny size in {Path(__file__).name}: add one"
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *TINY[script]],
        cwd=tmp_path,
        env=_own_variables_removed(),
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, (
        f"bench/{script} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    assert "x" in done.stdout and any(char.isdigit() for char in done.stdout)  # it printed figures and ratios
