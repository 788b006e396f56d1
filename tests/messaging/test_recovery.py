"""What webhooks missed is recovered by polling Kolmeya, through the same idempotent path."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from contact_center.db import transaction, utcnow
from contact_center.messaging.models import Message
from contact_center.messaging.recovery import RECOVER_AFTER, poll_channel

OLD_ENOUGH = RECOVER_AFTER.total_seconds() + 60  # seconds ago: its webhook should have come by now


def inbound(live) -> list[Message]:
    with live.runtime.session_factory() as session:
        return list(session.scalars(select(Message).where(Message.direction == "in").order_by(Message.id)))


def send_and_deliver(live, phone: str) -> dict:
    sent = live.http.post("/api/sms", json={"to": phone, "body": "Sua fatura venceu"}, headers=live.headers).json()
    live.wait_for(lambda: live.message(sent["id"])["status"] == "delivered", what="delivered")
    return sent


def test_a_reply_whose_webhook_never_came_is_recovered_once(live):
    sent = send_and_deliver(live, "11 90000-0001")
    live.sandbox.reply("5511900000001", "Pode ligar amanhã", reference=sent["reference"], deliver=False,
                       ago_seconds=OLD_ENOUGH)
    assert inbound(live) == []

    report = poll_channel(live.runtime.session_factory, live.runtime.settings, live.channel_id)
    assert (report.replies_seen, report.replies_recovered) == (1, 1)
    [reply] = inbound(live)
    assert reply.body == "Pode ligar amanhã" and reply.origin == "poll"
    assert reply.conversation_id == sent["conversation_id"]

    again = poll_channel(live.runtime.session_factory, live.runtime.settings, live.channel_id)
    assert again.replies_recovered == 0
    assert len(inbound(live)) == 1


def test_a_reply_the_webhook_delivered_is_not_recorded_twice(live):
    sent = send_and_deliver(live, "11 90000-0002")
    # Old enough for the poller to look at it: recognised by its content, as the webhook's has no id
    live.sandbox.reply("5511900000002", "Já paguei", reference=sent["reference"], ago_seconds=OLD_ENOUGH)
    live.wait_for(lambda: len(inbound(live)) == 1, what="the webhook's reply")

    report = poll_channel(live.runtime.session_factory, live.runtime.settings, live.channel_id)
    assert (report.replies_seen, report.replies_waiting, report.replies_recovered) == (1, 0, 0)
    assert len(inbound(live)) == 1


def test_a_reply_whose_webhook_is_late_is_left_to_it(live):
    """Kolmeya lists a reply before its webhook reaches us. Recovering it then would store it twice:
    the flat webhook carries no id to recognise it by."""
    sent = send_and_deliver(live, "11 90000-0006")
    listed = live.sandbox.reply("5511900000006", "Vou pagar hoje", reference=sent["reference"], deliver=False)

    report = poll_channel(live.runtime.session_factory, live.runtime.settings, live.channel_id)
    assert (report.replies_seen, report.replies_waiting, report.replies_recovered) == (1, 1, 0)
    assert inbound(live) == []

    late = live.http.post(live.reply_url, json=listed["payload"])  # the webhook, as Kolmeya sends it
    assert late.status_code == 200 and late.json()["duplicate"] is False
    [reply] = inbound(live)
    assert (reply.body, reply.origin) == ("Vou pagar hoje", "webhook")


def test_a_message_stuck_in_sent_gets_its_final_status_from_kolmeya(live):
    sent = send_and_deliver(live, "11 90000-0003")
    # As if the delivery report had been lost: still 'sent', an hour after sending.
    with transaction(live.runtime.session_factory) as session:
        session.execute(update(Message).where(Message.id == sent["id"]).values(
            status="sent", delivered_at=None, sent_at=utcnow() - timedelta(hours=1)))
    assert live.message(sent["id"])["status"] == "sent"

    report = poll_channel(live.runtime.session_factory, live.runtime.settings, live.channel_id)
    assert (report.statuses_checked, report.statuses_recovered) == (1, 1)
    recovered = live.message(sent["id"])
    assert recovered["status"] == "delivered" and recovered["delivered_at"]


def test_the_same_words_from_another_customer_are_still_recovered(live):
    first = send_and_deliver(live, "11 90000-0004")
    second = send_and_deliver(live, "11 90000-0005")
    live.sandbox.reply("5511900000004", "Sim", reference=first["reference"])
    live.wait_for(lambda: len(inbound(live)) == 1, what="the first customer's reply")
    live.sandbox.reply("5511900000005", "Sim", reference=second["reference"], deliver=False, ago_seconds=OLD_ENOUGH)

    report = poll_channel(live.runtime.session_factory, live.runtime.settings, live.channel_id)
    assert report.replies_recovered == 1
    assert sorted(m.phone_e164 for m in inbound(live)) == ["+5511900000004", "+5511900000005"]
