"""Answering WhatsApp customers through the real WhatsApp sandbox: the 24-hour window, approved
templates validated against the synced definitions, replies quoting a message, each error code's
outcome (counted in the sandbox's ledger), the channel pause on a rejected token, and the wa_id
learnt from the send's answer."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from contact_center.channels.service import create_channel
from contact_center.contacts.models import ContactIdentifier
from contact_center.inbox.models import Conversation
from contact_center.messaging.dispatch import dispatch
from contact_center.messaging.models import Message
from contact_center.messaging.service import queue_outbound
from contact_center.providers.whatsapp_cloud.sandbox import SandboxServer
from contact_center.providers.whatsapp_cloud.webhooks import sign
from contact_center.translations import say_stored as said

APP_SECRET = "app-secret-for-tests"
CUSTOMER = "5511900000001"


@pytest.fixture(scope="module")
def sandbox():
    with SandboxServer(status_delay_seconds=60) as server:  # no status callbacks within a test
        yield server


@pytest.fixture
def whatsapp(db, sandbox):
    sandbox.reset()
    channel = create_channel(db, name="WhatsApp", provider="whatsapp_sandbox",
                             credentials={"access_token": sandbox.token, "app_secret": APP_SECRET},
                             settings={"phone_number_id": sandbox.phone_number_id, "waba_id": sandbox.waba_id,
                                       "base_url": sandbox.base_url})
    db.commit()
    return channel


def customer_writes(client, sandbox, *, phone: str | None = CUSTOMER, text: str = "Oi, quero a segunda via",
                    ago: timedelta = timedelta(minutes=5), wamid: str | None = None, user_id: str | None = None) -> None:
    """A customer's message reaching our webhook, signed as Meta signs it; with `phone` None, from a
    user who shares only their business-scoped `user_id`."""
    at = int((datetime.now(UTC) - ago).timestamp())
    wamid = wamid or f"wamid.IN-{phone or user_id}-{at}-{time.monotonic_ns()}"
    contact = {"profile": {"name": "Ana Souza"}, **({"wa_id": phone} if phone else {}),
               **({"user_id": user_id} if user_id else {})}
    message = {**({"from": phone} if phone else {}), **({"from_user_id": user_id} if user_id else {}),
               "id": wamid, "timestamp": str(at), "type": "text", "text": {"body": text}}
    payload = {"object": "whatsapp_business_account", "entry": [{"id": sandbox.waba_id, "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "5511900000000", "phone_number_id": sandbox.phone_number_id},
            "contacts": [contact], "messages": [message]}}]}]}
    raw = json.dumps(payload, ensure_ascii=True).encode()
    answer = client.post("/whatsapp/webhook", content=raw,
                         headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(raw, APP_SECRET)})
    assert answer.status_code == 200, answer.text


def the_conversation(db, channel) -> Conversation:
    return db.scalar(select(Conversation).where(Conversation.channel_id == channel.id))


def sent(sandbox) -> list[dict]:
    return sandbox.ledger()["messages"]


def compose(client, headers, conversation_id: int, **body):
    return client.post(f"/api/conversations/{conversation_id}/messages", json=body, headers=headers)


# --- the 24-hour window --------------------------------------------------------------------------

def test_free_text_inside_the_window_goes_out_once_with_our_reference(client, db, whatsapp, sandbox, agent_headers):
    customer_writes(client, sandbox)
    conversation = the_conversation(db, whatsapp)
    answer = compose(client, agent_headers, conversation.id, body="Claro, segue o boleto")
    assert answer.status_code == 202, answer.text
    message = db.get(Message, answer.json()["id"])
    db.refresh(message)
    [out] = sent(sandbox)
    assert (out["to"], out["type"], out["payload"]["text"]["body"]) == (CUSTOMER, "text", "Claro, segue o boleto")
    assert out["callback_data"] == message.reference
    assert (message.status, message.provider_message_id) == ("sent", out["wamid"])


def test_free_text_after_the_window_closed_is_refused_and_nothing_is_stored(client, db, whatsapp, sandbox,
                                                                             agent_headers):
    customer_writes(client, sandbox, ago=timedelta(hours=25))
    conversation = the_conversation(db, whatsapp)
    before = db.scalar(select(Message.id).order_by(Message.id.desc()).limit(1))
    answer = compose(client, agent_headers, conversation.id, body="Ainda está aí?")
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "window_closed"
    assert error["message"].startswith("Janela fechada — envie um modelo aprovado")
    assert db.scalar(select(Message.id).order_by(Message.id.desc()).limit(1)) == before
    assert sent(sandbox) == []


def test_our_own_messages_never_extend_the_window(client, db, whatsapp, sandbox, agent_headers):
    customer_writes(client, sandbox, ago=timedelta(hours=23, minutes=59, seconds=50))
    conversation = the_conversation(db, whatsapp)
    closes = conversation.window_closes_at
    assert compose(client, agent_headers, conversation.id, body="Bom dia!").status_code == 202
    db.refresh(conversation)
    assert conversation.window_closes_at == closes


def test_a_new_customer_message_reopens_the_window(client, db, whatsapp, sandbox, agent_headers):
    customer_writes(client, sandbox, ago=timedelta(hours=30))
    customer_writes(client, sandbox, text="Voltei", ago=timedelta(seconds=1))
    conversation = the_conversation(db, whatsapp)
    db.refresh(conversation)
    assert conversation.window_closes_at > datetime.now(UTC) + timedelta(hours=23)
    assert compose(client, agent_headers, conversation.id, body="Que bom!").status_code == 202


def test_an_answer_can_quote_the_customers_message(client, db, whatsapp, sandbox, agent_headers):
    customer_writes(client, sandbox, wamid="wamid.QUOTED-1")
    conversation = the_conversation(db, whatsapp)
    quoted = db.scalar(select(Message).where(Message.provider_message_id == "wamid.QUOTED-1"))
    answer = compose(client, agent_headers, conversation.id, body="Sobre isso:", reply_to_message_id=quoted.id)
    assert answer.status_code == 202, answer.text
    [out] = sent(sandbox)
    assert out["payload"]["context"] == {"message_id": "wamid.QUOTED-1"}


# --- templates -----------------------------------------------------------------------------------

@pytest.fixture
def synced(client, whatsapp, admin_headers) -> dict[str, dict]:
    answer = client.post(f"/api/channels/{whatsapp.id}/whatsapp-templates/sync", headers=admin_headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["added"] >= 3
    listed = client.get(f"/api/channels/{whatsapp.id}/whatsapp-templates", headers=admin_headers).json()
    return {template["name"]: template for template in listed}


def template(client, headers, conversation_id: int, template_id: int, parameters: dict):
    return client.post(f"/api/conversations/{conversation_id}/template", headers=headers,
                       json={"template_id": template_id, "parameters": parameters})


def test_a_closed_window_still_takes_an_approved_template(client, db, whatsapp, sandbox, agent_headers, synced):
    customer_writes(client, sandbox, ago=timedelta(days=3))
    conversation = the_conversation(db, whatsapp)
    reminder = synced["cobranca_lembrete"]
    assert reminder["body_parameters"] == ["1", "2", "3"] and reminder["sendable"]
    answer = template(client, agent_headers, conversation.id, reminder["id"],
                      {"body": ["Ana", "R$ 120,00", "10/12"]})
    assert answer.status_code == 202, answer.text
    body = answer.json()["body"]
    assert "Ana" in body and "R$ 120,00" in body and "10/12" in body  # what the timeline shows
    [out] = sent(sandbox)
    assert out["type"] == "template"
    assert out["payload"]["template"]["name"] == "cobranca_lembrete"
    assert out["payload"]["template"]["components"] == [{"type": "body", "parameters": [
        {"type": "text", "text": "Ana"}, {"type": "text", "text": "R$ 120,00"}, {"type": "text", "text": "10/12"}]}]


def test_a_template_with_a_missing_positional_parameter_is_refused_naming_it(client, db, whatsapp, sandbox,
                                                                            agent_headers, synced):
    customer_writes(client, sandbox)
    conversation = the_conversation(db, whatsapp)
    answer = template(client, agent_headers, conversation.id, synced["cobranca_lembrete"]["id"],
                      {"body": ["Ana", "R$ 120,00"]})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert "3" in error["message"] and error["field"] == "parameters.body[2]"
    assert sent(sandbox) == []


def test_a_named_template_is_validated_by_name(client, db, whatsapp, sandbox, agent_headers, synced):
    customer_writes(client, sandbox)
    conversation = the_conversation(db, whatsapp)
    welcome = synced["boas_vindas"]
    assert welcome["parameter_format"] == "NAMED"
    wrong = template(client, agent_headers, conversation.id, welcome["id"], {"body": {"nome": "Ana"}})
    assert wrong.status_code == 422
    assert "nome" in wrong.json()["error"]["message"]
    right = template(client, agent_headers, conversation.id, welcome["id"],
                     {"body": {name: "Ana" for name in welcome["body_parameters"]},
                      **({"header_media": {"type": "image", "link": "https://example.com/boas-vindas.png"}}
                         if welcome["header_format"] == "IMAGE" else {})})
    assert right.status_code == 202, right.text
    [out] = sent(sandbox)
    body = next(c for c in out["payload"]["template"]["components"] if c["type"] == "body")
    assert body["parameters"][0]["parameter_name"] == welcome["body_parameters"][0]


def test_a_template_that_is_not_approved_is_refused(client, db, whatsapp, sandbox, agent_headers, synced):
    customer_writes(client, sandbox)
    conversation = the_conversation(db, whatsapp)
    unsendable = next(t for t in synced.values() if not t["sendable"])
    answer = template(client, agent_headers, conversation.id, unsendable["id"], {"body": ["x"]})
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == "template"
    assert sent(sandbox) == []


# --- errors by code ------------------------------------------------------------------------------

def _send_expecting(client, db, whatsapp, sandbox, agent_headers, code) -> Message:
    customer_writes(client, sandbox)
    conversation = the_conversation(db, whatsapp)
    sandbox.configure(fail_next=[code], fail_only=["messages"])
    answer = compose(client, agent_headers, conversation.id, body="Olá")
    assert answer.status_code == 202, answer.text
    message = db.get(Message, answer.json()["id"])
    db.refresh(message)
    return message


@pytest.mark.parametrize("code, words", [(131047, "Janela de 24 horas"), (131026, "Não entregue")])
def test_a_closed_window_or_undeliverable_fails_at_once_with_its_reason(client, db, whatsapp, sandbox,
                                                                       agent_headers, code, words):
    message = _send_expecting(client, db, whatsapp, sandbox, agent_headers, code)
    assert message.status == "failed"
    assert words in said(message.status_reason, "pt-BR") and f"(código {code})" in said(message.status_reason, "pt-BR")
    assert f"(code {code})" in said(message.status_reason, "en")  # and in English for whoever reads English
    assert message.next_attempt_at is None  # not retried
    assert sent(sandbox) == []


@pytest.mark.parametrize("code", [130429, 131056, 131000])
def test_throughput_pair_limits_and_service_errors_are_retried_later(client, db, whatsapp, sandbox, agent_headers,
                                                                      code):
    message = _send_expecting(client, db, whatsapp, sandbox, agent_headers, code)
    assert message.status in ("queued", "unknown")  # 131000 may have been carried out: asked first
    if message.status == "queued":
        assert message.next_attempt_at is not None and message.next_attempt_at > datetime.now(UTC)


def test_a_rate_limit_of_the_number_holds_back_the_rest_of_the_dispatch(client, db, whatsapp, sandbox,
                                                                         session_factory, settings):
    phones = ["5511900000001", "5511900000002", "5511900000003"]
    for phone in phones:
        customer_writes(client, sandbox, phone=phone)
    ids = []
    for conversation in db.scalars(select(Conversation).where(Conversation.channel_id == whatsapp.id)
                                   .order_by(Conversation.id)):
        ids.append(queue_outbound(db, channel=whatsapp, phone=conversation.recipient, body="Olá",
                                  origin="api").id)
    db.commit()
    sandbox.configure(fail_next=[130429], fail_only=["messages"])
    later = dispatch(session_factory, settings, ids)
    sends = [call for call in sandbox.ledger()["api_calls"] if call["endpoint"] == "messages"]
    assert len(sends) == 1  # the refusal came once: the other two did not ask for it again
    assert sent(sandbox) == []
    assert sorted(message_id for message_id, _ in later.retry) == ids
    held = [db.get(Message, message_id) for message_id in ids]
    for message in held:
        db.refresh(message)
        assert message.status == "queued" and message.next_attempt_at > datetime.now(UTC)
    assert [m.attempts for m in held] == [1, 0, 0]  # only the one that went counts as an attempt
    assert all("Limite de envios por segundo" in said(m.status_reason, "pt-BR") for m in held)


def test_131049_waits_at_least_a_day(client, db, whatsapp, sandbox, agent_headers):
    message = _send_expecting(client, db, whatsapp, sandbox, agent_headers, 131049)
    assert message.status == "queued"
    assert message.next_attempt_at >= datetime.now(UTC) + timedelta(hours=23, minutes=59)


def test_a_rejected_token_pauses_the_channel_for_everyone(client, db, whatsapp, sandbox, agent_headers, admin_headers):
    customer_writes(client, sandbox, phone="5511900000001")
    customer_writes(client, sandbox, phone="5511900000002")
    conversations = list(db.scalars(select(Conversation).where(Conversation.channel_id == whatsapp.id)
                                    .order_by(Conversation.id)))
    sandbox.configure(fail_next=[190], fail_only=["messages"])
    first = compose(client, agent_headers, conversations[0].id, body="Olá")
    second = compose(client, agent_headers, conversations[1].id, body="Olá também")
    assert first.status_code == second.status_code == 202
    db.refresh(whatsapp)
    assert whatsapp.paused_at is not None and "pausado" in said(whatsapp.paused_reason, "pt-BR")
    for answer in (first, second):
        message = db.get(Message, answer.json()["id"])
        db.refresh(message)
        assert message.status == "queued" and "canal pausado" in said(message.status_reason, "pt-BR")
        assert message.attempts == 0
    assert sent(sandbox) == []
    status = client.get(f"/api/channels/{whatsapp.id}/status", headers=agent_headers).json()
    assert status["ok"] is False and status["paused_reason"] == said(whatsapp.paused_reason, None)
    in_portuguese = client.get(f"/api/channels/{whatsapp.id}/status", headers={**agent_headers,
                                                                                "Accept-Language": "pt-BR"}).json()
    assert "canal pausado" in in_portuguese["paused_reason"] and "channel paused" in status["paused_reason"]
    listed = client.get(f"/api/conversations/{conversations[0].id}", headers=agent_headers).json()
    assert listed["channel_paused_reason"] == said(whatsapp.paused_reason, None)
    # The admin puts a new token in: the channel is back, and the waiting messages go out.
    answer = client.patch(f"/api/channels/{whatsapp.id}", headers=admin_headers,
                          json={"credentials": {"access_token": sandbox.token}})
    assert answer.status_code == 200, answer.text
    db.refresh(whatsapp)
    assert whatsapp.paused_at is None
    assert sorted(out["payload"]["text"]["body"] for out in sent(sandbox)) == ["Olá", "Olá também"]


def test_the_wa_id_of_the_answer_becomes_the_contacts_identifier(client, db, whatsapp, sandbox, agent_headers):
    # A mobile from area code 48 registered before the ninth digit: WhatsApp knows it by 12 digits.
    customer_writes(client, sandbox, phone="5548991910234")
    conversation = the_conversation(db, whatsapp)
    assert compose(client, agent_headers, conversation.id, body="Olá").status_code == 202
    values = set(db.scalars(select(ContactIdentifier.value).where(
        ContactIdentifier.contact_id == conversation.contact_id, ContactIdentifier.kind == "wa_id")))
    assert "554891910234" in values


def test_a_customer_known_only_by_user_id_is_answered_by_that_id(client, db, whatsapp, sandbox, agent_headers):
    customer_writes(client, sandbox, phone=None, user_id="BR.1000000000000003", wamid="wamid.FROM-USER-ONLY")
    conversation = the_conversation(db, whatsapp)
    assert conversation.phone_e164 == "" and conversation.recipient == "wa:BR.1000000000000003"
    answer = compose(client, agent_headers, conversation.id, body="Olá, Carla!", reply_to_message_id=db.scalar(
        select(Message.id).where(Message.provider_message_id == "wamid.FROM-USER-ONLY")))
    assert answer.status_code == 202, answer.text
    message = db.get(Message, answer.json()["id"])
    db.refresh(message)
    [out] = sent(sandbox)
    assert (out["recipient"], out["to"]) == ("BR.1000000000000003", "")
    assert "to" not in out["payload"] and out["payload"]["recipient"] == "BR.1000000000000003"
    assert out["payload"]["context"] == {"message_id": "wamid.FROM-USER-ONLY"}
    assert (message.status, message.phone, message.phone_e164) == ("sent", "BR.1000000000000003", "")
    assert message.conversation_id == conversation.id and message.contact_id == conversation.contact_id


def test_a_customer_known_only_by_user_id_cannot_be_answered_by_sms(client, db, whatsapp, sandbox, sms,
                                                                    agent_headers):
    customer_writes(client, sandbox, phone=None, user_id="BR.1000000000000003")
    conversation = the_conversation(db, whatsapp)
    answer = compose(client, agent_headers, conversation.id, body="Olá", channel_id=sms.id)
    assert answer.status_code == 422
    assert "shares no phone number" in answer.json()["error"]["message"]
    assert db.scalar(select(Message.id).where(Message.direction == "out")) is None


# --- customers' files ----------------------------------------------------------------------------

def post_signed(client, payload: dict) -> None:
    raw = json.dumps(payload, ensure_ascii=True).encode()
    answer = client.post("/whatsapp/webhook", content=raw,
                         headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(raw, APP_SECRET)})
    assert answer.status_code == 200, answer.text


def test_a_customers_image_is_fetched_checked_kept_and_served(client, db, whatsapp, sandbox, agent_headers, settings):
    built = sandbox.inbound(from_="+55 11 90000-0001", type="image", caption="comprovante", deliver=False)
    post_signed(client, built["payload"])
    message = db.scalar(select(Message).where(Message.channel_id == whatsapp.id))
    db.refresh(message)
    assert (message.content_type, message.media_state) == ("image", "stored")
    announced = built["messages"][0]["image"]["sha256"]
    assert message.content["media"]["stored"]["sha256"] == announced
    served = client.get(f"/api/messages/{message.id}/media", headers=agent_headers)
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/jpeg"
    import hashlib
    assert hashlib.sha256(served.content).hexdigest() == announced
    kept = list((settings.data_dir / "whatsapp-media").rglob("*.jpg"))
    assert len(kept) == 1


def test_a_failed_fetch_is_retried_and_a_replayed_webhook_does_not_lose_the_file(client, db, whatsapp, sandbox,
                                                                                  agent_headers, session_factory,
                                                                                  settings):
    built = sandbox.inbound(from_="+55 11 90000-0001", type="voice", deliver=False)
    sandbox.configure(fail_next=["http503"], fail_only=["media_info"])
    post_signed(client, built["payload"])
    message = db.scalar(select(Message).where(Message.channel_id == whatsapp.id))
    db.refresh(message)
    assert message.content_type == "voice"
    assert message.media_state == "pending" and message.content["media"]["fetch_attempts"] == 1
    not_yet = client.get(f"/api/messages/{message.id}/media", headers=agent_headers)
    assert not_yet.status_code == 404 and "still being fetched" in not_yet.json()["error"]["message"]
    post_signed(client, built["payload"])  # Meta's retry: a duplicate, the message stays as it is
    from contact_center.messaging.media import fetch

    report = fetch(session_factory, settings, [message.id])  # the retry job
    assert report.stored == [message.id]
    db.refresh(message)
    assert message.media_state == "stored"
    assert client.get(f"/api/messages/{message.id}/media", headers=agent_headers).status_code == 200


def test_a_file_whose_bytes_do_not_match_the_announced_sha256_is_not_kept(client, db, whatsapp, sandbox):
    built = sandbox.inbound(from_="+55 11 90000-0001", type="document", filename="boleto.pdf", deliver=False)
    built["payload"]["entry"][0]["changes"][0]["value"]["messages"][0]["document"]["sha256"] = "0" * 64
    post_signed(client, built["payload"])
    message = db.scalar(select(Message).where(Message.channel_id == whatsapp.id))
    db.refresh(message)
    assert message.media_state == "pending"
    assert "sha256" in message.content["media"]["fetch_error"]


# --- SMS fallback and read receipts ---------------------------------------------------------------

def test_an_undeliverable_message_is_offered_again_by_sms_and_both_are_linked(client, db, whatsapp, sandbox, sms,
                                                                              agent_headers):
    message = _send_expecting(client, db, whatsapp, sandbox, agent_headers, 131026)
    timeline = client.get(f"/api/conversations/{message.conversation_id}/timeline", headers=agent_headers).json()
    entry = next(e for e in timeline["entries"] if e.get("id") == message.id and e["kind"] == "message")
    assert entry["sms_fallback_available"] is True
    sms.active = True
    db.commit()
    answer = client.post(f"/api/messages/{message.id}/sms-fallback", headers=agent_headers)
    assert answer.status_code == 202, answer.text
    again = answer.json()
    assert (again["fallback_of_id"], again["body"], again["phone_e164"]) == (message.id, "Olá", message.phone_e164)
    assert db.get(Message, again["id"]).channel_id == sms.id
    twice = client.post(f"/api/messages/{message.id}/sms-fallback", headers=agent_headers)
    assert twice.status_code == 422 and "already" in twice.json()["error"]["message"]


def test_a_channel_set_to_send_falls_back_to_sms_by_itself(client, db, whatsapp, sandbox, sms, agent_headers):
    whatsapp.settings = {**whatsapp.settings, "sms_fallback": "send"}
    db.commit()
    message = _send_expecting(client, db, whatsapp, sandbox, agent_headers, 131026)
    again = db.scalar(select(Message).where(Message.fallback_of_id == message.id))
    assert again is not None and again.channel_id == sms.id and again.origin == "fallback"


def failed_status(sandbox, message: Message, code: int) -> dict:
    """Meta's `failed` status for a message it had accepted (the usual way 131026 arrives)."""
    return {"object": "whatsapp_business_account", "entry": [{"id": sandbox.waba_id, "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "5511900000000", "phone_number_id": sandbox.phone_number_id},
            "statuses": [{"id": message.provider_message_id, "status": "failed",
                          "timestamp": str(int(time.time())), "recipient_id": CUSTOMER,
                          "biz_opaque_callback_data": message.reference,
                          "errors": [{"code": code, "title": "Message undeliverable",
                                      "message": "Message undeliverable",
                                      "error_data": {"details": "Message Undeliverable."}}]}]}}]}]}


