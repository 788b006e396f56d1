"""Retries against the real Kolmeya sandbox, told by each message's attempt history
(messaging/attempts.py): the outage (a 500, a hang past our timeout, then a 429 with Retry-After)
ends with every message sent exactly once per the sandbox's ledger; errors nobody can fix by
waiting fail at once with their reason; the channel's own rate limit holds messages back before
the provider has to refuse them.

Time is virtual: `Worker` runs the jobs dispatch and the provider checks leave in the order their
delays fall due, making each due instead of sleeping, so the history keeps the real delays and the
test takes seconds.
"""

from __future__ import annotations

import heapq
import itertools
import re
import socket
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from contact_center.channels.service import update_channel
from contact_center.db import utcnow
from contact_center.messaging import attempts
from contact_center.messaging import service as messaging
from contact_center.messaging.dispatch import MAX_BUDGET_SLEEP_SECONDS, dispatch, sweep
from contact_center.messaging.models import Message
from contact_center.messaging.rate_limit import LocalLimiter
from contact_center.messaging.reconcile import check_unknown
from contact_center.providers.base import RateBudget
from contact_center.providers.kolmeya.provider import SANDBOX_TOKEN
from contact_center.providers.kolmeya.sandbox import SandboxServer
from contact_center.translations import say_stored as said

# Callbacks would go nowhere; the sandbox's de-duplication is off so a second copy would show.
QUIET = {"status_delay_seconds": 60, "callback_attempts": 1, "duplicate_window_seconds": 0,
         "fail_only": ["/sms/store"]}  # questions about a batch always get an answer


@pytest.fixture(scope="module")
def sandbox():
    with SandboxServer(SANDBOX_TOKEN, **QUIET) as server:
        yield server


class Worker:
    """The job queue, in virtual time: each job runs when its delay falls due, made due at once."""

    def __init__(self, db, session_factory, settings, limiter=None):
        self.db, self.session_factory, self.settings, self.limiter = db, session_factory, settings, limiter
        self.clock = 0.0
        self.jobs: list = []
        self._order = itertools.count()

    def add(self, kind: str, ids: list[int], delay: float = 0.0) -> None:
        heapq.heappush(self.jobs, (self.clock + delay, next(self._order), kind, ids))

    def run(self, max_jobs: int = 50) -> None:
        for _ in range(max_jobs):
            if not self.jobs:
                return
            self.step()
        raise AssertionError("the jobs never ran out")

    def step(self) -> None:
        """Run the next job due."""
        self.clock, _, kind, ids = heapq.heappop(self.jobs)
        self.db.execute(update(Message).where(Message.id.in_(ids), Message.next_attempt_at > utcnow())
                        .values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        self.db.commit()
        if kind == "dispatch":
            later = dispatch(self.session_factory, self.settings, ids, self.limiter)
            self._schedule("dispatch", later.retry)
            self._schedule("check", later.check)
        else:
            report = check_unknown(self.session_factory, self.settings, ids)
            if report.resend:
                self.add("dispatch", report.resend)
            self._schedule("check", report.waiting)

    def _schedule(self, kind: str, pairs: list[tuple[int, float]]) -> None:
        by_delay: dict[float, list[int]] = {}
        for message_id, delay in pairs:
            by_delay.setdefault(delay, []).append(message_id)
        for delay, ids in by_delay.items():
            self.add(kind, ids, delay)


def login(client, username: str) -> None:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"username": username, "password": "correct horse", "csrf_token": token},
                follow_redirects=False)


def queue(db, channel, count: int) -> list[Message]:
    messages = [messaging.queue_outbound(db, channel=channel, phone=f"11 90000-{n:04d}", body="Sua fatura vence amanhã",
                                         origin="api") for n in range(1, count + 1)]
    db.commit()
    return messages


def history(db, message: Message):
    db.expire_all()
    return attempts.history(db, [message.id])[message.id]


