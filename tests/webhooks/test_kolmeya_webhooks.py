"""Kolmeya callbacks through the real HTTP endpoints: every known payload, linking replies to the right
contact, idempotent and order-tolerant statuses, authentication, and opt-out by reply.

The channel's secret in the URL is what authenticates a callback (Kolmeya signs nothing); bodies are
posted as raw bytes, exactly as the provider sends them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from contact_center.channels.service import create_channel, update_channel
from contact_center.contacts.models import Contact
from contact_center.contacts.service import create_contact
from contact_center.db import utcnow
from contact_center.inbox.models import Conversation
from contact_center.messaging import service as messaging
from contact_center.messaging.dispatch import dispatch
from contact_center.messaging.models import Message
from contact_center.providers.kolmeya.provider import SANDBOX_TOKEN
from contact_center.providers.kolmeya.sandbox import SandboxServer
from contact_center.webhooks.desk import MAX_BODY_BYTES
from contact_center.webhooks.models import WebhookEvent
from contact_center.webhooks.service import apply_pending_for, retry_failed_events

FIXTURES = Path(__file__).parents[1] / "fixtures" / "kolmeya"
FIXTURE_FILES = sorted(FIXTURES.glob("*.json"))
JSON = {"Content-Type": "application/json"}


# --- helpers -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox():
    # Channels point here so that nothing a test triggers can reach the real Kolmeya; no callbacks
    # fire within a test (the first status step waits a minute).
    with SandboxServer(SANDBOX_TOKEN, status_delay_seconds=60) as server:
        yield server


def post(client, channel, kind: str, raw: bytes | str, *, token: str | None = "valid", headers=None):
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    query = "" if token is None else f"?token={channel.webhook_secret if token == 'valid' else token}"
    return client.post(f"/kolmeya/webhook/{kind}{query}", content=raw, headers={**JSON, **(headers or {})})


def as_json(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def fixture_body(fixture: dict) -> bytes:
    """The seed's payloads byte for byte; the others as Kolmeya would serialise them."""
    return fixture["body"].encode("utf-8") if "body" in fixture else as_json(fixture["payload"])


def count(db, model) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(model))


def events(db) -> list[WebhookEvent]:
    db.expire_all()
    return list(db.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))


def inbound(db) -> list[Message]:
    db.expire_all()
    return list(db.scalars(select(Message).where(Message.direction == "in").order_by(Message.id)))


def fresh(db, model, id_):
    db.expire_all()
    return db.get(model, id_)


def assert_nothing_stored(db) -> None:
    assert count(db, Message) == 0
    assert count(db, Conversation) == 0


def contact(db, name: str, mobile: str) -> Contact:
    created = create_contact(db, {"name": name, "mobile": mobile})
    db.commit()
    return created


def sent_message(db, channel, phone: str, *, to: Contact | None = None, provider_id: str | None = None,
                 body: str = "Sua fatura vence amanhã") -> Message:
    """An outbound SMS as dispatch leaves it: sent, with Kolmeya's id."""
    message = messaging.queue_outbound(db, channel=channel, phone=phone, body=body, contact=to, origin="api")
    message.status, message.sent_at, message.attempts = "sent", utcnow(), 1
    message.provider_message_id = provider_id
    db.commit()
    return message


def flat_reply(phone: str, text: str, reference: str | None = None, data: str = "2025-11-15 14:30:00") -> bytes:
    payload = {"phone": phone, "message": text, "data": data}
    if reference is not None:
        payload["reference"] = reference
    return as_json(payload)


def status(provider_id: str | None, reference: str | None, code: int, text: str, phone: str | None = None) -> dict:
    item: dict[str, Any] = {"id": provider_id, "reference": reference, "status": text, "status_code": code}
    if phone:
        item["phone"] = phone
    return item


def as_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


# --- one test per payload fixture ----------------------------------------------------------------


