"""A templated bulk send to 100k contacts through the Kolmeya sandbox: time until the provider has
accepted every message, and the peak memory of the process that stores and dispatches them.

    uv run python bench/bulk_send.py [--recipients 100000] [--workers 4] [--rounds 2]

The sandbox runs in its own process (as Kolmeya is elsewhere); this process does what `serve`
does for `sms bulk`: a campaign started at once, stored a chunk at a time, released by its pump and
dispatched by the Huey consumer.
Goals: ≤ 60 s to all-accepted, ≤ 300 MB peak RSS, and — since templates got a budget — within
10 % of the figure before that change. The machines are noisy, so that baseline is measured in the
same run: each round sends once with the renderer from before the budget and once with today's,
in ABBA order (the tables grow by a campaign per send), and the ratio is printed.
"""

from __future__ import annotations

import argparse
import random
import statistics
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from sqlalchemy import func, insert, select

from contact_center import phones
from contact_center.campaigns import content
from contact_center.campaigns import service as campaigns
from contact_center.campaigns.windows import ALWAYS
from contact_center.channels.service import create_channel
from contact_center.contacts.models import Contact
from contact_center.db import reading, transaction
from contact_center.messaging.models import Message
from contact_center.runtime import build_runtime
from contact_center.settings import Settings
from contact_center.templates import rendering
from contact_center.templates.rendering import CompanyScope, TemplateError, UserScope, contact_scope
from contact_center.templates.service import SAMPLE_CONTACT, renderer

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


def prepare(data_dir: Path, port: int, recipients: int):
    """What `serve` would run on (settings, runtime), an SMS channel on the sandbox at `port` with
    no rate budget of ours in the way, and `recipients` contacts: (settings, runtime, channel id)."""
    settings = Settings(_env_file=None, data_dir=data_dir, log_level="WARNING", public_base_url="http://127.0.0.1:9")
    runtime = build_runtime(settings)
    with transaction(runtime.session_factory) as session:
        channel_id = create_channel(session, name="SMS SANDBOX", provider="kolmeya_sandbox",
                                    credentials={"token": "sandbox-token"},
                                    settings={"base_url": f"http://127.0.0.1:{port}/api/v1",
                                              "price_per_segment": "0.07", "max_requests_per_minute": 100_000}).id
        seed_contacts(session, recipients, random.Random(5))
    return settings, runtime, channel_id


def seed_contacts(session, count: int, rng: random.Random) -> None:
    """`count` contacts, their numbers written as people write them; one in a hundred opted out of SMS."""
    rows = []
    for i in range(count):
        raw = f"({rng.choice([11, 21, 48, 51, 85])}) 9{i // 10000 + 1000:04d}-{i % 10000:04d}"
        identity = phones.identify(raw)
        rows.append({"name": f"Cliente {i} Silva", "mobile": raw, "mobile_e164": identity.e164,
                     "mobile_key": identity.key, "opt_out_sms": i % 100 == 0, "opt_out_whatsapp": False})
    session.execute(insert(Contact), rows)


def previous_renderer(body, user, settings):
    """templates.service.renderer as it was before templates had a budget (commit 5668ed8): the
    baseline the budgeted renderer is measured against."""
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
    env.filters["brl"] = rendering._brl
    template = env.from_string(body)
    user_scope = UserScope(name=user.name, username=user.username) if user else UserScope(name="", username="")
    company = CompanyScope(name=settings.company_name, phone=settings.company_phone)

    def render(contact):
        try:
            return template.render(contact=contact_scope(contact), user=user_scope, company=company).strip()
        except Exception as exc:
            raise TemplateError(f"{exc.__class__.__name__}: {exc}") from None

    return render


RENDERERS = {"before": previous_renderer, "budgeted": renderer}


def render_only(settings, renders: int = 20_000, rounds: int = 5) -> dict[str, float]:
    """µs per render of TEMPLATE alone, each renderer in turn, median of the rounds."""
    times: dict[str, list[float]] = {name: [] for name in RENDERERS}
    for _ in range(rounds):
        for name, make in RENDERERS.items():
            render = make(TEMPLATE, None, settings)
            started = time.perf_counter()
            for _ in range(renders):
                render(SAMPLE_CONTACT)
            times[name].append((time.perf_counter() - started) / renders * 1e6)
    return {name: statistics.median(values) for name, values in times.items()}


