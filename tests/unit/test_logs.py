"""Log lines as app/logs.py writes them: JSON or text, the bound context on each, LOG_FILE and logrotate, and the
format chosen for a terminal."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.logs import choose_format, log_context, message_fields, request_context
from app.settings import ConfigurationError, Settings, load_settings
from tests.support.log_capture import Captured, Terminal, capture_logs

ACCESS = '%s - "%s %s HTTP/%s" %d'  # uvicorn's access line


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def configured() -> Iterator[Callable[..., Captured]]:
    """configure_logging with the given settings, writing to a StringIO (or the stream given); the process-wide
    logging state is put back after the test."""
    with contextlib.ExitStack() as stack:
        yield lambda stream=None, **values: stack.enter_context(capture_logs(stream, **values))


def test_a_json_line_carries_time_level_logger_message_and_the_extra_fields(configured):
    stream = configured(log_format="json")
    logging.getLogger("app.workers.test").warning("lane %s blocked", "order/1", extra={"action": "lane_blocked"})
    [line] = stream.lines()
    assert list(line)[:4] == ["time", "level", "logger", "message"]
    assert line["level"] == "WARNING" and line["logger"] == "app.workers.test"
    assert line["message"] == "lane order/1 blocked" and line["action"] == "lane_blocked"
    assert line["time"].endswith("+00:00") and "T" in line["time"]


def test_a_json_line_of_an_exception_carries_its_traceback(configured):
    stream = configured(log_format="json")
    try:
        raise RuntimeError("disk on fire")
    except RuntimeError:
        logging.getLogger("app").exception("step failed")
    [line] = stream.lines()
    assert line["level"] == "ERROR" and "RuntimeError: disk on fire" in line["exc_info"]


def test_a_text_line_keeps_the_layout_and_adds_the_context_and_extra_fields_as_key_value(configured):
    stream = configured(log_format="text")
    with log_context(request_id="req-7", lane="order/100 0"):
        logging.getLogger("app.routers").info("refused", extra={"action": "rpc_refused", "status": 401})
    line = stream.getvalue().rstrip("\n")
    assert " INFO app.routers: refused " in line
    assert line.endswith(' action=rpc_refused status=401 request_id=req-7 lane="order/100 0"')


def test_the_bound_context_is_on_every_line_inside_the_block_and_gone_after_it(configured):
    stream = configured(log_format="json")
    log = logging.getLogger("app.test")
    with log_context(message_id=7, topic="t"):
        log.info("outer")
        with log_context(lane="l", topic="inner-topic", sku=None):
            log.info("inner")
        log.info("outer again")
    log.info("outside")
    outer, inner, again, outside = stream.lines()
    assert (outer["message_id"], outer["topic"]) == (7, "t") and "lane" not in outer
    assert (inner["message_id"], inner["topic"], inner["lane"]) == (7, "inner-topic", "l") and "sku" not in inner
    assert again["topic"] == "t" and "lane" not in again
    assert "message_id" not in outside and "topic" not in outside


def test_a_field_given_in_extra_wins_over_the_bound_context(configured):
    stream = configured(log_format="json")
    with log_context(request_id="from-context"):
        logging.getLogger("app").error("x", extra={"request_id": "from-call"})
    assert stream.lines()[0]["request_id"] == "from-call"


def test_the_uvicorn_access_line_is_formatted_alike_with_the_request_id_method_path_status_and_duration(configured):
    stream = configured(log_format="json")
    with request_context("caller-id-1"):
        logging.getLogger("uvicorn.access").info(ACCESS, "127.0.0.1:5000", "POST", "/oms/rpc?x=1", "1.1", 202)
    [line] = stream.lines()
    assert line["logger"] == "uvicorn.access" and line["request_id"] == "caller-id-1"
    assert (line["method"], line["path"], line["status"], line["client"]) == (
        "POST",
        "/oms/rpc?x=1",
        202,
        "127.0.0.1:5000",
    )
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0


def test_the_text_access_line_does_not_repeat_what_its_message_says(configured):
    stream = configured(log_format="text")
    with request_context("r-9"):
        logging.getLogger("uvicorn.access").info(ACCESS, "127.0.0.1:5000", "GET", "/health/live", "1.1", 200)
    line = stream.getvalue()
    assert '"GET /health/live HTTP/1.1" 200 request_id=r-9 duration_ms=' in line
    assert "method=" not in line and "path=" not in line


def test_uvicorn_records_reach_the_configured_handlers_even_after_uvicorn_had_its_own(configured):
    configured()  # (so that the changes below are undone after the test)
    logging.getLogger("uvicorn.error").addHandler(logging.NullHandler())  # as uvicorn's default config does
    logging.getLogger("uvicorn.error").propagate = False
    stream = configured(log_format="json")
    logging.getLogger("uvicorn.error").warning("Invalid HTTP request received.")
    [line] = stream.lines()
    assert (line["logger"], line["level"], line["message"]) == (
        "uvicorn.error",
        "WARNING",
        "Invalid HTTP request received.",
    )


def test_log_level_debug_leaves_sql_statements_out_and_shows_each_http_request(configured):
    stream = configured(log_format="json", log_level="DEBUG")
    logging.getLogger("sqlalchemy.engine.Engine").info("SELECT * FROM sales_order")
    logging.getLogger("httpx").info("HTTP Request: POST http://oms/api/")
    logging.getLogger("app").debug("detail")
    assert [line["message"] for line in stream.lines()] == ["HTTP Request: POST http://oms/api/", "detail"]


def test_log_level_info_leaves_out_httpx_request_lines_but_not_its_warnings(configured):
    stream = configured(log_format="json", log_level="INFO")
    logging.getLogger("httpx").info("HTTP Request: POST http://oms/api/")
    logging.getLogger("httpx").warning("something odd")
    assert [line["message"] for line in stream.lines()] == ["something odd"]


def test_configuring_again_replaces_its_own_handlers_and_keeps_those_of_others(configured):
    first = configured(log_format="json")
    foreign = logging.NullHandler()  # as pytest's capture handlers, say
    logging.getLogger().addHandler(foreign)
    second = configured(log_format="json")
    logging.getLogger("app").warning("once")
    assert first.getvalue() == "" and len(second.lines()) == 1
    assert foreign in logging.getLogger().handlers


def test_auto_format_is_text_on_a_terminal_and_json_anywhere_else():
    assert choose_format("auto", Terminal()) == "text"
    assert choose_format("auto", io.StringIO()) == "json"
    assert choose_format("auto", object()) == "json"
    assert choose_format("json", Terminal()) == "json"
    assert choose_format("text", io.StringIO()) == "text"


def test_auto_on_a_terminal_writes_text_lines(configured):
    stream = configured(Terminal())
    logging.getLogger("app").warning("hello")
    assert " WARNING app: hello" in stream.getvalue() and not stream.getvalue().startswith("{")


def test_log_format_is_taken_in_any_case_and_anything_else_is_refused_naming_the_variable():
    assert settings(log_format=" JSON ").log_format == "json"
    assert settings().log_format == "auto"
    with pytest.raises(ConfigurationError, match=r"^LOG_FORMAT: .*'auto', 'text' or 'json'"):
        load_settings(keep_tokens=False, _env_file=None, log_format="xml")


def test_an_empty_log_file_setting_means_no_file():
    assert settings(log_file="  ").log_file is None


def test_the_log_file_gets_json_lines_and_a_new_file_after_logrotate_moves_it(configured, tmp_path: Path):
    path = tmp_path / "connector.log"
    stream = configured(log_file=str(path))
    log = logging.getLogger("app")
    log.warning("before rotation")
    path.rename(tmp_path / "connector.log.1")  # what logrotate does (without copytruncate)
    log.warning("after rotation")
    rotated = [json.loads(line)["message"] for line in (tmp_path / "connector.log.1").read_text().splitlines()]
    fresh = [json.loads(line)["message"] for line in path.read_text().splitlines()]
    assert rotated == ["before rotation"] and fresh == ["after rotation"]
    assert [line["message"] for line in stream.lines()] == ["before rotation", "after rotation"]


def test_the_log_file_follows_log_format_text(configured, tmp_path: Path):
    path = tmp_path / "connector.log"
    configured(log_file=str(path), log_format="text")
    logging.getLogger("app").warning("plain")
    assert path.read_text().rstrip("\n").endswith(" WARNING app: plain")


@pytest.mark.parametrize("where", ["missing/dir/connector.log", "."], ids=["missing directory", "a directory"])
def test_a_log_file_that_cannot_be_opened_is_a_configuration_error_naming_log_file(
    configured, tmp_path: Path, where: str
):
    with pytest.raises(ConfigurationError, match=r"^LOG_FILE: cannot open .* for appending: ") as raised:
        configured(log_file=str(tmp_path / where))
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("lane", "payload", "about"),
    [
        ("order/100000123", {}, {"increment_id": "100000123"}),
        ("commerce/order/100000123", {}, {"increment_id": "100000123"}),
        ("product/MUG-1", {}, {"sku": "MUG-1"}),
        ("stock/EU", {"snapshot": {"stock": [{"sku": "A"}, {"sku": "B"}]}}, {"sku_count": 2}),
        ("commerce/stock/eu", {"body": {"sourceItems": [{"sku": "A"}]}}, {"sku_count": 1}),
        ("magento.service_bus.remote.register", None, {}),
    ],
)
def test_a_message_context_names_its_order_or_its_skus(lane: str, payload: Any, about: dict[str, Any]):
    fields = message_fields(
        message_id=5, direction="in", channel="oms", topic="t", lane=lane, external_id="rpc-1", payload=payload
    )
    common = {"message_id": 5, "direction": "in", "channel": "oms", "topic": "t", "lane": lane, "external_id": "rpc-1"}
    assert fields == {**common, **about}