@pytest.mark.parametrize("mode, expected", [("send", 1), ("offer", 0)])
def test_a_failure_reported_later_by_webhook_falls_back_to_sms_only_when_set_to_send(
        client, db, whatsapp, sandbox, sms, agent_headers, mode, expected):
    whatsapp.settings = {**whatsapp.settings, "sms_fallback": mode}
    sms.active = True
    db.commit()
    customer_writes(client, sandbox)
    answer = compose(client, agent_headers, the_conversation(db, whatsapp).id, body="Seu boleto vence amanhã")
    message = db.get(Message, answer.json()["id"])
    db.refresh(message)
    assert message.status == "sent"
    payload = failed_status(sandbox, message, 131026)
    post_signed(client, payload)
    post_signed(client, payload)  # Meta's duplicate changes nothing
    db.refresh(message)
    assert message.status == "failed" and message.provider_status_code == 131026
    again = list(db.scalars(select(Message).where(Message.fallback_of_id == message.id)))
    assert len(again) == expected
    if again:
        [sms_message] = again
        assert (sms_message.channel_id, sms_message.origin, sms_message.body) == (sms.id, "fallback",
                                                                                "Seu boleto vence amanhã")
        assert sms_message.status != "queued" or sms_message.attempts > 0  # dispatched, not left for the sweeper


