"""Dispatch against the real Kolmeya sandbox: provider errors, retries, the answers of /sms/store,
claims that make a second send impossible, and the sweeper that hands back lost work.

Every message must end in a definite state with a reason; none is lost, none is sent twice.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from contact_center.channels.service import build_provider, create_channel, update_channel
from contact_center.db import make_session_factory, transaction, utcnow
from contact_center.messaging import service as messaging
from contact_center.messaging.dispatch import MAX_ATTEMPTS, STUCK_QUEUED, STUCK_SENDING, dispatch, sweep
from contact_center.messaging.models import Message
from contact_center.providers.base import OutgoingSms
from contact_center.providers.kolmeya.provider import SANDBOX_TOKEN
from contact_center.providers.kolmeya.sandbox import SandboxServer
from tests.conftest import BACKENDS, _migrated

# Status callbacks would go to an address nobody listens on; a long first step keeps them from firing.
QUIET = {"status_delay_seconds": 60, "callback_attempts": 1}
DEFINITE = {"sent", "delivered", "failed", "rejected", "blocked", "expired"}


@pytest.fixture(scope="module")
def sandbox():
    with SandboxServer(SANDBOX_TOKEN, **QUIET) as server:
        yield server


def queue(db, channel, phone: str = "11 90000-0001", body: str = "Sua fatura vence amanhã") -> Message:
    message = messaging.queue_outbound(db, channel=channel, phone=phone, body=body, origin="api")
    db.commit()
    return message


def reload(db, message: Message) -> Message:
    db.expire_all()
    return db.get(Message, message.id)


def change(db, message: Message, **values) -> None:
    db.execute(update(Message).where(Message.id == message.id).values(**values))
    db.commit()


def due_now(db, message: Message) -> None:
    """The retry's time has come (instead of waiting for the backoff)."""
    change(db, message, next_attempt_at=utcnow() - timedelta(seconds=1))


def ledger_references(sandbox) -> list[str]:
    return [m["reference"] for m in sandbox.ledger()["messages"]]


# --- provider errors ---------------------------------------------------------------------------


def test_a_rejected_token_fails_the_message_with_a_reason_that_never_shows_the_token(
        db, sandbox, session_factory, settings, caplog):
    token = "kol-live-7Qx93vB2pLw8"
    channel = create_channel(db, name="SMS Kolmeya", provider="sandbox", credentials={"token": f"Bearer {token}"},
                             settings={"base_url": sandbox.base_url})
    db.commit()
    sandbox.reset()
    message = queue(db, channel)
    with caplog.at_level(logging.DEBUG):
        assert dispatch(session_factory, settings, [message.id]) == []
    message = reload(db, message)
    assert message.status == "failed" and message.failed_at is not None
    assert "token" in message.status_reason and "401" in message.status_reason
    assert token not in message.status_reason
    assert token not in caplog.text
    assert message.attempts == 1
    assert sandbox.ledger()["messages"] == []
    # Not retried: a bad token does not fix itself.
    assert dispatch(session_factory, settings, [message.id]) == []
    assert reload(db, message).attempts == 1


def test_a_429_puts_the_message_back_until_the_limit_resets(db, channel, sandbox, session_factory, settings):
    sandbox.configure(fail_next=[429])
    message = queue(db, channel)
    before = utcnow()
    [(message_id, delay)] = dispatch(session_factory, settings, [message.id])
    assert message_id == message.id and delay > 0
    message = reload(db, message)
    assert message.status == "queued" and message.attempts == 1
    assert message.next_attempt_at > before
    assert "rate limit" in message.status_reason and "attempt 1 failed, retrying" in message.status_reason
    [call] = sandbox.ledger()["api_calls"]
    assert call["status_code"] == 429

    # Too early: nobody can claim it yet, nothing goes out.
    assert dispatch(session_factory, settings, [message.id]) == []
    assert reload(db, message).attempts == 1 and sandbox.ledger()["messages"] == []

    due_now(db, message)
    assert dispatch(session_factory, settings, [message.id]) == []
    message = reload(db, message)
    assert (message.status, message.attempts) == ("sent", 2) and message.provider_message_id
    assert ledger_references(sandbox) == [message.reference]


