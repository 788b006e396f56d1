"""A 100k-recipient templated campaign through the Kolmeya sandbox on the embedded defaults
(SQLite, the built-in job queue): wall time from "start" to every message accepted by the
provider, peak RSS of the process doing what `serve` does (builds, pumps and dispatches), and an
operator's single send timed again and again while the campaign runs.

    uv run python bench/campaign.py [--recipients 100000] [--workers 4] [--rounds 2]

The sandbox runs in its own process, as Kolmeya is elsewhere. The baseline, measured in the same
run, is the dispatch path alone: the same number of messages stored queued and handed straight to
the dispatch jobs, with no campaign, window, pump or release in between (ABBA order).
Goals (the issue's): <= 20 s from start to all accepted, <= 250 MB peak RSS, operator send p99 <= 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import func, insert, select

sys.path.insert(0, str(Path(__file__).parent))
from bulk_send import PeakMemory, free_port, prepare, start_sandbox  # noqa: E402

from contact_center.campaigns import service as campaigns  # noqa: E402
from contact_center.runtime import freeze_startup_heap  # noqa: E402
from contact_center.campaigns.windows import ALWAYS  # noqa: E402
from contact_center.channels.kinds import SMS  # noqa: E402
from contact_center.channels.models import Channel  # noqa: E402
from contact_center.contacts.models import Contact  # noqa: E402
from contact_center.db import reading, transaction, utcnow  # noqa: E402
from contact_center.inbox.service import open_conversations  # noqa: E402
from contact_center.messaging import rows as message_rows  # noqa: E402
from contact_center.messaging import service as messaging  # noqa: E402
from contact_center.messaging.models import Message  # noqa: E402

TEMPLATE = ("Olá {{ contact.first_name }}, sua parcela de {{ 149.9|brl }} vence amanhã. "
            "Pague pelo app ou responda SAIR para não receber mais.")
DONE = ("sent", "failed", "rejected")


def wait_accepted(runtime, where, expected: int, started: float) -> None:
    while True:
        with reading(runtime.session_factory) as session:
            done = session.scalar(select(func.count()).where(where, Message.status.in_(DONE)))
        if done >= expected:
            return
        if time.perf_counter() - started > 900:
            raise SystemExit(f"gave up waiting: {done} of {expected}")
        time.sleep(0.1)


class OperatorProbe:
    """An operator's message every half second while the campaign runs: seconds from stored to
    accepted by the provider, each."""

    def __init__(self, runtime, channel_id: int):
        self.runtime, self.channel_id = runtime, channel_id
        self.waits: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(0.5):
            n += 1
            asked = time.perf_counter()
            with transaction(self.runtime.session_factory) as session:
                channel = session.get(Channel, self.channel_id)
                message_id = messaging.queue_outbound(session, channel=channel, phone=f"+55 11 9{n:04d}-9999",
                                                      body=f"Atendimento {n}", origin="composer", audit=False).id
            self.runtime.jobs.dispatch([message_id])
            while not self._stop.is_set():
                with reading(self.runtime.session_factory) as session:
                    if session.scalar(select(Message.status).where(Message.id == message_id)) in DONE:
                        self.waits.append(time.perf_counter() - asked)
                        break
                time.sleep(0.02)

    def stop(self) -> list[float]:
        self._stop.set()
        self._thread.join()
        return self.waits


def run_campaign(runtime, settings, channel_id: int, label: str) -> dict:
    with transaction(runtime.session_factory) as session:
        campaign_id = campaigns.create_campaign(
            session, name=f"bench {label}", channel_id=channel_id, body=TEMPLATE, template_id=None,
            audience={"search": ""}, user=None, settings=settings, send_window=ALWAYS).id
    built = time.perf_counter()
    campaigns.build(runtime.session_factory, settings, campaign_id)
    built = time.perf_counter() - built
    with runtime.session_factory() as session:
        expected = session.scalar(select(func.count()).where(Message.campaign_id == campaign_id,
                                                             Message.status == "scheduled"))
    memory = PeakMemory()
    probe = OperatorProbe(runtime, channel_id)
    started = time.perf_counter()
    with transaction(runtime.session_factory) as session:
        campaigns.start(session, campaign_id, None, via="cli")
    runtime.jobs.pump_campaign(campaign_id)
    wait_accepted(runtime, Message.campaign_id == campaign_id, expected, started)
    accepted = time.perf_counter() - started
    return {"kind": "campaign", "built": built, "accepted": accepted, "peak": memory.stop(), "waits": probe.stop(),
            "messages": expected}


def run_dispatch_only(runtime, channel_id: int, expected: int, label: str) -> dict:
    """The baseline: the same messages stored queued in chunks and handed straight to dispatch."""
    now = utcnow()
    ids: list[int] = []
    with transaction(runtime.session_factory) as session:
        contacts = session.execute(select(Contact.id, Contact.mobile, Contact.mobile_e164, Contact.mobile_key)
                                   .where(Contact.opt_out_sms.is_(False)).order_by(Contact.id).limit(expected)).all()
        for start in range(0, len(contacts), 1000):
            chunk = contacts[start:start + 1000]
            conversations = open_conversations(session.connection(), channel_id,
                                               {c.mobile_key: (c.mobile_e164, c.id) for c in chunk}, now)
            ids += session.scalars(insert(Message).returning(Message.id), [
                message_rows.outbound(SMS, channel_id=channel_id, conversation_id=conversations[c.mobile_key].id,
                                      contact=None, contact_id=c.id, origin="api", phone=c.mobile,
                                      phone_e164=c.mobile_e164, body=f"Olá {label}, sua parcela vence amanhã.",
                                      now=now) for c in chunk]).all()
    memory = PeakMemory()
    started = time.perf_counter()
    runtime.jobs.dispatch(ids)
    wait_accepted(runtime, Message.id.between(ids[0], ids[-1]) & (Message.origin == "api"), len(ids), started)
    return {"kind": "dispatch only", "accepted": time.perf_counter() - started, "peak": memory.stop(),
            "messages": len(ids)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=4, help="Huey consumer threads (and one urgent)")
    parser.add_argument("--rounds", type=int, default=2, help="ABBA rounds: a campaign and the baseline each")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        sandbox = start_sandbox(port)
        try:
            settings, runtime, channel_id = prepare(Path(tmp), port, options.recipients)
            consumer = runtime.jobs.consumer(workers=options.workers)
            freeze_startup_heap()  # as `serve` does once it is built
            consumer.start()
            results = []
            for round_ in range(options.rounds):
                for kind in (("campaign", "baseline") if round_ % 2 == 0 else ("baseline", "campaign")):
                    if kind == "campaign":
                        results.append(run_campaign(runtime, settings, channel_id, f"round {round_}"))
                    else:
                        expected = next((r["messages"] for r in results if r["kind"] == "campaign"),
                                        options.recipients - options.recipients // 100)
                        results.append(run_dispatch_only(runtime, channel_id, expected, f"round {round_}"))
                    last = results[-1]
                    print(f"  {last['kind']:13}  {last['messages']:,} messages  all accepted {last['accepted']:5.1f} s"
                          f"  peak RSS {last['peak'] / 2**20:4.0f} MB"
                          + (f"  (built in {last['built']:.1f} s before the start)" if "built" in last else ""),
                          flush=True)
            consumer.stop(graceful=True)
            ledger = httpx.get(f"http://127.0.0.1:{port}/_sandbox/ledger", timeout=120).json()
        finally:
            sandbox.terminate()
            sandbox.wait()

    references = [m["reference"] for m in ledger["messages"]]
    print(f"the sandbox ledger holds {len(references):,} messages, {len(set(references)):,} distinct references")
    campaign_runs = [r for r in results if r["kind"] == "campaign"]
    baseline_runs = [r for r in results if r["kind"] == "dispatch only"]
    accepted = statistics.mean(r["accepted"] for r in campaign_runs)
    baseline = statistics.mean(r["accepted"] for r in baseline_runs)
    waits = sorted(w for r in campaign_runs for w in r["waits"])
    p99 = waits[min(len(waits) - 1, int(len(waits) * 0.99))] if waits else float("nan")
    print("\n== campaign summary ==")
    print(f"start → all accepted   campaign {accepted:6.1f} s   dispatch only {baseline:6.1f} s   "
          f"ratio {accepted / baseline:.2f}   (goal <= 20 s)")
    print(f"peak RSS               {max(r['peak'] for r in campaign_runs) / 2**20:6.0f} MB   (goal <= 250 MB)")
    print(f"operator send          {len(waits)} sends during the campaigns: p50 {statistics.median(waits):.2f} s, "
          f"p99 {p99:.2f} s, max {waits[-1]:.2f} s   (goal p99 <= 1 s)" if waits else "operator send: none timed")


if __name__ == "__main__":
    main()
