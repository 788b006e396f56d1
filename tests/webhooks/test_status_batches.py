"""What one status callback may cost: at most Kolmeya's own batch size, applied a set at a time,
and never in front of a customer's reply for longer than one slice."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import func, select

from contact_center.channels import service as channels
from contact_center.messaging import service as messaging
from contact_center.messaging.inbound import ReplyIn
from contact_center.messaging.models import Message
from contact_center.providers.base import InboundReply
from contact_center.providers.kolmeya.provider import SANDBOX_TOKEN
from contact_center.providers.kolmeya.webhooks import MAX_STATUSES_PER_CALLBACK
from contact_center.webhooks.models import WebhookEvent
from contact_center.webhooks.writer import IDLE_STATUS_SLICE, READ_TURN, STATUS_SLICE, StatusIn, WorkQueue


def status_batch(count: int, prefix: str = "kol-unknown", code: int = 3) -> bytes:
    items = [{"id": f"{prefix}-{n}", "reference": None, "status": "entregue", "status_code": code}
             for n in range(count)]
    return json.dumps({"id": "request-1", "reference": None, "messages": items}).encode()


def post_status(client, channel, raw: bytes):
    return client.post(f"/kolmeya/webhook/status?token={channel.webhook_secret}", content=raw,
                       headers={"Content-Type": "application/json"})


def stored_events(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(WebhookEvent))


def test_a_status_callback_larger_than_kolmeyas_batch_is_refused_and_stores_nothing(client, db, sms):
    db.commit()
    raw = status_batch(10_000)
    assert 500_000 < len(raw) < 1024 * 1024  # under the body limit: the item count is what is refused
    answer = post_status(client, sms, raw)
    assert answer.status_code == 413, answer.text
    error = answer.json()["error"]
    assert error["code"] == "payload_too_large" and error["field"] == "messages"
    assert "10,000 statuses" in error["message"] and f"{MAX_STATUSES_PER_CALLBACK:,}" in error["message"]
    assert stored_events(db) == 0


def test_a_full_batch_of_unknown_ids_is_taken_and_waits_as_pending(client, db, sms):
    db.commit()
    answer = post_status(client, sms, status_batch(MAX_STATUSES_PER_CALLBACK))
    assert answer.status_code == 200, answer.text
    assert answer.json()["pending"] == MAX_STATUSES_PER_CALLBACK
    assert stored_events(db) == MAX_STATUSES_PER_CALLBACK
    again = post_status(client, sms, status_batch(MAX_STATUSES_PER_CALLBACK))  # Kolmeya retries it
    assert again.json()["duplicates"] == MAX_STATUSES_PER_CALLBACK and again.json()["pending"] == 0
    assert stored_events(db) == MAX_STATUSES_PER_CALLBACK


def test_a_large_batch_is_applied_across_slices_to_the_messages_it_names(client, db, sms):
    sent = []
    for n in range(250):
        message = messaging.queue_outbound(db, channel=sms, phone=f"11 9{n:04d}-0001", body="Oi", origin="api")
        message.status, message.provider_message_id = "sent", f"kol-known-{n}"
        sent.append(message)
    db.commit()
    answer = post_status(client, sms, status_batch(250, prefix="kol-known"))
    assert answer.json()["applied"] == 250 > STATUS_SLICE
    db.expire_all()
    assert set(db.scalars(select(Message.status).where(Message.id.in_([m.id for m in sent])))) == {"delivered"}


def test_a_reply_is_written_before_the_rest_of_a_large_status_callback(session_factory, db):
    channel = channels.create_channel(db, name="SMS", provider="kolmeya_sandbox", credentials={"token": SANDBOX_TOKEN})
    db.commit()
    work = WorkQueue(session_factory)
    webhook_channel = channels.WebhookChannel(channel.id, channel.name, channel.provider, None)
    work.add("statuses", StatusIn("kolmeya_sandbox.status", webhook_channel, status_batch(MAX_STATUSES_PER_CALLBACK)))
    assert work.write_next() == []  # the first slice: the callback is not answered yet
    reply = InboundReply("queue-1", "+55 11 90000-0001", "Oi", datetime.now(UTC), None, None)
    work.add("reply", ReplyIn("kolmeya_sandbox.reply", channel.id, reply, "{}"))
    [(key, _item, (outcome, error))] = work.write_next()  # the reply's turn comes next
    assert (key, outcome.outcome, error) == ("reply", "applied", None)
    finished = []
    while work:
        finished += work.write_next()
    [(key, _item, (result, error))] = finished
    assert key == "statuses" and error is None
    assert result.count("pending") == MAX_STATUSES_PER_CALLBACK  # every slice counted in the one answer


def test_a_bad_item_late_in_a_large_batch_refuses_the_whole_callback(client, db, sms):
    message = messaging.queue_outbound(db, channel=sms, phone="11 90000-0001", body="Oi", origin="api")
    message.status, message.provider_message_id = "sent", "kol-known-0"
    db.commit()
    body = json.loads(status_batch(MAX_STATUSES_PER_CALLBACK, prefix="kol-known"))
    body["messages"][900]["status_code"] = "abc"  # read well after the first parts of the body
    answer = post_status(client, sms, json.dumps(body).encode())
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "messages[900].status_code"
    db.expire_all()
    assert db.get(Message, message.id).status == "sent"  # nothing of it was applied
    assert [event.outcome for event in db.scalars(select(WebhookEvent))] == ["rejected"]  # its raw copy


def test_the_writer_answers_every_callback_even_when_writing_itself_breaks():
    def broken_factory():
        raise RuntimeError("the database went away")

    work = WorkQueue(broken_factory)
    reply = InboundReply("broken-1", "+55 11 90000-0001", "Oi", datetime.now(UTC), None, None)
    work.add("reply", ReplyIn("kolmeya_sandbox.reply", 1, reply, "{}"))
    [(key, _item, (result, error))] = work.write_next_or_fail()
    assert key == "reply" and result is None and "send it again" in str(error)
    assert not work  # nothing left hanging


def test_with_no_reply_waiting_statuses_are_written_in_larger_slices(session_factory, db):
    channel = channels.create_channel(db, name="SMS", provider="kolmeya_sandbox", credentials={"token": SANDBOX_TOKEN})
    db.commit()
    work = WorkQueue(session_factory)
    webhook_channel = channels.WebhookChannel(channel.id, channel.name, channel.provider, None)
    work.add("statuses", StatusIn("kolmeya_sandbox.status", webhook_channel, status_batch(MAX_STATUSES_PER_CALLBACK)))
    turns = 0
    while work:
        work.write_next()
        turns += 1
    reading = MAX_STATUSES_PER_CALLBACK // READ_TURN
    assert turns <= reading + MAX_STATUSES_PER_CALLBACK // IDLE_STATUS_SLICE  # not one turn per STATUS_SLICE
    assert IDLE_STATUS_SLICE > STATUS_SLICE
