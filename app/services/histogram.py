"""Duration histograms of the processing-time report: fixed, log-spaced buckets, and percentiles read from them.

Bucket ``i`` counts durations in ``[2^((i-1)/4), 2^(i/4))`` milliseconds, four buckets per doubling, from 1 ms to
2^32 ms (≈ 49.7 days); bucket 0 holds durations under 1 ms and bucket 129 those of 2^32 ms and more. PostgreSQL
puts a duration in its bucket with ``width_bucket(duration, BUCKET_BOUNDS)`` (a binary search over these very
bounds, so SQL and Python agree exactly; no floating-point logarithm), ``bucket_of`` is the same in Python.

A percentile is read as the geometric middle of the bucket holding its rank (nearest rank: the ⌈q·n⌉-th smallest),
capped at the exact maximum. Worst case against the exact percentile: ±9.05 % (2^(1/8) - 1, half a bucket in log
scale); under 1 ms, ±0.5 ms; beyond 2^32 ms the maximum is given. Counts, sums (hence averages) and maxima are
exact: only percentiles are estimated.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence

BUCKETS_PER_DOUBLING = 4
DOUBLINGS = 32  # 1 ms · 2^32 ≈ 49.7 days
# The lower bound of buckets 1 … 129 (ms): 2^(k/4) for k = 0 … 128.
BUCKET_BOUNDS: tuple[float, ...] = tuple(2.0 ** (k / BUCKETS_PER_DOUBLING) for k in range(DOUBLINGS * 4 + 1))
OVERFLOW_BUCKET = len(BUCKET_BOUNDS)  # 129: 2^32 ms and more
MAX_RELATIVE_ERROR = 2.0 ** (1 / (2 * BUCKETS_PER_DOUBLING)) - 1  # 0.0905
UNDER_1_MS_ERROR_MS = 0.5


def bucket_of(duration_ms: float) -> int:
    """The bucket of a duration, as PostgreSQL's ``width_bucket(duration_ms, BUCKET_BOUNDS)`` gives it."""
    return bisect.bisect_right(BUCKET_BOUNDS, duration_ms)


def bucket_estimate(bucket: int) -> float:
    """The value a percentile falling in ``bucket`` is given: the bucket's geometric middle (0.5 ms below 1 ms)."""
    if bucket <= 0:
        return UNDER_1_MS_ERROR_MS
    if bucket >= OVERFLOW_BUCKET:
        return math.inf  # capped at the maximum by the caller
    return 2.0 ** ((bucket - 0.5) / BUCKETS_PER_DOUBLING)


def percentiles(
    buckets: Sequence[int], counts: Sequence[int], quantiles: Iterable[float], maximum: float
) -> list[float | None]:
    """Estimated percentiles (``quantiles`` in (0, 1]) of a histogram given as parallel arrays of bucket numbers
    (ascending, each once) and counts; each capped at ``maximum``. None for an empty histogram. One walk of the
    buckets for all of them."""
    total = sum(counts)
    wanted = list(quantiles)
    if total <= 0:
        return [None for _ in wanted]
    ranks = [max(1, math.ceil(q * total - 1e-9)) for q in wanted]  # nearest rank (the epsilon: 0.95·20 is 19)
    answers: list[float | None] = [maximum] * len(ranks)  # a rank beyond the counts cannot be: the maximum then
    order = sorted(range(len(ranks)), key=ranks.__getitem__)
    seen, position = 0, 0
    for bucket, count in zip(buckets, counts, strict=True):
        seen += count
        while position < len(order) and ranks[order[position]] <= seen:
            answers[order[position]] = min(bucket_estimate(bucket), maximum)
            position += 1
        if position == len(order):
            break
    return answers