def send(runtime, settings, channel_id: int, name: str) -> dict:
    """One bulk send with renderer `name`, until the provider has accepted every message."""
    content.renderer = RENDERERS[name]  # what a campaign renders with
    try:
        memory = PeakMemory()
        started = time.perf_counter()
        with transaction(runtime.session_factory) as session:  # as `sms bulk` does: a campaign started at once
            campaign = campaigns.create_campaign(session, name=f"bench {name}", channel_id=channel_id, body=TEMPLATE,
                                                 template_id=None, audience={"search": ""}, user=None,
                                                 settings=settings, send_window=ALWAYS, start=True)
        campaigns.build(runtime.session_factory, settings, campaign.id)
        runtime.jobs.pump_campaign(campaign.id)
        stored = time.perf_counter() - started
        with runtime.session_factory() as session:
            campaign = session.get(campaigns.Campaign, campaign.id)
            plan = campaigns.BulkPlan(recipients=campaign.total + campaign.skipped,
                                      sendable=campaign.total - session.scalar(select(func.count()).where(
                                          Message.campaign_id == campaign.id, Message.status == "blocked")))
        expected = plan.sendable
        while True:
            with reading(runtime.session_factory) as session:
                counts = dict(session.execute(select(Message.status, func.count())
                                              .where(Message.campaign_id == campaign.id)
                                              .group_by(Message.status)).all())
            if counts.get("sent", 0) + counts.get("failed", 0) + counts.get("rejected", 0) >= expected:
                break
            if time.perf_counter() - started > 600:
                raise SystemExit(f"gave up waiting: {counts}")
            time.sleep(0.2)
        accepted = time.perf_counter() - started
        return {"renderer": name, "plan": plan, "counts": counts, "stored": stored, "accepted": accepted,
                "peak": memory.stop()}
    finally:
        content.renderer = renderer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=4, help="Huey consumer threads")
    parser.add_argument("--rounds", type=int, default=2, help="ABBA rounds: each sends with both renderers")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        sandbox = start_sandbox(port)
        try:
            settings, runtime, channel_id = prepare(Path(tmp), port, options.recipients)
            per_render = render_only(settings)
            consumer = runtime.jobs.consumer(workers=options.workers)
            consumer.start()
            baseline_rss = psutil.Process().memory_info().rss
            # ABBA: every other round in reverse, so that drift over the run weighs on both alike.
            order = [name for i in range(options.rounds)
                     for name in (("before", "budgeted") if i % 2 == 0 else ("budgeted", "before"))]
            results = []
            for name in order:
                results.append(send(runtime, settings, channel_id, name))
                last = results[-1]
                print(f"  {name:8}  stored {last['stored']:5.1f} s  all accepted {last['accepted']:5.1f} s  "
                      f"peak RSS {last['peak'] / 2**20:4.0f} MB", flush=True)
            consumer.stop(graceful=True)
            ledger = httpx.get(f"http://127.0.0.1:{port}/_sandbox/ledger", timeout=60).json()
        finally:
            sandbox.terminate()
            sandbox.wait()

    plan, counts = results[-1]["plan"], results[-1]["counts"]
    print(f"recipients {plan.recipients:,}: {plan.sendable:,} to send, {plan.recipients - plan.sendable:,} opted out "
          "(stored as blocked)")
    print(f"final states of the last send: {counts}; the sandbox ledger holds {len(ledger['messages']):,} messages "
          f"from {len(results)} sends")

    def mean(name: str, key: str) -> float:
        return statistics.mean(r[key] for r in results if r["renderer"] == name)

    print("\n== bulk_send summary ==")
    print(f"render only (µs per message)  before {per_render['before']:6.1f}   budgeted {per_render['budgeted']:6.1f}"
          f"   ratio {per_render['budgeted'] / per_render['before']:.2f}")
    for key, label in (("stored", "stored (request returns)"), ("accepted", "all accepted by provider")):
        before, budgeted = mean("before", key), mean("budgeted", key)
        print(f"{label:28}  before {before:6.1f} s   budgeted {budgeted:6.1f} s   ratio {budgeted / before:.3f}"
              f"{'   (goal <= 60 s; ratio <= 1.10)' if key == 'accepted' else ''}")
    print(f"peak RSS (highest send)       {max(r['peak'] for r in results) / 2**20:6.0f} MB   (goal <= 300 MB; "
          f"{baseline_rss / 2**20:.0f} MB before the sends)")


if __name__ == "__main__":
    main()