def wait_for_api_calls(sandbox, count: int) -> None:
    """A stalled request is logged when its late answer goes out: wait for it, or it lands in the
    next test's ledger."""
    deadline = time.monotonic() + 5
    while len(sandbox.ledger()["api_calls"]) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def test_an_outage_then_a_rate_limit_ends_with_every_message_sent_exactly_once(db, channel, sandbox, session_factory,
                                                                               settings):
    # The provider hangs far longer than we wait (2 s against 0.3 s, standing for 20 s against 15 s).
    update_channel(db, channel, settings={"base_url": sandbox.base_url, "timeout_seconds": 0.3})
    db.commit()
    sandbox.configure(fail_next=[500, 429, "timeout"], timeout_sleep_seconds=2, status_delay_seconds=0)
    messages = queue(db, channel, 5)
    worker = Worker(db, session_factory, settings)
    started = time.monotonic()
    worker.add("dispatch", [m.id for m in messages])
    worker.run()
    assert time.monotonic() - started < 15

    wait_for_api_calls(sandbox, 5)
    ledger = sandbox.ledger()
    references = sorted(m["reference"] for m in ledger["messages"])
    assert references == sorted(m.reference for m in messages)  # none lost, none twice
    # Three sends: the 500, the 429 and the hang (logged last, when its late answer went out);
    # and two questions, each before anything was sent again.
    assert sorted(call["path"].removeprefix("/api/v1") for call in ledger["api_calls"]) == [
        "/sms/status/request", "/sms/status/request", "/sms/store", "/sms/store", "/sms/store"]
    for message in messages:
        db.expire_all()
        stored = db.get(Message, message.id)
        assert stored.status in ("sent", "delivered") and stored.attempts == 3
        tries = history(db, message)
        assert [(a.number, a.outcome, a.http_status) for a in tries] == [
            (1, "unknown", 500), (2, "retry", 429), (3, "unknown", None)]
        server_error, rate_limited, hang = tries
        assert "HTTP 500" in said(server_error.reason, "pt-BR")
        assert "o provedor não tem registro" in said(server_error.reason, "pt-BR")
        assert "the provider has no record of it" in said(server_error.reason, "en")
        assert said(server_error.reason, "pt-BR").startswith("a Kolmeya teve um erro de servidor no POST /sms/store")
        assert server_error.next_attempt_at - server_error.finished_at >= timedelta(
            seconds=settings.dispatch_check_delay_seconds - 1)  # asked, not resent, after the check delay
        asked = float(re.search(r"Retry in (\d+)s", said(rate_limited.reason, None)).group(1))
        assert asked > 30  # more than attempt 2's longest backoff: the wait below is the provider's
        waited = (rate_limited.next_attempt_at - rate_limited.finished_at).total_seconds()
        assert asked - 1 <= waited <= asked + 1
        assert "did not answer POST /sms/store within 0.3s" in said(hang.reason, None)
        assert "o provedor confirmou que recebeu" in said(hang.reason, "pt-BR")
    # The batch stayed one request all along (three sends above for five messages): its messages
    # shared their jittered wait.
    retries = [history(db, m)[1].next_attempt_at for m in messages]
    assert max(retries) - min(retries) < timedelta(seconds=0.1)


def test_connection_errors_back_off_more_each_time_then_send(db, channel, sandbox, session_factory, settings):
    with socket.socket() as probe:  # a port nobody listens on: the connection is refused
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/api/v1"
    update_channel(db, channel, settings={"base_url": dead})
    db.commit()
    [message] = queue(db, channel, 1)
    worker = Worker(db, session_factory, settings)
    worker.add("dispatch", [message.id])
    for _ in range(3):
        worker.step()
    update_channel(db, channel, settings={"base_url": sandbox.base_url})
    db.commit()
    worker.run()

    tries = history(db, message)
    assert [a.outcome for a in tries] == ["retry", "retry", "retry", "sent"]
    for attempt, ceiling in zip(tries[:3], (5, 30, 120), strict=True):
        waited = (attempt.next_attempt_at - attempt.finished_at).total_seconds()
        assert 1 - 0.1 <= waited <= ceiling + 0.1, (attempt.number, waited)  # jittered under the step
        assert "Could not reach Kolmeya" in said(attempt.reason, None)
    assert [m["reference"] for m in sandbox.ledger()["messages"]] == [message.reference]


def test_an_error_waiting_cannot_fix_fails_at_once_with_its_reason(db, channel, sandbox, session_factory, settings):
    sandbox.configure(fail_next=[422])
    [message] = queue(db, channel, 1)
    later = dispatch(session_factory, settings, [message.id])
    assert later.retry == [] and later.check == []
    [attempt] = history(db, message)
    assert (attempt.outcome, attempt.http_status, attempt.next_attempt_at) == ("failed", 422, None)
    assert "invalid (HTTP 422)" in said(attempt.reason, None)
    assert db.get(Message, message.id).status == "failed"


