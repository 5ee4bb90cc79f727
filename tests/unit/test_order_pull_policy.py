"""The order pull's settings (named in every refusal) and its backoff after failed polls: a pure policy with a
seeded random source, no database and no network."""

from __future__ import annotations

import random
from typing import Any

import pytest

from app.services.order_pull import BACKOFF_MAX_S, OrderPull
from app.settings import ConfigurationError, load_settings
from tests.conftest import make_settings

COMMERCE = {"adobe_commerce_url": "https://shop.example/rest/all/V1", "adobe_commerce_token": "integration-token"}


def policy(**overrides: Any) -> OrderPull:
    """An OrderPull for its backoff only (it touches neither database nor Adobe Commerce)."""
    settings = make_settings(**COMMERCE, **overrides)
    return OrderPull(None, None, settings, None, None, rng=random.Random(3))  # type: ignore[arg-type]


def test_the_pull_polls_every_minute_in_pages_of_100_by_default():
    settings = make_settings(**COMMERCE)
    assert settings.adobe_commerce_order_poll_s == 60
    assert settings.adobe_commerce_order_page_size == 100
    assert settings.order_pull_enabled is True


def test_a_poll_interval_of_0_turns_the_pull_off_and_without_adobe_commerce_it_is_off():
    assert make_settings(**COMMERCE, adobe_commerce_order_poll_s=0).order_pull_enabled is False
    assert make_settings().order_pull_enabled is False  # ADOBE_COMMERCE_URL and _TOKEN unset


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"adobe_commerce_order_poll_s": -1}, "ADOBE_COMMERCE_ORDER_POLL_S"),
        ({"adobe_commerce_order_page_size": 301}, "ADOBE_COMMERCE_ORDER_PAGE_SIZE"),
        ({"adobe_commerce_order_page_size": 0}, "ADOBE_COMMERCE_ORDER_PAGE_SIZE"),
        ({"adobe_commerce_order_max_pages": 0}, "ADOBE_COMMERCE_ORDER_MAX_PAGES"),
        ({"adobe_commerce_order_overlap_s": -5}, "ADOBE_COMMERCE_ORDER_OVERLAP_S"),
    ],
)
def test_a_bad_pull_setting_is_refused_naming_its_variable(values, named):
    with pytest.raises(ConfigurationError, match=named):
        load_settings(_env_file=None, keep_tokens=False, **values)


def test_the_backoff_starts_at_5_s_and_doubles_up_to_5_minutes_keeping_half_to_all_of_it():
    pull = policy()
    for failures, full in [(1, 5), (2, 10), (3, 20), (7, 300), (40, 300)]:
        waits = [pull.backoff_s(failures) for _ in range(200)]
        assert full / 2 <= min(waits) and max(waits) <= full
        assert max(waits) - min(waits) > full / 10  # jittered: replicas do not retry in step
    assert BACKOFF_MAX_S == 300


def test_the_first_retry_is_no_later_than_the_poll_interval():
    assert policy(adobe_commerce_order_poll_s=2).backoff_s(1) <= 2


def test_a_retry_after_is_a_lower_bound_within_the_largest_wait():
    pull = policy()
    assert pull.backoff_s(1, retry_after_s=120) == 120
    assert pull.backoff_s(1, retry_after_s=86_400) == BACKOFF_MAX_S
    assert pull.backoff_s(1, retry_after_s=0) <= 5
