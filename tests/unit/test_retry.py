from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from app.workers.retry import Outcome, RetryPolicy

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def policy(**kwargs) -> RetryPolicy:
    return RetryPolicy(rng=random.Random(7), **kwargs)


@given(st.integers(min_value=1, max_value=60))
def test_the_delay_is_between_half_and_all_of_the_capped_exponential(attempts):
    p = policy(base_delay_s=1.0, max_delay_s=300.0)
    full = min(300.0, 2.0 ** (attempts - 1))
    assert full / 2 <= p.delay_s(attempts) <= full


def test_delays_grow_with_attempts():
    p = policy(base_delay_s=1.0, max_delay_s=10_000.0)
    assert p.delay_s(1) <= 1.0 < 8.0 <= p.delay_s(5) * 2


def test_retry_after_is_a_lower_bound():
    decision = policy().decide(attempts=1, now=NOW, first_attempt_at=NOW, retry_after_s=120)
    assert decision.outcome is Outcome.RETRY
    assert decision.next_attempt_at is not None
    assert decision.next_attempt_at - NOW >= timedelta(seconds=120)


def test_inside_the_window_it_retries_and_never_past_its_end():
    p = policy(window_s=3600, max_delay_s=7200)
    first = NOW - timedelta(minutes=59)
    decision = p.decide(attempts=30, now=NOW, first_attempt_at=first)
    assert decision.outcome is Outcome.RETRY
    assert decision.next_attempt_at == first + timedelta(hours=1)


def test_at_the_end_of_the_window_it_gives_up():
    p = policy(window_s=48 * 3600)
    decision = p.decide(attempts=100, now=NOW, first_attempt_at=NOW - timedelta(hours=48))
    assert decision.outcome is Outcome.GIVE_UP


def test_without_a_window_it_never_gives_up():
    decision = policy().decide(attempts=10_000, now=NOW, first_attempt_at=NOW - timedelta(days=365))
    assert decision.outcome is Outcome.RETRY
