"""A request budget per channel, shared by every worker sending on it.

Providers limit a channel as a whole (Kolmeya counts the token's requests per window; Meta allows
a WhatsApp number 80 messages a second), however many workers send on it. Before each request
dispatch asks `acquire(channel_id, count, budget)`: 0 means go (the budget is taken), more means
wait that many seconds and ask again (nothing taken).

The budget is counted in fixed time slots (`budget.per_seconds` long): at most `budget.requests`
are taken in any one slot. With Redis configured every process shares one count per channel, kept
by a Lua script (atomic, on Redis's own clock, so workers on machines whose clocks differ agree);
embedded, the one process keeps it in memory.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis

from contact_center.providers.base import RateBudget
from contact_center.settings import Settings

log = logging.getLogger(__name__)


class Limiter(Protocol):
    def acquire(self, channel_id: int, count: int, budget: RateBudget) -> float:
        """0: go now, `count` requests of the budget are taken; else the seconds until the slot in
        which they may fit (nothing is taken). A request bigger than the whole budget goes alone in
        an empty slot rather than never."""


class LocalLimiter:
    """One process's count, for the embedded setup (the one process that sends)."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self._clock = clock
        self._lock = threading.Lock()
        self._slots: dict[int, tuple[int, int]] = {}  # channel id -> (slot number, requests taken in it)

    def acquire(self, channel_id: int, count: int, budget: RateBudget) -> float:
        now = self._clock()
        slot = math.floor(now / budget.per_seconds)
        with self._lock:
            current, used = self._slots.get(channel_id, (slot, 0))
            if current != slot:
                used = 0
            if used and used + count > budget.requests:
                return (slot + 1) * budget.per_seconds - now
            self._slots[channel_id] = (slot, used + count)
            return 0.0


# KEYS[1]: the channel's counter; ARGV: count, limit, slot length (ms). Returns 0 or the ms to wait.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local count, limit, period = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local slot = math.floor(now / period)
local current = redis.call('HMGET', KEYS[1], 'slot', 'used')
local used = 0
if tonumber(current[1]) == slot then used = tonumber(current[2]) end
if used > 0 and used + count > limit then
  return (slot + 1) * period - now
end
redis.call('HSET', KEYS[1], 'slot', slot, 'used', used + count)
redis.call('PEXPIRE', KEYS[1], period * 2)
return 0
"""


class RedisLimiter:
    """The count every process shares, in Redis."""

    def __init__(self, url: str, prefix: str = "contact-center:rate"):
        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._script = self._redis.register_script(_ACQUIRE)
        self._prefix = prefix

    def acquire(self, channel_id: int, count: int, budget: RateBudget) -> float:
        period_ms = max(1, round(budget.per_seconds * 1000))
        try:
            wait_ms = self._script(keys=[f"{self._prefix}:{channel_id}"], args=[count, budget.requests, period_ms])
        except redis.RedisError as exc:
            # Not worth stopping every send for: the provider's own 429 still slows the channel.
            log.warning("rate limit of channel %s not checked, Redis failed: %s", channel_id, exc)
            return 0.0
        return int(wait_ms) / 1000

    def close(self) -> None:
        self._redis.close()


def make_limiter(settings: Settings) -> Limiter:
    """The process's limiter (Runtime.limiter): Redis's when configured, else its own."""
    return RedisLimiter(settings.redis_url) if settings.redis_url else LocalLimiter()
