"""Final states from Kolmeya's status report, for messages whose delivery callback never came:
against the real sandbox (its status callbacks all dropped), on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import event, insert, select, update

from contact_center.db import utcnow
from contact_center.messaging import service as messaging
from contact_center.messaging.dispatch import dispatch
from contact_center.messaging.models import Message
from contact_center.messaging.report_reconcile import reconcile_all, reconcile_channel
from contact_center.providers.base import OutgoingMessage, StatusUpdate
from contact_center.providers.kolmeya.client import KolmeyaClient
from contact_center.providers.kolmeya.errors import KolmeyaResponseError
from contact_center.providers.kolmeya.provider import SANDBOX_TOKEN, KolmeyaProvider, KolmeyaSettings
from contact_center.providers.kolmeya.sandbox import SandboxServer
from contact_center.translations import say_stored as said

# Every status callback is lost on the way, as Kolmeya's may be: only the report can tell.
LOST = {"status_delay_seconds": 0.01, "drop_status_callback_probability": 1.0, "duplicate_window_seconds": 0}


@pytest.fixture(scope="module")
def sandbox():
    with SandboxServer(SANDBOX_TOKEN, **LOST) as server:
        yield server


def queue(db, channel, phone: str, body: str = "Sua fatura vence amanhã") -> Message:
    message = messaging.queue_outbound(db, channel=channel, phone=phone, body=body, origin="api")
    db.commit()
    return message


def send(db, channel, sandbox, session_factory, settings, *phones: str) -> list[Message]:
    """Queue and dispatch one request carrying a message to each phone; wait until Kolmeya's own
    record of each is final. None of their callbacks reaches us."""
    messages = [queue(db, channel, phone, f"Fatura {n}") for n, phone in enumerate(phones)]
    dispatch(session_factory, settings, [m.id for m in messages])
    deadline = time.monotonic() + 5
    while any(m["status_code"] < 3 for m in sandbox.ledger()["messages"]) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert all(m["status_code"] >= 3 for m in sandbox.ledger()["messages"])
    assert all(c.get("dropped") for c in sandbox.ledger()["callbacks"])
    messages = reload(db, *messages)
    assert {m.status for m in messages} == {"sent"}
    return messages


def reload(db, *messages: Message) -> list[Message]:
    db.expire_all()
    return [db.get(Message, m.id) for m in messages]


def state(db, *messages: Message) -> list[tuple]:
    return [(m.status, m.status_reason, m.provider_status_code, m.delivered_at, m.failed_at)
            for m in reload(db, *messages)]


def test_messages_whose_callback_never_came_end_in_their_final_state(db, channel, sandbox, session_factory,
                                                                        settings):
    sandbox.configure(final_codes={"5511900000002": 4, "5511900000003": 6, "5511900000004": 5})
    messages = send(db, channel, sandbox, session_factory, settings,
                    "11 90000-0001", "11 90000-0002", "11 90000-0003", "11 90000-0004")

    report = reconcile_channel(session_factory, settings, channel.id)

    delivered, failed, expired, rejected = reload(db, *messages)
    assert [m.status for m in (delivered, failed, expired, rejected)] == ["delivered", "failed", "expired", "rejected"]
    assert [m.provider_status_code for m in (delivered, failed, expired, rejected)] == [3, 4, 6, 5]
    assert delivered.delivered_at is not None and failed.failed_at is not None
    assert said(delivered.status_reason, None) == "read from Kolmeya SANDBOX's status report: no callback brought it"
    assert said(failed.status_reason, None) == \
        "não entregue (read from Kolmeya SANDBOX's status report: no callback brought it)"
    assert said(failed.status_reason, "pt-BR") == \
        "não entregue (lido no relatório de status da Kolmeya SANDBOX: nenhum retorno automático trouxe)"
    assert (report.rows, report.matched, report.changed, report.ambiguous) == (4, 4, 4, 0)
    assert report.changes == {("sent", "delivered"): 1, ("sent", "failed"): 1, ("sent", "expired"): 1,
                              ("sent", "rejected"): 1}

    before = state(db, *messages)
    again = reconcile_channel(session_factory, settings, channel.id)
    assert again.changed == 0 and state(db, *messages) == before


def test_a_report_never_moves_a_state_backwards(db, channel, sandbox, session_factory, settings):
    delivered, waiting = send(db, channel, sandbox, session_factory, settings, "11 90000-0001", "11 90000-0002")
    # Our delivered one came by its callback; Kolmeya's report still says "enviado" of it, and
    # "tentando enviar" of the other.
    messaging.apply_status(db, channel.id, StatusUpdate("x:3", delivered.provider_message_id, None, "delivered", 3,
                                                        "entregue"))
    db.commit()
    sandbox.set_status(2, reference=delivered.reference)
    sandbox.set_status(1, reference=waiting.reference)
    before = state(db, delivered, waiting)

    report = reconcile_channel(session_factory, settings, channel.id)

    assert state(db, delivered, waiting) == before
    assert [m.status for m in reload(db, delivered, waiting)] == ["delivered", "sent"]
    assert (report.changed, report.unchanged) == (0, 1)


def test_two_messages_to_one_number_in_one_request_are_asked_about_not_guessed(db, channel, sandbox,
                                                                                 session_factory, settings):
    first, second, other = send(db, channel, sandbox, session_factory, settings,
                                "11 90000-0001", "11 90000-0001", "11 90000-0002")
    sandbox.set_status(4, reference=second.reference)  # the report's two rows for that number differ

    # A provider that cannot be asked about a request leaves them as they were.
    blind = BlindKolmeya(SANDBOX_TOKEN, KolmeyaSettings(base_url=sandbox.base_url))
    report = reconcile_channel(session_factory, settings, channel.id, provider=blind)
    assert [m.status for m in reload(db, first, second, other)] == ["sent", "sent", "delivered"]
    assert (report.ambiguous, report.asked, report.left, report.changed) == (2, 0, 2, 1)

    # Kolmeya's request status says which is which, exactly.
    report = reconcile_channel(session_factory, settings, channel.id)
    first, second = reload(db, first, second)
    assert (first.status, second.status) == ("delivered", "failed")
    assert "request status" in said(first.status_reason, None)
    assert (report.ambiguous, report.asked, report.left) == (2, 1, 0)


def test_two_messages_to_one_number_that_the_report_says_the_same_of_need_no_question(db, channel, sandbox,
                                                                                        session_factory, settings):
    first, second = send(db, channel, sandbox, session_factory, settings, "11 90000-0001", "11 90000-0001")
    report = reconcile_channel(session_factory, settings, channel.id)
    assert [m.status for m in reload(db, first, second)] == ["delivered", "delivered"]
    assert (report.ambiguous, report.asked) == (0, 0)


def test_without_a_request_in_common_rows_match_by_number_and_minute_only_when_one_message_can_be_it(
        db, channel, sandbox, session_factory, settings):
    """Should the report's job and lote not be the request's ids (nobody has said what they are),
    the number and the minute must do, and two messages to one number in the same minutes are
    left alone."""
    alone, twice_a, twice_b = send(db, channel, sandbox, session_factory, settings,
                                   "11 90000-0001", "11 90000-0002", "11 90000-0002")
    db.execute(update(Message).where(Message.id.in_([alone.id, twice_a.id, twice_b.id]))
               .values(provider_request_id="not-what-the-report-says", batch_reference=None))
    db.commit()

    report = reconcile_channel(session_factory, settings, channel.id)

    assert [m.status for m in reload(db, alone, twice_a, twice_b)] == ["delivered", "delivered", "delivered"]
    # ...the two to one number only because both rows say "entregue". Make them differ:
    sandbox.configure(final_codes={"5511900000004": 4})
    again = send(db, channel, sandbox, session_factory, settings, "11 90000-0004", "11 90000-0004")
    sandbox.set_status(3, reference=again[0].reference)
    db.execute(update(Message).where(Message.id.in_([m.id for m in again]))
               .values(provider_request_id=None, batch_reference=None))
    db.commit()
    report = reconcile_channel(session_factory, settings, channel.id)
    assert [m.status for m in reload(db, *again)] == ["sent", "sent"]
    assert (report.ambiguous, report.left) == (2, 2)


@pytest.mark.parametrize("mode", ["garbage", "html"])
def test_a_report_answering_garbage_is_a_clear_error_and_changes_nothing(db, channel, sandbox, session_factory,
                                                                        settings, mode):
    messages = send(db, channel, sandbox, session_factory, settings, "11 90000-0001", "11 90000-0002")
    before = state(db, *messages)
    sandbox.configure(fail_next=[mode], fail_only=["/sms/reports/statuses"])
    try:
        with pytest.raises(KolmeyaResponseError, match="/sms/reports/statuses"):
            reconcile_channel(session_factory, settings, channel.id)
    finally:
        sandbox.configure(fail_only=None)
    assert state(db, *messages) == before


def test_the_periodic_run_reads_only_channels_with_messages_waiting(db, channel, sandbox, session_factory, settings):
    assert reconcile_all(session_factory, settings) == []
    [message] = send(db, channel, sandbox, session_factory, settings, "11 90000-0001")
    [report] = reconcile_all(session_factory, settings)
    assert report.changed == 1 and reload(db, message)[0].status == "delivered"
    assert reconcile_all(session_factory, settings) == []
    calls = [c for c in sandbox.ledger()["api_calls"] if c["path"].endswith("/sms/reports/statuses")]
    assert len(calls) == 1


def test_a_large_send_is_reconciled_in_a_handful_of_statements(db, channel, sandbox, session_factory, settings,
                                                               db_connection):
    """3,000 messages (three requests): a few statements a thousand, not one or more a message."""
    conversation_id = queue(db, channel, "11 90000-0001").conversation_id
    client = KolmeyaClient(SANDBOX_TOKEN, base_url=sandbox.base_url)
    rows = []
    now = utcnow()
    for batch in range(3):
        outgoing = [OutgoingMessage(f"big-{batch}-{n}", f"5511{9_0000_0000 + batch * 1000 + n}", "Fatura")
                    for n in range(1000)]
        result = client.send(outgoing, reference=f"big-{batch}")
        for message in outgoing:
            rows.append({"reference": message.reference, "channel_id": channel.id, "conversation_id": conversation_id,
                         "direction": "out", "origin": "campaign", "phone": message.phone,
                         "phone_e164": "+" + message.phone, "body": "Fatura", "status": "sent", "segments": 1,
                         "attempts": 1, "provider_message_id": result.outcomes[message.reference].provider_message_id,
                         "provider_request_id": result.request_id, "batch_reference": f"big-{batch}",
                         "queued_at": now, "sent_at": now, "created_at": now, "updated_at": now})
    client.close()
    db.execute(insert(Message), rows)
    db.commit()
    deadline = time.monotonic() + 10
    while any(m["status_code"] < 3 for m in sandbox.ledger()["messages"]) and time.monotonic() < deadline:
        time.sleep(0.05)

    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db_connection, "before_cursor_execute", listener)
    started = time.monotonic()
    try:
        report = reconcile_channel(session_factory, settings, channel.id)
    finally:
        event.remove(db_connection, "before_cursor_execute", listener)
    elapsed = time.monotonic() - started
    assert report.changed == 3000, report
    assert db.scalar(select(Message.status).where(Message.reference == "big-2-999")) == "delivered"
    assert len(statements) < 60, (len(statements), elapsed)


class BlindKolmeya(KolmeyaProvider):
    """Kolmeya without the question by request id: what a provider that only has the report does."""

    request_statuses = None


def test_a_channel_without_a_status_report_is_skipped_saying_so(db, channel, sandbox, session_factory, settings):
    [message] = send(db, channel, sandbox, session_factory, settings, "11 90000-0001")
    report = reconcile_channel(session_factory, settings, channel.id, provider=NoReport())
    assert report.skipped == "Kolmeya SANDBOX has no status report to read"
    assert reload(db, message)[0].status == "sent"


class NoReport:
    """A provider that only sends (the protocol's minimum)."""

    max_batch = 1

    def close(self) -> None:
        pass


def test_a_campaign_that_ends_reconciles_its_own_messages_only(db, channel, sandbox, session_factory, settings):
    from contact_center.campaigns.models import Campaign
    from contact_center.messaging.report_reconcile import reconcile_campaign

    ours, other = send(db, channel, sandbox, session_factory, settings, "11 90000-0001", "11 90000-0002")
    campaign = Campaign(name="Cobrança", channel_id=channel.id, body_template="Fatura")
    db.add(campaign)
    db.flush()
    db.execute(update(Message).where(Message.id == ours.id).values(campaign_id=campaign.id))
    db.commit()

    report = reconcile_campaign(session_factory, settings, campaign.id)

    assert [m.status for m in reload(db, ours, other)] == ["delivered", "sent"]
    assert report.changed == 1
    with pytest.raises(LookupError):
        reconcile_campaign(session_factory, settings, campaign.id + 1)
