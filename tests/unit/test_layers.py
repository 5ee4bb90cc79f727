"""The import contracts of pyproject.toml ``[tool.importlinter]`` hold: each layer of app/ imports only the layers
below it (no service reaches a worker, no statement reaches a service), and the data layer needs no settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(*args: str) -> subprocess.CompletedProcess[str]:
    """Run import-linter on app/ (no cache: nothing written to the working tree)."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def test_every_import_contract_of_the_project_is_kept():
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout, result.stdout


def test_an_import_against_the_layers_breaks_a_contract(tmp_path):
    # The same check with the layers upside down: the services' imports of the data layer go upwards then.
    config = tmp_path / "upside_down.toml"
    config.write_text(
        '[tool.importlinter]\nroot_package = "app"\n\n'
        '[[tool.importlinter.contracts]]\nname = "upside down"\ntype = "layers"\n'
        'layers = ["app.data", "app.services"]\n'
    )
    result = lint_imports("--config", str(config))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "upside down BROKEN" in result.stdout and "app.services." in result.stdout, result.stdout
