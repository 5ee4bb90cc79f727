"""When to try a failed message again: a pure policy with an injected clock (no I/O).

Backoff: ``delay = min(max_delay_s, base_delay_s * 2 ** (attempts - 1))``, then "full jitter" keeps a random
share between half and all of it, so many replicas retrying one peer do not stampede it. A peer's
``Retry-After`` is honoured as a lower bound. Outbound messages have a give-up window (OMS_RETRY_WINDOW_HOURS)
measured from their first attempt; inbound messages retry until they succeed or an operator acts, because
their lane must not skip them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum


class Outcome(StrEnum):
    RETRY = "retry"
    GIVE_UP = "give_up"  # outbound window closed: dead


@dataclass(frozen=True)
class RetryDecision:
    outcome: Outcome
    next_attempt_at: datetime | None = None


@dataclass(frozen=True)
class RetryPolicy:
    base_delay_s: float = 1.0
    max_delay_s: float = 300.0
    window_s: float | None = None  # None: never give up
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay_s(self, attempts: int) -> float:
        exponent = min(max(0, attempts - 1), 64)  # beyond 2**64 the cap applies anyway; avoids float overflow
        exponential = min(self.max_delay_s, self.base_delay_s * 2.0**exponent)
        return exponential * (0.5 + 0.5 * self.rng.random())

    def decide(
        self,
        *,
        attempts: int,
        now: datetime,
        first_attempt_at: datetime | None,
        retry_after_s: float | None = None,
    ) -> RetryDecision:
        if self.window_s is not None and first_attempt_at is not None:
            if (now - first_attempt_at).total_seconds() >= self.window_s:
                return RetryDecision(Outcome.GIVE_UP)
        delay = self.delay_s(attempts)
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, self.max_delay_s * 12))
        next_at = now + timedelta(seconds=delay)
        if self.window_s is not None and first_attempt_at is not None:
            # One last try right at the end of the window rather than none after it.
            window_end = first_attempt_at + timedelta(seconds=self.window_s)
            next_at = min(next_at, window_end)
        return RetryDecision(Outcome.RETRY, next_at)
