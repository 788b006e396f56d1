"""WhatsApp callbacks through the real HTTP endpoint, one fixture per payload: the handshake, the
signature over the exact bytes, every message type landing in the inbox, statuses in any order,
duplicates, unknown numbers, senders known only by their user id, identity changes, template
reviews and marketing opt-outs.

Bodies are posted as raw bytes signed the way Meta signs them (non-ASCII escaped as \\uXXXX).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from contact_center.channels.models import WhatsAppTemplate
from contact_center.channels.service import create_channel
from contact_center.contacts.models import Contact, ContactIdentifier
from contact_center.contacts.service import create_contact
from contact_center.inbox.models import Conversation
from contact_center.messaging import rows
from contact_center.messaging.models import Message
from contact_center.providers.whatsapp_cloud.webhooks import sign
from contact_center.webhooks.models import WebhookEvent
from contact_center.translations import say_stored as said

FIXTURES = Path(__file__).parents[1] / "fixtures" / "whatsapp"
APP_SECRET = "app-secret-for-tests"
NUMBER, WABA = "100000000000001", "200000000000001"
MESSAGE_FIXTURES = sorted(path.stem for path in FIXTURES.glob("*.json")
                          if '"messages"' in path.read_text() and "status" not in path.stem
                          and path.stem not in ("batch_multi_entry", "value_errors"))


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())["payload"]


def meta_bytes(payload: dict) -> bytes:
    return json.dumps(payload, ensure_ascii=True, separators=(",", ":")).encode()


def post(client, payload: dict | bytes, *, secret: str = APP_SECRET, signature: str | None = "valid"):
    raw = payload if isinstance(payload, bytes) else meta_bytes(payload)
    headers = {"Content-Type": "application/json"}
    if signature == "valid":
        headers["X-Hub-Signature-256"] = sign(raw, secret)
    elif signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return client.post("/whatsapp/webhook", content=raw, headers=headers)


@pytest.fixture
def whatsapp(db):
    channel = create_channel(db, name="WhatsApp Cobrança", provider="whatsapp_sandbox",
                             credentials={"access_token": "sandbox-token", "app_secret": APP_SECRET},
                             settings={"phone_number_id": NUMBER, "waba_id": WABA})
    db.commit()
    return channel


def messages(db, channel) -> list[Message]:
    return list(db.scalars(select(Message).where(Message.channel_id == channel.id).order_by(Message.id)))


# --- handshake -----------------------------------------------------------------------------------

def test_the_verify_token_is_generated_and_the_handshake_answers_the_challenge(client, whatsapp):
    token = whatsapp.credentials["verify_token"]
    assert len(token) >= 24
    answer = client.get("/whatsapp/webhook", params={"hub.mode": "subscribe", "hub.verify_token": token,
                                                     "hub.challenge": "1158201444"})
    assert (answer.status_code, answer.text) == (200, "1158201444")
    assert answer.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize("params", [
    {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
    {"hub.mode": "unsubscribe", "hub.verify_token": "TOKEN", "hub.challenge": "1"},
    {"hub.challenge": "1"},
])
def test_a_wrong_handshake_is_refused(client, whatsapp, params):
    params = {key: whatsapp.credentials["verify_token"] if value == "TOKEN" else value for key, value in params.items()}
    answer = client.get("/whatsapp/webhook", params=params)
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "forbidden"  # an error saying why, never the challenge


# --- signature -----------------------------------------------------------------------------------

@pytest.mark.parametrize("signature", [None, "sha256=" + "0" * 64, "sha1=abc", "garbage"])
def test_a_missing_or_wrong_signature_is_401_and_stores_nothing(client, db, whatsapp, signature):
    answer = post(client, fixture("text"), signature=signature)
    assert answer.status_code == 401, answer.text
    assert messages(db, whatsapp) == []
    assert db.scalar(select(func.count()).select_from(WebhookEvent)) == 0


def test_a_signature_over_reserialised_json_fails(client, db, whatsapp):
    payload = fixture("text")
    exact = meta_bytes(payload)
    reserialised = json.dumps(payload, ensure_ascii=False, indent=1).encode()  # "Olá" unescaped
    answer = post(client, exact, signature=sign(reserialised, APP_SECRET))
    assert answer.status_code == 401
    assert messages(db, whatsapp) == []


def test_a_signature_with_another_channels_secret_fails(client, db, whatsapp):
    assert post(client, fixture("text"), secret="someone-elses-secret").status_code == 401
    assert messages(db, whatsapp) == []


# --- messages ------------------------------------------------------------------------------------

def test_a_text_lands_in_the_inbox_with_its_contact_identifiers_and_window(client, db, whatsapp):
    payload = fixture("text")
    answer = post(client, payload)
    assert answer.status_code == 200, answer.text
    assert answer.json()["messages"] == 1
    [message] = messages(db, whatsapp)
    assert (message.direction, message.status, message.body, message.content_type) == (
        "in", "received", "Olá, quero ver minha fatura", "text")
    assert message.provider_message_id.startswith("wamid.")
    contact = db.get(Contact, message.contact_id)
    assert (contact.name, contact.mobile_e164) == ("Ana Souza", "+5511900000001")
    kinds = dict(db.execute(select(ContactIdentifier.kind, ContactIdentifier.value)
                            .where(ContactIdentifier.contact_id == contact.id)).all())
    assert kinds == {"wa_id": "5511900000001", "wa_user_id": "BR.1000000000000001"}
    conversation = db.get(Conversation, message.conversation_id)
    sent_at = datetime.fromtimestamp(1760000000, UTC)
    assert conversation.window_closes_at == sent_at + timedelta(hours=24)
    assert conversation.unread_count == 1


def test_a_retried_body_changes_nothing(client, db, whatsapp):
    payload = fixture("text")
    assert post(client, payload).status_code == 200
    assert post(client, payload).status_code == 200
    assert len(messages(db, whatsapp)) == 1
    assert db.scalar(select(func.count()).select_from(Contact)) == 1


@pytest.mark.parametrize("name", MESSAGE_FIXTURES)
def test_every_message_type_is_recorded_with_what_an_operator_reads(client, db, whatsapp, name):
    payload = fixture(name)
    answer = post(client, payload)
    assert answer.status_code == 200, answer.text
    recorded = messages(db, whatsapp)
    sent = [m for change in (e["changes"] for e in payload["entry"]) for c in change
            for m in c["value"].get("messages", [])]
    assert len(recorded) == len(sent)
    for message in recorded:
        assert message.body.strip(), name
        assert message.contact_id is not None, name
    expected_type = {"voice_note": "voice", "interactive_button_reply": "choice", "interactive_list_reply": "choice",
                     "template_button": "choice", "image_caption": "image", "text_reply": "text",
                     "text_forwarded": "text", "reaction_removed": "reaction", "sender_user_id_only": "text",
                     "br_12_digit_wa_id": "text", "referral": "text", "system_user_changed_number": "system",
                     "system_user_changed_user_id": "system", "system_customer_identity_changed": "system",
                     "interactive_flow_reply": "choice", "order": "text"}.get(name, name)
    assert recorded[0].content_type == expected_type
    if expected_type in ("image", "audio", "voice", "video", "document", "sticker"):
        media = recorded[0].content["media"]
        assert media["media_id"] and media["mime_type"]


def test_a_12_digit_wa_id_reaches_the_contact_stored_with_the_ninth_digit(client, db, whatsapp):
    payload = fixture("br_12_digit_wa_id")
    wa_id = payload["entry"][0]["changes"][0]["value"]["messages"][0]["from"]
    assert len(wa_id) == 12
    with_ninth = "+" + wa_id[:4] + "9" + wa_id[4:]
    contact = create_contact(db, {"name": "Cliente Antigo", "mobile": with_ninth})
    db.commit()
    assert post(client, payload).status_code == 200
    [message] = messages(db, whatsapp)
    assert message.contact_id == contact.id
    assert db.scalar(select(func.count()).select_from(Contact)) == 1


def test_a_sender_with_only_a_user_id_is_found_again_by_it(client, db, whatsapp):
    payload = fixture("sender_user_id_only")
    assert post(client, payload).status_code == 200
    [first] = messages(db, whatsapp)
    assert first.contact_id is not None and first.phone_e164 == ""
    second = json.loads(json.dumps(payload))
    second["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = "wamid.SECOND-MESSAGE-OF-THE-SAME-USER"
    assert post(client, second).status_code == 200
    recorded = messages(db, whatsapp)
    assert len(recorded) == 2
    assert recorded[1].contact_id == first.contact_id
    assert recorded[1].conversation_id == first.conversation_id


def test_a_customer_who_writes_on_sms_and_whatsapp_is_one_contact(client, db, whatsapp, sms, customer_writes):
    known = create_contact(db, {"name": "Ana Souza", "mobile": "+55 11 90000-0001"})
    db.commit()
    by_sms = customer_writes(sms, "+55 11 90000-0001", "Oi pelo SMS")
    assert post(client, fixture("text")).status_code == 200
    [by_whatsapp] = messages(db, whatsapp)
    assert by_sms.contact_id == by_whatsapp.contact_id == known.id
    assert db.scalar(select(func.count()).select_from(Contact)) == 1


def test_an_sms_customer_nobody_knew_becomes_one_contact_when_they_write_on_whatsapp(client, db, whatsapp, sms,
                                                                                   customer_writes):
    by_sms = customer_writes(sms, "+55 11 90000-0001", "Oi pelo SMS")
    assert by_sms.contact_id is None
    assert post(client, fixture("text")).status_code == 200
    [by_whatsapp] = messages(db, whatsapp)
    db.refresh(by_sms)
    sms_message = db.scalar(select(Message).where(Message.conversation_id == by_sms.id))
    assert by_whatsapp.contact_id is not None
    assert by_sms.contact_id == sms_message.contact_id == by_whatsapp.contact_id
    assert db.scalar(select(func.count()).select_from(Contact)) == 1


def test_a_number_change_keeps_the_contact_and_learns_the_new_ids(client, db, whatsapp):
    assert post(client, fixture("text")).status_code == 200
    change = fixture("system_user_changed_number")
    assert post(client, change).status_code == 200
    recorded = messages(db, whatsapp)
    assert recorded[-1].content_type == "system"
    contact_id = recorded[0].contact_id
    values = set(db.scalars(select(ContactIdentifier.value).where(ContactIdentifier.contact_id == contact_id)))
    new_wa_id = change["entry"][0]["changes"][0]["value"]["messages"][0]["system"]["new_wa_id"]
    assert {"5511900000001", new_wa_id} <= values  # the old number and the new one, on the one contact


def test_an_unknown_number_is_acknowledged_and_nothing_is_stored(client, db, whatsapp):
    payload = fixture("text")
    payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "999999999999999"
    answer = post(client, payload, signature="sha256=" + "0" * 64)
    assert (answer.status_code, answer.json()["status"]) == (200, "ignored")
    assert messages(db, whatsapp) == []


def test_unknown_numbers_are_logged_once_each_and_a_flood_of_them_stays_bounded(client, whatsapp, caplog,
                                                                               monkeypatch):
    from contact_center.providers.whatsapp_cloud import callbacks

    monkeypatch.setattr(callbacks, "_LOGGED_UNKNOWN_LIMIT", 5)
    monkeypatch.setattr(callbacks, "_logged_unknown", type(callbacks._logged_unknown)())
    payload = fixture("text")
    metadata = payload["entry"][0]["changes"][0]["value"]["metadata"]
    caplog.set_level("WARNING", logger=callbacks.__name__)
    for number in [f"9{n:014d}" for n in range(8)] + ["900000000000007"]:  # the last one again
        metadata["phone_number_id"] = number
        assert post(client, payload, signature="sha256=" + "0" * 64).status_code == 200
    logged = [r for r in caplog.records if r.name == callbacks.__name__]
    assert len(logged) == 8  # one line per number, none for the repeat
    assert len(callbacks._logged_unknown) == 5


def test_a_malformed_body_is_kept_and_answered_422(client, db, whatsapp):
    payload = fixture("text")
    del payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    answer = post(client, payload)
    assert answer.status_code == 422
    assert "messages[0].id" in answer.text
    assert messages(db, whatsapp) == []
    assert db.scalar(select(WebhookEvent.outcome)) == "rejected"


# --- statuses ------------------------------------------------------------------------------------

def _outbound(db, channel, wamid: str, phone: str = "+5511900000001") -> Message:
    conversation = Conversation(channel_id=channel.id, phone_e164=phone, phone_key=phone)
    db.add(conversation)
    db.flush()
    from contact_center.channels.kinds import WHATSAPP

    message = Message(**rows.outbound(WHATSAPP, channel_id=channel.id, conversation_id=conversation.id, contact=None,
                                      origin="api", phone=phone, phone_e164=phone, body="Sua fatura vence amanhã",
                                      now=datetime.now(UTC)))
    message.status, message.provider_message_id = "sent", wamid
    db.add(message)
    db.commit()
    return message


def _status_payload(wamid: str, status: str, timestamp: int = 1760000100, errors=None) -> dict:
    item = {"id": wamid, "status": status, "timestamp": str(timestamp), "recipient_id": "5511900000001"}
    if errors:
        item["errors"] = errors
    return {"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "5511900000000", "phone_number_id": NUMBER},
        "statuses": [item]}}]}]}


def test_read_without_delivered_and_then_a_late_delivered_keep_read(client, db, whatsapp):
    message = _outbound(db, whatsapp, "wamid.OUT-1")
    assert post(client, _status_payload("wamid.OUT-1", "read")).status_code == 200
    assert post(client, _status_payload("wamid.OUT-1", "delivered")).status_code == 200
    assert post(client, _status_payload("wamid.OUT-1", "sent")).status_code == 200
    db.refresh(message)
    assert message.status == "read"
    assert message.read_at is not None


def test_played_follows_read(client, db, whatsapp):
    message = _outbound(db, whatsapp, "wamid.OUT-2")
    for status in ("sent", "delivered", "read", "played", "played"):
        assert post(client, _status_payload("wamid.OUT-2", status)).status_code == 200
    db.refresh(message)
    assert message.status == "played" and message.played_at is not None


def test_a_failed_status_gives_the_reason_in_portuguese(client, db, whatsapp):
    message = _outbound(db, whatsapp, "wamid.OUT-3")
    error = {"code": 131026, "title": "Message undeliverable", "message": "Message undeliverable",
             "error_data": {"details": "Message Undeliverable."}}
    assert post(client, _status_payload("wamid.OUT-3", "failed", errors=[error])).status_code == 200
    db.refresh(message)
    assert message.status == "failed"
    assert "Não entregue" in said(message.status_reason, "pt-BR")
    assert "not delivered" in said(message.status_reason, "en")


# --- other events --------------------------------------------------------------------------------

def test_a_template_review_updates_the_synced_template(client, db, whatsapp):
    payload = fixture("template_status_update")
    value = payload["entry"][0]["changes"][0]["value"]
    payload["entry"][0]["id"] = WABA
    db.add(WhatsAppTemplate(channel_id=whatsapp.id, template_id=str(value["message_template_id"]),
                            name=value["message_template_name"], language=value["message_template_language"],
                            status="PENDING", category="UTILITY", definition={}))
    db.commit()
    answer = post(client, payload)
    assert answer.status_code == 200, answer.text
    template = db.scalar(select(WhatsAppTemplate))
    db.refresh(template)
    assert template.status == value["event"]
    assert post(client, payload).status_code == 200  # the same review again: no-op


def test_a_marketing_stop_records_the_opt_out(client, db, whatsapp):
    assert post(client, fixture("text")).status_code == 200
    [message] = messages(db, whatsapp)
    payload = fixture("user_preferences_stop")
    answer = post(client, payload)
    assert answer.status_code == 200, answer.text
    contact = db.get(Contact, message.contact_id)
    db.refresh(contact)
    assert contact.opt_out_marketing is True
    assert contact.opt_out_whatsapp is False  # service messages still reach them


def test_an_unknown_field_is_acknowledged(client, db, whatsapp):
    answer = post(client, fixture("unknown_field"))
    assert answer.status_code == 200, answer.text
    assert db.scalar(select(WebhookEvent.outcome)) == "ignored"


def test_a_failed_status_for_the_account_pauses_the_channel(client, db, whatsapp):
    message = _outbound(db, whatsapp, "wamid.OUT-PAUSE")
    error = {"code": 131031, "title": "Business Account locked", "message": "Business Account locked",
             "error_data": {"details": "The account has been locked."}}
    assert post(client, _status_payload("wamid.OUT-PAUSE", "failed", errors=[error])).status_code == 200
    db.refresh(message)
    db.refresh(whatsapp)
    assert message.status == "failed"
    assert whatsapp.paused_at is not None and "canal pausado" in said(whatsapp.paused_reason, "pt-BR")
