from __future__ import annotations

import pytest

from app.settings import ConfigurationError, Settings, load_settings


def build(**values) -> Settings:
    return Settings(_env_file=None, **values)


def test_defaults_match_the_operator_contract():
    settings = build()
    assert settings.oms_application_id == "mdc"
    assert settings.oms_signature == "required"
    assert settings.oms_retry_window_hours == 48
    assert settings.oms_oauth_server_url is None


def test_environment_variables_are_read_by_their_contract_names(monkeypatch):
    monkeypatch.setenv("OMS_URL", "http://oms.test/api/")
    monkeypatch.setenv("OMS_SECRET", "s3cret")
    monkeypatch.setenv("OMS_LABELS", '{"env": "staging"}')
    monkeypatch.setenv("OMS_RETRY_WINDOW_HOURS", "12")
    monkeypatch.setenv("OMS_OAUTH_SERVER_URL", "")
    settings = Settings(_env_file=None)
    assert str(settings.oms_url) == "http://oms.test/api/"
    assert settings.oms_labels == {"env": "staging"}
    assert settings.oms_retry_window_hours == 12
    assert settings.oms_oauth_server_url is None  # empty ⇒ no OAuth
    assert settings.oms_secret.get_secret_value() == "s3cret"


def test_the_callback_url_is_the_base_url_plus_oms_rpc():
    assert build(oms_application_base_url="https://c.example/x/").callback_url == "https://c.example/x/oms/rpc"


def test_secrets_do_not_show_in_the_settings_repr():
    settings = build(oms_secret="very-secret-value", oms_oauth_client_secret="client-secret-value")
    assert "very-secret-value" not in repr(settings)
    assert "client-secret-value" not in repr(settings)


def test_unset_tokens_are_generated_and_reported(monkeypatch):
    monkeypatch.delenv("OPERATOR_TOKEN", raising=False)
    monkeypatch.delenv("COMMERCE_TOKEN", raising=False)
    settings, generated = load_settings(_env_file=None)
    assert generated == ["OPERATOR_TOKEN", "COMMERCE_TOKEN"]
    assert settings.operator_token is not None and settings.commerce_token is not None
    assert len(settings.operator_token.get_secret_value()) >= 32
    assert settings.operator_token.get_secret_value() != settings.commerce_token.get_secret_value()


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"oms_signature": "maybe"}, "OMS_SIGNATURE"),
        ({"oms_retry_window_hours": "-1"}, "OMS_RETRY_WINDOW_HOURS"),
        ({"oms_url": "not a url"}, "OMS_URL"),
        ({"oms_labels": "[1, 2]"}, "OMS_LABELS"),
        ({"oms_max_body_bytes": "ten"}, "OMS_MAX_BODY_BYTES"),
        ({"operator_token": "short"}, "OPERATOR_TOKEN"),
        ({"oms_url": "http://oms.test/", "oms_secret": ""}, "OMS_SECRET"),
        ({"oms_oauth_server_url": "http://oms.test/token"}, "OMS_OAUTH_CLIENT_ID"),
    ],
)
def test_a_bad_value_fails_with_a_message_naming_the_variable(values, named):
    with pytest.raises(ConfigurationError, match=named):
        load_settings(_env_file=None, **values)


def test_the_oms_time_zone_defaults_to_utc_and_must_be_a_known_zone(monkeypatch):
    assert build().oms_timezone == "UTC"
    assert str(build(oms_timezone="Europe/Berlin").oms_zone) == "Europe/Berlin"
    monkeypatch.setenv("OMS_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ConfigurationError, match="OMS_TIMEZONE"):
        load_settings(_env_file=None)


def test_aggregate_websites_are_read_as_json_and_a_website_is_fed_by_one_aggregate(monkeypatch):
    monkeypatch.setenv("OMS_AGGREGATE_WEBSITES", '{"EU-WEB": ["base", " de "], "US-WEB": ["us"]}')
    assert Settings(_env_file=None).oms_aggregate_websites == {"EU-WEB": ["base", "de"], "US-WEB": ["us"]}
    monkeypatch.setenv("OMS_AGGREGATE_WEBSITES", '{"EU-WEB": ["base"], "US-WEB": ["base"]}')
    with pytest.raises(ConfigurationError, match=r"OMS_AGGREGATE_WEBSITES.*'base' is fed by both"):
        load_settings(_env_file=None)
