"""Opt-out and do-not-disturb, through the real webhooks, API and provider sandboxes: the opt-out
keywords (configurable, without accents, case or punctuation), the one confirmation, the push
to Kolmeya's blacklist (counted in the sandbox's ledger) and its reversal, retries, and the
recipients that are blocked (opted out here, on Kolmeya's blacklist, on "Não Perturbe")."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from contact_center.channels.service import create_channel
from contact_center.contacts import blacklist
from contact_center.contacts.models import Contact
from contact_center.contacts.service import create_contact
from contact_center.messaging import opt_out
from contact_center.messaging.inbound import ReplyIn, record_replies
from contact_center.messaging.models import Message
from contact_center.messaging.service import queue_outbound
from contact_center.providers.base import InboundReply
from contact_center.providers.kolmeya.provider import SANDBOX_TOKEN
from contact_center.providers.kolmeya.sandbox import SandboxServer
from contact_center.providers.whatsapp_cloud.sandbox import SandboxServer as WhatsAppSandbox
from contact_center.providers.whatsapp_cloud.webhooks import sign
from contact_center.settings import SettingsError, load_settings
from contact_center.translations import say_stored

MARIA = "5511900000001"
APP_SECRET = "app-secret-for-tests"


@pytest.fixture(scope="module")
def sandbox():
    with SandboxServer(SANDBOX_TOKEN, status_delay_seconds=60) as server:  # no status callbacks within a test
        yield server


@pytest.fixture(scope="module")
def other_account():
    """A second Kolmeya account (another token, another blacklist)."""
    with SandboxServer("other-token", status_delay_seconds=60) as server:
        yield server


@pytest.fixture(scope="module")
def wa_sandbox():
    with WhatsAppSandbox(status_delay_seconds=60) as server:
        yield server


@pytest.fixture
def maria(db) -> Contact:
    contact = create_contact(db, {"name": "Maria Souza", "mobile": "(11) 90000-0001"})
    db.commit()
    return contact


def sms_reply(client, channel, text: str, phone: str = MARIA):
    body = json.dumps({"phone": phone, "message": text, "data": "2025-11-15 14:30:00"}, ensure_ascii=False)
    answer = client.post(f"/kolmeya/webhook/reply?token={channel.webhook_secret}", content=body.encode(),
                         headers={"Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text


def blacklist_calls(sandbox, path: str = "/blacklist/store") -> int:
    return sum(1 for call in sandbox.ledger()["api_calls"] if call["path"].endswith(path))


def confirmations(db) -> list[Message]:
    db.expire_all()
    return list(db.scalars(select(Message).where(Message.origin == opt_out.ORIGIN).order_by(Message.id)))


def fresh(db, contact: Contact) -> Contact:
    db.expire_all()
    return db.get(Contact, contact.id)


# --- the keywords --------------------------------------------------------------------------------

DEFAULT = opt_out.parse_keywords(load_settings(_env_file=None).opt_out_keywords)


@pytest.mark.parametrize("text", ["SAIR", "Sair.", "sair!!", " STOP ", "pará", "Parar", "PARE 🛑", "cancelar",
                                  "Descadastrar", "«SAIR»", "sáir\n"])
def test_an_opt_out_keyword_matches_without_accents_case_or_punctuation(text):
    assert opt_out.is_keyword(text, DEFAULT)


@pytest.mark.parametrize("text", ["não quero sair agora", "Vou parar de usar", "sairei", "STOPS", "pa ra", "",
                                  "🛑", "SAIR SAIR"])
def test_a_reply_that_is_more_or_less_than_a_keyword_does_not_match(text):
    assert not opt_out.is_keyword(text, DEFAULT)


def test_the_keywords_are_a_comma_separated_setting_and_a_bad_one_is_named():
    settings = load_settings(_env_file=None, opt_out_keywords=" Chega ,NÃO QUERO MAIS,, ")
    assert opt_out.parse_keywords(settings.opt_out_keywords) == {"CHEGA", "NAO QUERO MAIS"}
    with pytest.raises(SettingsError, match="CONTACT_CENTER_OPT_OUT_KEYWORDS: '!!!' has no letters"):
        load_settings(_env_file=None, opt_out_keywords="SAIR,!!!")


# --- opting out by keyword: confirmed once, pushed to the blacklist -------------------------------


def test_a_keyword_opts_out_confirms_once_and_blacklists_the_number(client, db, channel, sandbox, maria):
    sms_reply(client, channel, "Sair.")
    assert fresh(db, maria).opt_out_sms is True
    [confirmation] = confirmations(db)
    assert (confirmation.status, confirmation.channel_id, confirmation.phone_e164) == ("sent", channel.id, "+" + MARIA)
    assert confirmation.body == ("Pronto: você não vai mais receber nossas mensagens por SMS. Se mudar de ideia, "
                                 "é só falar com a gente.")
    [sent] = sandbox.ledger()["messages"]
    assert sent["text"] == confirmation.body and sent["phone"] == MARIA
    # It went out before the number was blacklisted: Kolmeya would have refused it after.
    assert sandbox.ledger()["blacklist"] == [MARIA] and blacklist_calls(sandbox) == 1

    sms_reply(client, channel, "SAIR")  # already opted out: no second confirmation, no second push
    assert len(confirmations(db)) == 1
    assert len(sandbox.ledger()["messages"]) == 1 and blacklist_calls(sandbox) == 1


def test_the_same_keyword_twice_in_one_batch_is_confirmed_once(db, channel, sandbox, maria, runtime):
    replies = [ReplyIn("tests.reply", channel.id, InboundReply(
        external_id=f"twice-{n}", phone=MARIA, text=text, received_at=datetime.now(UTC), in_reply_to_reference=None,
        in_reply_to_provider_id=None), payload="{}") for n, text in enumerate(["PARE", "pare!"])]
    assert [out.outcome for out in record_replies(db, replies)] == ["applied", "applied"]
    db.commit()
    assert len(confirmations(db)) == 1 and blacklist_calls(sandbox) == 1


def test_a_sentence_with_a_keyword_opts_no_one_out(client, db, channel, sandbox, maria):
    sms_reply(client, channel, "não quero sair agora")
    assert fresh(db, maria).opt_out_sms is False
    assert confirmations(db) == [] and blacklist_calls(sandbox) == 0


def test_keywords_and_confirmation_come_from_the_settings(client, db, channel, sandbox, maria, runtime, monkeypatch):
    monkeypatch.setattr(runtime, "settings", runtime.settings.model_copy(update={
        "opt_out_keywords": "CHEGA, não quero mais", "opt_out_confirmation": "Tudo certo: {canal} desligado."}))
    sms_reply(client, channel, "SAIR")  # no longer a keyword
    assert fresh(db, maria).opt_out_sms is False
    sms_reply(client, channel, "Não quero mais!")
    assert fresh(db, maria).opt_out_sms is True
    assert [m.body for m in confirmations(db)] == ["Tudo certo: SMS desligado."]


def test_an_empty_confirmation_sends_nothing_but_still_opts_out(client, db, channel, sandbox, maria, runtime,
                                                                monkeypatch):
    monkeypatch.setattr(runtime, "settings", runtime.settings.model_copy(update={"opt_out_confirmation": ""}))
    sms_reply(client, channel, "STOP")
    assert fresh(db, maria).opt_out_sms is True
    assert confirmations(db) == [] and sandbox.ledger()["messages"] == []
    assert sandbox.ledger()["blacklist"] == [MARIA]


def test_a_whatsapp_keyword_is_confirmed_on_whatsapp_and_leaves_the_sms_blacklist_alone(client, db, channel, sandbox,
                                                                                        wa_sandbox, maria):
    wa_sandbox.reset()
    whatsapp = create_channel(db, name="WhatsApp", provider="whatsapp_sandbox",
                              credentials={"access_token": wa_sandbox.token, "app_secret": APP_SECRET},
                              settings={"phone_number_id": wa_sandbox.phone_number_id, "waba_id": wa_sandbox.waba_id,
                                        "base_url": wa_sandbox.base_url})
    db.commit()
    at = int(datetime.now(UTC).timestamp())
    payload = {"object": "whatsapp_business_account", "entry": [{"id": wa_sandbox.waba_id, "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "5511900000000", "phone_number_id": wa_sandbox.phone_number_id},
            "contacts": [{"profile": {"name": "Maria"}, "wa_id": MARIA}],
            "messages": [{"from": MARIA, "id": f"wamid.IN-{time.monotonic_ns()}", "timestamp": str(at),
                          "type": "text", "text": {"body": "Parar"}}]}}]}]}
    raw = json.dumps(payload).encode()
    answer = client.post("/whatsapp/webhook", content=raw,
                         headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(raw, APP_SECRET)})
    assert answer.status_code == 200, answer.text
    contact = fresh(db, maria)
    assert (contact.opt_out_whatsapp, contact.opt_out_sms) == (True, False)
    [confirmation] = confirmations(db)
    assert confirmation.channel_id == whatsapp.id and confirmation.status == "sent"
    [out] = wa_sandbox.ledger()["messages"]
    assert out["payload"]["text"]["body"].startswith("Pronto: você não vai mais receber nossas mensagens por WhatsApp")
    assert blacklist_calls(sandbox) == 0


# --- operators: opt-out and its reversal reach every Kolmeya account -------------------------------


def test_an_operators_opt_out_and_its_reversal_reach_every_kolmeya_channel(client, db, channel, sandbox,
                                                                          other_account, maria, agent_headers):
    other_account.reset()
    second = create_channel(db, name="SMS Cobrança", provider="kolmeya_sandbox", credentials={"token": "other-token"},
                            settings={"base_url": other_account.base_url})
    db.commit()
    answer = client.patch(f"/api/contacts/{maria.id}", json={"opt_out_sms": True}, headers=agent_headers)
    assert answer.status_code == 200, answer.text
    for account in (sandbox, other_account):
        assert account.ledger()["blacklist"] == [MARIA] and blacklist_calls(account) == 1
    assert confirmations(db) == []  # only a customer's own opt-out is answered

    client.patch(f"/api/contacts/{maria.id}", json={"name": "Maria S. Souza"}, headers=agent_headers)
    assert blacklist_calls(sandbox) == 1  # no change of opt-out, no call

    answer = client.patch(f"/api/contacts/{maria.id}", json={"opt_out_sms": False}, headers=agent_headers)
    assert answer.status_code == 200, answer.text
    for account in (sandbox, other_account):
        assert account.ledger()["blacklist"] == [] and blacklist_calls(account, "/blacklist/destroy") == 1
    assert second.active


def test_the_inbox_contact_form_pushes_the_opt_out_too(client, db, channel, sandbox, maria, customer_writes,
                                                       agent_headers):
    conversation = customer_writes(channel, MARIA, "Oi")
    db.commit()
    answer = client.patch(f"/api/conversations/{conversation.id}/contact", json={"opt_out_sms": True},
                          headers=agent_headers)
    assert answer.status_code == 200, answer.text
    assert sandbox.ledger()["blacklist"] == [MARIA]


def test_a_failed_push_is_logged_without_the_token_and_tried_again_on_that_channel_only(
        client, db, channel, sandbox, maria, agent_headers, runtime, caplog):
    sandbox.configure(fail_next=[503], fail_only=["/blacklist/store"])
    with caplog.at_level(logging.WARNING, logger="contact_center.contacts.blacklist"):
        client.patch(f"/api/contacts/{maria.id}", json={"opt_out_sms": True}, headers=agent_headers)
    assert sandbox.ledger()["blacklist"] == []
    [warning] = [r for r in caplog.records if r.name == "contact_center.contacts.blacklist"]
    assert "channel 'SMS Kolmeya': 1 number(s) to add" in warning.getMessage()
    assert "attempt 1 of" in warning.getMessage() and "trying again in 60 s" in warning.getMessage()
    assert SANDBOX_TOKEN not in caplog.text and MARIA not in caplog.text
    [retry] = runtime.jobs.huey.scheduled()
    assert retry.name == "sync_blacklist" and retry.args == ([maria.id], [channel.id], 2)

    runtime.jobs.huey.execute(retry, timestamp=retry.eta)  # as the consumer does, a minute later
    assert sandbox.ledger()["blacklist"] == [MARIA] and blacklist_calls(sandbox) == 2
    assert len(runtime.jobs.huey.scheduled()) == 1  # nothing more to try


def test_the_last_attempt_gives_up_loudly(db, channel, sandbox, maria, settings, session_factory, caplog):
    maria.opt_out_sms = True
    db.commit()
    sandbox.configure(fail_next=[401], fail_only=["/blacklist/store"])
    run = blacklist.sync(session_factory, settings, [maria.id], attempt=blacklist.MAX_ATTEMPTS)
    assert run.retry_after is None
    assert "giving up" in caplog.text and "HTTP 401" in caplog.text and SANDBOX_TOKEN not in caplog.text


def test_the_number_waits_for_the_confirmation_to_leave(db, channel, sandbox, maria, settings, session_factory):
    maria.opt_out_sms = True
    confirmation = queue_outbound(db, channel=channel, phone=MARIA, body="Pronto", contact=maria, origin=opt_out.ORIGIN,
                                  despite_opt_out=True)
    db.commit()
    assert confirmation.status == "queued"  # the one message that goes to a contact who opted out
    run = blacklist.sync(session_factory, settings, [maria.id])
    assert run.waiting_for_confirmation and run.retry_after == blacklist.RETRY_DELAYS[0]
    assert blacklist_calls(sandbox) == 0

    confirmation.status = "sent"
    db.commit()
    assert blacklist.sync(session_factory, settings, [maria.id], attempt=2).added == 1
    assert sandbox.ledger()["blacklist"] == [MARIA]


# --- blocked recipients ----------------------------------------------------------------------------


def test_blocked_recipients_are_stored_blocked_with_the_reason(client, db, channel, sandbox, maria, admin_headers):
    """Opted out here: refused before anything is stored (a campaign stores them blocked:
    test_campaigns.py), never handed to Kolmeya. On Kolmeya's blacklist or on 'Não Perturbe': blocked
    with Kolmeya's reason, in Portuguese. (Every bucket of /sms/store: test_dispatch.py,
    test_every_answer_of_sms_store_ends_in_a_definite_state.)"""
    sandbox.configure(blacklist=["5511900000002"], not_disturb=["5511900000003"])
    maria.opt_out_sms = True
    db.commit()
    refused = client.post("/api/sms", json={"contact_id": maria.id, "body": "Promoção"}, headers=admin_headers)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "opted_out"
    assert db.scalar(select(func.count()).select_from(Message).where(Message.contact_id == maria.id)) == 0
    sent = {name: client.post("/api/sms", json=body, headers=admin_headers).json() for name, body in {
        "blacklist": {"to": "(11) 90000-0002", "body": "Promoção"},
        "not_disturb": {"to": "11 90000-0003", "body": "Promoção"},
    }.items()}
    stored = {name: db.get(Message, answer["id"]) for name, answer in sent.items()}
    db.expire_all()
    assert {name: m.status for name, m in stored.items()} == dict.fromkeys(sent, "blocked")
    assert say_stored(stored["blacklist"].status_reason, "pt-BR") == (
        "o número está na blacklist da Kolmeya: o destinatário pediu para não receber SMS")
    assert say_stored(stored["not_disturb"].status_reason, "pt-BR") == (
        "o número está no cadastro Não Perturbe: a Kolmeya não entrega SMS para ele")
    assert say_stored(stored["not_disturb"].status_reason, "en") == (
        "the number is on the Do Not Disturb register: Kolmeya delivers no SMS to it")
    assert all(m["phone"] != MARIA for m in sandbox.ledger()["messages"])


def test_the_cli_opt_out_queues_the_push_for_the_worker(tmp_path):
    from contact_center.jobs import Jobs, make_huey
    from contact_center.settings import Settings
    from tests.test_cli import run_cli

    assert run_cli("contacts", "add", "Maria Souza", "--mobile", "(11) 90000-0001", data_dir=tmp_path).returncode == 0
    result = run_cli("contacts", "update", "1", "--opt-out-sms", data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    queue = Jobs(make_huey(Settings(data_dir=tmp_path, _env_file=None))).huey
    [job] = queue.pending()  # serve or worker runs it
    assert (job.name, job.args) == ("sync_blacklist", ([1],))