def test_every_fixture_is_covered():
    kinds = {json.loads(p.read_text("utf-8"))["kind"] for p in FIXTURE_FILES}
    assert len(FIXTURE_FILES) >= 24 and kinds == {"reply", "status"}


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=[p.stem for p in FIXTURE_FILES])
def test_fixture_through_the_endpoint(client, db, channel, path):
    fixture = json.loads(path.read_text("utf-8"))
    raw = fixture_body(fixture)
    response = post(client, channel, fixture["kind"], raw)

    if "error" in fixture:
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_payload"
        assert fixture["error"]["contains"] in error["message"]
        if fixture["error"]["field"]:
            assert error["field"] == fixture["error"]["field"]
            assert error["message"].startswith(fixture["error"]["field"] + ":"), error["message"]
        assert_nothing_stored(db)
        stored = events(db)
        assert [(e.outcome, e.payload, e.channel_id) for e in stored] == [("rejected", raw.decode(), channel.id)]
        assert stored[0].detail == error["message"]
        return

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status"] == "success"
    if fixture["kind"] == "reply":
        expect = fixture["expect"]
        message = fresh(db, Message, answer["sms_id"])
        assert answer["duplicate"] is False
        assert (message.direction, message.status, message.body) == ("in", "received", expect["text"])
        assert message.phone_e164 == "+" + expect["phone"]
        assert as_utc(message.received_at).isoformat() == expect["received_at"]
        assert message.contact_id is None  # nobody owns these numbers in this test
        conversation = db.get(Conversation, message.conversation_id)
        assert (conversation.channel_id, conversation.unread_count) == (channel.id, 1)
        [event] = events(db)
        assert (event.outcome, event.external_id, event.message_id) == ("applied", expect["external_id"], message.id)
        assert event.payload == raw.decode()
    else:
        # No message has these ids yet: every status waits, stored, for its message to appear.
        assert answer["pending"] == len(fixture["expect"]) and answer["applied"] == 0
        stored = events(db)
        assert [e.external_id for e in stored] == [s["external_id"] for s in fixture["expect"]]
        assert {e.outcome for e in stored} == {"pending"}
        assert [(e.match_provider_id, e.match_reference) for e in stored] == [
            (s["provider_message_id"], s["reference"]) for s in fixture["expect"]]
        assert_nothing_stored(db)


# --- replies: which contact, which conversation --------------------------------------------------


def test_flat_reply_with_our_reference_lands_on_the_conversation_of_the_message_it_answers(client, db, channel):
    maria = contact(db, "Maria Souza", "(11) 90000-0001")
    outbound = sent_message(db, channel, "+55 11 90000-0001", to=maria, provider_id="kol-0001")
    response = post(client, channel, "reply", flat_reply("5511900000001", "Já paguei", outbound.reference))
    assert response.status_code == 200, response.text
    [reply] = inbound(db)
    assert response.json()["sms_id"] == reply.id
    assert (reply.contact_id, reply.conversation_id, reply.in_reply_to_id) == (maria.id, outbound.conversation_id,
                                                                               outbound.id)
    assert count(db, Conversation) == 1
    conversation = fresh(db, Conversation, outbound.conversation_id)
    assert conversation.unread_count == 1 and conversation.last_inbound_at is not None


def test_nested_reply_is_linked_by_the_message_it_answers_first(client, db, channel):
    # Two contacts share a family phone; the phone alone picks the oldest (Ana). The reply answers the
    # SMS sent to Bruno, so it is Bruno's.
    ana = contact(db, "Ana Lima", "11 90000-0001")
    bruno = contact(db, "Bruno Lima", "+55 11 90000-0001")
    outbound = sent_message(db, channel, "11 90000-0001", to=bruno, provider_id="kol-bruno")
    nested = {"reply": {"id": "rp-1", "reply": "Oi, sou o Bruno", "received_at": "15/11/2025 14:30:00",
                        "message": {"id": "kol-bruno", "reference": outbound.reference, "phone": "5511900000001",
                                    "content": outbound.body}}}
    response = post(client, channel, "reply", as_json(nested))
    assert response.status_code == 200, response.text
    flat = post(client, channel, "reply", flat_reply("5511900000001", "E eu sou a Ana"))
    assert flat.status_code == 200, flat.text

    by_reference, by_phone = inbound(db)
    assert (by_reference.contact_id, by_reference.in_reply_to_id) == (bruno.id, outbound.id)
    assert by_reference.provider_message_id == "rp-1"
    assert (by_phone.contact_id, by_phone.in_reply_to_id) == (ana.id, None)
    assert by_reference.conversation_id == by_phone.conversation_id == outbound.conversation_id


