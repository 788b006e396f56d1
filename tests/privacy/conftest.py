"""Two customers as the product really holds them, for the LGPD tests: Maria (the data subject)
and Bruno (who must be left alone), each with an SMS conversation (a send, a reply, a campaign's
message), a WhatsApp conversation through the signed webhook (their wa_id learnt, the raw callback
kept) with a file an operator sent them, kept in the data directory."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from contact_center.channels.models import Channel
from contact_center.channels.service import create_channel
from contact_center.contacts.models import Contact
from contact_center.inbox.models import Conversation
from contact_center.providers.kolmeya.sandbox import SandboxServer as KolmeyaSandbox
from contact_center.providers.whatsapp_cloud.sandbox import SandboxServer as WhatsAppSandbox
from contact_center.providers.whatsapp_cloud.webhooks import sign

APP_SECRET = "app-secret-for-tests"
ANY_TIME = {"days": {d: {"start": "00:00", "end": "24:00"} for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}}
PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63fcff"
                    "9f0100050401020d0a2db40000000049454e44ae426082")


@dataclass
class Customer:
    name: str
    mobile: str  # as written
    e164: str
    email: str
    cpf: str
    texts: list[str]  # what they wrote and were sent
    contact_id: int = 0
    media_sha: str = ""
    conversation_ids: list[int] = field(default_factory=list)

    @property
    def needles(self) -> list[str]:
        """Their personal data in every form it may be written in."""
        digits = self.e164.lstrip("+")
        national = digits[2:]
        return [self.name, self.mobile, self.e164, digits, national, "55" + national[:2] + national[3:], self.email,
                self.cpf, f"{self.cpf[:3]}.{self.cpf[3:6]}.{self.cpf[6:9]}-{self.cpf[9:]}", *self.texts]


MARIA = dict(name="Maria Aparecida Souza", mobile="(11) 90000-0101", e164="+5511900000101",
             email="maria.souza@example.com", cpf="41738295664")
BRUNO = dict(name="Bruno Tavares Costa", mobile="(11) 90000-0202", e164="+5511900000202",
             email="bruno.costa@example.com", cpf="60821534998")


@pytest.fixture(scope="module")
def kolmeya():
    with KolmeyaSandbox("sandbox-token", status_delay_seconds=60) as server:
        yield server


@pytest.fixture(scope="module")
def whatsapp_sandbox():
    with WhatsAppSandbox(status_delay_seconds=60) as server:
        yield server


@pytest.fixture
def admin(make_user):
    return {"Authorization": f"Bearer {make_user('root', 'admin')[1]}"}


def _whatsapp_writes(client, sandbox, wa_id: str, name: str, text: str) -> None:
    at = int(datetime.now(UTC).timestamp()) - 60
    payload = {"object": "whatsapp_business_account", "entry": [{"id": sandbox.waba_id, "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "5511900000000", "phone_number_id": sandbox.phone_number_id},
            "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
            "messages": [{"from": wa_id, "id": f"wamid.IN-{uuid.uuid4().hex}", "timestamp": str(at),
                          "type": "text", "text": {"body": text}}]}}]}]}
    raw = json.dumps(payload, ensure_ascii=True).encode()
    answer = client.post("/whatsapp/webhook", content=raw,
                         headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(raw, APP_SECRET)})
    assert answer.status_code == 200, answer.text


@pytest.fixture
def customers(client, db, admin, kolmeya, whatsapp_sandbox, customer_writes) -> dict[str, Customer]:
    kolmeya.reset()
    whatsapp_sandbox.reset()
    sms = client.post("/api/channels", json={"name": "SMS", "provider": "kolmeya_sandbox",
                                             "credentials": {"token": "sandbox-token"},
                                             "settings": {"base_url": kolmeya.base_url}}, headers=admin).json()
    sms_channel = db.get(Channel, sms["id"])
    whatsapp = create_channel(db, name="WhatsApp", provider="whatsapp_sandbox",
                              credentials={"access_token": whatsapp_sandbox.token, "app_secret": APP_SECRET},
                              settings={"phone_number_id": whatsapp_sandbox.phone_number_id,
                                        "waba_id": whatsapp_sandbox.waba_id, "base_url": whatsapp_sandbox.base_url})
    db.commit()
    people = {}
    for key, data in (("maria", MARIA), ("bruno", BRUNO)):
        first = data["name"].split()[0]
        customer = Customer(**data, texts=[
            f"{first}, sua fatura de dezembro venceu ontem", f"Já paguei pelo pix hoje cedo, {first}",
            f"Oi, {first} aqui: quero a segunda via", f"Comprovante de {first} em anexo",
            f"Oi {first}, sua parcela vence amanhã."])
        contact = client.post("/api/contacts", json={"name": customer.name, "mobile": customer.mobile,
                                                     "email": customer.email, "document": customer.cpf,
                                                     "notes": f"Cliente {first} prefere ligação à tarde"},
                              headers=admin).json()
        customer.contact_id = contact["id"]
        customer.texts.append(f"Cliente {first} prefere ligação à tarde")
        sent = client.post("/api/sms", json={"contact_id": contact["id"], "body": customer.texts[0]}, headers=admin)
        assert sent.status_code == 202, sent.text
        customer_writes(sms_channel, customer.e164.lstrip("+"), customer.texts[1])  # recorded as Kolmeya's are
        db.commit()
        _whatsapp_writes(client, whatsapp_sandbox, customer.e164.lstrip("+"), customer.name, customer.texts[2])
        conversation = db.scalar(select(Conversation).where(Conversation.channel_id == whatsapp.id,
                                                            Conversation.contact_id == contact["id"]))
        file = PNG + f"{key}".encode()  # each customer's own file
        attached = client.post(f"/api/conversations/{conversation.id}/attachments", headers=admin,
                               files={"file": (f"comprovante-{key}.png", file, "image/png")},
                               data={"caption": customer.texts[3]})
        assert attached.status_code == 202, attached.text
        customer.media_sha = attached.json()["content"]["media"]["stored"]["sha256"]
        people[key] = customer
    # A campaign by CSV to both: the audience text names them, each gets a message.
    csv_text = "\n".join(f"{c.e164},{c.name}" for c in people.values())
    campaign = client.post("/api/campaigns", json={"name": "Parcelas", "channel_id": sms["id"], "csv": csv_text,
                                                   "body": "Oi {{ contact.first_name }}, sua parcela vence amanhã.",
                                                   "send_window": ANY_TIME}, headers=admin)
    assert campaign.status_code in (200, 201, 202), campaign.text
    assert client.post(f"/api/campaigns/{campaign.json()['id']}/start", headers=admin).status_code == 200
    db.expire_all()
    for customer in people.values():
        customer.conversation_ids = list(db.scalars(select(Conversation.id).where(
            Conversation.contact_id == customer.contact_id)))
        assert db.get(Contact, customer.contact_id).name == customer.name
    return people
