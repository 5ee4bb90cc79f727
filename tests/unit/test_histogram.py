"""The report's duration histograms: fixed log-spaced buckets and the percentiles read from them."""

from __future__ import annotations

import itertools
import math

from hypothesis import given
from hypothesis import strategies as st

from app.services.histogram import (
    BUCKET_BOUNDS,
    MAX_RELATIVE_ERROR,
    OVERFLOW_BUCKET,
    bucket_of,
    percentiles,
)


def histogram_of(values: list[float]) -> tuple[list[int], list[int]]:
    counts: dict[int, int] = {}
    for value in values:
        counts[bucket_of(value)] = counts.get(bucket_of(value), 0) + 1
    buckets = sorted(counts)
    return buckets, [counts[b] for b in buckets]


def nearest_rank(values: list[float], q: float) -> float:
    return sorted(values)[max(1, math.ceil(q * len(values) - 1e-9)) - 1]


def test_buckets_are_four_per_doubling_from_1_ms_to_2_to_the_32_ms():
    assert len(BUCKET_BOUNDS) == 129 and BUCKET_BOUNDS[0] == 1.0 and BUCKET_BOUNDS[-1] == 2.0**32
    assert all(b / a == 2**0.25 or math.isclose(b / a, 2**0.25) for a, b in itertools.pairwise(BUCKET_BOUNDS))
    assert [bucket_of(v) for v in (0, 0.999, 1, 1.189, 1.19, 2, 1000, 2.0**32 - 1, 2.0**32, 1e18)] == [
        0, 0, 1, 1, 2, 5, 40, 128, OVERFLOW_BUCKET, OVERFLOW_BUCKET
    ]  # fmt: skip
    assert MAX_RELATIVE_ERROR == 2 ** (1 / 8) - 1


@given(
    st.lists(st.floats(min_value=1.0, max_value=2.0**32 - 1, allow_nan=False), min_size=1, max_size=300),
    st.sampled_from([0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0]),
)
def test_a_percentile_is_within_the_stated_relative_error_of_the_exact_one(values, q):
    buckets, counts = histogram_of(values)
    (estimate,) = percentiles(buckets, counts, [q], max(values))
    exact = nearest_rank(values, q)
    assert abs(estimate - exact) <= exact * MAX_RELATIVE_ERROR * (1 + 1e-12)


@given(st.lists(st.floats(min_value=0.0, max_value=0.999, allow_nan=False), min_size=1, max_size=50))
def test_under_1_ms_a_percentile_is_within_half_a_millisecond(values):
    buckets, counts = histogram_of(values)
    estimates = percentiles(buckets, counts, [0.5, 0.99], max(values))
    assert all(abs(e - nearest_rank(values, q)) <= 0.5 for e, q in zip(estimates, [0.5, 0.99], strict=True))


def test_a_percentile_never_exceeds_the_maximum_and_beyond_the_last_bucket_is_the_maximum():
    # bucket 39 holds [724.1, 861.1) ms: its geometric middle is 789.6 ms
    assert percentiles([39], [3], [0.5], 800.0) == percentiles([39], [3], [0.5], 1e9) == [2 ** (38.5 / 4)]
    assert percentiles([39], [3], [0.99], 730.0) == [730.0]  # the middle is above the maximum seen
    assert percentiles([OVERFLOW_BUCKET], [1], [0.5], 9e9) == [9e9]
    assert percentiles([0], [2], [0.5], 0.0) == [0.0]  # integer processing times of 0 ms: exactly 0


def test_nearest_rank_takes_the_smallest_value_with_at_least_q_of_the_values_at_or_below_it():
    # 20 values: p95 is the 19th, p50 the 10th (not an interpolation)
    buckets, counts = [5, 10], [19, 1]  # 19 values in [2, 2.38) ms, one of 5 ms (bucket [4.76, 5.66))
    assert percentiles(buckets, counts, [0.5, 0.95, 0.96], 5.0) == [2 ** (4.5 / 4), 2 ** (4.5 / 4), 5.0]
    assert percentiles([], [], [0.5], 0.0) == [None]