def test_nested_reply_with_only_kolmeya_message_id_finds_the_message(client, db, channel):
    maria = contact(db, "Maria Souza", "11 90000-0001")
    outbound = sent_message(db, channel, "11 90000-0001", to=maria, provider_id="kol-77")
    nested = {"reply": {"id": "rp-2", "reply": "Ok", "received_at": "15/11/2025 14:30:00",
                        "message": {"id": "kol-77", "phone": "5511900000001"}}}
    assert post(client, channel, "reply", as_json(nested)).status_code == 200
    [reply] = inbound(db)
    assert (reply.contact_id, reply.in_reply_to_id) == (maria.id, outbound.id)


def test_reply_in_the_12_digit_form_finds_the_contact_by_phone_identity(client, db, channel):
    maria = contact(db, "Maria Souza", "(48) 99191-0234")
    response = post(client, channel, "reply", flat_reply("554891910234", "Oi"))
    assert response.status_code == 200, response.text
    [reply] = inbound(db)
    assert reply.contact_id == maria.id
    conversation = fresh(db, Conversation, reply.conversation_id)
    # A conversation was opened for her, keyed on the 13-digit form so later SMS share it.
    assert (conversation.contact_id, conversation.phone_key, conversation.channel_id) == (
        maria.id, "+5548991910234", channel.id)
    outbound = sent_message(db, channel, "(48) 99191-0234", to=maria)
    assert outbound.conversation_id == conversation.id
    assert count(db, Conversation) == 1


def test_reply_from_an_unknown_number_is_kept_without_a_contact(client, db, channel):
    contact(db, "Maria Souza", "11 90000-0001")
    response = post(client, channel, "reply", flat_reply("5511900000009", "Quem é?"))
    assert response.status_code == 200, response.text
    [reply] = inbound(db)
    assert reply.contact_id is None and reply.phone_e164 == "+5511900000009"
    conversation = fresh(db, Conversation, reply.conversation_id)
    assert conversation.contact_id is None and conversation.phone_e164 == "+5511900000009"


def test_reply_quoting_a_message_sent_to_another_number_stays_with_the_phone_owner(client, db, channel):
    # A reference must not pull a reply into somebody else's conversation: the phone decides.
    ana = contact(db, "Ana Lima", "11 90000-0001")
    bruno = contact(db, "Bruno Costa", "11 90000-0002")
    to_bruno = sent_message(db, channel, "11 90000-0002", to=bruno)
    response = post(client, channel, "reply", flat_reply("5511900000001", "Oi", to_bruno.reference))
    assert response.status_code == 200, response.text
    [reply] = inbound(db)
    assert reply.contact_id == ana.id and reply.in_reply_to_id is None
    conversation = fresh(db, Conversation, reply.conversation_id)
    assert conversation.contact_id == ana.id and conversation.id != to_bruno.conversation_id


def test_the_same_reply_replayed_is_stored_once(client, db, channel):
    raw = flat_reply("5511900000001", "Pode ligar amanhã", data="2025-11-15 09:00:00")
    answers = [post(client, channel, "reply", raw) for _ in range(4)]
    assert [a.status_code for a in answers] == [200] * 4
    assert [a.json()["status"] for a in answers] == ["success"] * 4
    assert [a.json()["duplicate"] for a in answers] == [False, True, True, True]
    [reply] = inbound(db)
    assert answers[0].json()["sms_id"] == reply.id
    assert len(events(db)) == 1
    assert fresh(db, Conversation, reply.conversation_id).unread_count == 1


