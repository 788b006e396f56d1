"""A templated bulk send to 100k contacts through the Kolmeya sandbox: time until the provider has
accepted every message, and the peak memory of the process that stores and dispatches them.

    uv run python bench/bulk_send.py [--recipients 100000] [--workers 4]

The sandbox runs in its own process (as Kolmeya is elsewhere); this process does what `serve`
does: stores the campaign a chunk at a time and dispatches it with the Huey consumer.
Goals: ≤ 60 s to all-accepted, ≤ 300 MB peak RSS.
"""

from __future__ import annotations

import argparse
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil
from sqlalchemy import func, insert, select

from contact_center import phones
from contact_center.campaigns.service import contacts_matching, start_bulk
from contact_center.channels.service import create_channel
from contact_center.contacts.models import Contact
from contact_center.db import transaction
from contact_center.messaging.models import Message
from contact_center.runtime import build_runtime
from contact_center.settings import Settings

TEMPLATE = ("Olá {{ contact.first_name }}, sua parcela de {{ 149.9|brl }} vence amanhã. "
            "Pague pelo app ou responda SAIR para não receber mais.")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_sandbox(port: int) -> subprocess.Popen:
    # Status callbacks parked for an hour: this measures sending, not delivery reports.
    code = ("from contact_center.providers.kolmeya.sandbox import run_sandbox; "
            f"run_sandbox(port={port}, status_delay_seconds=3600, rate_limit=100000, duplicate_window_seconds=0)")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.post(f"http://127.0.0.1:{port}/api/v1/sms/balance",
                       headers={"Authorization": "Bearer sandbox-token"}, timeout=0.5)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("sandbox did not start")


class PeakMemory:
    """Samples this process's resident set size until stopped."""

    def __init__(self):
        self.process = psutil.Process()
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return max(self.peak, self.process.memory_info().rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=4, help="Huey consumer threads")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        sandbox = start_sandbox(port)
        try:
            settings = Settings(_env_file=None, data_dir=Path(tmp), log_level="WARNING",
                                public_base_url="http://127.0.0.1:9")
            runtime = build_runtime(settings)
            rng = random.Random(5)
            with transaction(runtime.session_factory) as session:
                channel = create_channel(session, name="SMS SANDBOX", provider="sandbox",
                                         credentials={"token": "sandbox-token"},
                                         settings={"base_url": f"http://127.0.0.1:{port}/api/v1",
                                                   "price_per_segment": "0.07"})
                channel_id = channel.id
                rows = []
                for i in range(options.recipients):
                    raw = f"({rng.choice([11, 21, 48, 51, 85])}) 9{i // 10000 + 1000:04d}-{i % 10000:04d}"
                    identity = phones.identify(raw)
                    rows.append({"name": f"Cliente {i} Silva", "mobile": raw, "mobile_e164": identity.e164,
                                 "mobile_key": identity.key, "opt_out_sms": i % 100 == 0, "opt_out_whatsapp": False})
                session.execute(insert(Contact), rows)
                del rows
            consumer = runtime.jobs.consumer(workers=options.workers)
            consumer.start()
            memory = PeakMemory()
            baseline_rss = memory.peak

            started = time.perf_counter()
            campaign, plan = start_bulk(runtime.session_factory, lambda s: contacts_matching(s, ""), name="bench",
                                        body=TEMPLATE, channel_id=channel_id, template_id=None, user=None,
                                        settings=settings, enqueue=runtime.jobs.dispatch)
            stored = time.perf_counter() - started
            expected = plan.sendable
            while True:
                with runtime.session_factory() as session:
                    counts = dict(session.execute(select(Message.status, func.count())
                                                  .where(Message.campaign_id == campaign.id)
                                                  .group_by(Message.status)).all())
                if counts.get("sent", 0) + counts.get("failed", 0) + counts.get("rejected", 0) >= expected:
                    break
                if time.perf_counter() - started > 600:
                    raise SystemExit(f"gave up waiting: {counts}")
                time.sleep(0.2)
            accepted = time.perf_counter() - started
            peak = memory.stop()
            consumer.stop(graceful=True)
            ledger = httpx.get(f"http://127.0.0.1:{port}/_sandbox/ledger", timeout=60).json()
        finally:
            sandbox.terminate()
            sandbox.wait()

    print(f"recipients {plan.recipients:,}: {expected:,} to send, {plan.opted_out:,} opted out (stored as blocked), "
          f"{plan.segments:,} segments, estimated R$ {plan.estimated_cost:.2f}")
    print(f"final states: {counts}; the sandbox ledger holds {len(ledger['messages']):,} messages")
    print("\n== bulk_send summary ==")
    print(f"stored (request returns)  {stored:6.1f} s")
    print(f"all accepted by provider  {accepted:6.1f} s   (goal <= 60 s)")
    print(f"peak RSS                  {peak / 2**20:6.0f} MB   (goal <= 300 MB; {baseline_rss / 2**20:.0f} MB before the send)")


if __name__ == "__main__":
    main()
