"""The seed document's test plan ("Testes e Validação", tests 1 to 9), automated against the sandbox.

Where the seed checked with SQL we check the same thing through our API and database; its curl
webhook payloads are posted byte for byte; the send → callback loop runs on the live product.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select

from contact_center import phones
from contact_center.channels.service import build_provider, create_channel
from contact_center.contacts.service import create_contact, find_by_phone
from contact_center.inbox.models import Conversation
from contact_center.messaging.models import Message
from contact_center.migrations import alembic_config
from contact_center.providers.kolmeya.provider import SANDBOX_TOKEN
from contact_center.providers.kolmeya.sandbox import SandboxServer

FIXTURES = Path(__file__).parents[1] / "fixtures" / "kolmeya"
SEED_PHONE = "+55 48 99191-0234"


@pytest.fixture(scope="module")
def sandbox():
    with SandboxServer(SANDBOX_TOKEN, status_delay_seconds=60, callback_attempts=1) as server:
        yield server


def seed_body(name: str) -> bytes:
    return json.loads((FIXTURES / f"{name}.json").read_text("utf-8"))["body"].encode("utf-8")


# --- Teste 1: Verificar Instalação ---------------------------------------------------------------


def test_seed_1_verificar_instalacao(client, db):
    """The seed listed its three Odoo modules as installed; ours is a migrated database and a healthy app."""
    assert client.get("/healthz").json()["status"] == "ok"
    connection = db.connection()
    head = ScriptDirectory.from_config(alembic_config(connection.engine)).get_current_head()
    assert MigrationContext.configure(connection).get_current_revision() == head
    tables = set(inspect(connection).get_table_names())
    assert {"channels", "contacts", "conversations", "messages", "templates", "webhook_events"} <= tables


# --- Teste 2: Verificar Provider -------------------------------------------------------------------


def test_seed_2_verificar_provider(client, admin_headers, sandbox):
    """id | name | provider_type | active | token_status = Configurado — without ever showing the token."""
    token = "kol-token-2b9f41c7"
    created = client.post("/api/channels", headers=admin_headers, json={
        "name": "Kolmeya", "provider": "kolmeya_sandbox", "credentials": {"token": token},
        "settings": {"base_url": sandbox.base_url}})
    assert created.status_code == 201, created.text
    listed = client.get("/api/channels", headers=admin_headers)
    [channel] = listed.json()
    assert (channel["name"], channel["kind"], channel["provider"], channel["active"]) == ("Kolmeya", "sms", "kolmeya_sandbox",
                                                                                        True)
    assert channel["credentials_set"] == ["token"]  # "Configurado"
    assert token not in listed.text and token not in created.text
    # "Não configurado" cannot happen: a channel without its token is refused.
    missing = client.post("/api/channels", headers=admin_headers,
                          json={"name": "Sem token", "provider": "kolmeya", "credentials": {}})
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "credentials.token"


# --- Teste 3: Consultar Saldo ----------------------------------------------------------------------


def test_seed_3_consultar_saldo(db, channel, sandbox, settings):
    """API answers {"balance": "R$9.396,84"}; we read 9396.84 (as a Decimal, not a float)."""
    raw = httpx.post(f"{sandbox.base_url}/sms/balance", headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"})
    assert raw.json() == {"balance": "R$9.396,84"}
    provider = build_provider(channel, settings)
    try:
        assert provider.balance() == Decimal("9396.84")
        sandbox.configure(balance="1234567.8")
        assert provider.balance() == Decimal("1234567.80")  # "R$1.234.567,80"
    finally:
        provider.close()


# --- Teste 4: Enviar SMS de Teste ------------------------------------------------------------------


def test_seed_4_enviar_sms_de_teste(live):
    """Contact + phone +55 48 99191-0234 + "Teste via interface" → state sent or delivered, with Kolmeya's id."""
    contact = live.http.post("/api/contacts", json={"name": "Maria Souza", "mobile": "(48) 99191-0234"},
                             headers=live.headers).json()
    sent = live.http.post("/api/sms", json={"to": SEED_PHONE, "body": "Teste via interface"}, headers=live.headers)
    assert sent.status_code == 202, sent.text
    message = live.wait_for(lambda: (m := live.message(sent.json()["id"]))["status"] in ("sent", "delivered") and m,
                            what="sent")
    assert message["contact_id"] == contact["id"]  # partner_id
    assert message["phone_e164"] == "+5548991910234"
    assert message["provider_message_id"]
    delivered = live.wait_for(lambda: (m := live.message(message["id"]))["status"] == "delivered" and m,
                              what="delivered")
    assert delivered["delivered_at"] and delivered["provider_message_id"] == message["provider_message_id"]
    [at_kolmeya] = live.sandbox.ledger()["messages"]
    assert (at_kolmeya["phone"], at_kolmeya["text"]) == ("5548991910234", "Teste via interface")
    assert at_kolmeya["reference"] == message["reference"]


