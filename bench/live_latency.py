"""Live updates under load: N operator screens connected to /events while customers' replies arrive
at the webhook at a steady rate; how long from each webhook POST until every screen that may see
the conversation (the supervisor's, and every agent's for an unassigned one, its assignee's for
another) has the event; and that no screen got one it may not see.
Then, on the same 10,000-conversation database, how long the server takes to render the inbox.

    uv run python bench/live_latency.py [--clients 50] [--rate 500] [--seconds 10] [--conversations 10000]
    uv run python bench/live_latency.py --redis redis://127.0.0.1:6379/15   # events through Redis

One server process (uvicorn, SQLite), as `contact-center serve` runs it. The clients are raw asyncio
sockets in this process, so both ends of each measurement use the same clock.

Goals: event p99 <= 100 ms with 50 screens and 500 replies/s; inbox render <= 150 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert

from contact_center import phones
from contact_center.auth.models import ApiToken, User
from contact_center.auth.service import _digest, hash_password
from contact_center.channels.service import create_channel
from contact_center.contacts.models import Contact
from contact_center.db import make_engine, make_session_factory, transaction
from contact_center.inbox.models import Conversation
from contact_center.messaging.models import Message
from contact_center.migrations import upgrade

SERVER = '''
from contact_center.app import create_app
from contact_center.runtime import build_runtime, freeze_startup_heap
from contact_center.settings import Settings
app = create_app(build_runtime(Settings(_env_file=None, log_level="WARNING")))  # data dir from the environment
freeze_startup_heap()  # as `serve` does
'''
FIRST = ["Maria", "João", "Ana", "Pedro", "Carla", "Lucas", "Juliana", "Rafael", "Fernanda", "Bruno", "Beatriz",
         "Marcos", "Patrícia", "Gustavo", "Camila", "Ricardo"]
LAST = ["Souza", "Silva", "Oliveira", "Santos", "Pereira", "Lima", "Costa", "Rocha", "Alves", "Gomes", "Ribeiro"]
EVENT = re.compile(rb"event: message\.created\ndata: (\{[^\n]*\})")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def build_database(data_dir: Path, conversations: int, clients: int):
    """Operators with API tokens, one SMS channel, `conversations` customers each with a message.
    Returns the webhook secret, the customers' numbers, (user id, token) per operator, and each
    number's assignee once a reply has come (None: nobody's; a done conversation reopens unassigned)."""
    engine = make_engine(f"sqlite:///{data_dir / 'contact-center.db'}")
    upgrade(engine)
    factory = make_session_factory(engine)
    rng = random.Random(5)
    now = datetime.now(UTC)
    tokens = []
    with transaction(factory) as session:
        channel = create_channel(session, name="SMS", provider="kolmeya_sandbox", credentials={"token": "sandbox-token"})
        secret, channel_id = channel.webhook_secret, channel.id
        password = hash_password("bench password")
        users = session.execute(insert(User).returning(User.id), [
            {"username": f"op{i}", "name": f"Operador {i}", "role": "supervisor" if i == 0 else "agent",
             "password_hash": password, "active": True} for i in range(clients)]).scalars().all()
        owners: dict[str, int | None] = {}
        for user_id in users:
            clear = f"cc_bench_{user_id}_{rng.getrandbits(64):016x}"
            tokens.append((user_id, clear))
            session.add(ApiToken(user_id=user_id, name="bench", prefix=clear[:10], token_hash=_digest(clear)))
        numbers = []
        for start in range(0, conversations, 2000):
            contact_rows, conversation_rows = [], []
            for i in range(start, min(conversations, start + 2000)):
                raw = f"+55 {rng.choice([11, 21, 31, 41, 48, 51, 61, 71, 81, 85])} 9{i:04d}-{rng.randrange(10000):04d}"
                identity = phones.identify(raw)
                numbers.append(phones.kolmeya_form(raw))
                contact_rows.append({"name": f"{rng.choice(FIRST)} {rng.choice(LAST)}", "mobile": raw,
                                     "mobile_e164": identity.e164, "mobile_key": identity.key,
                                     "opt_out_sms": False, "opt_out_whatsapp": False})
            contact_ids = session.execute(insert(Contact).returning(Contact.id, sort_by_parameter_order=True),
                                          contact_rows).scalars().all()
            for contact_id, row in zip(contact_ids, contact_rows, strict=True):
                at = now - timedelta(minutes=rng.randrange(60 * 24 * 30))
                status = rng.choice(["new", "new", "assigned", "done"])
                conversation_rows.append({
                    "channel_id": channel_id, "contact_id": contact_id, "phone_e164": row["mobile_e164"],
                    "phone_key": row["mobile_key"], "status": status,
                    "assignee_id": rng.choice(users) if status != "new" else None,
                    "unread_count": rng.choice([0, 0, 1, 2]), "last_activity_at": at, "last_inbound_at": at,
                    "created_at": at})
            for row, number in zip(conversation_rows, numbers[start:], strict=False):
                owners[number] = row["assignee_id"] if row["status"] == "assigned" else None
            conversation_ids = session.execute(insert(Conversation).returning(
                Conversation.id, sort_by_parameter_order=True), conversation_rows).scalars().all()
            session.execute(insert(Message), [{
                "reference": f"bench{conversation_id}", "channel_id": channel_id, "conversation_id": conversation_id,
                "contact_id": row["contact_id"], "direction": "in", "origin": "webhook",
                "phone": row["phone_e164"], "phone_e164": row["phone_e164"],
                "body": "Olá, gostaria de saber o status do meu pedido", "status": "received", "segments": 1,
                "attempts": 0, "created_at": row["last_activity_at"], "received_at": row["last_activity_at"],
                "updated_at": row["last_activity_at"]} for conversation_id, row in zip(conversation_ids, conversation_rows, strict=True)])
    engine.dispose()
    return secret, numbers, tokens, owners


def start_server(port: int, env: dict) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "bench_app:app", "--port", str(port),
                                "--log-level", "warning", "--no-access-log", "--timeout-graceful-shutdown", "1"],
                               env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start")


# --- the live-event measurement ------------------------------------------------------------------------------

class Screen:
    """One operator's /events connection; notes when each message.created arrives."""

    def __init__(self, token: str):
        self.token = token
        self.arrivals: dict[int, float] = {}
        self.ready = asyncio.Event()

    async def run(self, port: int, stop: asyncio.Event) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {self.token}\r\n"
                     "Accept: text/event-stream\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 200 " not in head.split(b"\r\n", 1)[0]:
            raise RuntimeError(f"/events answered {head[:60]!r}")
        self.ready.set()
        buffer = b""
        try:
            while not stop.is_set():
                chunk = await reader.read(65536)
                if not chunk:
                    break
                now = time.perf_counter()
                buffer += chunk
                cut = buffer.rfind(b"\n\n")
                if cut < 0:
                    continue
                complete, buffer = buffer[:cut + 2], buffer[cut + 2:]
                for match in EVENT.finditer(complete):
                    self.arrivals[json.loads(match.group(1))["message_id"]] = now
        finally:
            writer.close()


