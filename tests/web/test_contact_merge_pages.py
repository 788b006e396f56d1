"""Merging contacts from the UI over HTTP, on both databases: who may, the plan, the refusals that
change nothing, the confirmation read from the audit log, and the likely-duplicates page."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from contact_center.audit.models import AuditEntry
from contact_center.contacts import service as contacts
from contact_center.contacts.models import Contact
from contact_center.messaging.models import Message
from tests.contacts.test_csv_import import cpf, formatted
from tests.web.test_web_ui import csrf_of, login

HTML = {"Accept": "text/html"}


@pytest.fixture
def pair(db, make_user, sms, customer_writes):
    """Maria twice (the second with the CPF and a conversation of her own), and an agent and a supervisor."""
    make_user("ana", "agent")
    make_user("sofia", "supervisor")
    maria = contacts.create_contact(db, {"name": "Maria Souza", "mobile": "(11) 90000-0001"}).id
    other = contacts.create_contact(db, {"name": "Maria S.", "mobile": "(11) 90000-0002", "document": cpf(11),
                                         "email": "maria@exemplo.com.br"}).id
    customer_writes(sms, "(11) 90000-0001", "Oi")
    customer_writes(sms, "(11) 90000-0002", "Sou a Maria, de outro número")
    customer_writes(sms, "(11) 90000-0002", "Quero negociar")
    db.commit()
    return maria, other


def messages_of(db, contact_id: int) -> int:
    return db.scalar(select(func.count()).select_from(Message).where(Message.contact_id == contact_id))


def test_the_plan_then_the_merge_lands_on_the_survivor_with_what_moved(client, db, pair):
    maria, other = pair
    login(client, "sofia")
    assert 'id="merge-start"' in client.get(f"/contacts/{maria}").text
    found = client.get(f"/contacts/{maria}/merge", params={"q": "11 90000-0002"}).text
    assert f'href="/contacts/{maria}/merge?other={other}"' in found
    assert f'data-contact-id="{maria}"' not in found.split('id="merge-results"')[1]  # never itself
    by_number = client.get(f"/contacts/{maria}/merge", params={"q": str(other)}).text
    assert f'data-contact-id="{other}"' in by_number

    plan = client.get(f"/contacts/{maria}/merge", params={"other": other}).text
    assert re.search(r'data-count="messages">2<', plan) and re.search(r'data-count="conversations">1<', plan)
    assert f"fica o CPF {formatted(cpf(11))}." in plan and "Fica o nome «Maria Souza»;" in plan
    assert f'href="/contacts/{other}/merge?other={maria}"' in plan  # keep the other one instead
    assert db.get(Contact, other) is not None  # a plan changes nothing

    done = client.post(f"/contacts/{maria}/merge", data={"csrf_token": csrf_of(plan), "other_id": other},
                       follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/contacts/{maria}?merged={other}"
    db.expire_all()
    assert db.get(Contact, other) is None and messages_of(db, maria) == 3
    assert db.get(Contact, maria).document == cpf(11)
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "contact.merge"))
    assert (entry.via, entry.detail["merged_id"]) == ("ui", other)
    page = client.get(done.headers["location"]).text
    assert f"Maria S. (nº {other}) foi mesclado neste contato. Vieram para cá: mensagens, 2; conversas, 1." in page
    # The notice comes from the audit log: a link naming another contact claims nothing.
    assert 'data-role="merged"' not in client.get(f"/contacts/{maria}?merged=999").text


def test_refusals_say_why_on_the_page_and_change_nothing(client, db, pair):
    maria, other = pair
    third = contacts.create_contact(db, {"name": "Mário Souza", "mobile": "(11) 90000-0003", "document": cpf(12)}).id
    db.commit()
    login(client, "sofia")
    token = csrf_of(client.get(f"/contacts/{maria}/merge").text)
    for other_id, status, words in (
            (maria, 422, f"o contato nº {maria} não pode ser mesclado com ele mesmo"),
            (987654, 404, "Não há contato com o nº 987654"),
            ("abc", 422, "«abc» não é o número de um contato")):
        shown = client.get(f"/contacts/{maria}/merge", params={"other": other_id}, headers=HTML)
        assert shown.status_code == status and words in shown.text and 'id="merge-confirm"' not in shown.text
        posted = client.post(f"/contacts/{maria}/merge", data={"csrf_token": token, "other_id": other_id})
        assert posted.status_code == status and words in posted.text

    # Two CPFs are two people: refused by the plan, and by the merge itself (all or nothing).
    conflict = "têm CPFs diferentes: são duas pessoas e não podem ser mesclados. Nada foi mesclado."
    shown = client.get(f"/contacts/{other}/merge", params={"other": third})
    assert shown.status_code == 409 and conflict in shown.text
    posted = client.post(f"/contacts/{maria}/merge", data={"csrf_token": token, "other_id": [other, third]})
    assert posted.status_code == 409 and conflict in posted.text and formatted(cpf(12)) in posted.text
    db.expire_all()
    assert db.get(Contact, other) is not None and db.get(Contact, third) is not None
    assert messages_of(db, other) == 2 and messages_of(db, maria) == 1
    assert db.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "contact.merge")) == 0


def test_an_agent_may_not_merge(client, db, pair):
    maria, other = pair
    login(client, "ana")
    page = client.get(f"/contacts/{maria}").text
    assert 'id="merge-start"' not in page
    assert client.get(f"/contacts/{maria}/merge", params={"other": other}, headers=HTML).status_code == 403
    refused = client.post(f"/contacts/{maria}/merge", data={"csrf_token": csrf_of(page), "other_id": other},
                          headers=HTML)
    assert refused.status_code == 403
    db.expire_all()
    assert db.get(Contact, other) is not None
    contacts.create_contact(db, {"name": "Maria Souza Lima", "mobile": "11 900000001"})  # Maria's number again
    db.commit()
    listed = client.get("/contacts/duplicates").text  # the list is the team's; merging it is not
    assert f'data-contacts="{maria},' in listed
    assert "Só supervisores e administradores podem mesclar contatos." in listed and 'data-role="merge"' not in listed


def test_the_duplicates_page_lists_groups_and_merges_into_the_chosen_one(client, db, make_user):
    make_user("sofia", "supervisor")
    login(client, "sofia")
    empty = client.get("/contacts/duplicates").text
    assert 'id="duplicates-empty"' in empty and "Nenhum possível duplicado" in empty
    assert 'href="/contacts/duplicates"' in client.get("/contacts").text

    first = contacts.create_contact(db, {"name": "João Lima", "mobile": "(21) 90000-0001"}).id
    second = contacts.create_contact(db, {"name": "João P. Lima", "phone": "+55 21 90000-0001"}).id
    third = contacts.create_contact(db, {"name": "J. Lima", "mobile": "21 900000001"}).id
    db.commit()
    page = client.get("/contacts/duplicates").text
    assert f'data-contacts="{first},{second},{third}"' in page and "Mesmo telefone: +55 21 90000-0001" in page
    chosen = client.get("/contacts/duplicates/merge", params=[("survivor", second), ("contact", first),
                                                              ("contact", second), ("contact", third)],
                        follow_redirects=False)
    assert chosen.headers["location"] == f"/contacts/{second}/merge?other={first}&other={third}"
    plan = client.get(chosen.headers["location"]).text
    assert len(re.findall(r'data-role="plan"', plan)) == 2
    done = client.post(f"/contacts/{second}/merge", data={"csrf_token": csrf_of(plan),
                                                            "other_id": [first, third]}, follow_redirects=False)
    assert done.headers["location"] == f"/contacts/{second}?merged={first}%2C{third}"
    db.expire_all()
    assert [c.id for c in db.scalars(select(Contact))] == [second]
    assert len(re.findall('data-role="merged"', client.get(done.headers["location"]).text)) == 2
    assert 'id="duplicates-empty"' in client.get("/contacts/duplicates").text
    wrong = client.get("/contacts/duplicates/merge", params={"survivor": 5, "contact": 6}, headers=HTML)
    assert wrong.status_code == 422
