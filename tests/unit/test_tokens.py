"""Generated access tokens: kept owner-only in DATA_DIR/tokens.json and reused at every later start."""

from __future__ import annotations

import json
import os
import stat
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.settings import ConfigurationError, Settings, load_settings
from app.tokens import TOKENS_FILE


@pytest.fixture(autouse=True)
def no_tokens_in_the_environment(monkeypatch):
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


def load(data_dir, **values):
    return load_settings(_env_file=None, data_dir=data_dir, **values)


def secret(settings: Settings, name: str) -> str:
    value = getattr(settings, name)
    assert value is not None
    return value.get_secret_value()


def test_unset_tokens_are_generated_once_and_the_same_ones_come_back_at_the_next_start(tmp_path):
    first, first_tokens = load(tmp_path / "data")
    assert [(token.name, token.new) for token in first_tokens] == [("OPERATOR_TOKEN", True), ("COMMERCE_TOKEN", True)]
    assert len(secret(first, "operator_token")) >= 32
    assert secret(first, "operator_token") != secret(first, "commerce_token")

    again, again_tokens = load(tmp_path / "data")
    assert [(token.name, token.new) for token in again_tokens] == [
        ("OPERATOR_TOKEN", False),
        ("COMMERCE_TOKEN", False),
    ]
    assert secret(again, "operator_token") == secret(first, "operator_token")
    assert secret(again, "commerce_token") == secret(first, "commerce_token")
    assert {token.path for token in again_tokens} == {tmp_path / "data" / TOKENS_FILE}


def test_the_token_file_is_readable_by_its_owner_only_whatever_the_umask(tmp_path):
    previous = os.umask(0o000)
    try:
        load(tmp_path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / TOKENS_FILE).stat().st_mode) == 0o600
    assert [path.name for path in tmp_path.iterdir()] == [TOKENS_FILE]  # no temporary file left behind


def test_a_token_set_in_the_environment_wins_and_is_never_written(tmp_path, monkeypatch):
    load(tmp_path)  # an earlier start generated both
    monkeypatch.setenv("OPERATOR_TOKEN", "operator-token-from-the-environment")
    settings, tokens = load(tmp_path)
    assert secret(settings, "operator_token") == "operator-token-from-the-environment"
    assert [token.name for token in tokens] == ["COMMERCE_TOKEN"]
    assert "operator-token-from-the-environment" not in (tmp_path / TOKENS_FILE).read_text()


def test_a_token_missing_from_the_file_is_added_and_the_kept_one_is_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("OPERATOR_TOKEN", "operator-token-from-the-environment")
    first, _ = load(tmp_path)
    assert set(json.loads((tmp_path / TOKENS_FILE).read_text())) == {"COMMERCE_TOKEN"}
    monkeypatch.delenv("OPERATOR_TOKEN")
    second, tokens = load(tmp_path)
    assert [(token.name, token.new) for token in tokens] == [("OPERATOR_TOKEN", True), ("COMMERCE_TOKEN", False)]
    assert secret(second, "commerce_token") == secret(first, "commerce_token")
    assert json.loads((tmp_path / TOKENS_FILE).read_text())["OPERATOR_TOKEN"] == secret(second, "operator_token")


def test_processes_starting_together_agree_on_the_same_tokens(tmp_path):
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: load(tmp_path / "data")[0], range(8)))
    assert len({secret(settings, "operator_token") for settings in results}) == 1
    assert len({secret(settings, "commerce_token") for settings in results}) == 1


def test_a_token_file_others_can_read_stops_start_up_naming_it(tmp_path):
    load(tmp_path)
    (tmp_path / TOKENS_FILE).chmod(0o644)
    with pytest.raises(ConfigurationError, match=r"DATA_DIR: .*tokens.json .* readable by others \(mode 644\)"):
        load(tmp_path)


@pytest.mark.parametrize("content", ["not json", '["a"]', '{"OPERATOR_TOKEN": "short"}'])
def test_a_token_file_this_connector_did_not_write_stops_start_up_naming_it(tmp_path, content):
    path = tmp_path / TOKENS_FILE
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(ConfigurationError, match=r"DATA_DIR: .*tokens.json is not a token file"):
        load(tmp_path)
    assert path.read_text() == content  # left for the operator to look at


def test_a_data_dir_that_cannot_hold_the_tokens_is_named(tmp_path):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ConfigurationError, match=r"^DATA_DIR: cannot keep the generated access tokens"):
        load(tmp_path / "a-file")


def test_commands_that_serve_no_http_leave_unset_tokens_unset_and_write_nothing(tmp_path):
    settings, tokens = load_settings(_env_file=None, data_dir=tmp_path, keep_tokens=False)
    assert (settings.operator_token, settings.commerce_token, tokens) == (None, None, [])
    assert list(tmp_path.iterdir()) == []