async def post_replies(port: int, path: str, numbers: list[str], total: int, rate: float, connections: int):
    """Open-loop: reply i leaves at start + i/rate. Returns {message id: send time}, response latencies."""
    sent_at: dict[int, float] = {}
    latencies: list[float] = []
    errors = [0]
    counter = iter(range(total))
    start = time.perf_counter() + 0.2

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for index in counter:
                delay = start + index / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                body = json.dumps({"phone": numbers[index % len(numbers)], "message": f"Resposta {index}"}).encode()
                request = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                           f"Content-Length: {len(body)}\r\n\r\n").encode() + body
                began = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))
                answer = json.loads(await reader.readexactly(length))
                latencies.append((time.perf_counter() - began) * 1000)
                if b" 200 " not in head.split(b"\r\n", 1)[0] or "sms_id" not in answer:
                    errors[0] += 1
                    continue
                sent_at[answer["sms_id"]] = (began, numbers[index % len(numbers)])
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return sent_at, latencies, errors[0], time.perf_counter() - start


async def measure_live(port: int, tokens: list[tuple[int, str]], owners: dict[str, int | None], path: str,
                       numbers: list[str], rate: float, seconds: float, connections: int):
    stop = asyncio.Event()
    screens = [Screen(token) for _, token in tokens]
    supervisor = tokens[0][0]
    tasks = [asyncio.create_task(screen.run(port, stop)) for screen in screens]
    await asyncio.wait_for(asyncio.gather(*(screen.ready.wait() for screen in screens)), 30)
    # Warm up (first statements compiled, writer thread started, caches filled); not measured.
    await post_replies(port, path, numbers[::-1], int(rate), rate, connections)
    total = int(rate * seconds)
    sent_at, post_latencies, errors, elapsed = await post_replies(port, path, numbers, total, rate, connections)
    def sees(user_id: int, number: str) -> bool:
        return user_id == supervisor or owners[number] in (None, user_id)

    expected = [(screen, message_id, began) for (user_id, _), screen in zip(tokens, screens)
                for message_id, (began, number) in sent_at.items() if sees(user_id, number)]
    deadline = time.perf_counter() + 5  # let the last events arrive
    while time.perf_counter() < deadline and not all(message_id in screen.arrivals
                                                     for screen, message_id, _ in expected):
        await asyncio.sleep(0.05)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    delays, missing = [], 0
    for screen, message_id, began in expected:
        arrived = screen.arrivals.get(message_id)
        if arrived is None:
            missing += 1
        else:
            delays.append((arrived - began) * 1000)
    leaked = sum(message_id in screen.arrivals for (user_id, _), screen in zip(tokens, screens)
                 for message_id, (_, number) in sent_at.items() if not sees(user_id, number))
    return delays, missing, leaked, len(expected), post_latencies, errors, len(sent_at) / elapsed


