"""WhatsApp campaigns through the real WhatsApp sandbox: an approved template whose parameters are
rendered from each contact and checked against the synced definition, once for the campaign and
then recipient by recipient; sent exactly once each, as the sandbox's ledger counts them."""

from __future__ import annotations

import pytest

from contact_center.channels.service import create_channel
from contact_center.providers.whatsapp_cloud.sandbox import SandboxServer

ANY_TIME = {"days": {day: {"start": "00:00", "end": "24:00"} for day in ("mon", "tue", "wed", "thu", "fri", "sat",
                                                                         "sun")}}


@pytest.fixture(scope="module")
def sandbox():
    with SandboxServer(status_delay_seconds=60) as server:
        yield server


@pytest.fixture
def whatsapp(db, sandbox):
    sandbox.reset()
    channel = create_channel(db, name="WhatsApp Cobrança", provider="whatsapp_sandbox",
                             credentials={"access_token": sandbox.token, "app_secret": "segredo"},
                             settings={"phone_number_id": sandbox.phone_number_id, "waba_id": sandbox.waba_id,
                                       "base_url": sandbox.base_url})
    db.commit()
    return channel


@pytest.fixture
def templates(client, whatsapp, admin_headers) -> dict[str, int]:
    assert client.post(f"/api/channels/{whatsapp.id}/whatsapp-templates/sync", headers=admin_headers).status_code == 200
    listed = client.get(f"/api/channels/{whatsapp.id}/whatsapp-templates", headers=admin_headers).json()
    return {t["name"]: t["id"] for t in listed}


@pytest.fixture
def customers(client, admin_headers):
    for i, (name, notes) in enumerate([("Ana Lima", "R$ 120,00"), ("Bruno Sá", "R$ 80,50"), ("Carla Dias", "")],
                                      start=1):
        client.post("/api/contacts", json={"name": name, "mobile": f"11 90000-000{i}", "notes": notes},
                    headers=admin_headers)


def campaign(client, headers, whatsapp, **fields):
    return client.post("/api/campaigns", headers=headers, json={
        "name": "Lembrete WhatsApp", "channel_id": whatsapp.id, "search": "", "send_window": ANY_TIME} | fields)


def test_an_approved_template_goes_to_each_contact_with_its_own_values(client, admin_headers, whatsapp, sandbox,
                                                                       templates, customers):
    answer = campaign(client, admin_headers, whatsapp, whatsapp_template_id=templates["cobranca_lembrete"],
                      parameters={"body": ["{{ contact.first_name }}", "{{ contact.notes }}", "10/12"]}, start=True)
    assert answer.status_code == 202, answer.text
    state = client.get(f"/api/campaigns/{answer.json()['id']}", headers=admin_headers).json()
    # Carla has no amount: WhatsApp refuses an empty parameter, so hers is skipped, saying why.
    assert state["skip_reasons"] == {"message": 1}
    assert (state["status"], state["progress"]["sent"]) == ("completed", 2)
    sent = sandbox.ledger()["messages"]
    assert sorted(m["to"] for m in sent) == ["5511900000001", "5511900000002"]
    bodies = {m["to"]: [p["text"] for p in m["payload"]["template"]["components"][0]["parameters"]] for m in sent}
    assert bodies["5511900000001"] == ["Ana", "R$ 120,00", "10/12"]
    assert {m["type"] for m in sent} == {"template"}
    recipients = client.get(f"/api/campaigns/{state['id']}/recipients", headers=admin_headers).json()
    assert "Olá Ana, sua fatura de R$ 120,00 vence em 10/12." in {r["body"] for r in recipients}


def test_a_parameter_the_template_does_not_take_refuses_the_campaign_naming_it(client, admin_headers, whatsapp,
                                                                              sandbox, templates, customers):
    answer = campaign(client, admin_headers, whatsapp, whatsapp_template_id=templates["cobranca_lembrete"],
                      parameters={"body": ["{{ contact.first_name }}"]})
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == "parameters" and "body" in answer.json()["error"]["message"]
    assert client.get("/api/campaigns", headers=admin_headers).json()["items"] == []
    assert sandbox.ledger()["messages"] == []


def test_a_template_that_is_not_approved_or_free_text_is_refused(client, admin_headers, whatsapp, templates):
    rejected = campaign(client, admin_headers, whatsapp, whatsapp_template_id=templates["promocao_relampago"],
                        parameters={"body": ["30"]})
    assert rejected.status_code == 422 and "REJECTED" in rejected.json()["error"]["message"]
    free_text = campaign(client, admin_headers, whatsapp, body="Oi {{ contact.first_name }}")
    assert free_text.status_code == 422 and free_text.json()["error"]["field"] == "whatsapp_template_id"