def test_reply_endpoint_answers_the_seed_shape_with_the_inbound_message_id(client, db, channel):
    # Seed "Teste 5": {"status": "success", "sms_id": <id>}
    fixture = json.loads((FIXTURES / "reply_seed_resposta_automatica.json").read_text("utf-8"))
    response = post(client, channel, "reply", fixture["body"])
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status"] == "success" and isinstance(answer["sms_id"], int)
    message = fresh(db, Message, answer["sms_id"])
    assert (message.direction, message.body) == ("in", "Teste de webhook - resposta automática")


def test_reply_with_a_phone_that_is_not_a_number_is_rejected_and_stores_nothing(client, db, channel):
    response = post(client, channel, "reply", flat_reply("123", "Oi"))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == "phone" and "'123'" in error["message"]
    assert_nothing_stored(db)
    assert [e.outcome for e in events(db)] == ["rejected"]
    # Sent again, it is refused again (not mistaken for an already-handled reply).
    again = post(client, channel, "reply", flat_reply("123", "Oi"))
    assert again.status_code == 422 and len(events(db)) == 1


# --- statuses ------------------------------------------------------------------------------------


def test_flat_status_moves_the_message_to_delivered(client, db, channel):
    outbound = sent_message(db, channel, "11 90000-0001", provider_id="kol-1")
    response = post(client, channel, "status", as_json(status("kol-1", outbound.reference, 3, "entregue",
                                                               "5511900000001")))
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "success", "applied": 1, "pending": 0, "ignored": 0, "duplicates": 0}
    message = fresh(db, Message, outbound.id)
    assert (message.status, message.provider_status_code) == ("delivered", 3)
    assert message.delivered_at is not None
    [event] = events(db)
    assert (event.outcome, event.message_id) == ("applied", outbound.id)


def test_batch_status_applies_each_message(client, db, channel):
    first = sent_message(db, channel, "11 90000-0001", provider_id="kol-a")
    second = sent_message(db, channel, "11 90000-0002", provider_id="kol-b")
    batch = {"id": "req-1", "reference": None,
             "messages": [status("kol-a", first.reference, 3, "entregue"),
                          status("kol-b", second.reference, 4, "não entregue")]}
    response = post(client, channel, "status", as_json(batch))
    assert response.status_code == 200, response.text
    assert response.json()["applied"] == 2
    assert fresh(db, Message, first.id).status == "delivered"
    failed = fresh(db, Message, second.id)
    assert (failed.status, failed.status_reason, failed.delivered_at) == ("failed", "não entregue", None)
    assert failed.failed_at is not None
    assert [e.outcome for e in events(db)] == ["applied", "applied"]


def test_a_status_matched_by_our_reference_alone_gets_kolmeyas_id(client, db, channel):
    outbound = sent_message(db, channel, "11 90000-0001")
    response = post(client, channel, "status", as_json({"reference": outbound.reference, "status_code": 2}))
    assert response.json()["applied"] == 0 and response.json()["ignored"] == 1  # already sent
    response = post(client, channel, "status", as_json(status("kol-9", outbound.reference, 3, "entregue")))
    assert response.json()["applied"] == 1
    message = fresh(db, Message, outbound.id)
    assert (message.status, message.provider_message_id) == ("delivered", "kol-9")


def test_duplicate_status_callbacks_change_the_message_once(client, db, channel):
    outbound = sent_message(db, channel, "11 90000-0001", provider_id="kol-1")
    raw = as_json(status("kol-1", outbound.reference, 3, "entregue"))
    first = post(client, channel, "status", raw).json()
    delivered_at = fresh(db, Message, outbound.id).delivered_at
    time.sleep(0.01)
    replays = [post(client, channel, "status", raw).json() for _ in range(3)]
    assert first["applied"] == 1
    assert [r["duplicates"] for r in replays] == [1, 1, 1] and {r["applied"] for r in replays} == {0}
    message = fresh(db, Message, outbound.id)
    assert message.status == "delivered" and message.delivered_at == delivered_at
    assert len(events(db)) == 1


