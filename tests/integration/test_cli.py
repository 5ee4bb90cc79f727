"""The oms-connector command as operators run it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from app.db import DatabaseUrl, head_revision

CLI = [sys.executable, "-m", "app.cli"]
# Every command that starts from the settings (and, except for stock reset in production, reaches the database).
COMMANDS = [
    ["serve"],
    ["worker"],
    ["migrate"],
    ["register"],
    ["unregister"],
    ["stock", "reset"],
    ["orders", "sync"],
    ["catalog-export", "status"],
    ["catalog-export", "run"],
]


def run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OMS_", "DATABASE_URL", "OPERATOR_", "COMMERCE_", "LOG_LEVEL", "HANDLER_", "DATA_DIR"))
    }
    return subprocess.run(
        [*CLI, *args], env={**clean, **env}, capture_output=True, text=True, timeout=120, check=False, cwd=os.getcwd()
    )


def refused(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a command that cannot start prints (on stderr, exit code 2, nothing on stdout)."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("oms-connector: ")
    return lines[0]


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    assert f"revision {head_revision(template_url)}" in result.stdout


def test_register_without_an_oms_fails_with_a_clear_message(template_url: DatabaseUrl):
    result = run(["register"], DATABASE_URL=template_url.libpq, RUN_MIGRATIONS="false")
    assert result.returncode == 1
    assert "OMS_URL" in result.stderr


def test_the_commands_are_listed():
    result = run(["--help"])
    assert result.returncode == 0
    for command in ("serve", "worker", "migrate", "register", "unregister"):
        assert command in result.stdout


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        (
            "OMS_EXPORT_STATUSES",
            "pending",
            'not valid JSON (Expecting value at character 1); give a JSON list such as ["pending"]',
        ),
        (
            "OMS_AGGREGATE_WEBSITES",
            '{"EU": [base]}',
            "not valid JSON (Expecting value at character 9); give a JSON object",
        ),
        ("LOG_LEVEL", "bogus", "'bogus' is not a log level; give one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("OMS_TIMEZONE", "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("HANDLER_PLUGINS", '["no_module_here"]', "'no_module_here' must look like module:function"),
    ],
)
def test_a_bad_variable_stops_serve_with_one_line_naming_it_before_any_banner(tmp_path, variable, value, says):
    result = run(["serve", "--port", str(unused_port())], DATA_DIR=str(tmp_path), **{variable: value})
    line = refused(result)
    assert line.startswith(f"oms-connector: {variable}: ")
    assert says in line
    assert list(tmp_path.iterdir()) == []  # nothing started: no embedded server, no token file


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_refuses_a_bad_variable_with_the_same_one_line(tmp_path, command):
    result = run(command, DATA_DIR=str(tmp_path), OMS_EXPORT_STATUSES="pending")
    assert refused(result).startswith("oms-connector: OMS_EXPORT_STATUSES: not valid JSON")


def test_two_bad_variables_get_a_line_each(tmp_path):
    result = run(["migrate"], DATA_DIR=str(tmp_path), OMS_EXPORT_STATUSES="pending", LOG_LEVEL="loud")
    assert result.returncode == 2 and result.stdout == ""
    assert [line.split(":")[1].strip() for line in result.stderr.splitlines()] == ["LOG_LEVEL", "OMS_EXPORT_STATUSES"]


@pytest.mark.parametrize("command", [["serve"], ["worker"], ["migrate"], ["orders", "sync"]], ids=" ".join)
def test_an_unreachable_database_url_is_one_line_naming_it_with_the_reason_and_never_the_password(tmp_path, command):
    port = unused_port()
    result = run([*command], DATA_DIR=str(tmp_path), DATABASE_URL=f"postgresql://app:hunter2-pw@127.0.0.1:{port}/shop")
    line = refused(result)
    assert line.startswith(
        f"oms-connector: DATABASE_URL: cannot connect to PostgreSQL at 127.0.0.1:{port}, database shop"
    )
    assert "connection refused" in line
    assert "hunter2" not in result.stderr


def test_a_data_dir_the_embedded_server_cannot_use_is_one_line_naming_it(tmp_path):
    (tmp_path / "a-file").write_text("")
    line = refused(run(["migrate"], DATA_DIR=str(tmp_path / "a-file")))
    assert line.startswith("oms-connector: DATA_DIR: cannot start the embedded PostgreSQL in ")
    assert "not a directory" in line


def test_a_handler_plugin_that_cannot_be_imported_is_one_line_naming_the_variable(template_url: DatabaseUrl):
    result = run(["migrate"], DATABASE_URL=template_url.libpq, HANDLER_PLUGINS='["no_such_module:install"]')
    assert refused(result) == (
        "oms-connector: HANDLER_PLUGINS: 'no_such_module:install' cannot be loaded: "
        "ModuleNotFoundError: No module named 'no_such_module'"
    )


def test_serve_on_a_port_in_use_says_so_and_which_option_changes_it_before_anything_starts(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(["serve", "--host", "127.0.0.1", "--port", str(port)], DATA_DIR=str(tmp_path))
    assert refused(result) == f"oms-connector: port {port} on 127.0.0.1 is in use: choose another with --port"
    assert list(tmp_path.iterdir()) == []  # no embedded server started, no token generated
