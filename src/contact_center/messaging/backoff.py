"""How long a message waits before its next try after a retryable error.

Exponential steps with full jitter: the wait after attempt n is drawn between MIN_SECONDS and the
n-th step, so the messages of a failed batch (and the workers holding them) do not all come back at
the same instant and knock the provider over again. What the provider asked for (Retry-After,
Kolmeya's X-RateLimit-Reset) is a floor: we never come back sooner than it said.
"""

from __future__ import annotations

import random
from collections.abc import Callable

BACKOFF_SECONDS = (5, 30, 120, 600)  # the longest wait after attempts 1, 2, 3, 4 (and after)
MIN_SECONDS = 1.0  # never straight back

_random = random.Random()


def retry_delay(attempt: int, provider_asked: float | None = None,
                jitter: Callable[[], float] = _random.random) -> float:
    """Seconds before attempt `attempt + 1`. `jitter` returns a float in [0, 1): tests pass a fixed
    one; the step's ceiling and `provider_asked` bound the result either way."""
    ceiling = BACKOFF_SECONDS[min(max(attempt, 1), len(BACKOFF_SECONDS)) - 1]
    drawn = MIN_SECONDS + (ceiling - MIN_SECONDS) * jitter()
    return max(drawn, provider_asked or 0.0)


def draw() -> float:
    """One jitter value in [0, 1), for a batch whose messages should share their wait."""
    return _random.random()