def test_out_of_order_statuses_end_delivered(client, db, channel):
    outbound = sent_message(db, channel, "11 90000-0001", provider_id="kol-1")
    outbound_sent_at = outbound.sent_at
    delivered = post(client, channel, "status", as_json(status("kol-1", outbound.reference, 3, "entregue")))
    delivered_at = fresh(db, Message, outbound.id).delivered_at
    late = post(client, channel, "status", as_json(status("kol-1", outbound.reference, 2, "enviado")))
    assert delivered.json()["applied"] == 1
    assert late.status_code == 200 and late.json()["ignored"] == 1
    message = fresh(db, Message, outbound.id)
    assert (message.status, message.provider_status_code) == ("delivered", 3)
    assert message.delivered_at == delivered_at is not None
    assert as_utc(message.sent_at) == as_utc(outbound_sent_at)
    assert [e.outcome for e in events(db)] == ["applied", "ignored"]


def test_a_delivery_report_can_beat_the_send_answer(client, db, channel):
    queued = messaging.queue_outbound(db, channel=channel, phone="11 90000-0001", body="Oi", origin="api")
    queued.status = "sending"
    db.commit()
    response = post(client, channel, "status", as_json({"reference": queued.reference, "status_code": 3}))
    assert response.json()["applied"] == 1
    message = fresh(db, Message, queued.id)
    assert message.status == "delivered" and message.sent_at is not None and message.delivered_at is not None


@pytest.mark.parametrize("code,text,state", [(4, "não entregue", "failed"), (5, "rejeitado", "rejected"),
                                             (6, "expirada", "expired")])
def test_a_final_failure_is_final(client, db, channel, code, text, state):
    outbound = sent_message(db, channel, "11 90000-0001", provider_id="kol-1")
    failed = post(client, channel, "status", as_json(status("kol-1", outbound.reference, code, text)))
    assert failed.json()["applied"] == 1
    message = fresh(db, Message, outbound.id)
    assert (message.status, message.status_reason, message.provider_status_code) == (state, text, code)
    failed_at = message.failed_at
    assert failed_at is not None

    later = post(client, channel, "status", as_json(status("kol-1", outbound.reference, 3, "entregue")))
    assert later.status_code == 200 and later.json()["ignored"] == 1
    message = fresh(db, Message, outbound.id)
    assert (message.status, message.status_reason, message.delivered_at) == (state, text, None)
    assert message.failed_at == failed_at


def test_a_status_for_an_unknown_message_waits_until_the_message_appears(client, db, channel):
    by_reference = post(client, channel, "status", as_json(status("kol-late", "cc-late", 3, "entregue")))
    by_kolmeya_id = post(client, channel, "status", as_json(status("kol-late-2", None, 4, "não entregue")))
    assert by_reference.json()["pending"] == 1 and by_kolmeya_id.json()["pending"] == 1
    assert {(e.outcome, e.message_id) for e in events(db)} == {("pending", None)}

    first = messaging.queue_outbound(db, channel=channel, phone="11 90000-0001", body="Oi", origin="api")
    first.reference, first.status = "cc-late", "sent"
    second = sent_message(db, channel, "11 90000-0002", provider_id="kol-late-2")
    db.flush()
    assert apply_pending_for(db, first) == 1
    assert apply_pending_for(db, second) == 1
    db.commit()

    one, two = fresh(db, Message, first.id), fresh(db, Message, second.id)
    assert (one.status, one.provider_message_id) == ("delivered", "kol-late")
    assert (two.status, two.status_reason) == ("failed", "não entregue")
    assert [(e.outcome, e.message_id) for e in events(db)] == [("applied", first.id), ("applied", second.id)]
    assert apply_pending_for(db, first) == 0  # nothing left to apply


def test_a_pending_status_is_not_applied_to_a_message_of_another_channel(client, db, channel):
    post(client, channel, "status", as_json(status(None, "cc-shared", 3, "entregue")))
    other = create_channel(db, name="Other", provider="kolmeya_sandbox", credentials={"token": SANDBOX_TOKEN})
    message = messaging.queue_outbound(db, channel=other, phone="11 90000-0001", body="Oi", origin="api")
    message.reference, message.status = "cc-shared", "sent"
    db.flush()
    assert apply_pending_for(db, message) == 0
    assert fresh(db, Message, message.id).status == "sent"