def test_a_message_that_was_delivered_is_not_sent_again_by_sms(client, db, whatsapp, sandbox, sms, agent_headers):
    customer_writes(client, sandbox)
    conversation = the_conversation(db, whatsapp)
    sent_ok = compose(client, agent_headers, conversation.id, body="Olá").json()
    answer = client.post(f"/api/messages/{sent_ok['id']}/sms-fallback", headers=agent_headers)
    assert answer.status_code == 422


def test_opening_the_conversation_marks_the_customers_message_read_at_whatsapp(client, db, whatsapp, sandbox,
                                                                               agent_headers):
    customer_writes(client, sandbox, wamid="wamid.TO-BE-READ")
    conversation = the_conversation(db, whatsapp)
    assert client.post(f"/api/conversations/{conversation.id}/read", headers=agent_headers).status_code == 200
    reads = sandbox.ledger()["reads"]
    assert [read["message_id"] for read in reads] == ["wamid.TO-BE-READ"]


def test_the_hourly_job_syncs_every_whatsapp_channels_templates(db, whatsapp, session_factory, settings):
    from contact_center.channels.whatsapp_templates import list_templates, sync_all

    results = sync_all(session_factory, settings)
    assert results["WhatsApp"].added >= 3
    assert {t.name for t in list_templates(db, whatsapp.id)} >= {"cobranca_lembrete", "boas_vindas"}


