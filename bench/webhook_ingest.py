"""Reply webhooks posted at full speed to a running server (one worker, SQLite), each matched to one
of 100k contacts and stored; compared with a bare Starlette endpoint that parses the same JSON and
stores nothing, measured in the same run. The server runs as `serve` does: one uvicorn worker and
its webhook writer process (webhooks/writer.py).

    uv run python bench/webhook_ingest.py [--contacts 100000] [--replies 30000] [--rounds 5]

Goals: ≥ 3,000 replies/s and ≥ 25 % of the bare ceiling.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import func, insert, select

sys.path.insert(0, str(Path(__file__).parent))
from loadgen import request_bytes, run_load  # noqa: E402

from contact_center import phones  # noqa: E402
from contact_center.channels.service import create_channel  # noqa: E402
from contact_center.contacts.models import Contact  # noqa: E402
from contact_center.db import make_engine, make_session_factory, transaction  # noqa: E402
from contact_center.messaging.models import Message  # noqa: E402
from contact_center.migrations import upgrade  # noqa: E402

WARM_UP = 2000

BARE_APP = '''
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def reply(request):
    payload = await request.json()
    return JSONResponse({"status": "success", "phone": payload.get("phone")})

app = Starlette(routes=[Route("/kolmeya/webhook/reply", reply, methods=["POST"])])
'''

SERVER = '''
from contact_center.app import create_app
from contact_center.runtime import build_runtime, freeze_startup_heap
from contact_center.settings import Settings
app = create_app(build_runtime(Settings(_env_file=None, log_level="WARNING")))  # data dir from the environment
freeze_startup_heap()  # as `serve` does
'''


def build_database(data_dir: Path, contacts: int) -> tuple[str, list[str]]:
    engine = make_engine(f"sqlite:///{data_dir / 'contact-center.db'}")
    upgrade(engine)
    factory = make_session_factory(engine)
    numbers = []
    rng = random.Random(7)
    with transaction(factory) as session:
        channel = create_channel(session, name="SMS", provider="kolmeya_sandbox", credentials={"token": "sandbox-token"})
        secret = channel.webhook_secret
        rows = []
        for i in range(contacts):  # unique numbers, written the ways customers write them
            area = (11, 21, 31, 41, 48, 51, 61, 71, 81, 85)[i % 10]
            raw = rng.choice(["({}) 9{:04d}-{:04d}", "+55 {} 9{:04d}-{:04d}", "{}9{:04d}{:04d}"]).format(
                area, 6000 + i // 10000, i % 10000)
            identity = phones.identify(raw)
            numbers.append(phones.kolmeya_form(raw))
            rows.append({"name": f"Cliente {i}", "mobile": raw, "mobile_e164": identity.e164,
                         "mobile_key": identity.key, "opt_out_sms": False, "opt_out_whatsapp": False})
            if len(rows) == 5000:
                session.execute(insert(Contact), rows)
                rows = []
        if rows:
            session.execute(insert(Contact), rows)
    engine.dispose()
    return secret, numbers


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
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--replies", type=int, default=30_000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5, help="alternating bare/ours rounds; medians reported")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        started = time.perf_counter()
        secret, numbers = build_database(data_dir, options.contacts)
        print(f"setup: {options.contacts:,} contacts in {time.perf_counter() - started:.1f} s")
        (data_dir / "bare.py").write_text(BARE_APP)
        (data_dir / "ours.py").write_text(SERVER)
        env = {**os.environ, "PYTHONPATH": str(data_dir)}
        path = f"/kolmeya/webhook/reply?token={secret}"
        rng = random.Random(11)
        picks = [rng.choice(numbers) for _ in range(options.replies + WARM_UP)]

        def requests(first: int, count: int, port: int) -> list[bytes]:
            """Replies `first`..`first + count - 1`, built before the clock starts."""
            made = []
            for index in range(first, first + count):
                at = f"2026-11-24 {index // 3600 % 24:02d}:{index // 60 % 60:02d}:{index % 60:02d}"
                body = json.dumps({"phone": picks[index], "message": f"Resposta {index}", "data": at})
                made.append(request_bytes("127.0.0.1", port, path, body.encode()))
            return made

        # Both servers stay up; rounds alternate between them so drift on a shared machine hits
        # both alike; each round's pair gives a ratio.
        bare = start_server(["bare:app"], 8772, env)
        ours = start_server(["ours:app"], 8771, {**env, "CONTACT_CENTER_DATA_DIR": str(data_dir)})
        bare_runs, our_runs = [], []
        try:
            # Both warm before measuring; ours stores its warm-up replies too (numbered after the rest).
            run_load("127.0.0.1", 8772, requests(0, WARM_UP, 8772), connections=8)
            run_load("127.0.0.1", 8771, requests(options.replies, WARM_UP, 8771), connections=8)
            per_round = options.replies // options.rounds
            for round_ in range(options.rounds):
                bare_runs.append(run_load("127.0.0.1", 8772, requests(0, per_round, 8772),
                                          connections=options.connections))
                our_runs.append(run_load("127.0.0.1", 8771, requests(round_ * per_round, per_round, 8771),
                                         connections=options.connections))
        finally:
            for server in (bare, ours):
                server.terminate()
                server.wait()
        bare_result = sorted(bare_runs, key=lambda r: r.rate)[len(bare_runs) // 2]
        result = sorted(our_runs, key=lambda r: r.rate)[len(our_runs) // 2]

        engine = make_engine(f"sqlite:///{data_dir / 'contact-center.db'}")
        with engine.connect() as connection:
            stored = connection.scalar(select(func.count()).select_from(Message).where(Message.direction == "in"))
            matched = connection.scalar(select(func.count()).select_from(Message)
                                        .where(Message.direction == "in", Message.contact_id.is_not(None)))
        engine.dispose()

    # Each round's ratio compares two runs a second apart; the machine's speed drifts more than
    # that over the whole benchmark, so the ratio reported is the median of the rounds' ratios.
    ratios = [our_run.rate / bare_run.rate for bare_run, our_run in zip(bare_runs, our_runs)]
    ratio = statistics.median(ratios)
    for index, (bare_run, our_run) in enumerate(zip(bare_runs, our_runs), start=1):
        print(f"round {index}: bare {bare_run.rate:,.0f} req/s, ours {our_run.rate:,.0f} replies/s, "
              f"ratio {ratios[index - 1]:.0%}")
    print(f"bare Starlette (stores nothing), median: {bare_result.summary()}")
    print(f"contact-center webhook, median:          {result.summary()}")
    print(f"stored {stored:,} inbound messages ({WARM_UP:,} of them from the warm-up), {matched:,} matched to a contact")
    print("\n== webhook_ingest summary ==")
    print(f"replies/s        {result.rate:,.0f}   (goal >= 3,000)")
    print(f"latency p50/p99  {result.percentile(50):.2f} / {result.percentile(99):.2f} ms")
    print(f"bare ceiling     {bare_result.rate:,.0f} req/s")
    print(f"ratio to bare    {ratio:.0%}   (goal >= 25 %; median of the rounds, {min(ratios):.0%}-{max(ratios):.0%})")


if __name__ == "__main__":
    main()