def test_the_sweeper_applies_pending_statuses_whose_message_appeared(client, db, channel):
    post(client, channel, "status", as_json(status("kol-s", None, 3, "entregue")))
    message = sent_message(db, channel, "11 90000-0001", provider_id="kol-s")
    assert retry_failed_events(db) == 1
    db.commit()
    assert fresh(db, Message, message.id).status == "delivered"
    assert [e.outcome for e in events(db)] == ["applied"]


def test_a_status_unmatched_for_a_day_stops_being_retried(client, db, channel):
    post(client, channel, "status", as_json(status("kol-foreign", None, 3, "entregue")))
    post(client, channel, "status", as_json(status("kol-recent", None, 3, "entregue")))
    [old, recent] = events(db)
    old.received_at = old.received_at - timedelta(hours=25)
    db.commit()
    assert retry_failed_events(db) == 0
    db.commit()
    db.expire_all()
    assert [(e.outcome, e.detail) for e in events(db)] == [
        ("unmatched", "no message of ours has this id or reference"), ("pending", None)]
    # A message that appears later still picks up the recent one, not the abandoned one.
    message = sent_message(db, channel, "11 90000-0001", provider_id="kol-recent")
    assert retry_failed_events(db) == 1
    assert fresh(db, Message, message.id).status == "delivered"


def test_dispatch_applies_a_status_that_arrived_before_the_send_answer(client, db, channel, sandbox,
                                                                       session_factory, settings):
    response = post(client, channel, "status", as_json({"reference": "cc-early", "status": "entregue",
                                                       "status_code": 3}))
    assert response.json()["pending"] == 1
    message = messaging.queue_outbound(db, channel=channel, phone="11 90000-0001", body="Oi", origin="api")
    message.reference = "cc-early"
    db.commit()

    later = dispatch(session_factory, settings, [message.id])
    assert later.retry == later.check == []
    message = fresh(db, Message, message.id)
    assert message.status == "delivered" and message.sent_at and message.delivered_at
    [sent] = sandbox.ledger()["messages"]
    assert message.provider_message_id == sent["id"] and sent["reference"] == "cc-early"
    assert [e.outcome for e in events(db)] == ["applied"]


# --- authentication and bad input ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["reply", "status"])
@pytest.mark.parametrize("token", [None, "", "not-the-channel-secret"])
def test_a_callback_without_the_channel_token_is_refused_and_stores_nothing(client, db, channel, kind, token):
    response = post(client, channel, kind, flat_reply("5511900000001", "Oi") if kind == "reply"
                    else as_json(status("kol-1", "x", 3, "entregue")), token=token)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "not_authenticated"
    assert channel.webhook_secret not in response.text
    assert events(db) == []
    assert_nothing_stored(db)


def test_another_channels_secret_authenticates_that_channel_only(client, db, channel):
    # Secrets are per channel: another channel's secret authenticates that channel only.
    other = create_channel(db, name="Other", provider="kolmeya_sandbox", credentials={"token": SANDBOX_TOKEN})
    db.commit()
    response = post(client, channel, "reply", flat_reply("5511900000001", "Oi"), token=other.webhook_secret)
    assert response.status_code == 200
    [reply] = inbound(db)
    assert reply.channel_id == other.id


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_one_megabyte_is_refused(client, db, channel, streamed):
    big = b'{"phone": "5511900000001", "message": "' + b"x" * MAX_BODY_BYTES + b'"}'
    content = (big[i:i + 65536] for i in range(0, len(big), 65536)) if streamed else big
    response = client.post(f"/kolmeya/webhook/reply?token={channel.webhook_secret}", content=content, headers=JSON)
    assert response.status_code == 413, response.text
    assert "1048576 bytes" in response.json()["error"]["message"]
    assert events(db) == []
    assert_nothing_stored(db)


