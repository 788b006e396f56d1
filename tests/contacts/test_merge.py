"""Merging two contacts: everything of the other moves to the survivor, in one step, on SQLite and
PostgreSQL; what cannot be merged is refused and changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from contact_center.audit.models import AuditEntry
from contact_center.auth.models import User
from contact_center.channels import service as channels
from contact_center.contacts import fields, merge
from contact_center.contacts.models import Contact, ContactIdentifier, ContactTag
from contact_center.contacts.service import create_contact
from contact_center.errors import Conflict, InvalidInput, NotFound
from contact_center.inbox.models import Conversation, ConversationEvent
from contact_center.messaging.models import Message

MARIA = "+55 11 90000-0001"
MARIA_OTHER = "+55 11 90000-0002"
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def sofia(db):
    user = User(username="sofia", name="Sofia Reis", role="supervisor", password_hash="x", active=True)
    db.add(user)
    db.flush()
    return user


def count(db, model, *where) -> int:
    return db.scalar(select(func.count()).select_from(model).where(*where))


def test_a_merge_moves_everything_to_the_survivor(db, sms, sofia, customer_writes):
    second_sms = channels.create_channel(db, name="SMS Cobrança", provider="kolmeya_sandbox", credentials={"token": "t"})
    fields.add_field(db, key="valor_parcela", label="Valor da parcela", type="money")
    fields.add_field(db, key="contrato", label="Contrato", type="text")
    survivor = create_contact(db, {"name": "Maria Souza", "mobile": MARIA, "tags": ["VIP"],
                                   "fields": {"valor_parcela": "150,00"}})
    other = create_contact(db, {"name": "Maria S.", "mobile": MARIA_OTHER, "email": "maria@example.com",
                                "document": "529.982.247-25", "notes": "cliente desde 2019",
                                "opt_out_whatsapp": True, "tags": ["vip", "Acordo 2026"],
                                "fields": {"valor_parcela": "99,90", "contrato": "CT-0001"}})
    db.add(ContactIdentifier(contact_id=other.id, kind="wa_id", value="5511900000002"))
    older = customer_writes(sms, MARIA, "Oi", at=T0)
    customer_writes(sms, MARIA, "Tem alguém aí?", at=T0 + timedelta(minutes=1))
    newer = customer_writes(sms, MARIA_OTHER, "Sou a Maria, de outro número", at=T0 + timedelta(hours=1))
    elsewhere = customer_writes(second_sms, MARIA_OTHER, "Quero negociar", at=T0 + timedelta(hours=2))
    db.add(ConversationEvent(conversation_id=newer.id, kind="contact_linked", actor_id=sofia.id, contact_id=other.id))
    db.flush()
    assert (older.contact_id, newer.contact_id, elsewhere.contact_id) == (survivor.id, other.id, other.id)
    newer_activity = newer.last_activity_at

    planned = merge.plan(db, survivor.id, other.id)
    assert (planned.messages, planned.conversations, planned.conversations_joined) == (2, 2, 1)
    # "vip" is the survivor's "VIP"; the survivor keeps its own valor_parcela and takes the contract
    assert planned.rows == {"contact_tags": 1, "contact_identifiers": 1, "contact_field_values": 1}
    assert count(db, Contact, Contact.id == other.id) == 1  # a plan changes nothing

    done = merge.merge(db, survivor.id, other.id, actor=sofia, via="api")

    assert done.taken == {"phone": MARIA_OTHER, "email": "maria@example.com", "document": "52998224725",
                          "notes": "cliente desde 2019"}
    assert done.not_kept == {} and done.opt_outs_gained == ["opt_out_whatsapp"]
    assert db.get(Contact, other.id) is None
    db.refresh(survivor)
    assert survivor.name == "Maria Souza" and survivor.mobile_e164 == "+5511900000001"
    assert survivor.phone_e164 == "+5511900000002" and survivor.phone_key == "+5511900000002"
    assert (survivor.email, survivor.document, survivor.opt_out_whatsapp) == ("maria@example.com", "52998224725", True)
    assert survivor.tags == ["VIP", "Acordo 2026"]
    assert {k: str(v) for k, v in fields.values_for(db, [survivor.id])[survivor.id].items()} == {
        "valor_parcela": "150.00", "contrato": "CT-0001"}
    assert db.scalar(select(ContactIdentifier.contact_id).where(ContactIdentifier.value == "5511900000002")) == survivor.id

    # The two SMS conversations on one channel are one now, the older; the other channel's is the survivor's.
    assert db.get(Conversation, newer.id) is None
    db.refresh(older)
    db.refresh(elsewhere)
    assert older.contact_id == survivor.id and elsewhere.contact_id == survivor.id
    assert [m.body for m in db.scalars(select(Message).where(Message.conversation_id == older.id)
                                       .order_by(Message.created_at))] == [
        "Oi", "Tem alguém aí?", "Sou a Maria, de outro número"]
    assert older.unread_count == 3 and older.last_activity_at == newer_activity
    assert db.scalar(select(ConversationEvent.conversation_id).where(ConversationEvent.kind == "contact_linked")) == older.id
    assert db.scalar(select(ConversationEvent.contact_id).where(ConversationEvent.kind == "contact_linked")) == survivor.id
    assert count(db, Message, Message.contact_id == survivor.id) == 4
    assert count(db, Message, Message.contact_id.is_(None)) == 0

    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "contact.merge")).one()
    assert (entry.subject_id, entry.actor_id, entry.via) == (survivor.id, sofia.id, "api")
    assert entry.detail["merged_id"] == other.id and entry.detail["merged"]["name"] == "Maria S."
    assert entry.detail["moved"] == {"messages": 2, "conversations": 2, "conversations_joined": 1,
                                     "contact_tags": 1, "contact_identifiers": 1, "contact_field_values": 1}


def test_an_open_conversation_stays_open_when_joined_to_a_closed_one(db, sms, sofia, customer_writes):
    survivor = create_contact(db, {"name": "Ana", "mobile": MARIA})
    other = create_contact(db, {"name": "Ana Paula", "mobile": MARIA_OTHER})
    closed = customer_writes(sms, MARIA, at=T0)
    closed.status = "done"
    open_one = customer_writes(sms, MARIA_OTHER, at=T0 + timedelta(days=1))
    open_one.status, open_one.assignee_id = "assigned", sofia.id
    db.flush()

    merge.merge(db, survivor.id, other.id, actor=sofia, via="cli")

    db.refresh(closed)
    assert (closed.status, closed.assignee_id) == ("assigned", sofia.id)


def test_a_joined_conversation_takes_its_report_row_along_and_the_next_one_opens(db, sms, sofia, customer_writes):
    survivor = create_contact(db, {"name": "Ana", "mobile": MARIA})
    other = create_contact(db, {"name": "Ana Paula", "mobile": MARIA_OTHER})
    customer_writes(sms, MARIA, at=T0)
    gone = customer_writes(sms, MARIA_OTHER, at=T0 + timedelta(hours=1)).id  # the newest: SQLite reuses its id
    report_rows = "SELECT count(*) FROM report_conversations WHERE conversation_id = :id"
    assert db.scalar(text(report_rows), {"id": gone}) == 1

    merge.merge(db, survivor.id, other.id, actor=sofia, via="ui")
    db.flush()
    assert db.get(Conversation, gone) is None and db.scalar(text(report_rows), {"id": gone}) == 0
    # A customer opening a conversation afterwards is recorded (it failed when the row stayed behind).
    opened = customer_writes(sms, "+55 11 90000-0003", "Olá, sou nova", at=T0 + timedelta(hours=2))
    assert db.scalar(text(report_rows), {"id": opened.id}) == 1


def test_numbers_the_survivor_has_already_are_not_taken_twice_and_opt_outs_are_never_lost(db):
    survivor = create_contact(db, {"name": "João", "mobile": "(11) 90000-0003", "email": "joao@example.com",
                                   "opt_out_sms": True})
    other = create_contact(db, {"name": "João Lima", "phone": "5511900000003", "mobile": "(11) 90000-0004",
                                "email": "outro@example.com"})

    done = merge.merge(db, survivor.id, other.id, actor=None, via="cli")

    db.refresh(survivor)
    assert done.taken == {"phone": "(11) 90000-0004"}  # the same number in the other field is not a second one
    assert done.not_kept == {"email": "outro@example.com"}
    assert survivor.email == "joao@example.com" and survivor.opt_out_sms is True
    assert survivor.phone_e164 == "+5511900000004"


@pytest.mark.parametrize("case", ["itself", "missing", "two_cpfs"])
def test_what_cannot_be_merged_is_refused_and_changes_nothing(db, case):
    survivor = create_contact(db, {"name": "Carla", "mobile": MARIA, "document": "529.982.247-25", "tags": ["x"]})
    other = create_contact(db, {"name": "Carla Dias", "mobile": MARIA_OTHER, "document": "111.444.777-35"})
    other_id = {"itself": survivor.id, "missing": 999_999, "two_cpfs": other.id}[case]
    expected = {"itself": InvalidInput, "missing": NotFound, "two_cpfs": Conflict}[case]
    with pytest.raises(expected) as raised:
        merge.merge(db, survivor.id, other_id, actor=None, via="cli")
    assert {"itself": "ele mesmo", "missing": "999999", "two_cpfs": "CPFs diferentes"}[case] in raised.value.message
    assert count(db, Contact) == 2 and count(db, ContactTag) == 1


def test_the_merge_api_is_for_supervisors_and_previews_before(client, agent_headers, supervisor_headers):
    first = client.post("/api/contacts", json={"name": "Bia", "mobile": MARIA, "tags": ["Acordo"]},
                        headers=agent_headers).json()
    second = client.post("/api/contacts", json={"name": "Beatriz", "mobile": MARIA_OTHER, "tags": ["Inadimplente"],
                                                "email": "bia@example.com"}, headers=agent_headers).json()
    url = f"/api/contacts/{first['id']}/merge"

    assert client.post(url, json={"other_id": second["id"]}, headers=agent_headers).status_code == 403
    preview = client.get(url, params={"other_id": second["id"]}, headers=supervisor_headers)
    assert preview.status_code == 200, preview.text
    assert preview.json()["taken"] == {"phone": MARIA_OTHER, "email": "bia@example.com"}
    assert client.get(f"/api/contacts/{second['id']}", headers=agent_headers).status_code == 200

    bad = client.post(url, json={"other_id": first["id"]}, headers=supervisor_headers)
    assert bad.status_code == 422 and "ele mesmo" in bad.json()["error"]["message"]
    done = client.post(url, json={"other_id": second["id"]}, headers=supervisor_headers)
    assert done.status_code == 200, done.text
    assert done.json()["contact"]["tags"] == ["Acordo", "Inadimplente"]
    assert done.json()["rows"]["contact_tags"] == 1
    assert client.get(f"/api/contacts/{second['id']}", headers=agent_headers).status_code == 404
