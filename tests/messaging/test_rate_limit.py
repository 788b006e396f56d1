"""The channel's shared request budget (messaging/rate_limit.py) and the backoff between tries
(messaging/backoff.py).

The Redis limiter is tested on a real Redis (CONTACT_CENTER_TEST_REDIS_URL, db 15) by two processes
taking from one budget as fast as they can: no time slot ever holds more than the budget.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import random
import time
import uuid

import pytest

from contact_center.messaging import backoff
from contact_center.messaging.rate_limit import LocalLimiter, RedisLimiter
from contact_center.providers.base import RateBudget

REDIS_URL = os.environ.get("CONTACT_CENTER_TEST_REDIS_URL", "")


# --- backoff -----------------------------------------------------------------------------------


def test_the_wait_grows_with_each_attempt_and_stays_under_its_step():
    for attempt, ceiling in enumerate(backoff.BACKOFF_SECONDS, start=1):
        assert backoff.retry_delay(attempt, jitter=lambda: 0.0) == backoff.MIN_SECONDS
        assert backoff.retry_delay(attempt, jitter=lambda: 0.999999) == pytest.approx(ceiling, abs=0.01)
    # Past the last step the wait stays capped.
    assert backoff.retry_delay(50, jitter=lambda: 0.999999) == pytest.approx(backoff.BACKOFF_SECONDS[-1], abs=0.01)


def test_jitter_spreads_the_retries_of_many_failures():
    seeded = random.Random(7)
    delays = [backoff.retry_delay(2, jitter=seeded.random) for _ in range(200)]
    assert all(backoff.MIN_SECONDS <= d <= backoff.BACKOFF_SECONDS[1] for d in delays)
    assert len({round(d) for d in delays}) > 10  # not in lockstep


def test_what_the_provider_asked_for_is_a_floor():
    assert backoff.retry_delay(1, provider_asked=42, jitter=lambda: 0.5) == 42  # Retry-After beyond the step
    assert backoff.retry_delay(3, provider_asked=2, jitter=lambda: 0.5) > 2  # the step beyond Retry-After


# --- the embedded limiter ----------------------------------------------------------------------


def test_the_local_limiter_lets_the_budget_through_then_says_how_long_to_wait():
    now = [100.25]
    limiter = LocalLimiter(clock=lambda: now[0])
    budget = RateBudget(3, 1.0)
    assert [limiter.acquire(1, 1, budget) for _ in range(3)] == [0, 0, 0]
    assert limiter.acquire(1, 1, budget) == pytest.approx(0.75)  # until the next second
    assert limiter.acquire(2, 1, budget) == 0  # another channel has its own budget
    now[0] = 101.0
    assert limiter.acquire(1, 1, budget) == 0


def test_a_request_bigger_than_the_budget_goes_alone_rather_than_never():
    limiter = LocalLimiter(clock=lambda: 10.0)
    assert limiter.acquire(1, 5, RateBudget(2, 60)) == 0
    assert limiter.acquire(1, 1, RateBudget(2, 60)) == 50


# --- the Redis limiter, shared by processes ----------------------------------------------------

BUDGET = RateBudget(25, 0.25)


def _take_for(url: str, prefix: str, seconds: float, queue) -> None:
    """A worker process: take from channel 1's budget as fast as it can; report each grant as the
    (before, after) times around it."""
    limiter = RedisLimiter(url, prefix=prefix)
    grants = []
    deadline = time.time() + seconds
    while time.time() < deadline:
        before = time.time()
        wait = limiter.acquire(1, 1, BUDGET)
        if wait == 0:
            grants.append((before, time.time()))
        else:
            time.sleep(min(wait, 0.01))
    limiter.close()
    queue.put(grants)


@pytest.fixture
def redis_url():
    if not REDIS_URL:
        pytest.skip("the shared rate limit needs CONTACT_CENTER_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/15)")
    return REDIS_URL


def test_two_processes_together_never_exceed_the_budget_of_a_time_slot(redis_url):
    prefix = f"test-rate:{uuid.uuid4().hex}"
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_take_for, args=(redis_url, prefix, 1.5, queue)) for _ in range(2)]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    assert all(results), "each process was granted some of the budget"
    grants = [grant for granted in results for grant in granted]
    per_slot: dict[int, int] = {}
    for before, after in grants:
        # Redis and this machine share a clock; a grant straddling a slot's edge cannot be placed.
        first, last = math.floor(before / BUDGET.per_seconds), math.floor(after / BUDGET.per_seconds)
        if first == last:
            per_slot[first] = per_slot.get(first, 0) + 1
    assert max(per_slot.values()) <= BUDGET.requests
    assert max(per_slot.values()) == BUDGET.requests  # used, not starved
    slots = math.floor(max(a for _, a in grants) / BUDGET.per_seconds) - math.floor(
        min(b for b, _ in grants) / BUDGET.per_seconds) + 1
    assert len(grants) <= BUDGET.requests * slots


def test_redis_tells_a_worker_how_long_until_the_next_slot(redis_url):
    limiter = RedisLimiter(redis_url, prefix=f"test-rate:{uuid.uuid4().hex}")
    budget = RateBudget(2, 60.0)
    try:
        assert limiter.acquire(7, 1, budget) == 0 and limiter.acquire(7, 1, budget) == 0
        wait = limiter.acquire(7, 1, budget)
        assert 0 < wait <= 60
        assert limiter.acquire(8, 1, budget) == 0  # another channel
    finally:
        limiter.close()