def test_a_body_of_exactly_one_megabyte_is_accepted(client, db, channel):
    head, tail = b'{"phone": "5511900000001", "message": "', b'"}'
    raw = head + b"x" * (MAX_BODY_BYTES - len(head) - len(tail)) + tail
    assert len(raw) == MAX_BODY_BYTES
    response = post(client, channel, "reply", raw)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("kind", ["reply", "status"])
@pytest.mark.parametrize("raw", [b'{"phone": "5511900000001", "message": ', b"", b"phone=5511900000001&message=Oi",
                                 b'\xff\xfe{"phone": 1}'], ids=["truncated", "empty", "form", "not-utf8"])
def test_invalid_json_is_refused_with_a_clear_message(client, db, channel, kind, raw):
    response = post(client, channel, kind, raw)
    assert response.status_code in (400, 422), response.text
    error = response.json()["error"]
    assert "not valid JSON" in error["message"]
    assert_nothing_stored(db)
    assert [e.outcome for e in events(db)] == ["rejected"]


@pytest.mark.parametrize("kind", ["reply", "status"])
def test_an_array_instead_of_an_object_is_a_422(client, db, channel, kind):
    response = post(client, channel, kind, b'[{"phone": "5511900000001", "message": "Oi"}]')
    assert response.status_code == 422, response.text
    assert "must be a JSON object, got a list" in response.json()["error"]["message"]
    assert_nothing_stored(db)


@pytest.mark.parametrize("field,payload", [
    ("id", {"id": "k" * 200, "status_code": 3}),
    ("reference", {"id": "kol-1", "reference": "r" * 200, "status_code": 3}),
])
def test_an_overlong_status_id_is_refused_on_every_database(client, db, channel, field, payload):
    response = post(client, channel, "status", as_json(payload))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert [e.outcome for e in events(db)] == ["rejected"]


def test_an_overlong_reply_id_is_refused_on_every_database(client, db, channel):
    nested = {"reply": {"id": "r" * 200, "reply": "Oi", "message": {"phone": "5511900000001"}}}
    response = post(client, channel, "reply", as_json(nested))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "id"
    assert_nothing_stored(db)


# --- optional JWT ----------------------------------------------------------------------------------