def test_a_marketing_template_is_kept_blocked_for_a_customer_who_stopped_marketing(client, admin_headers, whatsapp,
                                                                                   sandbox, templates, customers, db):
    from sqlalchemy import update

    from contact_center.contacts.models import Contact

    db.execute(update(Contact).where(Contact.name == "Bruno Sá").values(opt_out_marketing=True))
    db.commit()
    answer = campaign(client, admin_headers, whatsapp, whatsapp_template_id=templates["boas_vindas"],
                      parameters={"body": {"first_name": "{{ contact.first_name }}"}}, start=True)
    state = client.get(f"/api/campaigns/{answer.json()['id']}", headers=admin_headers).json()
    assert (state["progress"]["sent"], state["progress"]["blocked"]) == (2, 1)
    assert sorted(m["to"] for m in sandbox.ledger()["messages"]) == ["5511900000001", "5511900000003"]


# --- WhatsApp's spam rate limit (131048): the campaign pauses itself, with an alert ---------------

def test_a_spam_rate_limit_at_the_send_pauses_the_campaign_and_sends_nothing_more(client, admin_headers, whatsapp,
                                                                                  sandbox, templates, customers, db):
    from sqlalchemy import select

    from contact_center.audit.models import AuditEntry
    from contact_center.messaging.models import Message, MessageAttempt

    sandbox.configure(fail_next=[131048])
    answer = campaign(client, admin_headers, whatsapp, whatsapp_template_id=templates["boas_vindas"],
                      parameters={"body": {"first_name": "{{ contact.first_name }}"}}, start=True)
    assert answer.status_code == 202, answer.text
    state = client.get(f"/api/campaigns/{answer.json()['id']}", headers=admin_headers).json()
    assert state["status"] == "paused"
    assert "paused automatically by the provider" in state["error"] and "spam" in state["error"]
    in_portuguese = client.get(f"/api/campaigns/{answer.json()['id']}",
                               headers={**admin_headers, "Accept-Language": "pt-BR"}).json()
    assert "Pausada automaticamente" in in_portuguese["error"] and "spam" in in_portuguese["error"]
    assert state["progress"]["scheduled"] == 3 and state["progress"]["failed"] == 0
    assert sandbox.ledger()["messages"] == []  # the refused send is not in Meta's ledger, nor any after it
    refused = db.scalar(select(Message).join(MessageAttempt, MessageAttempt.message_id == Message.id))
    [attempt] = db.scalars(select(MessageAttempt).where(MessageAttempt.message_id == refused.id))
    assert (attempt.outcome, attempt.provider_code, refused.attempts) == ("held", 131048, 0)
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "campaign.pause"))
    assert (entry.via, entry.subject_id) == ("system", state["id"])

    resumed = client.post(f"/api/campaigns/{state['id']}/resume", headers=admin_headers)
    assert resumed.status_code == 200, resumed.text
    state = client.get(f"/api/campaigns/{state['id']}", headers=admin_headers).json()
    assert (state["status"], state["error"], state["progress"]["sent"]) == ("completed", None, 3)
    sent = sorted(m["to"] for m in sandbox.ledger()["messages"])
    assert sent == ["5511900000001", "5511900000002", "5511900000003"]  # each once


def test_a_spam_rate_limit_in_a_failed_status_pauses_the_running_campaign(client, admin_headers, whatsapp, sandbox,
                                                                          templates, customers, db):
    import json
    import time

    from contact_center.providers.whatsapp_cloud.webhooks import sign

    answer = campaign(client, admin_headers, whatsapp, whatsapp_template_id=templates["boas_vindas"],
                      parameters={"body": {"first_name": "{{ contact.first_name }}"}}, per_minute=1, start=True)
    state = client.get(f"/api/campaigns/{answer.json()['id']}", headers=admin_headers).json()
    assert (state["status"], state["progress"]["sent"], state["progress"]["scheduled"]) == ("running", 1, 2)
    [first] = sandbox.ledger()["messages"]
    payload = {"object": "whatsapp_business_account", "entry": [{"id": sandbox.waba_id, "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "5511900000099", "phone_number_id": sandbox.phone_number_id},
            "statuses": [{"id": first["wamid"], "status": "failed", "timestamp": str(int(time.time())),
                          "recipient_id": first["to"],
                          "errors": [{"code": 131048, "title": "Spam rate limit hit"}]}]}}]}]}
    raw = json.dumps(payload).encode()
    posted = client.post("/whatsapp/webhook", content=raw, headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": sign(raw, "segredo")})
    assert posted.status_code == 200, posted.text
    state = client.get(f"/api/campaigns/{state['id']}", headers=admin_headers).json()
    assert state["status"] == "paused" and "spam" in state["error"]
    assert (state["progress"]["failed"], state["progress"]["scheduled"]) == (1, 2)
    assert len(sandbox.ledger()["messages"]) == 1
