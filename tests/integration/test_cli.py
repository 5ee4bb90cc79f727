"""The oms-connector command as operators run it."""

from __future__ import annotations

import os
import subprocess
import sys

from app.db import DatabaseUrl

CLI = [sys.executable, "-m", "app.cli"]


def run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("OMS_", "DATABASE_URL", "OPERATOR_", "COMMERCE_"))
    }
    return subprocess.run(
        [*CLI, *args], env={**clean, **env}, capture_output=True, text=True, timeout=120, check=False, cwd=os.getcwd()
    )


def test_a_bad_setting_fails_start_up_naming_the_variable():
    result = run(["migrate"], OMS_SIGNATURE="sometimes", DATABASE_URL="postgresql://nobody@127.0.0.1:1/x")
    assert result.returncode == 2
    assert "OMS_SIGNATURE" in result.stderr


def test_a_non_postgres_database_url_is_refused_naming_the_variable():
    result = run(["migrate"], DATABASE_URL="sqlite:///x.db")
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr


def test_migrate_brings_a_database_to_the_head(pg_server: DatabaseUrl, template_url: DatabaseUrl):
    result = run(["migrate"], DATABASE_URL=template_url.libpq)
    assert result.returncode == 0, result.stderr
    assert "revision 0008" in result.stdout


def test_register_without_an_oms_fails_with_a_clear_message(template_url: DatabaseUrl):
    result = run(["register"], DATABASE_URL=template_url.libpq, RUN_MIGRATIONS="false")
    assert result.returncode == 1
    assert "OMS_URL" in result.stderr


def test_the_commands_are_listed():
    result = run(["--help"])
    assert result.returncode == 0
    for command in ("serve", "worker", "migrate", "register", "unregister"):
        assert command in result.stdout