# --- the inbox render measurement ------------------------------------------------------------------------------

def measure_render(base: str, rounds: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {}
    with httpx.Client(base_url=base, timeout=30, follow_redirects=True) as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
        logged = client.post("/login", data={"username": "op0", "password": "bench password", "csrf_token": token})
        assert logged.status_code == 200 and "Operador 0" in logged.text, logged.status_code
        deep = client.get("/api/conversations", params={"status": "any", "limit": 200}).json()["next_cursor"]
        pages = {
            "inbox page (open, newest 50)": "/inbox",
            "inbox page (all statuses)": "/inbox?status=any",
            "inbox page, search by name": "/inbox?status=any&q=Souza",
            "inbox page, search by number": f"/inbox?status=any&q={client.get('/api/conversations').json()['items'][0]['phone_e164']}",
            "list page after 200 rows": f"/inbox/fragments/list?status=any&before={deep}",
        }
        for name, path in pages.items():
            client.get(path).raise_for_status()  # warm up
            samples = []
            for _ in range(rounds):
                began = time.perf_counter()
                response = client.get(path)
                samples.append((time.perf_counter() - began) * 1000)
                response.raise_for_status()
            timings[name] = samples
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--post-connections", type=int, default=16)
    parser.add_argument("--render-rounds", type=int, default=30)
    parser.add_argument("--redis", default="", help="a Redis URL: live events go through Redis streams")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        started = time.perf_counter()
        secret, numbers, tokens, owners = build_database(data_dir, options.conversations, options.clients)
        print(f"setup: {options.conversations:,} conversations, {options.clients} operators "
              f"in {time.perf_counter() - started:.1f} s")
        (data_dir / "bench_app.py").write_text(SERVER)
        env = {**os.environ, "PYTHONPATH": str(data_dir), "CONTACT_CENTER_DATA_DIR": str(data_dir)}
        if options.redis:
            env["CONTACT_CENTER_REDIS_URL"] = options.redis
        port = 8781
        server = start_server(port, env)
        try:
            path = f"/kolmeya/webhook/reply?token={secret}"
            try:
                import uvloop

                runner = uvloop.run
            except ImportError:
                runner = asyncio.run
            delays, missing, leaked, expected, post_latencies, errors, rate = runner(measure_live(
                port, tokens, owners, path, numbers, options.rate, options.seconds, options.post_connections))
            timings = measure_render(f"http://127.0.0.1:{port}", options.render_rounds)
        finally:
            server.terminate()
            server.wait(timeout=15)

    bus = "Redis streams" if options.redis else "in-process"
    print(f"\nreplies posted: {len(post_latencies):,} at {rate:,.0f}/s ({errors} errors); "
          f"webhook answer p50 {percentile(post_latencies, 50):.1f} ms, p99 {percentile(post_latencies, 99):.1f} ms")
    print(f"events due to the screens that may see them: {expected:,}, received {len(delays):,}, missing {missing}; "
          f"received by screens that may not: {leaked}")
    print("\n== live_latency summary ==")
    print(f"bus                         {bus}")
    print(f"screens x replies/s         {options.clients} x {options.rate:,.0f}")
    print(f"webhook POST -> screen p50  {percentile(delays, 50):.1f} ms")
    print(f"webhook POST -> screen p99  {percentile(delays, 99):.1f} ms   (goal <= 100 ms)")
    print(f"webhook POST -> screen max  {max(delays):.1f} ms")
    for name, samples in timings.items():
        print(f"{name:<28}p50 {statistics.median(samples):.1f} ms, p99 {percentile(samples, 99):.1f} ms"
              + ("   (goal <= 150 ms)" if name.startswith("inbox page (open") else ""))


if __name__ == "__main__":
    main()
