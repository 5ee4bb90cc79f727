"""app/services/effective_settings.py: what the console's settings page may show of a setting."""

from __future__ import annotations

import pytest

from app.services.effective_settings import MASK, effective_settings, mask_url
from tests.conftest import make_settings


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://oms:pw@db:5432/oms", f"postgresql://oms:{MASK}@db:5432/oms"),
        ("postgresql://oms:p%40ss@db/oms?password=x&sslmode=require",
         f"postgresql://oms:{MASK}@db/oms?password={MASK}&sslmode=require"),
        ("postgresql://oms@db/oms", "postgresql://oms@db/oms"),
        ("postgresql:///oms?host=/run/pg&passwd=x", f"postgresql:///oms?host=/run/pg&passwd={MASK}"),
        ("https://shop.example/rest/all/V1?api_key=k", f"https://shop.example/rest/all/V1?api_key={MASK}"),
        ("https://[::1/x?password=x", MASK),  # unreadable: nothing of it is shown
    ],
)  # fmt: skip
def test_a_url_keeps_where_it_points_and_loses_its_passwords(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_an_unset_secret_says_not_set_and_a_set_one_says_only_set() -> None:
    views = {view.variable: view for view in effective_settings(make_settings(metrics_token=None))}

    assert (views["METRICS_TOKEN"].value, views["METRICS_TOKEN"].masked) == ("(not set)", True)
    assert (views["OMS_SECRET"].value, views["OMS_SECRET"].masked) == (f"{MASK} (set)", True)
    assert views["OMS_SECRET"].given is True
    assert views["OMS_SIGNATURE"].given is False  # the default