def test_the_channels_budget_holds_messages_back_before_the_provider_refuses(db, channel, sandbox, session_factory,
                                                                            settings):
    update_channel(db, channel, settings={"base_url": sandbox.base_url, "max_requests_per_minute": 1})
    db.commit()
    now = [90.0]  # 30 s into a minute
    limiter = LocalLimiter(clock=lambda: now[0])
    first, second = queue(db, channel, 2)
    assert dispatch(session_factory, settings, [first.id], limiter).retry == []
    later = dispatch(session_factory, settings, [second.id], limiter)
    assert later.retry == [(second.id, 30.0)]  # until the next minute, not a call to be refused
    db.expire_all()
    held = db.get(Message, second.id)
    assert (held.status, held.attempts) == ("queued", 0)
    assert "limite de envio do canal (1 por minuto" in said(held.status_reason, "pt-BR")
    assert "the channel's send limit (1 per minute" in said(held.status_reason, "en")
    [attempt] = history(db, second)
    assert (attempt.number, attempt.outcome) == (1, "held")
    assert [m["reference"] for m in sandbox.ledger()["messages"]] == [first.reference]

    now[0] = 121.0
    db.execute(update(Message).where(Message.id == second.id).values(next_attempt_at=utcnow()))
    db.commit()
    assert dispatch(session_factory, settings, [second.id], limiter).retry == []
    assert [(a.number, a.outcome) for a in history(db, second)] == [(1, "held"), (1, "sent")]
    assert len(sandbox.ledger()["messages"]) == 2


class Slow:
    """A budget that is over for a moment: the next slot opens in `wait` seconds."""

    def __init__(self, wait: float):
        self.waits = [wait]

    def acquire(self, channel_id: int, count: int, budget: RateBudget) -> float:
        return self.waits.pop() if self.waits else 0.0


def test_a_short_wait_for_the_budget_is_slept_through(db, channel, sandbox, session_factory, settings):
    [message] = queue(db, channel, 1)
    started = time.monotonic()
    assert dispatch(session_factory, settings, [message.id], Slow(0.2)).retry == []
    assert time.monotonic() - started >= 0.2
    assert [a.outcome for a in history(db, message)] == ["sent"]
    assert 0.2 < MAX_BUDGET_SLEEP_SECONDS


def test_a_worker_that_died_mid_request_leaves_an_unknown_try_in_the_history(db, channel, sandbox, settings):
    [message] = queue(db, channel, 1)
    long_ago = utcnow() - timedelta(seconds=settings.dispatch_claim_timeout_seconds + 120)
    db.execute(update(Message).where(Message.id == message.id).values(
        status="sending", attempts=1, claimed_at=long_ago, batch_reference="batch-of-a-dead-worker"))
    db.commit()
    swept = sweep(db, settings)
    db.commit()
    assert swept.check == [message.id]
    [attempt] = history(db, message)
    assert (attempt.number, attempt.outcome, attempt.started_at) == (1, "unknown", long_ago)
    assert "worker sending it stopped" in said(attempt.reason, None)


def test_the_api_and_the_timeline_show_the_tries(client, db, channel, sandbox, session_factory, settings,
                                                agent_headers):
    sandbox.configure(fail_next=[429])
    [message] = queue(db, channel, 1)
    dispatch(session_factory, settings, [message.id])
    db.execute(update(Message).where(Message.id == message.id).values(next_attempt_at=utcnow()))
    db.commit()
    dispatch(session_factory, settings, [message.id])

    response = client.get(f"/api/messages/{message.id}/attempts", headers=agent_headers)
    assert response.status_code == 200, response.text
    assert [(a["number"], a["outcome"], a["http_status"]) for a in response.json()] == [
        (1, "retry", 429), (2, "sent", None)]
    assert response.json()[0]["next_attempt_at"] is not None

    timeline = client.get(f"/api/conversations/{message.conversation_id}/timeline", headers=agent_headers).json()
    [entry] = [e for e in timeline["entries"] if e.get("id") == message.id and e["kind"] == "message"]
    assert [a["outcome"] for a in entry["attempt_history"]] == ["retry", "sent"]
    assert client.get("/api/messages/999999/attempts", headers=agent_headers).status_code == 404
    assert db.scalar(select(Message.status).where(Message.id == message.id)) == "sent"

    # The operator's screen: a folded "Tentativas (2)" under the message, in Portuguese by default.
    login(client, "ana")
    html = client.get(f"/inbox/{message.conversation_id}/fragments/message/{message.id}").text
    assert 'data-role="attempts"' in html and "Tentativas (2)" in html
    assert "Tentativa 1 · falhou, nova tentativa" in html and "HTTP 429" in html and "próxima tentativa:" in html
    assert "Tentativa 2 · enviada" in html
    client.get("/lang/en")
    html = client.get(f"/inbox/{message.conversation_id}/fragments/message/{message.id}").text
    assert "Attempts (2)" in html and "Attempt 1 · failed, will retry" in html


def test_a_clean_first_send_shows_no_attempt_list(client, db, channel, sandbox, session_factory, settings,
                                                  agent_headers):
    [message] = queue(db, channel, 1)
    dispatch(session_factory, settings, [message.id])
    login(client, "ana")
    html = client.get(f"/inbox/{message.conversation_id}/fragments/message/{message.id}").text
    assert f'data-message-id="{message.id}"' in html and 'data-role="attempts"' not in html