# --- files from the composer ----------------------------------------------------------------------

PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63fcff"
                    "9f0100050401020d0a2db40000000049454e44ae426082")


def attach(client, headers, conversation_id: int, name: str, content: bytes, mime: str, caption: str | None = None):
    return client.post(f"/api/conversations/{conversation_id}/attachments", headers=headers,
                       files={"file": (name, content, mime)}, data={"caption": caption} if caption else {})


def test_an_image_from_the_composer_is_uploaded_then_sent_by_id(client, db, whatsapp, sandbox, agent_headers):
    customer_writes(client, sandbox)
    conversation = the_conversation(db, whatsapp)
    answer = attach(client, agent_headers, conversation.id, "comprovante.png", PNG, "image/png", "Seu comprovante")
    assert answer.status_code == 202, answer.text
    assert answer.json()["content_type"] == "image" and answer.json()["body"] == "📷 Imagem: Seu comprovante"
    ledger = sandbox.ledger()
    [uploaded] = ledger["media"]
    [out] = ledger["messages"]
    assert out["type"] == "image"
    assert out["payload"]["image"]["id"] == uploaded["id"]
    assert out["payload"]["image"]["caption"] == "Seu comprovante"
    message = db.get(Message, answer.json()["id"])
    db.refresh(message)
    assert message.status == "sent"


