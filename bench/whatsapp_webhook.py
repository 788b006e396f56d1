"""WhatsApp status callbacks posted at full speed to a running server (one worker, SQLite): signed
batches of 100 statuses (delivered, then read) for outbound messages that exist, each applied to
its message; compared with a bare ASGI endpoint that reads the same bodies, checks their signature
and stores nothing, measured in the same run with the same client and connections. The server runs
as `serve` does: one uvicorn worker and its webhook writer process (webhooks/writer.py).

    uv run python bench/whatsapp_webhook.py [--messages 100000] [--per-post 100] [--connections 16] [--rounds 5]

Goal: >= 10,000 statuses applied a second.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, insert, select

sys.path.insert(0, str(Path(__file__).parent))
from loadgen import run_load  # noqa: E402

from contact_center.channels.kinds import WHATSAPP  # noqa: E402
from contact_center.channels.service import create_channel  # noqa: E402
from contact_center.db import make_engine, make_session_factory, transaction  # noqa: E402
from contact_center.inbox.models import Conversation  # noqa: E402
from contact_center.messaging import rows as message_rows  # noqa: E402
from contact_center.messaging.models import Message  # noqa: E402
from contact_center.migrations import upgrade  # noqa: E402
from contact_center.providers.whatsapp_cloud.webhooks import sign  # noqa: E402
from contact_center.webhooks.models import WebhookEvent  # noqa: E402

APP_SECRET = "bench-app-secret-3f9c2a"
NUMBER, WABA = "109876543210001", "209876543210001"
DISPLAY = "5511900000000"
WARM_UP_MESSAGES = 2000  # messages kept for the warm-up, sent their statuses before the clock starts
SOURCE = "whatsapp_sandbox.status"
BARE_MIN_POSTS = 5000

# Only what any WhatsApp endpoint must do before answering: read the body, check its signature.
BARE_APP = f'''
import hashlib, hmac

SECRET = {APP_SECRET!r}.encode()

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({{"type": "lifespan.startup.complete"}})
            elif message["type"] == "lifespan.shutdown":
                await send({{"type": "lifespan.shutdown.complete"}})
                return
    if scope["type"] != "http":
        return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    raw = b"".join(chunks)
    header = dict(scope["headers"]).get(b"x-hub-signature-256", b"").decode()
    expected = "sha256=" + hmac.new(SECRET, raw, hashlib.sha256).hexdigest()
    ok = hmac.compare_digest(header, expected)
    body = b'{{"status":"success"}}' if ok else b'{{"detail":"bad signature"}}'
    await send({{"type": "http.response.start", "status": 200 if ok else 401,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}})
    await send({{"type": "http.response.body", "body": body}})
'''

SERVER = '''
from contact_center.app import create_app
from contact_center.runtime import build_runtime, freeze_startup_heap
from contact_center.settings import Settings
app = create_app(build_runtime(Settings(_env_file=None, log_level="WARNING")))  # data dir from the environment
freeze_startup_heap()  # as `serve` does
'''


def phone(index: int) -> str:
    area = (11, 21, 31, 41, 48, 51, 61, 71, 81, 85)[index % 10]
    return f"55{area}9{7000 + index // 10000:04d}{index % 10000:04d}"


def wamid(index: int, number: str) -> str:
    # The shape Meta's ids have: base64 of the recipient, then an opaque part (here, our number).
    opaque = base64.b64encode(f"3EB0{index * 7919:016X}".encode()).decode().rstrip("=")
    return f"wamid.HBgN{base64.b64encode(number.encode()).decode().rstrip('=')}FQIAERgS{opaque}"


def build_database(data_dir: Path, count: int) -> list[tuple[str, str]]:
    """`count` outbound WhatsApp messages, sent, each in its own conversation; (wamid, phone) of each."""
    engine = make_engine(f"sqlite:///{data_dir / 'contact-center.db'}")
    upgrade(engine)
    factory = make_session_factory(engine)
    sent = datetime.now(UTC) - timedelta(minutes=5)
    made = []
    with transaction(factory) as session:
        channel = create_channel(session, name="WhatsApp Cobrança", provider="whatsapp_sandbox",
                                 credentials={"access_token": "sandbox-token", "app_secret": APP_SECRET},
                                 settings={"phone_number_id": NUMBER, "waba_id": WABA})
        for start in range(0, count, 5000):
            stop = min(count, start + 5000)
            numbers = [phone(i) for i in range(start, stop)]
            session.execute(insert(Conversation), [
                {"channel_id": channel.id, "phone_e164": f"+{n}", "phone_key": f"+{n}", "status": "done",
                 "last_activity_at": sent, "created_at": sent} for n in numbers])
            ids = dict(session.execute(select(Conversation.phone_key, Conversation.id).where(
                Conversation.channel_id == channel.id, Conversation.phone_key.in_([f"+{n}" for n in numbers]))).all())
            batch = []
            for i, n in zip(range(start, stop), numbers):
                row = message_rows.outbound(WHATSAPP, channel_id=channel.id, conversation_id=ids[f"+{n}"], contact=None,
                                            origin="campaign", phone=f"+{n}", phone_e164=f"+{n}",
                                            body=f"Olá! Sua fatura {100000 + i} vence amanhã.", now=sent)
                row.update(status="sent", provider_message_id=wamid(i, n), sent_at=sent, queued_at=sent)
                batch.append(row)
                made.append((row["provider_message_id"], n))
            session.execute(insert(Message), batch)
    engine.dispose()
    return made


def status_item(message: tuple[str, str], status: str, at: int) -> dict:
    wamid_, number = message
    item = {"id": wamid_, "status": status, "timestamp": str(at), "recipient_id": number}
    if status == "delivered":  # Meta adds the conversation and pricing to sent/delivered
        item["conversation"] = {"id": "c0ffee" + wamid_[-26:], "origin": {"type": "marketing"}}
        item["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "marketing", "type": "regular"}
    return item


def body(messages: list[tuple[str, str]], status: str, at: int) -> bytes:
    payload = {"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": DISPLAY, "phone_number_id": NUMBER},
        "statuses": [status_item(m, status, at) for m in messages]}}]}]}
    return json.dumps(payload, ensure_ascii=True, separators=(",", ":")).encode()  # as Meta serialises


def request(port: int, raw: bytes) -> bytes:
    return (f"POST /whatsapp/webhook HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"X-Hub-Signature-256: {sign(raw, APP_SECRET)}\r\nContent-Length: {len(raw)}\r\n\r\n").encode() + raw


def bodies(messages: list[tuple[str, str]], per_post: int, at: int) -> list[bytes]:
    """Delivered for every message, then read for every one: each status moves its message forward."""
    groups = [messages[i:i + per_post] for i in range(0, len(messages), per_post)]
    return [body(g, "delivered", at) for g in groups] + [body(g, "read", at + 30) for g in groups]


def start_server(args: list[str], port: int, env: dict) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", *args, "--port", str(port), "--workers", "1",
                                "--log-level", "warning", "--no-access-log"], env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000, help="outbound messages measured (two statuses each)")
    parser.add_argument("--per-post", type=int, default=100, help="statuses in one POST")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5, help="alternating bare/ours rounds; medians reported")
    options = parser.parse_args()
    per_round = options.messages // options.rounds
    if per_round % options.per_post:
        parser.error("--messages / --rounds must be a multiple of --per-post")

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        started = time.perf_counter()
        messages = build_database(data_dir, options.messages + WARM_UP_MESSAGES)
        print(f"setup: {len(messages):,} sent WhatsApp messages in {time.perf_counter() - started:.1f} s")
        (data_dir / "bare.py").write_text(BARE_APP)
        (data_dir / "ours.py").write_text(SERVER)
        env = {**os.environ, "PYTHONPATH": str(data_dir)}
        at = int(time.time()) - 120
        random.Random(5).shuffle(messages)  # statuses arrive in no particular order of sending

        # Bodies are built and signed before the clock starts; the bare endpoint gets the same bytes.
        warm = bodies(messages[options.messages:], options.per_post, at)
        rounds = [bodies(messages[r * per_round:(r + 1) * per_round], options.per_post, at)
                  for r in range(options.rounds)]
        print(f"bodies: {options.per_post} statuses, {statistics.mean(map(len, rounds[0])) / 1024:.1f} KiB each")

        # Both servers stay up; rounds alternate between them so drift on a shared machine hits
        # both alike; each round's pair gives a ratio.
        bare = start_server(["bare:app"], 8782, env)
        ours = start_server(["ours:app"], 8781, {**env, "CONTACT_CENTER_DATA_DIR": str(data_dir)})
        bare_runs, our_runs = [], []
        try:
            run_load("127.0.0.1", 8782, [request(8782, raw) for raw in warm], connections=options.connections)
            run_load("127.0.0.1", 8781, [request(8781, raw) for raw in warm], connections=options.connections)
            for round_bodies in rounds:
                # The bare endpoint answers in well under a millisecond: it takes the round's bodies
                # several times over, so that its run lasts long enough to time.
                repeat = -(-BARE_MIN_POSTS // len(round_bodies))
                bare_runs.append(run_load("127.0.0.1", 8782, [request(8782, raw) for raw in round_bodies] * repeat,
                                          connections=options.connections))
                our_runs.append(run_load("127.0.0.1", 8781, [request(8781, raw) for raw in round_bodies],
                                         connections=options.connections))
        finally:
            for server in (bare, ours):
                server.terminate()
                server.wait()

        engine = make_engine(f"sqlite:///{data_dir / 'contact-center.db'}")
        with engine.connect() as connection:
            by_status = dict(connection.execute(select(Message.status, func.count()).group_by(Message.status)).all())
            stamped = connection.scalar(select(func.count()).select_from(Message).where(
                Message.status == "read", Message.delivered_at.is_not(None), Message.read_at.is_not(None)))
            applied = connection.scalar(select(func.count()).select_from(WebhookEvent).where(
                WebhookEvent.source == SOURCE, WebhookEvent.outcome == "applied"))
        engine.dispose()

    per_post = options.per_post
    ratios = [our_run.rate / bare_run.rate for bare_run, our_run in zip(bare_runs, our_runs)]
    ratio = statistics.median(ratios)
    bare_result = sorted(bare_runs, key=lambda r: r.rate)[len(bare_runs) // 2]
    result = sorted(our_runs, key=lambda r: r.rate)[len(our_runs) // 2]
    for index, (bare_run, our_run) in enumerate(zip(bare_runs, our_runs), start=1):
        print(f"round {index}: bare {bare_run.rate * per_post:,.0f} statuses/s, ours {our_run.rate * per_post:,.0f} "
              f"statuses/s (p99 {our_run.percentile(99):.1f} ms), ratio {ratios[index - 1]:.2%}")
    print(f"bare ASGI (signature only), median: {bare_result.summary()}")
    print(f"contact-center webhook, median:     {result.summary()}")
    total = len(messages)
    print(f"messages by status: {by_status}; read with delivered_at and read_at: {stamped:,} of {total:,} "
          f"({WARM_UP_MESSAGES:,} from the warm-up); status events applied: {applied:,} of {2 * total:,}")
    errors = sum(run.errors for run in bare_runs + our_runs) + sum(
        count for run in our_runs for code, count in run.statuses.items() if code != 200)
    print("\n== whatsapp_webhook summary ==")
    print(f"statuses/s       {result.rate * per_post:,.0f}   (goal >= 10,000; {per_post} a POST, "
          f"{options.connections} connections)")
    print(f"POST p50/p99     {result.percentile(50):.1f} / {result.percentile(99):.1f} ms")
    print(f"bare endpoint    {bare_result.rate * per_post:,.0f} statuses/s (reads the body, checks the signature)")
    print(f"ratio to bare    {ratio:.2%}   (median of the rounds, {min(ratios):.2%}-{max(ratios):.2%})")
    print(f"verified         {stamped:,} of {total:,} messages read, {applied:,} of {2 * total:,} statuses applied, "
          f"{errors} failed POSTs")


if __name__ == "__main__":
    main()