# --- Teste 5: Simular Webhook ----------------------------------------------------------------------


@pytest.mark.parametrize("payload", [
    "reply_seed_resposta_automatica",  # Teste 5
    "reply_seed_teste_local",  # Comandos Úteis: "Testar webhook local"
    "reply_seed_teste_producao",  # Comandos Úteis: "Testar webhook produção"
    "reply_seed_teste_de_webhook",
    "reply_seed_minimal",
])
def test_seed_5_simular_webhook(client, db, channel, admin_headers, payload):
    """curl -d '<payload>' /kolmeya/webhook/reply → {"status": "success", "sms_id": N}; partner_id filled."""
    maria = create_contact(db, {"name": "Maria Souza", "mobile": "(48) 99191-0234"})
    db.commit()
    raw = seed_body(payload)
    response = client.post(f"/kolmeya/webhook/reply?token={channel.webhook_secret}", content=raw,
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status"] == "success" and isinstance(answer["sms_id"], int)

    message = client.get(f"/api/messages/{answer['sms_id']}", headers=admin_headers).json()
    assert (message["direction"], message["status"]) == ("in", "received")
    assert message["body"] == json.loads(raw)["message"]
    assert message["phone_e164"] == "+5548991910234"
    assert message["contact_id"] == maria.id  # partner_id preenchido
    partner = client.get(f"/api/contacts/{message['contact_id']}", headers=admin_headers).json()
    assert partner["name"] == "Maria Souza"  # partner_name


# --- Teste 6: Verificar Connector no ChatRoom ("Check Status") --------------------------------------


def test_seed_6_check_status(client, channel, sandbox, agent_headers):
    """Connected successfully! Provider: Kolmeya. Balance: R$ 9396.84 — not the seed's R$ 0,00."""
    status = client.get(f"/api/channels/{channel.id}/status", headers=agent_headers)
    assert status.status_code == 200, status.text
    state = status.json()
    assert (state["ok"], state["provider"], state["sandbox"], state["error"]) == (True, "kolmeya_sandbox", True, None)
    assert Decimal(state["balance"]) == Decimal("9396.84")
    assert state["balance_text"] == "R$ 9.396,84" != "R$ 0,00"

    sandbox.configure(balance="0.5")
    assert client.get(f"/api/channels/{channel.id}/status", headers=agent_headers).json()["balance_text"] == "R$ 0,50"


def test_seed_6_check_status_reports_a_bad_token_instead_of_a_zero_balance(client, db, sandbox, admin_headers):
    wrong = create_channel(db, name="Token errado", provider="kolmeya_sandbox", credentials={"token": "kol-wrong-9f8e"},
                           settings={"base_url": sandbox.base_url})
    db.commit()
    state = client.get(f"/api/channels/{wrong.id}/status", headers=admin_headers).json()
    assert state["ok"] is False and state["balance"] is None and state["balance_text"] is None
    assert "token" in state["error"] and "kol-wrong-9f8e" not in state["error"]


# --- Teste 7: Normalização de Telefone --------------------------------------------------------------

SEED_FORMS = ["+55 48 99191-0234", "5548991910234", "+5548991910234", "(48) 99191-0234"]


@pytest.mark.parametrize("written", SEED_FORMS)
def test_seed_7_normalizacao_de_telefone(db, written):
    """All four forms are +5548991910234, including (48) 99191-0234 that the seed turned into 4899191023."""
    assert phones.normalize(written) == "+5548991910234"
    assert phones.kolmeya_form(written) == "5548991910234"
    stored = create_contact(db, {"name": "Maria Souza", "mobile": "(48) 99191-0234"})
    other = create_contact(db, {"name": "João Lima", "mobile": "(48) 99191-0235"})
    db.flush()
    assert find_by_phone(db, written).id == stored.id != other.id
    assert find_by_phone(db, "554891910234").id == stored.id  # and WhatsApp's 12-digit form


# --- Teste 8: Template Jinja2 -----------------------------------------------------------------------

COBRANCA = """Olá {{ contact.name }},

Identificamos um débito em sua conta.

Evite juros! Regularize hoje.

Dúvidas: {{ company.name }}

{{ user.name }}"""


def test_seed_8_template_jinja2(client, db, channel, admin_headers):
    """Create "Cobrança Amigável", pick contacts, and the preview shows the rendered message."""
    created = client.post("/api/templates", headers=admin_headers, json={"name": "Cobrança Amigável", "body": COBRANCA})
    assert created.status_code == 201, created.text
    template = created.json()
    joao = client.post("/api/contacts", headers=admin_headers, json={"name": "João Silva", "mobile": "11 90000-0001"})
    joao = joao.json()

    preview = client.post(f"/api/templates/{template['id']}/preview", headers=admin_headers,
                          json={"contact_id": joao["id"]})
    assert preview.status_code == 200, preview.text
    text = preview.json()["text"]
    assert text.startswith("Olá João Silva,\n\nIdentificamos um débito em sua conta.")
    assert text.endswith("Dúvidas: Contact Center\n\nRoot")  # company and the user who previews
    assert preview.json()["segments"]["segments"] >= 1

    # "Action > Send SMS > selecionar parceiros": the bulk preview renders it per contact, sending nothing.
    plan = client.post("/api/sms/bulk", headers=admin_headers,
                       json={"template_id": template["id"], "contact_ids": [joao["id"]], "confirm": False})
    assert plan.status_code == 200, plan.text
    assert plan.json()["recipients"] == 1 and plan.json()["campaign_id"] is None
    assert [(row["name"], row["to"], row["text"]) for row in plan.json()["preview"]] == [
        ("João Silva", "+5511900000001", text)]
    assert db.scalar(select(Message.id)) is None


def test_seed_8_the_seeds_odoo_template_is_refused_with_a_clear_error(client, admin_headers):
    odoo = "Olá {{ object.name }},\nValor: R$ {{ object.credit or '0,00' }}\n{{ user.company_id.phone }}"
    response = client.post("/api/templates", headers=admin_headers, json={"name": "Odoo", "body": odoo})
    assert response.status_code == 422, response.text
    assert "object" in response.json()["error"]["message"]
    assert client.get("/api/templates", headers=admin_headers).json() == []


# --- Teste 9: Conversation no ChatRoom --------------------------------------------------------------


def test_seed_9_conversation_no_chatroom(live):
    """The SMS and its reply sit in one conversation tied to the contact, on the SMS channel."""
    contact = live.http.post("/api/contacts", json={"name": "Maria Souza", "mobile": SEED_PHONE},
                             headers=live.headers).json()
    sent = live.http.post("/api/sms", json={"contact_id": contact["id"], "body": "Olá Maria, sua parcela vence hoje."},
                          headers=live.headers).json()
    live.wait_for(lambda: live.message(sent["id"])["status"] in ("sent", "delivered"), what="sent")
    live.sandbox.reply("5548991910234", "Posso pagar amanhã?")

    def timeline():
        messages = live.http.get("/api/messages", params={"conversation_id": sent["conversation_id"]},
                                 headers=live.headers).json()
        return len(messages) == 2 and messages

    reply, original = live.wait_for(timeline, what="the reply in the conversation")
    assert (original["id"], original["direction"]) == (sent["id"], "out")
    assert (reply["direction"], reply["body"], reply["contact_id"]) == ("in", "Posso pagar amanhã?", contact["id"])

    session = live.runtime.session_factory()
    try:
        conversation = session.get(Conversation, sent["conversation_id"])
        assert (conversation.contact_id, conversation.channel_id) == (contact["id"], live.channel_id)
        assert conversation.phone_e164 == "+5548991910234" and conversation.unread_count == 1
        assert session.scalars(select(Conversation.id)).all() == [conversation.id]
    finally:
        session.close()