def test_a_pdf_goes_as_a_document_with_its_name(client, db, whatsapp, sandbox, agent_headers):
    customer_writes(client, sandbox)
    conversation = the_conversation(db, whatsapp)
    answer = attach(client, agent_headers, conversation.id, "boleto.pdf", b"%PDF-1.4\n%boleto\n%%EOF\n",
                    "application/pdf")
    assert answer.status_code == 202, answer.text
    [out] = sent(sandbox)
    assert out["type"] == "document" and out["payload"]["document"]["filename"] == "boleto.pdf"


def test_a_file_outside_the_window_or_too_large_is_refused_and_nothing_goes(client, db, whatsapp, sandbox,
                                                                             agent_headers):
    customer_writes(client, sandbox, ago=timedelta(hours=30))
    conversation = the_conversation(db, whatsapp)
    closed = attach(client, agent_headers, conversation.id, "foto.png", PNG, "image/png")
    assert closed.status_code == 422 and closed.json()["error"]["code"] == "window_closed"
    customer_writes(client, sandbox, text="Voltei", ago=timedelta(seconds=1))
    huge = attach(client, agent_headers, conversation.id, "foto.png", PNG + b"0" * (5 * 2**20), "image/png")
    assert huge.status_code == 422 and "5 MB" in huge.json()["error"]["message"]
    assert sent(sandbox) == [] and sandbox.ledger()["media"] == []


def test_a_send_refused_because_the_customer_stopped_marketing_records_the_opt_out(client, db, whatsapp, sandbox,
                                                                                     agent_headers):
    from contact_center.contacts.models import Contact

    message = _send_expecting(client, db, whatsapp, sandbox, agent_headers, 131050)
    assert message.status == "failed" and message.next_attempt_at is None
    contact = db.get(Contact, message.contact_id)
    db.refresh(contact)
    assert contact.opt_out_marketing is True and contact.opt_out_whatsapp is False
