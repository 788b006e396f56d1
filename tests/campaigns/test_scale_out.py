"""Scale-out on PostgreSQL + Redis: two web processes and two `contact-center worker` processes
started by the test share a 20,000-recipient campaign and 20,000 reply webhooks spread over both
web processes. Every recipient is sent exactly once (the Kolmeya sandbox's ledger says so), every
reply is stored once, and an operator's screen on each web process receives every reply's event."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis
from sqlalchemy import func, insert, select

from contact_center import phones
from contact_center.auth import service as auth_service
from contact_center.channels.models import Channel
from contact_center.channels.service import create_channel, webhook_urls
from contact_center.contacts.models import Contact
from contact_center.db import make_session_factory, transaction
from contact_center.messaging.models import Message
from contact_center.providers.kolmeya.provider import SANDBOX_TOKEN
from contact_center.providers.kolmeya.sandbox import SandboxServer
from tests.live import database_url, free_port
from tests.web.test_live_events import EventStream

RECIPIENTS = 20_000
BRAZIL = ZoneInfo("America/Sao_Paulo")
REDIS_URL = os.environ.get("CONTACT_CENTER_TEST_REDIS_URL", "")
ANY_TIME = {"days": {day: {"start": "00:00", "end": "24:00"} for day in ("mon", "tue", "wed", "thu", "fri", "sat",
                                                                         "sun")}}


class Process:
    def __init__(self, args: list[str], env: dict, log_path):
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "contact_center", *args], env=env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text()[-3000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Screen(threading.Thread):
    """An operator's live stream on one web process, counting the customers' messages it is told of."""

    def __init__(self, base_url: str, headers: dict):
        super().__init__(daemon=True)
        self.stream = EventStream(base_url, headers, read_timeout=60)  # quiet for a while: keepalives every 15 s
        self.seen: set[int] = set()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while len(self.seen) < RECIPIENTS:
                event = self.stream.next(("message.created", "resync"))
                if event["event"] == "resync":
                    raise AssertionError("the screen was told to resync: it lost events")
                if event["data"].get("direction") == "in":
                    self.seen.add(event["data"]["message_id"])
        except BaseException as exc:  # surfaced by the test
            self.error = exc


@pytest.mark.parametrize("own_database", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_two_web_and_two_worker_processes_share_a_campaign_and_the_replies(own_database, tmp_path):
    assert REDIS_URL, "this test needs CONTACT_CENTER_TEST_REDIS_URL"
    redis.Redis.from_url(REDIS_URL).flushdb()  # nobody else's jobs or events in the way
    factory = make_session_factory(own_database)
    processes: list[Process] = []
    screens: list[Screen] = []
    with SandboxServer(SANDBOX_TOKEN, status_delay_seconds=3600, duplicate_window_seconds=0,
                       rate_limit=1_000_000) as sandbox:
        with transaction(factory) as session:
            user = auth_service.create_user(session, username="sofia", name="Sofia", password="correct horse",
                                            role="supervisor")
            headers = {"Authorization": f"Bearer {auth_service.create_token(session, user, 'tests')[1]}"}
            channel = create_channel(session, name="SMS Kolmeya", provider="kolmeya_sandbox",
                                     credentials={"token": SANDBOX_TOKEN},
                                     settings={"base_url": sandbox.base_url, "max_requests_per_minute": 100_000})
            channel_id = channel.id
            session.execute(insert(Contact), [
                {"name": f"Cliente {i}", "mobile": identity.e164, "mobile_e164": identity.e164,
                 "mobile_key": identity.key, "opt_out_sms": False, "opt_out_whatsapp": False}
                for i in range(RECIPIENTS)
                for identity in [phones.identify(f"(4{1 + i // 10_000}) 9{i % 10_000:04d}-{i % 10_000:04d}")]])
        ports = [free_port(), free_port()]
        env = {**os.environ, "CONTACT_CENTER_DATABASE_URL": database_url(own_database),
               "CONTACT_CENTER_REDIS_URL": REDIS_URL, "CONTACT_CENTER_LOG_LEVEL": "WARNING",
               "CONTACT_CENTER_SECRET_KEY": "scale-out-test-secret-key"}
        env.pop("CONTACT_CENTER_KOLMEYA_TOKEN", None)
        try:
            for n, port in enumerate(ports):
                data_dir = tmp_path / f"web{n}"
                data_dir.mkdir()
                processes.append(Process(["serve", "--port", str(port), "--no-worker"],
                                         {**env, "CONTACT_CENTER_DATA_DIR": str(data_dir),
                                          "CONTACT_CENTER_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"},
                                         tmp_path / f"web{n}.log"))
            for n in range(2):
                data_dir = tmp_path / f"worker{n}"
                data_dir.mkdir()
                processes.append(Process(["worker", "--threads", "2"], {**env, "CONTACT_CENTER_DATA_DIR": str(data_dir)},
                                         tmp_path / f"worker{n}.log"))
            bases = [f"http://127.0.0.1:{port}" for port in ports]
            for base in bases:
                wait_for(lambda b=base: _healthy(b), 60, f"{base} up")
            screens = [Screen(base, headers) for base in bases]
            for screen in screens:
                screen.start()

            created = httpx.post(f"{bases[0]}/api/campaigns", headers=headers, timeout=60, json={
                "name": "Cobrança em massa", "channel_id": channel_id, "body": "Oi {{ contact.first_name }}",
                "search": "", "send_window": ANY_TIME, "start": True})
            assert created.status_code == 202, created.text
            campaign_id = created.json()["id"]
            wait_for(lambda: httpx.get(f"{bases[1]}/api/campaigns/{campaign_id}", headers=headers, timeout=30)
                     .json()["status"] == "completed", 300,
                     f"the campaign completed\n{processes[2].log()}\n{processes[3].log()}")
            ledger = sandbox.ledger()
            sent = Counter(m["reference"] for m in ledger["messages"])
            assert len(sent) == RECIPIENTS and max(sent.values()) == 1  # every recipient, exactly once

            # Every recipient answers; the webhooks alternate between the two web processes.
            with transaction(factory) as session:
                reply_path = webhook_urls(session.get(Channel, channel_id), "")["reply"]
            sent_messages = ledger["messages"]
            at = datetime.now(BRAZIL).strftime("%Y-%m-%d %H:%M:%S")

            def reply(index: int) -> int:  # Kolmeya's flat reply, as its sandbox writes it
                original = sent_messages[index]
                payload = {"phone": original["phone"], "message": f"Resposta {index}",
                           "reference": original["reference"], "data": at}
                return provider.post(f"{bases[index % 2]}{reply_path}", json=payload).status_code

            # One client for every call: a new one each time would cost this process more CPU (its
            # TLS context) than the servers spend storing the reply.
            with httpx.Client(timeout=60, limits=httpx.Limits(max_connections=16)) as provider, \
                    ThreadPoolExecutor(8) as pool:
                answers = Counter(pool.map(reply, range(RECIPIENTS)))
            assert answers == {200: RECIPIENTS}, answers

            def replies_stored() -> int:
                with factory() as session:
                    return session.scalar(select(func.count()).where(Message.direction == "in"))

            wait_for(lambda: replies_stored() >= RECIPIENTS, 120, "every reply stored")
            with factory() as session:
                distinct = session.scalar(select(func.count(func.distinct(Message.provider_message_id)))
                                          .where(Message.direction == "in"))
            assert replies_stored() == distinct == RECIPIENTS  # each once
            for screen in screens:
                wait_for(lambda s=screen: len(s.seen) >= RECIPIENTS or s.error, 120, "every reply on every screen")
                assert screen.error is None, screen.error
                assert len(screen.seen) == RECIPIENTS
        finally:
            for screen in screens:
                screen.stream.close()
            for process in processes:
                process.stop()
            redis.Redis.from_url(REDIS_URL).flushdb()


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False
