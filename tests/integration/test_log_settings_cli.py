"""LOG_FILE and LOG_FORMAT as operators meet them: a value the command cannot use stops it before anything starts,
with one line naming the variable and exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "app.cli"]


def run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OMS_", "DATABASE_URL", "LOG_", "DATA_DIR"))}
    return subprocess.run(
        [*CLI, *args], env={**clean, **env}, capture_output=True, text=True, timeout=120, check=False, cwd=os.getcwd()
    )


def refused(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    return line


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["worker"], ["migrate"]], ids=lambda c: c[0])
def test_a_log_file_in_a_missing_directory_stops_the_command_with_one_line_naming_log_file(
    tmp_path: Path, command: list[str]
):
    data = tmp_path / "data"
    data.mkdir()
    result = run(command, DATA_DIR=str(data), LOG_FILE=str(tmp_path / "no-such-dir" / "connector.log"))
    line = refused(result)
    assert line.startswith(f"oms-connector: LOG_FILE: cannot open {tmp_path / 'no-such-dir' / 'connector.log'}")
    assert "No such file or directory" in line
    assert list(data.iterdir()) == []  # nothing started: no embedded server, no token file


def test_a_log_file_that_is_a_directory_stops_serve_with_one_line_naming_log_file(tmp_path: Path):
    line = refused(run(["serve", "--port", "0"], DATA_DIR=str(tmp_path / "data"), LOG_FILE=str(tmp_path)))
    assert line.startswith("oms-connector: LOG_FILE: cannot open ") and "Is a directory" in line


def test_an_unknown_log_format_stops_serve_with_one_line_naming_log_format(tmp_path: Path):
    line = refused(run(["serve", "--port", "0"], DATA_DIR=str(tmp_path), LOG_FORMAT="xml"))
    assert line == "oms-connector: LOG_FORMAT: Input should be 'auto', 'text' or 'json'"
