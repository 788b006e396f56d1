"""Server-sent events: the bus's events, fanned out to every open operator screen of this process.

One subscription to the bus per process; each event is encoded once (in the publishing thread) and
handed to the event loop, which puts it on every connection's queue. A connection that falls too
far behind (a stalled browser) is told to reload instead of holding memory without bound.

The SSE `id:` of each event is "<bus epoch>:<number>"; the browser sends the last one back as
Last-Event-ID when it reconnects by itself, and the stream resumes right after it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from contact_center.events import EventBus, LiveEvent
from contact_center.metrics.instruments import LIVE_SUBSCRIBERS

log = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 15.0
QUEUE_LIMIT = 5_000
RETRY_MILLISECONDS = 1_000
RESYNC = "resync"
MAX_BATCH = 256


def frame(epoch: str, number: int, event: LiveEvent) -> bytes:
    data = json.dumps({**event.data, "at": event.at}, separators=(",", ":"))
    return f"id: {epoch}:{number}\nevent: {event.kind}\ndata: {data}\n\n".encode()


def resync_frame(epoch: str, number: int) -> bytes:
    return f"id: {epoch}:{number}\nevent: {RESYNC}\ndata: {{}}\n\n".encode()


def parse_position(text: str | None, epoch: str) -> int | None:
    """The number in "<epoch>:<number>"; None when absent, malformed or from another epoch."""
    if not text:
        return None
    found_epoch, _, number = text.strip().rpartition(":")
    if found_epoch != epoch or not number.isdigit():
        return None
    return int(number)


Sees = Callable[[str, Mapping[str, Any]], bool]  # (kind, data): whether a stream carries the event


class _Connection:
    def __init__(self, sees: Sees):
        self.queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
        self.overflowed = False
        self.sees = sees

    def push(self, number: int, event: LiveEvent, data: bytes) -> None:
        if not self.sees(event.kind, event.data):
            return
        if self.queue.qsize() >= QUEUE_LIMIT:
            self.overflowed = True
            return
        self.queue.put_nowait((number, data))


class EventHub:
    def __init__(self, bus: EventBus, loop: asyncio.AbstractEventLoop):
        self.bus = bus
        self.loop = loop
        self._connections: set[_Connection] = set()
        self._unsubscribe = bus.subscribe(self._from_bus)

    def _from_bus(self, number: int, event: LiveEvent) -> None:  # any thread
        data = frame(self.bus.epoch, number, event)
        try:
            self.loop.call_soon_threadsafe(self._fan_out, number, event, data)
        except RuntimeError:  # the loop is closed: the server is shutting down
            pass

    def _fan_out(self, number: int, event: LiveEvent, data: bytes) -> None:
        for connection in self._connections:
            connection.push(number, event, data)

    def close(self) -> None:
        self._unsubscribe()

    async def stream(self, last_seen: str | None, sees: Sees) -> AsyncIterator[bytes]:
        """An SSE body: what was missed since `last_seen` (or a resync), then every new event that
        `sees` lets through (what the operator may see)."""
        epoch = self.bus.epoch
        connection = _Connection(sees)
        self._connections.add(connection)  # buffer live events while the missed ones are read
        LIVE_SUBSCRIBERS.inc()
        try:
            yield f"retry: {RETRY_MILLISECONDS}\n\n".encode()
            after = parse_position(last_seen, epoch)
            last = 0
            if last_seen is not None:
                missed = await asyncio.to_thread(self.bus.catch_up, after) if after is not None else None
                if missed is None:
                    position = await asyncio.to_thread(self.bus.position)
                    yield resync_frame(epoch, position)
                    last = position
                else:
                    for number, event in missed:
                        if sees(event.kind, event.data):
                            yield frame(epoch, number, event)
                    last = missed[-1][0] if missed else after
            while True:
                if connection.overflowed:
                    position = await asyncio.to_thread(self.bus.position)
                    yield resync_frame(epoch, position)
                    return  # the browser reconnects from there
                try:
                    batch = [await asyncio.wait_for(connection.queue.get(), KEEPALIVE_SECONDS)]
                except TimeoutError:
                    yield b": keepalive\n\n"
                    continue
                while not connection.queue.empty() and len(batch) < MAX_BATCH:  # one write for a burst
                    batch.append(connection.queue.get_nowait())
                fresh = [data for number, data in batch if number > last]  # skip what catch-up already sent
                if fresh:
                    last = batch[-1][0]
                    yield b"".join(fresh)
        finally:
            self._connections.discard(connection)
            LIVE_SUBSCRIBERS.dec()


def hub_for(app) -> EventHub:
    """The app's hub, made on first use inside the running event loop."""
    hub = getattr(app.state, "event_hub", None)
    if hub is None:
        bus = app.state.runtime.events
        hub = app.state.event_hub = EventHub(bus, asyncio.get_running_loop())
    return hub