def test_the_sandbox_rate_limit_window_pushes_the_next_send_back(db, channel, sandbox, session_factory, settings):
    sandbox.configure(rate_limit=1, rate_limit_window_seconds=30)
    first, second = queue(db, channel, "11 90000-0001"), queue(db, channel, "11 90000-0002")
    assert dispatch(session_factory, settings, [first.id]) == []
    [(_, delay)] = dispatch(session_factory, settings, [second.id])
    assert 1 <= delay <= 31  # Retry-After, from X-RateLimit-Reset
    first, second = reload(db, first), reload(db, second)
    assert first.status == "sent"
    assert second.status == "queued" and "Retry in" in second.status_reason
    assert (second.next_attempt_at - utcnow()).total_seconds() > 0
    assert ledger_references(sandbox) == [first.reference]


@pytest.mark.parametrize("code", [500, 502, 503])
def test_a_server_error_is_retried(db, channel, sandbox, session_factory, settings, code):
    sandbox.configure(fail_next=[code])
    message = queue(db, channel)
    [(_, delay)] = dispatch(session_factory, settings, [message.id])
    assert delay == 5  # the first backoff step
    message = reload(db, message)
    assert message.status == "queued" and f"HTTP {code}" in message.status_reason
    due_now(db, message)
    dispatch(session_factory, settings, [message.id])
    message = reload(db, message)
    assert (message.status, message.attempts) == ("sent", 2)
    assert ledger_references(sandbox) == [message.reference]


