"""Exactly-once through crashes and unreadable answers, counted in the sandbox's ledger.

The sandbox's own de-duplication is off in every test here: a second send of the same message
would show as a second entry in the ledger instead of being dropped by it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, insert, select

from contact_center import phones
from contact_center.auth import service as auth_service
from contact_center.channels.service import create_channel
from contact_center.contacts.models import Contact
from contact_center.db import make_session_factory, transaction
from contact_center.messaging.models import Message
from contact_center.providers.kolmeya.provider import SANDBOX_TOKEN
from contact_center.providers.kolmeya.sandbox import SandboxServer
from tests.live import database_url, free_port

RECIPIENTS = 5000
CHANNEL_TIMEOUT = 5.0  # seconds; a request of this channel lasts at most 4 × that + 5 (the sweeper knows)
CLAIM_TIMEOUT = 5.0


class Serve:
    """`contact-center serve` as a process of its own, killed the hard way."""

    def __init__(self, engine, data_dir, port: int):
        self.port = port
        self.env = {**os.environ, "CONTACT_CENTER_DATABASE_URL": database_url(engine),
                    "CONTACT_CENTER_DATA_DIR": str(data_dir), "CONTACT_CENTER_LOG_LEVEL": "WARNING",
                    "CONTACT_CENTER_DISPATCH_CLAIM_TIMEOUT_SECONDS": str(CLAIM_TIMEOUT),
                    "CONTACT_CENTER_DISPATCH_CHECK_DELAY_SECONDS": "1"}
        self.env.pop("CONTACT_CENTER_KOLMEYA_TOKEN", None)
        self.log = data_dir / "serve.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "contact_center", "serve", "--port", str(self.port)], env=self.env,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # its own process group
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.process.poll() is None, self.log.read_text()
            time.sleep(0.1)
        raise AssertionError(f"serve did not start:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL to the whole process group: the server, its job threads, its webhook writer."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


def test_a_sigkill_during_a_bulk_send_sends_every_recipient_exactly_once(own_database, tmp_path):
    database = own_database
    # Delivery reports 10 minutes away: nothing but the provider itself can say what it has.
    # The first two /sms/store requests are carried out, then stall: the kill finds them out.
    with SandboxServer(SANDBOX_TOKEN, status_delay_seconds=600, duplicate_window_seconds=0, rate_limit=100_000,
                       timeout_sleep_seconds=30, fail_only=["/sms/store"]) as sandbox:
        sandbox.configure(fail_next=["timeout", "timeout"])
        factory = make_session_factory(database)
        with transaction(factory) as session:
            user = auth_service.create_user(session, username="sofia", name="Sofia", password="correct horse",
                                            role="supervisor")
            token = auth_service.create_token(session, user, "tests")[1]
            channel = create_channel(session, name="SMS TESTE", provider="kolmeya_sandbox",
                                     credentials={"token": SANDBOX_TOKEN},
                                     settings={"base_url": sandbox.base_url, "timeout_seconds": CHANNEL_TIMEOUT})
            channel_id = channel.id
            rows = []
            for i in range(RECIPIENTS):
                written = f"(11) 9{1000 + i // 10000:04d}-{i % 10000:04d}"
                identity = phones.identify(written)
                rows.append({"name": f"Cliente {i}", "mobile": written, "mobile_e164": identity.e164,
                             "mobile_key": identity.key, "opt_out_sms": False, "opt_out_whatsapp": False})
            session.execute(insert(Contact), rows)

        serve = Serve(database, tmp_path, free_port())
        serve.start()
        try:
            headers = {"Authorization": f"Bearer {token}"}
            started = httpx.post(f"http://127.0.0.1:{serve.port}/api/sms/bulk", headers=headers, timeout=120,
                                 json={"body": "Olá {{ contact.first_name }}, sua parcela vence amanhã.",
                                       "search": "", "channel_id": channel_id, "confirm": True})
            assert started.status_code == 200, started.text
            campaign_id = started.json()["campaign_id"]
            assert started.json()["sendable"] == RECIPIENTS

            # Two batches of 1,000 are at the provider, their answers not yet back: kill now.
            deadline = time.monotonic() + 60
            while len(sandbox.ledger()["messages"]) < 2000:
                assert time.monotonic() < deadline, "the first two batches never reached the sandbox"
                time.sleep(0.05)
            serve.kill()
            with factory() as session:
                out = session.execute(select(Message.status, func.count()).where(Message.campaign_id == campaign_id)
                                      .group_by(Message.status)).all()
                last_claim = session.scalar(select(func.max(Message.claimed_at)))
            assert dict(out).get("sending") == 2000, out

            # Restart once no request of the dead process can still be out (the sweeper's own rule).
            longest = max(CLAIM_TIMEOUT, 4 * CHANNEL_TIMEOUT + 5)
            time.sleep(max(0.0, (last_claim + timedelta(seconds=longest + 1)).timestamp() - time.time()))
            serve.start()

            def settled():
                with factory() as session:
                    counts = dict(session.execute(select(Message.status, func.count())
                                                  .where(Message.campaign_id == campaign_id)
                                                  .group_by(Message.status)).all())
                return counts if counts.get("sent") == RECIPIENTS else None

            deadline = time.monotonic() + 120
            while (counts := settled()) is None:
                assert time.monotonic() < deadline, f"not all sent: {counts}\n{serve.log.read_text()[-3000:]}"
                time.sleep(0.2)
        finally:
            serve.stop()

        ledger = sandbox.ledger()
        with factory() as session:
            references = set(session.scalars(select(Message.reference).where(Message.campaign_id == campaign_id)))
            confirmed = session.scalar(select(func.count()).where(
                Message.campaign_id == campaign_id, Message.status_reason.like("%confirmed it has this message%")))
    accepted = Counter(message["reference"] for message in ledger["messages"])
    assert set(accepted) == references and len(references) == RECIPIENTS
    assert accepted.most_common(1)[0][1] == 1  # every recipient exactly once
    # The 2,000 the dead process had handed over were asked about, not sent again.
    assert confirmed == 2000
    asked = [call for call in ledger["api_calls"] if call["path"].endswith("/sms/status/request")]
    # Once per batch; twice when the start-up sweep and the consumer's first periodic sweep both
    # list the batch before either question has leased it (seen on PostgreSQL): never resent.
    assert 2 <= len(asked) <= 4


@pytest.mark.live_settings(dispatch_check_delay_seconds=0.3)
@pytest.mark.sandbox(duplicate_window_seconds=0, status_delay_seconds=1.0, timeout_sleep_seconds=1.5,
                     fail_only=["/sms/store", "/sms/status/request"])
def test_a_timeout_then_an_html_answer_ends_with_every_message_delivered(live):
    """Kolmeya took the batch but answered too late; asking it about the batch first got a
    maintenance page. Nothing may be failed for it, nothing sent twice, and the delivery reports
    must land."""
    with transaction(live.runtime.session_factory) as session:
        from contact_center.channels.service import get_channel, update_channel

        update_channel(session, get_channel(session, live.channel_id), settings={"timeout_seconds": 0.5})
        rows = []
        for i in range(241):
            identity = phones.identify(f"(21) 98000-{i:04d}")
            rows.append({"name": f"Cliente {i}", "mobile": identity.e164, "mobile_e164": identity.e164,
                         "mobile_key": identity.key, "opt_out_sms": False, "opt_out_whatsapp": False})
        session.execute(insert(Contact), rows)
    live.sandbox.configure(fail_next=["timeout", "html"])
    started = live.http.post("/api/sms/bulk", headers=live.headers, timeout=60,
                             json={"body": "Oi {{ contact.first_name }}", "search": "", "confirm": True})
    assert started.status_code == 200, started.text
    campaign_id = started.json()["campaign_id"]

    def by_status() -> dict:
        return live.http.get(f"/api/campaigns/{campaign_id}", headers=live.headers).json()["by_status"]

    live.wait_for(lambda: by_status().get("delivered") == 241, timeout=30, what=f"241 delivered: {by_status()}")
    assert set(by_status()) == {"delivered"}
    ledger = live.sandbox.ledger()
    assert len(ledger["messages"]) == 241 == len({m["reference"] for m in ledger["messages"]})
    paths = [call["path"].rsplit("/v1", 1)[1] for call in ledger["api_calls"]]
    # Sent once; asked at least once (the maintenance page); the rest the delivery reports or a
    # second question settled, whichever came first.
    assert paths.count("/sms/store") == 1 and paths.count("/sms/status/request") >= 1
    with transaction(live.runtime.session_factory) as session:
        reasons = set(session.scalars(select(Message.status_reason).where(Message.campaign_id == campaign_id)))
    assert reasons == {None}  # no "retrying…" or "unknown" reason outlives the delivery
