"""Live events: the buses (in-process and Redis), and the SSE stream over real HTTP, with catch-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid

import httpx
import pytest

from contact_center.events import InProcessBus, LiveEvent

REDIS_URL = os.environ.get("CONTACT_CENTER_TEST_REDIS_URL", "")


class EventStream:
    """An SSE client: next() returns {"id", "event", "data"} of the next event (comments skipped)."""

    def __init__(self, base_url: str, headers: dict | None = None, last_event_id: str | None = None,
                 read_timeout: float = 10.0):
        self.client = httpx.Client(base_url=base_url, timeout=httpx.Timeout(10.0, read=read_timeout))
        headers = dict(headers or {})
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        self._context = self.client.stream("GET", "/events", headers=headers)
        self.response = self._context.__enter__()
        self._lines = self.response.iter_lines()

    def next(self, kinds: tuple[str, ...] | None = None) -> dict:
        while True:
            event: dict = {}
            for line in self._lines:
                if not line:
                    if "event" in event:
                        break
                    event = {}
                    continue
                field, _, value = line.partition(":")
                if field in ("id", "event", "data"):
                    event[field] = value.lstrip(" ")
            else:
                raise AssertionError("the stream ended")
            event["data"] = json.loads(event.get("data") or "{}")
            if kinds is None or event["event"] in kinds:
                return event

    def close(self) -> None:
        self._context.__exit__(None, None, None)
        self.client.close()


def number(event_id: str) -> int:
    return int(event_id.rpartition(":")[2])


# --- the in-process bus --------------------------------------------------------------------------------

def test_in_process_bus_numbers_keeps_history_and_detects_gaps():
    bus = InProcessBus(history=3)
    seen = []
    bus.subscribe(lambda n, e: seen.append((n, e.kind)))
    for kind in ("a", "b", "c", "d"):
        bus.publish(LiveEvent(kind, {}))
    assert seen == [(1, "a"), (2, "b"), (3, "c"), (4, "d")] and bus.position() == 4
    assert [(n, e.kind) for n, e in bus.catch_up(2)] == [(3, "c"), (4, "d")]
    assert bus.catch_up(4) == []
    assert bus.catch_up(0) is None  # 1 is no longer kept
    assert bus.catch_up(99) is None  # a number this bus never gave


def test_a_failing_subscriber_does_not_stop_the_others():
    bus = InProcessBus()
    seen = []
    bus.subscribe(lambda n, e: 1 / 0)
    bus.subscribe(lambda n, e: seen.append(n))
    bus.publish(LiveEvent("x", {}))
    assert seen == [1]


# --- SSE over HTTP -------------------------------------------------------------------------------------------

def _sms(live, to: str) -> dict:
    sent = live.http.post("/api/sms", json={"to": to, "body": "Teste"}, headers=live.headers)
    assert sent.status_code == 202, sent.text
    return sent.json()


def test_the_stream_needs_a_login(live):
    response = live.http.get("/events")
    assert response.status_code == 401


def test_events_arrive_and_a_reconnect_resumes_right_after_the_last_one_seen(live):
    stream = EventStream(live.base_url, live.headers)
    try:
        message = _sms(live, "+55 11 90000-0001")
        created = stream.next(("message.created",))
        assert created["data"]["message_id"] == message["id"]
        assert created["data"]["conversation_id"] == message["conversation_id"]
        last_seen = created["id"]
    finally:
        stream.close()

    conversation = message["conversation_id"]
    for action in ("take", "release"):  # happens while nobody listens
        assert live.http.post(f"/api/conversations/{conversation}/{action}", headers=live.headers).status_code == 200

    stream = EventStream(live.base_url, live.headers, last_event_id=last_seen)
    try:
        numbers, changes = [], []
        while changes != ["taken", "released"]:
            event = stream.next()
            numbers.append(number(event["id"]))
            if event["event"] == "conversation.updated":
                changes.append(event["data"]["change"])
        assert numbers == list(range(number(last_seen) + 1, number(last_seen) + 1 + len(numbers)))  # none missed
    finally:
        stream.close()


def _agent(live, username: str) -> dict[str, str]:
    from contact_center.auth import service as auth_service
    from contact_center.db import transaction

    with transaction(live.runtime.session_factory) as session:
        user = auth_service.create_user(session, username=username, name=username.title(), password="correct horse",
                                        role="agent")
        return {"Authorization": f"Bearer {auth_service.create_token(session, user, 'tests')[1]}"}


def test_an_agents_stream_leaves_out_another_agents_conversation(live):
    bruno, carla = _agent(live, "bruno"), _agent(live, "carla")
    theirs = _sms(live, "+55 11 90000-0001")
    # Delivered before the streams open: a status decided before Bruno takes the conversation (when
    # Carla could see it) may otherwise reach her just after she is told it left her list.
    live.wait_for(lambda: live.message(theirs["id"])["status"] == "delivered", what="delivered")
    carla_stream, bruno_stream = EventStream(live.base_url, carla), EventStream(live.base_url, bruno)
    try:
        taken = live.http.post(f"/api/conversations/{theirs['conversation_id']}/take", headers=bruno)
        assert taken.status_code == 200, taken.text
        # Carla could see it until Bruno took it: she is told it left her list, and nothing more.
        left = carla_stream.next(("conversation.updated",))
        assert left["data"]["conversation_id"] == theirs["conversation_id"] and left["data"]["change"] == "taken"
        live.sandbox.reply("5511900000001", "Meu CPF é 000.000.000-00", reference=theirs["reference"])
        mine = bruno_stream.next(("message.created",))
        assert mine["data"]["conversation_id"] == theirs["conversation_id"] and mine["data"]["direction"] == "in"
        live.http.post(f"/api/conversations/{theirs['conversation_id']}/read", headers=bruno).raise_for_status()
        open_to_all = _sms(live, "+55 11 90000-0002")  # nobody's: every agent's screen shows it
        # The next events on Carla's stream are those of the unassigned conversation: the reply, its
        # delivery report and the read mark in Bruno's conversation never reached her.
        for _ in range(3):
            event = carla_stream.next()
            assert event["data"].get("conversation_id") == open_to_all["conversation_id"], event
    finally:
        carla_stream.close()
        bruno_stream.close()


def test_a_position_from_another_bus_gets_a_resync(live):
    stream = EventStream(live.base_url, live.headers, last_event_id="0000dead:41")
    try:
        assert stream.next()["event"] == "resync"
    finally:
        stream.close()


# --- Redis: several processes, one order --------------------------------------------------------------------

@pytest.fixture
def redis_stream():
    if not REDIS_URL:
        pytest.skip("Redis tests need CONTACT_CENTER_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/15)")
    import redis

    key = f"contact-center:test:{uuid.uuid4().hex[:10]}"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.skip(f"Redis at CONTACT_CENTER_TEST_REDIS_URL is unreachable: {exc}")
    yield key
    client.delete(key)
    client.close()


def _collect(bus, count: int):
    got: list[tuple[int, LiveEvent]] = []
    done = threading.Event()

    def deliver(n, event):
        got.append((n, event))
        if len(got) >= count:
            done.set()

    unsubscribe = bus.subscribe(deliver)
    return got, done, unsubscribe


def test_two_redis_buses_see_every_event_in_one_order(redis_stream):
    from contact_center.events.redis_bus import RedisStreamBus

    web, worker = RedisStreamBus(REDIS_URL, redis_stream), RedisStreamBus(REDIS_URL, redis_stream)
    try:
        at_web, web_done, _ = _collect(web, 6)
        at_worker, worker_done, _ = _collect(worker, 6)
        for i in range(3):  # both processes publish, interleaved
            web.publish(LiveEvent("message.created", {"message_id": 2 * i}))
            worker.publish(LiveEvent("message.status", {"message_id": 2 * i + 1}))
        assert web_done.wait(5) and worker_done.wait(5)
        assert [(n, e.kind, e.data) for n, e in at_web] == [(n, e.kind, e.data) for n, e in at_worker]
        assert [e.data["message_id"] for _, e in at_web] == [0, 1, 2, 3, 4, 5]
        numbers = [n for n, _ in at_web]
        assert numbers == sorted(numbers) and len(set(numbers)) == 6

        # a screen that saw the second event catches up on the rest from either process
        assert [n for n, _ in worker.catch_up(numbers[1])] == numbers[2:]
        assert [n for n, _ in web.catch_up(numbers[1])] == numbers[2:]
        assert web.catch_up(numbers[-1]) == [] and web.position() == numbers[-1]
        assert web.catch_up(numbers[-1] + 10**9) is None  # not a number of this stream
    finally:
        web.close()
        worker.close()


def test_redis_catch_up_refuses_a_position_older_than_what_is_kept(redis_stream):
    from contact_center.events.redis_bus import RedisStreamBus

    bus = RedisStreamBus(REDIS_URL, redis_stream, history=10)
    try:
        bus.publish(LiveEvent("first", {}))
        first = bus.position()
        assert bus.catch_up(0) is not None  # nothing trimmed yet: everything since the start is known
        for i in range(400):  # approximate trimming works in whole nodes of 100 entries
            bus.publish(LiveEvent("more", {"i": i}))
        assert bus.catch_up(first) is None
        assert bus.catch_up(bus.position()) == []
    finally:
        bus.close()


def test_an_event_from_another_process_reaches_an_operator_connected_here(live, redis_stream):
    """The web process and a separate worker process share Redis: the operator's stream gets both."""
    from contact_center.events.redis_bus import RedisStreamBus

    live.runtime.events = RedisStreamBus(REDIS_URL, redis_stream)  # as build_runtime does with a Redis URL
    stream = EventStream(live.base_url, live.headers, last_event_id=f"redis:{live.runtime.events.position()}")
    try:
        publisher = (
            "import sys\n"
            "from contact_center.events import LiveEvent\n"
            "from contact_center.events.redis_bus import RedisStreamBus\n"
            "bus = RedisStreamBus(sys.argv[1], sys.argv[2])\n"
            "bus.publish(LiveEvent('message.status', {'message_id': 4242, 'status': 'delivered'}))\n"
            "bus.close()\n"
        )
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", publisher, REDIS_URL, redis_stream], check=True, timeout=30)
        event = stream.next(("message.status",))
        assert event["data"]["message_id"] == 4242 and event["id"].startswith("redis:")
        assert time.monotonic() - started < 15

        message = _sms(live, "+55 11 90000-0002")  # and this process's own events go through Redis too
        assert stream.next(("message.created",))["data"]["message_id"] == message["id"]
    finally:
        stream.close()
        live.runtime.events.close()
