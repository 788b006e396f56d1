"""Dispatch against the real Kolmeya sandbox: provider errors, retries, the answers of /sms/store,
claims that make a second send impossible, sends whose outcome is unknown (asked about before
anything is sent again), and the sweeper that hands back lost work.

Every message must end in a definite state with a reason; none is lost, none is sent twice —
counted in the sandbox's ledger, with the sandbox's own de-duplication off.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from contact_center.channels.service import build_provider, create_channel, update_channel
from contact_center.db import make_session_factory, transaction, utcnow
from contact_center.messaging import service as messaging
from contact_center.messaging.dispatch import MAX_ATTEMPTS, STUCK_QUEUED, dispatch, sweep
from contact_center.messaging.models import Message
from contact_center.messaging.reconcile import check_unknown
from contact_center.providers.base import OutgoingMessage
from contact_center.providers.kolmeya.provider import SANDBOX_TOKEN
from contact_center.providers.kolmeya.sandbox import SandboxServer
from contact_center.translations import say_stored as said
from tests.conftest import race

# Status callbacks would go to an address nobody listens on; a long first step keeps them from firing.
# No de-duplication: whether something was sent twice must show in the ledger, not be hidden by it.
QUIET = {"status_delay_seconds": 60, "callback_attempts": 1, "duplicate_window_seconds": 0}
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


def nothing_later(followups) -> bool:
    return followups.retry == [] and followups.check == []


def claim_age_past_timeout(db, message, settings) -> None:
    """The claim is older than any request could last: its worker is gone."""
    long_ago = utcnow() - timedelta(seconds=settings.dispatch_claim_timeout_seconds + 60)
    change(db, message, queued_at=long_ago, claimed_at=long_ago)


# --- provider errors ---------------------------------------------------------------------------


def test_a_rejected_token_pauses_the_channel_with_a_reason_that_never_shows_the_token(
        db, sandbox, session_factory, settings, caplog):
    token = "kol-live-7Qx93vB2pLw8"
    channel = create_channel(db, name="SMS Kolmeya", provider="kolmeya_sandbox", credentials={"token": f"Bearer {token}"},
                             settings={"base_url": sandbox.base_url})
    db.commit()
    sandbox.reset()
    message = queue(db, channel)
    with caplog.at_level(logging.DEBUG):
        assert nothing_later(dispatch(session_factory, settings, [message.id]))
    message = reload(db, message)
    db.refresh(channel)
    # The message waits, not failed: the account is what is wrong, for every message of the channel.
    assert message.status == "queued" and "canal pausado" in said(message.status_reason, "pt-BR")
    assert "token" in said(message.status_reason, None) and "401" in said(message.status_reason, None)
    assert channel.paused_at is not None and "401" in said(channel.paused_reason, None)
    assert token not in message.status_reason and token not in channel.paused_reason
    assert token not in caplog.text
    assert message.attempts == 0  # refused for the account's sake: not an attempt of the message
    assert sandbox.ledger()["messages"] == []
    # Nothing is tried while the channel is paused: a bad token does not fix itself.
    assert nothing_later(dispatch(session_factory, settings, [message.id]))
    assert len([c for c in sandbox.ledger()["api_calls"] if c["path"].endswith("/sms/store")]) == 1


def test_a_429_puts_the_message_back_until_the_limit_resets(db, channel, sandbox, session_factory, settings):
    sandbox.configure(fail_next=[429])
    message = queue(db, channel)
    before = utcnow()
    later = dispatch(session_factory, settings, [message.id])
    [(message_id, delay)] = later.retry
    assert message_id == message.id and delay > 0 and later.check == []
    message = reload(db, message)
    assert message.status == "queued" and message.attempts == 1
    assert message.next_attempt_at > before
    reason = said(message.status_reason, None)
    assert "rate limit" in reason and "attempt 1 failed, retrying" in reason
    assert "a tentativa 1 falhou, nova tentativa" in said(message.status_reason, "pt-BR")
    [call] = sandbox.ledger()["api_calls"]
    assert call["status_code"] == 429

    # Too early: nobody can claim it yet, nothing goes out.
    assert nothing_later(dispatch(session_factory, settings, [message.id]))
    assert reload(db, message).attempts == 1 and sandbox.ledger()["messages"] == []

    due_now(db, message)
    assert nothing_later(dispatch(session_factory, settings, [message.id]))
    message = reload(db, message)
    assert (message.status, message.attempts) == ("sent", 2) and message.provider_message_id
    assert message.status_reason is None  # "attempt 1 failed, retrying" described a status it left
    assert ledger_references(sandbox) == [message.reference]


def test_the_sandbox_rate_limit_window_pushes_the_next_send_back(db, channel, sandbox, session_factory, settings):
    sandbox.configure(rate_limit=1, rate_limit_window_seconds=30)
    first, second = queue(db, channel, "11 90000-0001"), queue(db, channel, "11 90000-0002")
    assert nothing_later(dispatch(session_factory, settings, [first.id]))
    [(_, delay)] = dispatch(session_factory, settings, [second.id]).retry
    assert 1 <= delay <= 31  # Retry-After, from X-RateLimit-Reset
    first, second = reload(db, first), reload(db, second)
    assert first.status == "sent"
    assert second.status == "queued" and "Retry in" in said(second.status_reason, None)
    assert (second.next_attempt_at - utcnow()).total_seconds() > 0
    assert ledger_references(sandbox) == [first.reference]


@pytest.mark.parametrize("code", [500, 502, 503])
def test_a_server_error_leaves_the_outcome_unknown_until_the_provider_is_asked(db, channel, sandbox, session_factory,
                                                                               settings, code):
    sandbox.configure(fail_next=[code])
    message = queue(db, channel)
    later = dispatch(session_factory, settings, [message.id])
    # A 5xx may come after Kolmeya (or a proxy in front of it) did the work: not sent again yet.
    assert later.retry == [] and later.check == [(message.id, settings.dispatch_check_delay_seconds)]
    message = reload(db, message)
    assert message.status == "unknown" and f"HTTP {code}" in said(message.status_reason, None)
    assert "not sent again before the provider says" in said(message.status_reason, None)
    assert message.batch_reference
    assert nothing_later(dispatch(session_factory, settings, [message.id]))  # an unknown message is not claimed
    assert check_unknown(session_factory, settings).resend == []  # not asked before its time

    due_now(db, message)
    report = check_unknown(session_factory, settings)
    assert report.resend == [message.id] and report.confirmed == []
    message = reload(db, message)
    assert message.status == "queued" and "no record of the earlier attempt" in said(message.status_reason, None)
    assert nothing_later(dispatch(session_factory, settings, [message.id]))
    message = reload(db, message)
    assert (message.status, message.attempts, message.status_reason) == ("sent", 2, None)
    assert ledger_references(sandbox) == [message.reference]
    assert [call["path"] for call in sandbox.ledger()["api_calls"]] == [
        "/api/v1/sms/store", "/api/v1/sms/status/request", "/api/v1/sms/store"]


def test_a_timeout_is_never_resent_when_the_provider_has_the_message(db, channel, sandbox, session_factory,
                                                                      settings):
    update_channel(db, channel, settings={"timeout_seconds": 0.3})
    db.commit()
    sandbox.configure(fail_next=["timeout"], timeout_sleep_seconds=0.8)  # stalls past our timeout
    message = queue(db, channel)
    started = time.monotonic()
    later = dispatch(session_factory, settings, [message.id])
    assert time.monotonic() - started < 0.8 and later.check == [(message.id, settings.dispatch_check_delay_seconds)]
    message = reload(db, message)
    assert message.status == "unknown" and message.attempts == 1
    assert "did not answer POST /sms/store within 0.3s" in said(message.status_reason, None)
    # Like a slow Kolmeya, the sandbox took the message and answered too late.
    assert ledger_references(sandbox) == [message.reference]

    due_now(db, message)
    report = check_unknown(session_factory, settings)
    assert report.confirmed == [message.id] and report.resend == []
    message = reload(db, message)
    assert (message.status, message.attempts) == ("sent", 1)
    assert "confirmed it has this message" in said(message.status_reason, None)
    assert message.provider_message_id == sandbox.ledger()["messages"][0]["id"]
    assert ledger_references(sandbox) == [message.reference]  # once, never twice
    # The stalled first request is logged only when its late answer goes out: wait for it, or it
    # lands in the next test's ledger.
    deadline = time.monotonic() + 5
    while len(sandbox.ledger()["api_calls"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(call["path"] for call in sandbox.ledger()["api_calls"]) == [
        "/api/v1/sms/status/request", "/api/v1/sms/store"]


def test_a_connection_that_never_opened_is_retried_at_once(db, channel, sandbox, session_factory, settings):
    update_channel(db, channel, settings={"base_url": "http://127.0.0.1:9/api/v1"})  # nobody listens there
    db.commit()
    message = queue(db, channel)
    later = dispatch(session_factory, settings, [message.id])
    assert later.check == [] and [message_id for message_id, _ in later.retry] == [message.id]
    message = reload(db, message)
    assert message.status == "queued" and "Could not reach Kolmeya" in said(message.status_reason, None)


def test_it_gives_up_after_max_attempts(db, channel, sandbox, session_factory, settings):
    sandbox.configure(fail_next=[429] * MAX_ATTEMPTS)
    message = queue(db, channel)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        later = dispatch(session_factory, settings, [message.id])
        assert reload(db, message).attempts == attempt
        if attempt < MAX_ATTEMPTS:
            assert [message_id for message_id, _ in later.retry] == [message.id]
            due_now(db, message)
        else:
            assert nothing_later(later)
    message = reload(db, message)
    assert message.status == "failed" and message.failed_at is not None and message.status_inferred
    assert said(message.status_reason, None).startswith(f"gave up after {MAX_ATTEMPTS} attempts: ")
    assert "rate limit" in said(message.status_reason, None)
    assert sandbox.ledger()["messages"] == []
    assert nothing_later(dispatch(session_factory, settings, [message.id]))  # a failed message stays failed
    assert len(sandbox.ledger()["api_calls"]) == MAX_ATTEMPTS


def test_unknown_outcomes_give_up_after_max_attempts_when_the_provider_never_has_them(
        db, channel, sandbox, session_factory, settings):
    message = queue(db, channel)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        sandbox.configure(fail_next=[500])  # each send fails before the sandbox stores anything
        assert dispatch(session_factory, settings, [message.id]).check
        due_now(db, message)
        report = check_unknown(session_factory, settings)
        assert report.resend == ([message.id] if attempt < MAX_ATTEMPTS else [])
    message = reload(db, message)
    assert (message.status, message.attempts) == ("failed", MAX_ATTEMPTS) and message.status_inferred
    assert "no record of the earlier attempt" in said(message.status_reason, None)
    assert sandbox.ledger()["messages"] == []


def test_an_unreadable_answer_leaves_the_outcome_unknown(db, channel, sandbox, session_factory, settings):
    sandbox.configure(fail_next=["html"])
    message = queue(db, channel)
    assert dispatch(session_factory, settings, [message.id]).check
    message = reload(db, message)
    # Whether Kolmeya took it cannot be read from the answer: ask before sending again, never fail it.
    assert message.status == "unknown" and message.attempts == 1
    assert "not JSON" in said(message.status_reason, None)
    due_now(db, message)
    assert check_unknown(session_factory, settings).resend == [message.id]  # the sandbox never stored it
    dispatch(session_factory, settings, [message.id])
    assert reload(db, message).status == "sent"
    assert ledger_references(sandbox) == [message.reference]


def test_a_provider_that_cannot_answer_the_question_leaves_the_message_unknown(db, channel, sandbox,
                                                                               session_factory, settings):
    update_channel(db, channel, settings={"timeout_seconds": 0.3})
    db.commit()
    sandbox.configure(fail_next=["timeout", "html", 503], timeout_sleep_seconds=0.8)
    message = queue(db, channel)
    dispatch(session_factory, settings, [message.id])
    for _ in range(2):  # the question gets an HTML page, then a 503: still unknown, asked again later
        due_now(db, message)
        report = check_unknown(session_factory, settings)
        assert report.confirmed == report.resend == []
        [(message_id, wait)] = report.waiting
        assert message_id == message.id and wait >= settings.dispatch_check_delay_seconds
        message = reload(db, message)
        assert message.status == "unknown" and "asking the provider failed" in said(message.status_reason, None)
        assert message.next_attempt_at > utcnow()
    due_now(db, message)
    assert check_unknown(session_factory, settings).confirmed == [message.id]
    assert reload(db, message).status == "sent"
    assert ledger_references(sandbox) == [message.reference]


def test_a_message_the_answer_does_not_mention_is_asked_about(db, channel, sandbox, session_factory, settings):
    message = queue(db, channel)
    provider = build_provider(channel, settings)
    try:
        # The provider's answer lists nobody: the send's outcome for this message is unknown.
        result = provider.send([OutgoingMessage(message.reference, message.phone_e164, message.body)],
                               status_webhook_url=None, batch_reference="cc-batch-1")
    finally:
        provider.close()
    [claimed] = messaging.claim_for_dispatch(db, [message.id])
    db.commit()
    outcome = result.outcomes[message.reference]
    empty = type(outcome)(message.reference, False, None, "unknown", "Kolmeya's answer did not list this message")
    messaging.hand_over(db, [claimed.id], "cc-batch-1")
    messaging.apply_send_outcome(db, reload(db, message), empty, result.request_id, utcnow())
    db.commit()
    message = reload(db, message)
    assert message.status == "unknown"
    assert check_unknown(session_factory, settings).confirmed == [message.id]
    assert reload(db, message).status == "sent"


def test_a_retry_is_scheduled_from_the_request_that_queued_the_message(client, db, channel, sandbox, runtime,
                                                                       admin_headers):
    sandbox.configure(fail_next=[429])
    response = client.post("/api/sms", json={"to": "11 90000-0001", "body": "Oi"}, headers=admin_headers)
    assert response.status_code == 202, response.text
    message = reload(db, db.get(Message, response.json()["id"]))
    assert message.status == "queued" and message.attempts == 1 and "HTTP 429" in said(message.status_reason, None)
    assert len(runtime.jobs.huey.scheduled()) == 1  # the retry waits in the job queue


def test_a_question_to_the_provider_is_scheduled_after_an_unknown_outcome(client, db, channel, sandbox, runtime,
                                                                          admin_headers):
    sandbox.configure(fail_next=[503])
    response = client.post("/api/sms", json={"to": "11 90000-0001", "body": "Oi"}, headers=admin_headers)
    message = reload(db, db.get(Message, response.json()["id"]))
    assert message.status == "unknown" and "HTTP 503" in said(message.status_reason, None)
    [scheduled] = runtime.jobs.huey.scheduled()
    assert scheduled.name == "check_unknown" and scheduled.args == ([message.id],)


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
    assert nothing_later(dispatch(session_factory, settings, [m.id for m in messages.values()]))
    got = {name: reload(db, m) for name, m in messages.items()}
    assert len(sandbox.ledger()["requests"]) == 1  # one request for the whole batch

    assert got["valid"].status == "sent" and got["valid"].provider_message_id
    assert (got["blacklist"].status, got["not_disturb"].status) == ("blocked", "blocked")
    assert "blacklist" in said(got["blacklist"].status_reason, None)
    assert "Não Perturbe" in said(got["not_disturb"].status_reason, "pt-BR")
    assert (got["invalid"].status, said(got["invalid"].status_reason, None)) == ("rejected", "Número inválido")
    twins = sorted([got["twin-1"], got["twin-2"]], key=lambda m: m.status)
    assert [m.status for m in twins] == ["rejected", "sent"]
    assert "duplicate" in said(twins[0].status_reason, None)
    for name, message in got.items():
        assert message.status in DEFINITE, name
        assert message.attempts == 1, name
        if message.status != "sent":
            assert said(message.status_reason, None) and message.failed_at is not None, name
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
    assert again.status == "rejected" and "duplicate" in said(again.status_reason, None)


# --- sent once -------------------------------------------------------------------------------------


def test_a_message_dispatched_twice_is_sent_once(db, channel, sandbox, session_factory, settings):
    message = queue(db, channel)
    assert nothing_later(dispatch(session_factory, settings, [message.id]))
    assert nothing_later(dispatch(session_factory, settings, [message.id, message.id]))
    message = reload(db, message)
    assert (message.status, message.attempts) == ("sent", 1)
    assert ledger_references(sandbox) == [message.reference]
    assert len(sandbox.ledger()["api_calls"]) == 1


def test_concurrent_dispatches_of_one_message_send_it_once(own_database, sandbox, settings):
    sandbox.reset()
    factory = make_session_factory(own_database)
    with transaction(factory) as session:
        channel = create_channel(session, name="SMS Kolmeya", provider="kolmeya_sandbox",
                                 credentials={"token": SANDBOX_TOKEN}, settings={"base_url": sandbox.base_url})
        ids = [messaging.queue_outbound(session, channel=channel, phone=f"11 90000-000{i}", body="Oi",
                                        origin="api").id for i in range(1, 4)]
    race(lambda: dispatch(factory, settings, ids), timeout=30)
    with transaction(factory) as session:
        rows = session.scalars(select(Message).where(Message.id.in_(ids)).order_by(Message.id)).all()
        assert [(m.status, m.attempts) for m in rows] == [("sent", 1)] * 3
        references = sorted(m.reference for m in rows)
    assert sorted(ledger_references(sandbox)) == references


# --- the sweeper -------------------------------------------------------------------------------------


def test_the_sweeper_hands_back_what_a_dead_worker_or_a_lost_job_left(db, channel, settings):
    before_sending, while_out, busy, lost, waiting, fresh, unknown = (
        queue(db, channel, f"11 90000-000{i}") for i in range(1, 8))
    now = utcnow()
    long_ago = now - timedelta(seconds=settings.dispatch_claim_timeout_seconds + 60)
    # A worker claimed it and died before handing it over (no batch reference yet)...
    change(db, before_sending, status="sending", attempts=1, queued_at=long_ago, claimed_at=long_ago)
    # ... or while its request was out: the provider may have it.
    change(db, while_out, status="sending", attempts=1, queued_at=long_ago, claimed_at=long_ago,
           batch_reference="cc-batch-out")
    change(db, busy, status="sending", attempts=1, queued_at=long_ago, claimed_at=now - timedelta(minutes=1),
           batch_reference="cc-batch-busy")
    change(db, lost, queued_at=now - STUCK_QUEUED - timedelta(minutes=1))
    change(db, waiting, queued_at=long_ago, next_attempt_at=now + timedelta(minutes=5))  # its retry is not due
    change(db, unknown, status="unknown", attempts=1, claimed_at=long_ago, next_attempt_at=now - timedelta(seconds=1),
           batch_reference="cc-batch-unknown")

    swept = sweep(db, settings)
    db.commit()
    assert swept.send == sorted([before_sending.id, lost.id])
    assert swept.check == sorted([while_out.id, unknown.id])
    before_sending, while_out = reload(db, before_sending), reload(db, while_out)
    assert before_sending.status == "queued"
    assert "before handing it to the provider" in said(before_sending.status_reason, None)
    assert while_out.status == "unknown" and "asked whether it has it" in said(while_out.status_reason, None)
    assert [reload(db, m).status for m in (busy, waiting, fresh)] == ["sending", "queued", "queued"]
    again = sweep(db, settings)  # until a job picks them up, they stay listed
    assert (again.send, again.check) == (swept.send, swept.check)


def test_the_sweeper_never_takes_back_a_claim_while_its_request_may_still_be_out(db, channel, settings):
    # The channel's requests may last 4 × 100 s: a claim timeout of 5 minutes is not enough for them.
    update_channel(db, channel, settings={"timeout_seconds": 100})
    message = queue(db, channel)
    claimed_at = utcnow() - timedelta(seconds=settings.dispatch_claim_timeout_seconds + 30)
    change(db, message, status="sending", attempts=1, claimed_at=claimed_at, batch_reference="cc-batch-slow")
    assert sweep(db, settings).check == []
    assert reload(db, message).status == "sending"
    change(db, message, claimed_at=utcnow() - timedelta(seconds=4 * 100 + 10))
    assert sweep(db, settings).check == [message.id]


def test_a_crash_while_the_request_was_out_ends_sent_once(db, channel, sandbox, session_factory, settings):
    message = queue(db, channel)
    # A worker claims the message, hands it to Kolmeya... and dies before writing down the answer.
    [claimed] = messaging.claim_for_dispatch(db, [message.id])
    [handed] = messaging.hand_over(db, [claimed.id], "cc-batch-crash")
    db.commit()
    provider = build_provider(channel, settings)
    try:
        provider.send([OutgoingMessage(reference=handed.reference, phone=handed.phone_e164, body=handed.body)],
                      status_webhook_url=None, batch_reference="cc-batch-crash")
    finally:
        provider.close()
    claim_age_past_timeout(db, message, settings)
    assert ledger_references(sandbox) == [message.reference]

    swept = sweep(db, settings)
    db.commit()
    assert swept.check == [message.id] and swept.send == []
    assert reload(db, message).status == "unknown"
    assert nothing_later(dispatch(session_factory, settings, swept.send + swept.check))  # nothing to claim
    report = check_unknown(session_factory, settings, swept.check)
    assert report.confirmed == [message.id] and report.resend == []
    message = reload(db, message)
    assert (message.status, message.attempts) == ("sent", 1) and message.sent_at is not None
    assert ledger_references(sandbox) == [message.reference]  # Kolmeya has it once


def test_a_crash_before_the_request_went_out_sends_it_once(db, channel, sandbox, session_factory, settings):
    message = queue(db, channel)
    messaging.claim_for_dispatch(db, [message.id])
    messaging.hand_over(db, [message.id], "cc-batch-never-sent")  # written down, then the process died
    db.commit()
    claim_age_past_timeout(db, message, settings)
    swept = sweep(db, settings)
    db.commit()
    assert swept.check == [message.id]
    report = check_unknown(session_factory, settings, swept.check)
    assert report.resend == [message.id]  # Kolmeya has no request with that reference
    dispatch(session_factory, settings, report.resend)
    message = reload(db, message)
    assert (message.status, message.attempts) == ("sent", 2)
    assert ledger_references(sandbox) == [message.reference]


def test_the_provider_confirming_a_delivered_message_delivers_it(db, channel, sandbox, session_factory, settings):
    sandbox.configure(status_delay_seconds=0, callback_attempts=1)  # it walks to "entregue" at once
    update_channel(db, channel, settings={"timeout_seconds": 0.3})
    db.commit()
    sandbox.configure(fail_next=["timeout"], timeout_sleep_seconds=0.8)
    message = queue(db, channel)
    dispatch(session_factory, settings, [message.id])
    deadline = time.monotonic() + 5
    while sandbox.ledger()["messages"][0]["status_code"] != 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    due_now(db, message)
    check_unknown(session_factory, settings)
    message = reload(db, message)
    assert (message.status, message.provider_status_code) == ("delivered", 3)
    assert message.sent_at is not None and message.delivered_at is not None and message.status_reason is None
    sandbox.configure(**QUIET)


def test_an_inferred_failure_gives_way_to_the_provider_but_a_stated_one_does_not(db, channel):
    from contact_center.providers.base import StatusUpdate

    inferred, stated = queue(db, channel, "11 90000-0001"), queue(db, channel, "11 90000-0002")
    messaging.fail(inferred, "gave up after 5 attempts: HTTP 429", inferred=True)
    messaging.fail(stated, "Kolmeya refused the API token (HTTP 401)")
    db.commit()
    for message in (inferred, stated):
        delivered = StatusUpdate(f"kol-{message.id}:3", f"kol-{message.id}", message.reference, "delivered", 3,
                                 "entregue")
        messaging.apply_status(db, channel.id, delivered)
    db.commit()
    inferred, stated = reload(db, inferred), reload(db, stated)
    assert (inferred.status, inferred.status_inferred, inferred.status_reason) == ("delivered", False, None)
    assert inferred.failed_at is None and inferred.delivered_at is not None and inferred.sent_at is not None
    assert (stated.status, stated.delivered_at) == ("failed", None)
