"""The window-closing reminder, through the real WhatsApp sandbox: a customer whose last message is
unanswered when the 24-hour window is about to close gets one reminder, counted in the sandbox's
ledger (what reached "Meta"), not in our tables; never for an answered question, a window not yet
due or already closed, a channel with it off, paused or deactivated, or a contact who opted out.
Its settings are refused, naming the field, when they cannot work."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from contact_center.audit.models import AuditEntry
from contact_center.channels.service import create_channel, update_channel
from contact_center.contacts.models import Contact
from contact_center.db import make_session_factory, transaction
from contact_center.inbox.models import Conversation
from contact_center.messaging.dispatch import dispatch
from contact_center.messaging.inbound import ReplyIn, record_replies
from contact_center.messaging.models import Message
from contact_center.messaging.window_reminder import remind_closing_windows
from contact_center.providers.base import InboundReply
from contact_center.providers.whatsapp_cloud.sandbox import SandboxServer
from contact_center.providers.whatsapp_cloud.webhooks import sign
from tests.conftest import race
from tests.web.test_web_ui import csrf_of, login

APP_SECRET = "app-secret-for-tests"
CUSTOMER = "5511900000001"
REMINDER = "Ainda podemos ajudar? Responda esta mensagem para continuarmos a conversa."
DUE = timedelta(hours=23, minutes=30)  # the window closes in 30 minutes: inside a 60-minute lead


@pytest.fixture(scope="module")
def sandbox():
    with SandboxServer(status_delay_seconds=60) as server:  # no status callbacks within a test
        yield server


def whatsapp_settings(sandbox, **reminder) -> dict:
    return {"phone_number_id": sandbox.phone_number_id, "waba_id": sandbox.waba_id, "base_url": sandbox.base_url,
            **reminder}


@pytest.fixture
def whatsapp(db, sandbox):
    """A WhatsApp sandbox channel whose reminder is on: a text, 60 minutes before the window closes."""
    sandbox.reset()
    channel = create_channel(db, name="WhatsApp", provider="whatsapp_sandbox",
                             credentials={"access_token": sandbox.token, "app_secret": APP_SECRET},
                             settings=whatsapp_settings(sandbox, window_reminder=True, window_reminder_minutes=60,
                                                        window_reminder_text=REMINDER))
    db.commit()
    return channel


def customer_writes(client, sandbox, *, ago: timedelta, text: str = "Vocês entregam no sábado?",
                    user_id: str | None = None) -> None:
    """A customer's message reaching our webhook, signed as Meta signs it, sent `ago`; with
    `user_id`, from a user who shares no phone."""
    at = int((datetime.now(UTC) - ago).timestamp())
    sender = {"from_user_id": user_id} if user_id else {"from": CUSTOMER}
    contact = {"user_id": user_id} if user_id else {"wa_id": CUSTOMER}
    payload = {"object": "whatsapp_business_account", "entry": [{"id": sandbox.waba_id, "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "5511900000000", "phone_number_id": sandbox.phone_number_id},
            "contacts": [{"profile": {"name": "Ana Souza"}, **contact}],
            "messages": [{**sender, "id": f"wamid.IN-{at}-{time.monotonic_ns()}", "timestamp": str(at),
                          "type": "text", "text": {"body": text}}]}}]}]}
    raw = json.dumps(payload).encode()
    answer = client.post("/whatsapp/webhook", content=raw,
                         headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(raw, APP_SECRET)})
    assert answer.status_code == 200, answer.text


def sent(sandbox) -> list[dict]:
    return sandbox.ledger()["messages"]


def the_conversation(db, channel) -> Conversation:
    conversation = db.scalar(select(Conversation).where(Conversation.channel_id == channel.id))
    db.refresh(conversation)
    return conversation


def run_the_job(runtime) -> None:
    """The periodic task as Huey runs it (immediate here: its dispatch sends at once)."""
    runtime.jobs.remind_windows()


# --- when it goes, and only once -------------------------------------------------------------------

def test_an_unanswered_question_is_reminded_once_by_the_system_when_its_window_is_about_to_close(
        client, db, runtime, whatsapp, sandbox):
    customer_writes(client, sandbox, ago=DUE)
    run_the_job(runtime)
    [out] = sent(sandbox)
    assert (out["to"], out["type"], out["payload"]["text"]["body"]) == (CUSTOMER, "text", REMINDER)
    reminder = db.scalar(select(Message).where(Message.direction == "out"))
    db.refresh(reminder)
    assert (reminder.origin, reminder.author_id, reminder.status) == ("reminder", None, "sent")
    assert out["callback_data"] == reminder.reference
    audit = db.scalar(select(AuditEntry).where(AuditEntry.subject_type == "message",
                                               AuditEntry.subject_id == reminder.id))
    assert (audit.action, audit.via, audit.actor_id) == ("whatsapp.send", "system", None)

    run_the_job(runtime)
    assert len(sent(sandbox)) == 1  # the second run finds this window reminded


def test_a_customer_who_shares_no_phone_is_reminded_by_their_user_id(client, db, runtime, whatsapp, sandbox):
    customer_writes(client, sandbox, ago=DUE, user_id="BR.1000000000000003")
    run_the_job(runtime)
    [out] = sent(sandbox)
    assert (out["recipient"], out["payload"]["text"]["body"]) == ("BR.1000000000000003", REMINDER)


def test_a_new_customer_message_opens_a_window_that_is_reminded_again(client, db, runtime, whatsapp, sandbox):
    customer_writes(client, sandbox, ago=DUE)
    run_the_job(runtime)
    customer_writes(client, sandbox, ago=timedelta(hours=23, minutes=20), text="Alguém aí?")
    run_the_job(runtime)
    assert [m["payload"]["text"]["body"] for m in sent(sandbox)] == [REMINDER, REMINDER]


def test_concurrent_runs_remind_a_window_once(own_database, sandbox, settings):
    sandbox.reset()
    factory = make_session_factory(own_database)
    with transaction(factory) as session:
        channel = create_channel(session, name="WhatsApp", provider="whatsapp_sandbox",
                                 credentials={"access_token": sandbox.token, "app_secret": APP_SECRET},
                                 settings=whatsapp_settings(sandbox, window_reminder=True,
                                                            window_reminder_text=REMINDER))
        for index, phone in enumerate(("+5511900000001", "+5511900000002", "+5511900000003")):
            reply = InboundReply(external_id=f"wamid.C{index}", phone=phone, text="Oi?",
                                 received_at=datetime.now(UTC) - DUE, in_reply_to_reference=None,
                                 in_reply_to_provider_id=None)
            record_replies(session, [ReplyIn("tests.reply", channel.id, reply, payload="{}", kind="whatsapp")])
    def job() -> None:  # what each worker's job does: remind (committed), then dispatch
        run = remind_closing_windows(factory)
        dispatch(factory, settings, run.message_ids)

    race(job)
    assert sorted(m["to"] for m in sent(sandbox)) == ["5511900000001", "5511900000002", "5511900000003"]


# --- when it does not go ---------------------------------------------------------------------------

def test_an_answered_question_is_not_reminded(client, db, runtime, whatsapp, sandbox, agent_headers):
    customer_writes(client, sandbox, ago=DUE)
    conversation = the_conversation(db, whatsapp)
    answer = client.post(f"/api/conversations/{conversation.id}/messages", json={"body": "Entregamos, sim!"},
                         headers=agent_headers)
    assert answer.status_code == 202, answer.text
    run_the_job(runtime)
    assert [m["payload"]["text"]["body"] for m in sent(sandbox)] == ["Entregamos, sim!"]


def test_a_question_after_our_answer_is_unanswered_again(client, db, runtime, whatsapp, sandbox, agent_headers):
    customer_writes(client, sandbox, ago=timedelta(hours=23, minutes=40))
    conversation = the_conversation(db, whatsapp)
    assert client.post(f"/api/conversations/{conversation.id}/messages", json={"body": "Entregamos, sim!"},
                       headers=agent_headers).status_code == 202
    customer_writes(client, sandbox, ago=DUE, text="E no domingo?")
    run_the_job(runtime)
    assert [m["payload"]["text"]["body"] for m in sent(sandbox)] == ["Entregamos, sim!", REMINDER]


def test_a_window_closing_later_than_the_lead_time_is_not_reminded_yet(client, db, runtime, whatsapp, sandbox):
    customer_writes(client, sandbox, ago=timedelta(hours=22))  # closes in 2 hours; the lead is 1 hour
    run_the_job(runtime)
    assert sent(sandbox) == []
    assert the_conversation(db, whatsapp).reminded_window_at is None


def test_a_window_already_closed_is_not_reminded(client, db, runtime, whatsapp, sandbox):
    customer_writes(client, sandbox, ago=timedelta(hours=24, minutes=5))
    run_the_job(runtime)
    assert sent(sandbox) == []


def test_the_reminder_is_off_unless_switched_on(client, db, runtime, sandbox):
    sandbox.reset()
    channel = create_channel(db, name="WhatsApp", provider="whatsapp_sandbox",
                             credentials={"access_token": sandbox.token, "app_secret": APP_SECRET},
                             settings=whatsapp_settings(sandbox))
    db.commit()
    assert channel.settings["window_reminder"] is False
    customer_writes(client, sandbox, ago=DUE)
    run_the_job(runtime)
    assert sent(sandbox) == []


def test_a_contact_who_opted_out_of_whatsapp_gets_no_reminder(client, db, runtime, whatsapp, sandbox):
    customer_writes(client, sandbox, ago=DUE)
    contact = db.get(Contact, the_conversation(db, whatsapp).contact_id)
    contact.opt_out_whatsapp = True
    db.commit()
    run_the_job(runtime)
    assert sent(sandbox) == []
    assert db.scalar(select(Message.id).where(Message.direction == "out")) is None  # not even a blocked one


@pytest.mark.parametrize("state", ["paused", "deactivated"])
def test_a_paused_or_deactivated_channel_sends_no_reminder(client, db, runtime, whatsapp, sandbox, state):
    customer_writes(client, sandbox, ago=DUE)
    if state == "paused":
        whatsapp.paused_at, whatsapp.paused_reason = datetime.now(UTC), "token revoked"
    else:
        whatsapp.active = False
    db.commit()
    run_the_job(runtime)
    assert sent(sandbox) == []


def test_a_closed_conversation_is_not_reminded(client, db, runtime, whatsapp, sandbox, supervisor_headers):
    customer_writes(client, sandbox, ago=DUE, text="Obrigada!")
    conversation = the_conversation(db, whatsapp)
    assert client.post(f"/api/conversations/{conversation.id}/close", headers=supervisor_headers).status_code == 200
    run_the_job(runtime)
    assert sent(sandbox) == []


# --- an approved template as the reminder ----------------------------------------------------------

@pytest.fixture
def synced(client, whatsapp, admin_headers) -> None:
    answer = client.post(f"/api/channels/{whatsapp.id}/whatsapp-templates/sync", headers=admin_headers)
    assert answer.status_code == 200, answer.text


def patch_settings(client, channel, headers, **settings):
    return client.patch(f"/api/channels/{channel.id}", json={"settings": settings}, headers=headers)


def test_a_template_reminder_is_filled_with_the_contacts_first_name(client, db, runtime, whatsapp, sandbox,
                                                                   synced, admin_headers):
    answer = patch_settings(client, whatsapp, admin_headers, window_reminder_text="",
                            window_reminder_template="boas_vindas", window_reminder_language="pt_BR")
    assert answer.status_code == 200, answer.text
    customer_writes(client, sandbox, ago=DUE)  # from "Ana Souza"
    run_the_job(runtime)
    [out] = sent(sandbox)
    assert out["type"] == "template"
    template = out["payload"]["template"]
    assert (template["name"], template["language"]["code"]) == ("boas_vindas", "pt_BR")
    assert template["components"] == [{"type": "body", "parameters": [
        {"type": "text", "parameter_name": "first_name", "text": "Ana"}]}]


def test_a_template_reminder_is_not_sent_once_the_window_closed(client, db, runtime, whatsapp, sandbox, synced,
                                                                admin_headers):
    # A template could go after the window closed; the reminder is for a window still open.
    assert patch_settings(client, whatsapp, admin_headers, window_reminder_text="",
                          window_reminder_template="boas_vindas", window_reminder_language="pt_BR").status_code == 200
    customer_writes(client, sandbox, ago=timedelta(hours=24, minutes=5))
    run_the_job(runtime)
    assert sent(sandbox) == []


# --- settings that cannot work are refused, naming the field ---------------------------------------

@pytest.mark.parametrize("minutes", [4, 1381, "soon"])
def test_reminder_minutes_out_of_bounds_are_refused_naming_the_field(client, whatsapp, admin_headers, minutes):
    answer = patch_settings(client, whatsapp, admin_headers, window_reminder_minutes=minutes)
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["field"] == "settings.window_reminder_minutes"
    assert error["message"].startswith("settings.window_reminder_minutes: ")


def test_an_unknown_reminder_template_is_refused_naming_the_field_and_the_synced_ones(client, whatsapp, synced,
                                                                                   admin_headers):
    answer = patch_settings(client, whatsapp, admin_headers, window_reminder_text="",
                            window_reminder_template="nao_existe", window_reminder_language="pt_BR")
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["field"] == "settings.window_reminder_template"
    assert "no template 'nao_existe' in 'pt_BR'" in error["message"]
    assert "boas_vindas" in error["message"]  # what can be chosen instead


@pytest.mark.parametrize(("name", "why"), [
    ("cobranca_lembrete", "its body takes 3 parameters"),
    ("segunda_via_boleto", "its header takes a parameter or media"),
    ("pesquisa_satisfacao", "it is PAUSED, not APPROVED"),
])
def test_a_template_a_reminder_cannot_send_is_refused_saying_why(client, whatsapp, synced, admin_headers, name, why):
    answer = patch_settings(client, whatsapp, admin_headers, window_reminder_text="",
                            window_reminder_template=name, window_reminder_language="pt_BR")
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["field"] == "settings.window_reminder_template"
    assert why in error["message"]


def test_a_reminder_switched_on_with_nothing_to_send_is_refused(client, whatsapp, admin_headers):
    answer = patch_settings(client, whatsapp, admin_headers, window_reminder_text="")
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == "settings.window_reminder_text"
    assert "give window_reminder_text or window_reminder_template" in answer.json()["error"]["message"]


def test_a_reminder_cannot_be_both_a_text_and_a_template(client, whatsapp, synced, admin_headers):
    answer = patch_settings(client, whatsapp, admin_headers, window_reminder_template="boas_vindas",
                            window_reminder_language="pt_BR")  # the text is still set
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == "settings.window_reminder_text"
    assert "not both" in answer.json()["error"]["message"]


def test_a_refused_change_leaves_the_settings_as_they_were(client, db, whatsapp, admin_headers):
    before = dict(whatsapp.settings)
    assert patch_settings(client, whatsapp, admin_headers, window_reminder_minutes=0).status_code == 422
    db.refresh(whatsapp)
    assert whatsapp.settings == before


# --- the admin page and the timeline ---------------------------------------------------------------

def test_the_admin_edits_the_reminder_and_the_timeline_shows_it_as_automatic(client, db, runtime, whatsapp,
                                                                             sandbox, synced):
    login(client, "root")  # the admin `synced` made
    page = client.get(f"/admin/channels/{whatsapp.id}")
    assert 'name="window_reminder"' in page.text
    options = re.findall(r'<option value="([^"]*)"', page.text.split('id="window-reminder"')[1])
    assert options == ["", "boas_vindas|pt_BR"]  # only the templates a reminder can fill
    form = {"csrf_token": csrf_of(page.text), "name": "WhatsApp", "phone_number_id": sandbox.phone_number_id,
            "waba_id": sandbox.waba_id, "base_url": sandbox.base_url, "active": "1", "window_reminder": "1",
            "window_reminder_minutes": "90", "window_reminder_text": "Seguimos por aqui. Precisa de algo mais?",
            "window_reminder_template": ""}
    saved = client.post(f"/admin/channels/{whatsapp.id}/whatsapp", data=form, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    db.refresh(whatsapp)
    assert (whatsapp.settings["window_reminder_minutes"], whatsapp.settings["window_reminder_text"]) == (
        90, "Seguimos por aqui. Precisa de algo mais?")

    refused = client.post(f"/admin/channels/{whatsapp.id}/whatsapp",
                          data={**form, "window_reminder_minutes": "2000"}, follow_redirects=False)
    assert refused.status_code == 422 and "settings.window_reminder_minutes" in refused.text

    customer_writes(client, sandbox, ago=timedelta(hours=23))  # closes in 60 minutes, inside 90
    run_the_job(runtime)
    conversation = the_conversation(db, whatsapp)
    timeline = client.get(f"/inbox/{conversation.id}/fragments/timeline")
    assert timeline.status_code == 200
    assert "Seguimos por aqui. Precisa de algo mais?" in timeline.text
    assert '<span class="author">Lembrete automático</span>' in timeline.text


def test_updating_another_setting_keeps_the_reminder(db, whatsapp):
    update_channel(db, whatsapp, settings={"sms_fallback": "off"})
    assert (whatsapp.settings["window_reminder"], whatsapp.settings["window_reminder_text"]) == (True, REMINDER)


# --- the command line ------------------------------------------------------------------------------

def test_the_command_line_sets_the_reminder_and_refuses_bad_minutes_naming_the_field(tmp_path, sandbox):
    from tests.test_cli import run_cli

    created = run_cli("channels", "create", "WhatsApp", "--provider", "whatsapp_sandbox",
                      "-c", f"access_token={sandbox.token}", "-c", f"app_secret={APP_SECRET}",
                      "-s", f"phone_number_id={sandbox.phone_number_id}", "-s", f"waba_id={sandbox.waba_id}",
                      "-s", f"base_url={sandbox.base_url}", "-s", "window_reminder=true",
                      "-s", "window_reminder_minutes=45", "-s", f"window_reminder_text={REMINDER}", data_dir=tmp_path)
    assert created.returncode == 0, created.stderr
    listed = run_cli("channels", "list", data_dir=tmp_path)
    assert '"window_reminder": true' in listed.stdout and '"window_reminder_minutes": 45' in listed.stdout

    refused = run_cli("channels", "update", "WhatsApp", "-s", "window_reminder_minutes=2000", data_dir=tmp_path)
    assert refused.returncode != 0
    assert "settings.window_reminder_minutes" in refused.stderr
