"""Live events across processes, on a Redis stream.

A stream rather than plain pub/sub: XADD numbers every event in one order for all processes (plain
PUBLISH from two processes can arrive in different orders, and numbering them needs a second
round trip), and the stream keeps the recent past, so a screen that reconnects to *any* process
catches up with XRANGE instead of reloading. Every process runs one reader thread (XREAD BLOCK)
that hands each event to its local subscribers — its own events included, so every process sees
the same order.

Stream ids look like "1732478400123-7" (milliseconds-sequence); as numbers they are
milliseconds << 20 | sequence, which keeps their order (screens only echo them back as text).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable

import redis

from contact_center.events import Deliver, LiveEvent, Subscribers

log = logging.getLogger(__name__)

DEFAULT_STREAM = "contact-center:events"
SEQUENCE_BITS = 20


def to_number(stream_id: str | bytes) -> int:
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    millis, _, sequence = text.partition("-")
    return int(millis) << SEQUENCE_BITS | int(sequence or 0)


def to_stream_id(number: int) -> str:
    return f"{number >> SEQUENCE_BITS}-{number & ((1 << SEQUENCE_BITS) - 1)}"


def _encode(event: LiveEvent) -> dict[str, str]:
    return {"kind": event.kind, "data": json.dumps(event.data, separators=(",", ":")), "at": repr(event.at)}


def _decode(fields: dict[bytes, bytes]) -> LiveEvent:
    return LiveEvent(fields[b"kind"].decode(), json.loads(fields[b"data"]), float(fields[b"at"]))


class RedisStreamBus:
    def __init__(self, url: str, stream: str = DEFAULT_STREAM, history: int = 10_000):
        self.epoch = "redis"
        self._redis = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5,
                                           health_check_interval=30)
        self._stream = stream
        self._history = history
        self._subscribers = Subscribers()
        self._reader: threading.Thread | None = None
        self._reader_lock = threading.Lock()
        self._stopping = threading.Event()

    # --- publishing (any thread) ---

    def publish(self, event: LiveEvent) -> None:
        self.publish_many([event])

    def publish_many(self, events: list[LiveEvent]) -> None:
        """One round trip for them all; XADD still numbers each, in this order."""
        pipeline = self._redis.pipeline(transaction=False)
        for event in events:
            pipeline.xadd(self._stream, _encode(event), maxlen=self._history, approximate=True)
        pipeline.execute()

    # --- reading ---

    def subscribe(self, deliver: Deliver) -> Callable[[], None]:
        unsubscribe = self._subscribers.add(deliver)
        self._start_reader()
        return unsubscribe

    def _start_reader(self) -> None:
        with self._reader_lock:
            if self._reader is None:
                start = self._last_id()  # from now on: no window between "now" and the first XREAD
                self._reader = threading.Thread(target=self._read, args=(start,), name="live-events-redis",
                                                daemon=True)
                self._reader.start()

    def _last_id(self) -> str:
        newest = self._redis.xrevrange(self._stream, count=1)
        return newest[0][0].decode() if newest else "0-0"

    def _read(self, last: str) -> None:
        reader = redis.Redis(connection_pool=self._redis.connection_pool)
        failures = 0
        while not self._stopping.is_set():
            try:
                found = reader.xread({self._stream: last}, block=250, count=1000)
                failures = 0
            except redis.RedisError as exc:
                failures += 1
                log.warning("live events: Redis read failed (%s); retrying", exc.__class__.__name__)
                self._stopping.wait(min(5.0, 0.1 * 2 ** failures))
                continue
            for _, entries in found or ():
                for entry_id, fields in entries:
                    last = entry_id.decode()
                    try:
                        event = _decode(fields)
                    except (KeyError, ValueError):
                        log.warning("live events: skipped malformed entry %s", last)
                        continue
                    self._subscribers.deliver(to_number(entry_id), event)

    def since(self, number: int) -> list[tuple[int, LiveEvent]]:
        entries = self._redis.xrange(self._stream, min=f"({to_stream_id(number)}", max="+")
        return [(to_number(entry_id), _decode(fields)) for entry_id, fields in entries]

    def catch_up(self, number: int) -> list[tuple[int, LiveEvent]] | None:
        info = self._info()
        if info is None:
            return [] if number == 0 else None  # no stream (yet, or Redis was emptied)
        if number > to_number(info["last-generated-id"]):
            return None  # a number from another stream
        first = info.get("first-entry")
        trimmed = int(info["entries-added"]) > int(info["length"])
        if first and number < to_number(first[0]) and trimmed:
            return None  # entries after `number` may have been trimmed away
        return self.since(number)

    def position(self) -> int:
        info = self._info()
        return to_number(info["last-generated-id"]) if info else 0

    def _info(self) -> dict | None:
        try:
            raw = self._redis.xinfo_stream(self._stream)
        except redis.ResponseError:  # no such key
            return None
        return {(k.decode() if isinstance(k, bytes) else k): v for k, v in raw.items()}

    def close(self) -> None:
        self._stopping.set()
        reader = self._reader
        if reader is not None:
            reader.join(timeout=3)
        self._redis.close()

