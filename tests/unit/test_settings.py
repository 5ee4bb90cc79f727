from __future__ import annotations

import pytest
from pydantic_settings import SettingsError

from app.settings import ConfigurationError, Settings, _json_shape, describe_settings_error, load_settings


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


@pytest.fixture
def clean_environment(monkeypatch):
    """No connector variable of the caller's environment leaks into these tests."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


def problems(**environment: str) -> list[str]:
    """The lines of the ConfigurationError that load_settings raises for these variables (set in os.environ)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        with pytest.raises(ConfigurationError) as refused:
            load_settings(_env_file=None, keep_tokens=False)
    return str(refused.value).splitlines()


def test_a_list_setting_that_is_not_json_is_named_with_the_shape_expected(clean_environment):
    assert problems(OMS_EXPORT_STATUSES="pending") == [
        'OMS_EXPORT_STATUSES: not valid JSON (Expecting value at character 1); give a JSON list such as ["pending"]'
    ]


def test_an_object_setting_that_is_not_json_is_named_with_where_it_breaks(clean_environment):
    (line,) = problems(OMS_AGGREGATE_WEBSITES='{"EU": [base]}')
    assert line.startswith("OMS_AGGREGATE_WEBSITES: not valid JSON (Expecting value at character 9)")
    assert line.endswith('give a JSON object such as {"EU-WEB": ["base", "de"]}')


def test_json_of_the_wrong_shape_is_named_with_the_shape_expected(clean_environment):
    assert problems(OMS_EXPORT_STATUSES='"pending"') == [
        'OMS_EXPORT_STATUSES: a string, not a list; give a JSON list such as ["pending"]'
    ]
    assert problems(OMS_LABELS="[1]") == [
        'OMS_LABELS: a list, not an object; give a JSON object such as {"env": "production"}'
    ]


def test_every_list_or_object_setting_that_is_not_json_is_refused_naming_it(clean_environment):
    complex_settings = [name for name, field in Settings.model_fields.items() if _json_shape(field.annotation)]
    assert {"oms_export_statuses", "oms_aggregate_websites", "oms_shipping_methods"} <= set(complex_settings)
    for name in complex_settings:
        (line,) = problems(**{name.upper(): "not json"})
        assert line.startswith(f"{name.upper()}: not valid JSON"), line
        assert "give a JSON" in line


def test_every_bad_variable_gets_a_line_of_its_own(clean_environment):
    lines = problems(OMS_EXPORT_STATUSES="pending", OMS_AGGREGATE_WEBSITES="{", LOG_LEVEL="loud", OMS_SIGNATURE="x")
    assert [line.split(":")[0] for line in lines] == [
        "LOG_LEVEL",
        "OMS_SIGNATURE",
        "OMS_AGGREGATE_WEBSITES",
        "OMS_EXPORT_STATUSES",
    ]


def test_a_place_inside_a_json_value_is_named_after_the_variable(clean_environment):
    assert problems(OMS_SHIPPING_METHODS='[{"code": "flat", "name": ""}]') == [
        "OMS_SHIPPING_METHODS[0].name: String should have at least 1 character"
    ]


def test_the_log_level_is_a_known_level_in_any_case(clean_environment):
    assert build(log_level="debug").log_level == "DEBUG"
    assert build(log_level=" Warning ").log_level == "WARNING"
    assert problems(LOG_LEVEL="bogus") == [
        "LOG_LEVEL: 'bogus' is not a log level; give one of DEBUG, INFO, WARNING, ERROR, CRITICAL"
    ]


def test_a_database_url_with_a_bad_port_is_refused_without_showing_the_password(clean_environment):
    (line,) = problems(DATABASE_URL="postgresql://app:hunter2-secret@db.example:54x2/app")
    assert line == "DATABASE_URL: the port is not a number from 0 to 65535"
    (line,) = problems(DATABASE_URL="mysql://app:hunter2-secret@db.example/app")
    assert line.startswith("DATABASE_URL: must be a postgresql:// URL") and "hunter2" not in line


def test_a_handler_plugin_that_is_not_module_colon_function_is_refused(clean_environment):
    assert problems(HANDLER_PLUGINS='["my_module"]') == ["HANDLER_PLUGINS: 'my_module' must look like module:function"]


def test_signature_required_without_any_secret_is_warned():
    warning = build(oms_secret="", oms_secret_previous="").signature_warning
    assert warning is not None and "OMS_SECRET" in warning and "401" in warning
    assert build(oms_secret="", oms_secret_previous="rotating-out").signature_warning is None
    assert build(oms_secret="s3cret").signature_warning is None
    assert "OMS_SIGNATURE=off" in (build(oms_signature="off").signature_warning or "")


def test_an_env_file_that_is_not_utf8_text_is_named(tmp_path, clean_environment):
    env_file = tmp_path / ".env"
    env_file.write_bytes(b"\xff\xfeOMS_URL=x")
    with pytest.raises(ConfigurationError, match=r"\.env: cannot be read: UnicodeDecodeError"):
        load_settings(_env_file=env_file, keep_tokens=False)


def test_a_source_pydantic_settings_cannot_read_is_reported_by_its_variable():
    try:
        try:
            raise ValueError("Expecting value: line 1 column 1 (char 0)")
        except ValueError as cause:
            raise SettingsError('error parsing value for field "oms_labels" from source "EnvSettingsSource"') from cause
    except SettingsError as exc:
        assert describe_settings_error(exc) == (
            "OMS_LABELS: cannot be read: ValueError: Expecting value: line 1 column 1 (char 0)"
        )