JWT_SECRET = "jwt-secret-0d4f7a1c9e"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(claims: Any, secret: str = JWT_SECRET, header: Any = None) -> str:
    head = b64url(json.dumps(header if header is not None else {"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(signature)}"


@pytest.fixture
def jwt_channel(db, channel):
    update_channel(db, channel, credentials={"webhook_jwt_secret": JWT_SECRET})
    db.commit()
    return channel


def test_a_correct_jwt_passes(client, db, jwt_channel):
    token = hs256({"iss": "kolmeya", "exp": int(time.time()) + 300})
    response = post(client, jwt_channel, "reply", flat_reply("5511900000001", "Oi"),
                    headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert len(inbound(db)) == 1
    status_response = post(client, jwt_channel, "status", as_json(status("kol-1", None, 3, "entregue")),
                           headers={"Authorization": f"Bearer {token}"})
    assert status_response.status_code == 200, status_response.text


@pytest.mark.parametrize("authorization,phrase", [
    (None, "requires a JWT"),
    ("Basic dXNlcjpwYXNz", "requires a JWT"),
    ("Bearer ", "requires a JWT"),
    (f"Bearer {hs256({'exp': int(time.time()) + 300}, secret='another-secret')}", "signature does not match"),
    (f"Bearer {hs256({'exp': int(time.time()) - 3600})}", "expired"),
    (f"Bearer {hs256({'exp': int(time.time()) + 300}, header={'alg': 'none'})}", "only HS256"),
    (f"Bearer {hs256({'exp': int(time.time()) + 300})[:-4]}", "signature does not match"),
    ("Bearer not.a-jwt", "malformed"),
    (f"Bearer {hs256({'exp': 1}, header=['HS256'])}", "malformed"),
    (f"Bearer {hs256(['not', 'claims'])}", "malformed"),
], ids=["missing", "basic", "empty", "wrong-signature", "expired", "alg-none", "tampered", "garbage",
        "header-not-object", "claims-not-object"])
def test_a_bad_jwt_is_refused_and_stores_nothing(client, db, jwt_channel, authorization, phrase):
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = post(client, jwt_channel, "reply", flat_reply("5511900000001", "Oi"), headers=headers)
    assert response.status_code == 401, response.text
    assert phrase in response.json()["error"]["message"]
    assert JWT_SECRET not in response.text
    assert events(db) == []
    assert_nothing_stored(db)


def test_a_correct_jwt_does_not_replace_the_url_token(client, db, jwt_channel):
    token = hs256({"exp": int(time.time()) + 300})
    response = post(client, jwt_channel, "reply", flat_reply("5511900000001", "Oi"), token="wrong",
                    headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert events(db) == []


# --- opt-out by reply ------------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["SAIR", " sair ", "Parar"])
def test_an_opt_out_reply_blocks_the_next_sms(client, db, channel, sandbox, admin_headers, word):
    maria = contact(db, "Maria Souza", "(11) 90000-0001")
    response = post(client, channel, "reply", flat_reply("5511900000001", word))
    assert response.status_code == 200, response.text
    assert fresh(db, Contact, maria.id).opt_out_sms is True

    sms = client.post("/api/sms", json={"contact_id": maria.id, "body": "Promoção imperdível"}, headers=admin_headers)
    assert sms.status_code == 409, sms.text
    assert sms.json()["error"]["code"] == "opted_out" and "opted out of SMS" in sms.json()["error"]["message"]
    db.expire_all()
    assert db.scalar(select(Message.id).where(Message.body == "Promoção imperdível")) is None  # nothing stored
    [confirmation] = sandbox.ledger()["messages"]  # only the opt-out's confirmation went out
    assert confirmation["text"].startswith("Pronto: você não vai mais receber nossas mensagens por SMS")


def test_a_sentence_containing_an_opt_out_word_does_not_opt_out(client, db, channel, sandbox, admin_headers):
    maria = contact(db, "Maria Souza", "(11) 90000-0001")
    post(client, channel, "reply", flat_reply("5511900000001", "Vou sair mais cedo, me liga amanhã"))
    assert fresh(db, Contact, maria.id).opt_out_sms is False
    sms = client.post("/api/sms", json={"contact_id": maria.id, "body": "Combinado"}, headers=admin_headers)
    assert sms.status_code == 202 and fresh(db, Message, sms.json()["id"]).status == "sent"
    assert len(sandbox.ledger()["messages"]) == 1


def test_the_callbacks_are_documented_in_the_openapi_schema(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert "post" in paths["/kolmeya/webhook/reply"] and "post" in paths["/kolmeya/webhook/status"]


def test_an_unexpected_failure_is_a_json_500_that_asks_for_the_callback_again(client, db, channel, monkeypatch, caplog):
    from contact_center.webhooks import service as webhook_service

    def broken(*_args):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(webhook_service, "parse", broken)
    response = post(client, channel, "reply", flat_reply("5511900000001", "Oi"))
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "disk on fire" not in response.text  # the cause goes to the log, not to the caller
    assert "disk on fire" in caplog.text
    assert_nothing_stored(db)


def test_a_callback_blanks_its_webhook_secret_out_of_log_lines(client, channel):
    import logging

    from contact_center.channels.service import forget_webhook_secret
    from contact_center.logs import RedactSecrets

    forget_webhook_secret(channel.webhook_secret)  # a process that has not seen this channel yet
    assert post(client, channel, "reply", flat_reply("5511900000001", "Oi")).status_code == 200
    access = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "POST %s HTTP/1.1" %d',
                               ("127.0.0.1", f"/kolmeya/webhook/reply?token={channel.webhook_secret}", 200), None)
    RedactSecrets().filter(access)
    assert channel.webhook_secret not in access.getMessage()
    assert "token=*** HTTP/1.1" in access.getMessage()