def test_a_timeout_is_retried(db, channel, sandbox, session_factory, settings):
    update_channel(db, channel, settings={"timeout_seconds": 0.3})
    db.commit()
    sandbox.configure(fail_next=["timeout"], timeout_sleep_seconds=0.8)  # stalls past our timeout
    message = queue(db, channel)
    started = time.monotonic()
    [(_, delay)] = dispatch(session_factory, settings, [message.id])
    assert time.monotonic() - started < 0.8 and delay == 5
    message = reload(db, message)
    assert message.status == "queued" and message.attempts == 1
    assert "did not answer POST /sms/store within 0.3s" in message.status_reason
    # Like a slow Kolmeya, the sandbox took the message and answered too late.
    assert ledger_references(sandbox) == [message.reference]

    due_now(db, message)
    dispatch(session_factory, settings, [message.id])
    message = reload(db, message)
    # The retry is recognised as the same message: sent once, never twice.
    assert (message.status, message.attempts) == ("sent", 2)
    assert "earlier attempt" in message.status_reason
    assert ledger_references(sandbox) == [message.reference]
    # The stalled first request is logged only when its late answer goes out: wait for it, or it
    # lands in the next test's ledger.
    deadline = time.monotonic() + 5
    while len(sandbox.ledger()["api_calls"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [call["path"] for call in sandbox.ledger()["api_calls"]] == ["/api/v1/sms/store"] * 2


def test_it_gives_up_after_max_attempts(db, channel, sandbox, session_factory, settings):
    sandbox.configure(fail_next=[500] * MAX_ATTEMPTS)
    message = queue(db, channel)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        retry = dispatch(session_factory, settings, [message.id])
        assert reload(db, message).attempts == attempt
        if attempt < MAX_ATTEMPTS:
            assert [message_id for message_id, _ in retry] == [message.id]
            due_now(db, message)
        else:
            assert retry == []
    message = reload(db, message)
    assert message.status == "failed" and message.failed_at is not None
    assert message.status_reason.startswith(f"gave up after {MAX_ATTEMPTS} attempts: ")
    assert "HTTP 500" in message.status_reason
    assert sandbox.ledger()["messages"] == []
    assert dispatch(session_factory, settings, [message.id]) == []  # a failed message stays failed
    assert len(sandbox.ledger()["api_calls"]) == MAX_ATTEMPTS


def test_an_unreadable_answer_ends_the_message_with_a_reason(db, channel, sandbox, session_factory, settings):
    sandbox.configure(fail_next=["html"])
    message = queue(db, channel)
    dispatch(session_factory, settings, [message.id])
    message = reload(db, message)
    # Whether Kolmeya took it is unknown: failing it (visibly) is safer than sending it twice.
    assert message.status == "failed" and message.attempts == 1
    assert "not JSON" in message.status_reason


def test_a_retry_is_scheduled_from_the_request_that_queued_the_message(client, db, channel, sandbox, runtime,
                                                                       admin_headers):
    sandbox.configure(fail_next=[503])
    response = client.post("/api/sms", json={"to": "11 90000-0001", "body": "Oi"}, headers=admin_headers)
    assert response.status_code == 202, response.text
    message = db.get(Message, response.json()["id"])
    message = reload(db, message)
    assert message.status == "queued" and message.attempts == 1 and "HTTP 503" in message.status_reason
    assert len(runtime.jobs.huey.scheduled()) == 1  # the retry waits in the job queue


# --- what /sms/store answers -----------------------------------------------------------------------


def test_every_answer_of_sms_store_ends_in_a_definite_state(db, channel, sandbox, session_factory, settings):
    sandbox.configure(blacklist=["5511900000002"], not_disturb=["5511900000003"], duplicate_window_seconds=300)
    messages = {
        "valid": queue(db, channel, "11 90000-0001"),
        "blacklist": queue(db, channel, "11 90000-0002"),
        "not_disturb": queue(db, channel, "11 90000-0003"),
        "invalid": queue(db, channel, "+351 912 345 678"),  # a Portuguese mobile: Kolmeya sends to Brazil only
        "twin-1": queue(db, channel, "11 90000-0004", body="Mesmo texto"),
        "twin-2": queue(db, channel, "11 90000-0004", body="Mesmo texto"),
    }
    assert dispatch(session_factory, settings, [m.id for m in messages.values()]) == []
    got = {name: reload(db, m) for name, m in messages.items()}
    assert len(sandbox.ledger()["requests"]) == 1  # one request for the whole batch

    assert got["valid"].status == "sent" and got["valid"].provider_message_id
    assert (got["blacklist"].status, got["not_disturb"].status) == ("blocked", "blocked")
    assert "blacklist" in got["blacklist"].status_reason
    assert "Não Perturbe" in got["not_disturb"].status_reason
    assert (got["invalid"].status, got["invalid"].status_reason) == ("rejected", "Número inválido")
    twins = sorted([got["twin-1"], got["twin-2"]], key=lambda m: m.status)
    assert [m.status for m in twins] == ["rejected", "sent"]
    assert "duplicate" in twins[0].status_reason
    for name, message in got.items():
        assert message.status in DEFINITE, name
        assert message.attempts == 1, name
        if message.status != "sent":
            assert message.status_reason and message.failed_at is not None, name
            assert message.provider_message_id is None, name
    assert sorted(ledger_references(sandbox)) == sorted([got["valid"].reference, twins[1].reference])


def test_a_duplicate_on_the_first_attempt_is_not_counted_as_sent(db, channel, sandbox, session_factory, settings):
    sandbox.configure(duplicate_window_seconds=300)
    first = queue(db, channel, body="Lembrete")
    dispatch(session_factory, settings, [first.id])
    again = queue(db, channel, body="Lembrete")  # someone sends the same text again, a new message
    dispatch(session_factory, settings, [again.id])
    assert reload(db, first).status == "sent"
    again = reload(db, again)
    assert again.status == "rejected" and "duplicate" in again.status_reason


# --- sent once -------------------------------------------------------------------------------------


def test_a_message_dispatched_twice_is_sent_once(db, channel, sandbox, session_factory, settings):
    message = queue(db, channel)
    assert dispatch(session_factory, settings, [message.id]) == []
    assert dispatch(session_factory, settings, [message.id, message.id]) == []
    message = reload(db, message)
    assert (message.status, message.attempts) == ("sent", 1)
    assert ledger_references(sandbox) == [message.reference]
    assert len(sandbox.ledger()["api_calls"]) == 1


@pytest.fixture(params=BACKENDS)
def own_database(request, tmp_path_factory):
    """A database of our own, committed for real: concurrent workers need their own connections."""
    source = _migrated(request.param, tmp_path_factory)
    engine = next(source)
    yield engine
    next(source, None)


def test_concurrent_dispatches_of_one_message_send_it_once(own_database, sandbox, settings):
    sandbox.reset()
    factory = make_session_factory(own_database)
    with transaction(factory) as session:
        channel = create_channel(session, name="SMS Kolmeya", provider="sandbox",
                                 credentials={"token": SANDBOX_TOKEN}, settings={"base_url": sandbox.base_url})
        ids = [messaging.queue_outbound(session, channel=channel, phone=f"11 90000-000{i}", body="Oi",
                                        origin="api").id for i in range(1, 4)]
    workers = 6
    start = threading.Barrier(workers)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait()
            dispatch(factory, settings, ids)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    with transaction(factory) as session:
        rows = session.scalars(select(Message).where(Message.id.in_(ids)).order_by(Message.id)).all()
        assert [(m.status, m.attempts) for m in rows] == [("sent", 1)] * 3
        references = sorted(m.reference for m in rows)
    assert sorted(ledger_references(sandbox)) == references


# --- the sweeper -------------------------------------------------------------------------------------


def test_the_sweeper_hands_back_what_a_dead_worker_or_a_lost_job_left(db, channel):
    abandoned, busy, lost, waiting, fresh = (queue(db, channel, f"11 90000-000{i}") for i in range(1, 6))
    now = utcnow()
    long_ago = now - STUCK_SENDING - timedelta(minutes=1)
    change(db, abandoned, status="sending", attempts=1, queued_at=long_ago, claimed_at=long_ago)
    change(db, busy, status="sending", attempts=1, queued_at=long_ago, claimed_at=now - timedelta(minutes=1))
    change(db, lost, queued_at=now - STUCK_QUEUED - timedelta(minutes=1))
    change(db, waiting, queued_at=long_ago, next_attempt_at=now + timedelta(minutes=5))  # its retry is not due

    assert sweep(db) == sorted([abandoned.id, lost.id])
    db.commit()
    abandoned = reload(db, abandoned)
    assert abandoned.status == "queued" and "re-queued" in abandoned.status_reason
    assert [reload(db, m).status for m in (busy, waiting, fresh)] == ["sending", "queued", "queued"]
    assert sweep(db) == sorted([abandoned.id, lost.id])  # until a job picks them up, they stay listed


def test_a_retry_after_a_crash_is_recognised_as_a_duplicate_and_ends_sent(db, channel, sandbox, session_factory,
                                                                         settings):
    sandbox.configure(duplicate_window_seconds=300)  # same number and text within 5 minutes = duplicate
    message = queue(db, channel)
    # A worker claims the message, hands it to Kolmeya... and dies before writing down the answer.
    [claimed] = messaging.claim_for_dispatch(db, [message.id])
    provider = build_provider(channel, settings)
    try:
        provider.send([OutgoingSms(reference=claimed.reference, phone=claimed.phone_e164, body=claimed.body)],
                      status_webhook_url=None)
    finally:
        provider.close()
    db.commit()
    long_ago = utcnow() - STUCK_SENDING - timedelta(minutes=1)
    change(db, message, queued_at=long_ago, claimed_at=long_ago)
    assert ledger_references(sandbox) == [message.reference]

    stuck = sweep(db)
    db.commit()
    assert stuck == [message.id]
    assert dispatch(session_factory, settings, stuck) == []
    message = reload(db, message)
    assert (message.status, message.attempts) == ("sent", 2)
    assert "already had this message from an earlier attempt" in message.status_reason
    assert message.sent_at is not None
    assert ledger_references(sandbox) == [message.reference]  # Kolmeya has it once
