"""Live events for operators' screens: announced inside a transaction, published after it commits.

    announce(session, "message.created", conversation_id=…, message_id=…)

A rolled-back change announces nothing; a committed one reaches every process's subscribers
through the runtime's bus: InProcessBus by default (one process), RedisStreamBus when
CONTACT_CENTER_REDIS_URL is set (any number of web and worker processes).

Every event gets a number, increasing in the order subscribers see events. A screen that lost its
connection asks for what came after the last number it saw (`catch_up`); `None` means that is no
longer known (too old, or another bus since a restart: the `epoch` differs) and the screen must
reload its data instead.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.orm import Session

from contact_center.unit_of_work import after_commit

log = logging.getLogger(__name__)

Deliver = Callable[[int, "LiveEvent"], None]


@dataclass(frozen=True)
class LiveEvent:
    kind: str  # message.created, message.status, conversation.updated, …
    data: dict[str, Any]
    at: float = field(default_factory=time.time)


class EventBus(Protocol):
    epoch: str  # changes when numbering starts again (a new in-process bus, another Redis stream)

    def publish(self, event: LiveEvent) -> None: ...

    def publish_many(self, events: list[LiveEvent]) -> None: ...  # in order, as one publish each

    def subscribe(self, deliver: Deliver) -> Callable[[], None]: ...

    def catch_up(self, number: int) -> list[tuple[int, LiveEvent]] | None: ...

    def position(self) -> int: ...

    def close(self) -> None: ...


class Subscribers:
    """The local subscriber list every bus keeps; a failing subscriber never stops the others."""

    def __init__(self):
        self._lock = threading.Lock()
        self._subscribers: list[Deliver] = []

    def add(self, deliver: Deliver) -> Callable[[], None]:
        with self._lock:
            self._subscribers.append(deliver)

        def unsubscribe() -> None:
            with self._lock:
                if deliver in self._subscribers:
                    self._subscribers.remove(deliver)

        return unsubscribe

    def __bool__(self) -> bool:
        return bool(self._subscribers)

    def deliver(self, number: int, event: LiveEvent) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for deliver in subscribers:
            try:
                deliver(number, event)
            except Exception:
                log.exception("live event subscriber failed")


class InProcessBus:
    """Fan-out to subscribers in this process; each event gets a sequence number for catch-up."""

    def __init__(self, history: int = 10_000):
        self.epoch = secrets.token_hex(4)
        self._subscribers = Subscribers()
        self._lock = threading.RLock()  # a subscriber may publish in turn
        self._sequence = itertools.count(1)
        self._last = 0
        self._history: deque[tuple[int, LiveEvent]] = deque(maxlen=history)

    def publish(self, event: LiveEvent) -> None:
        self.publish_many([event])

    def publish_many(self, events: list[LiveEvent]) -> None:
        # Numbering and delivery under one lock: subscribers see events in number order.
        with self._lock:
            for event in events:
                number = next(self._sequence)
                self._last = number
                self._history.append((number, event))
                self._subscribers.deliver(number, event)

    def subscribe(self, deliver: Deliver) -> Callable[[], None]:
        return self._subscribers.add(deliver)

    def catch_up(self, number: int) -> list[tuple[int, LiveEvent]] | None:
        with self._lock:
            if number > self._last:
                return None  # numbers from another bus
            oldest = self._history[0][0] if self._history else self._last + 1
            if number + 1 < oldest:
                return None  # what came right after `number` is no longer kept
            return [(n, e) for n, e in self._history if n > number]

    def position(self) -> int:
        with self._lock:
            return self._last

    def close(self) -> None:
        pass


def make_bus(redis_url: str = "") -> EventBus:
    if redis_url:
        from contact_center.events.redis_bus import RedisStreamBus

        return RedisStreamBus(redis_url)
    return InProcessBus()


def announce(session: Session, kind: str, **data: Any) -> None:
    """Publish `kind` with `data` once the session's transaction commits."""
    announce_all(session, [(kind, data)])


def announce_all(session: Session, events: list[tuple[str, dict[str, Any]]]) -> None:
    """Publish each (kind, data), in order, once the session's transaction commits: one callback
    and one publish for them all (a Kolmeya request's 1,000 statuses are one Redis round trip)."""
    from contact_center.runtime import current_or_none

    runtime = current_or_none()
    if runtime is None or not events:
        return
    bus = runtime.events
    after_commit(session, lambda: bus.publish_many([LiveEvent(kind, data) for kind, data in events]))
