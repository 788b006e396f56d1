"""The contact fields in the UI: the admin page (define, change, remove with confirmation) and the
contact panel of a conversation (values shown, edited through the panel's API)."""

from __future__ import annotations

from sqlalchemy import select

from contact_center.contacts import fields
from contact_center.contacts import service as contacts
from contact_center.contacts.models import ContactField
from contact_center.inbox.models import Conversation
from tests.web.test_web_ui import csrf_of, login, page_csrf


def test_an_admin_defines_changes_and_removes_fields(client, db, make_user):
    make_user("root", "admin")
    login(client, "root")
    page = client.get("/admin/contact-fields")
    assert page.status_code == 200 and "Nenhum campo ainda" in page.text and 'href="/admin/contact-fields"' in page.text
    token = csrf_of(page.text)
    bad = client.post("/admin/contact-fields", data={"csrf_token": token, "key": "Valor", "label": "Valor",
                                                     "type": "money"})
    assert bad.status_code == 422 and "letras minúsculas" in bad.text
    assert db.scalar(select(ContactField.id)) is None
    made = client.post("/admin/contact-fields", data={"csrf_token": token, "key": "situacao", "label": "Situação",
                                                      "type": "choice", "choices": "em aberto\nquitado"},
                       follow_redirects=False)
    assert made.status_code == 303 and made.headers["location"] == "/admin/contact-fields?ok=created"
    saved = client.post("/admin/contact-fields/situacao", data={"csrf_token": token, "label": "Status",
                                                                "choices": "em aberto, quitado, em acordo",
                                                                "position": "3"}, follow_redirects=False)
    assert saved.status_code == 303
    db.expire_all()
    assert db.scalar(select(ContactField.choices)) == ["em aberto", "quitado", "em acordo"]

    contact = contacts.create_contact(db, {"name": "Ana", "fields": {"situacao": "quitado"}})
    db.commit()
    asked = client.post("/admin/contact-fields/situacao/remove", data={"csrf_token": token})
    assert asked.status_code == 200 and "1 contato(s) têm um valor em “Status”" in asked.text
    assert db.scalar(select(ContactField.id)) is not None
    removed = client.post("/admin/contact-fields/situacao/remove", data={"csrf_token": token, "confirm": "1"},
                          follow_redirects=False)
    assert removed.status_code == 303
    db.expire_all()
    assert db.scalar(select(ContactField.id)) is None and fields.values_for(db, [contact.id]) == {}


def test_agents_do_not_get_the_admin_page(client, make_user):
    make_user("ana", "agent")
    login(client, "ana")
    assert client.get("/admin/contact-fields", headers={"Accept": "text/html"}).status_code == 403


def test_the_contact_panel_shows_and_edits_the_values(client, db, make_user, sms, customer_writes):
    make_user("sofia", "supervisor")
    fields.add_field(db, key="valor_parcela", label="Valor da parcela", type="money")
    fields.add_field(db, key="vencimento", label="Vencimento", type="date")
    fields.add_field(db, key="acordo", label="Tem acordo", type="boolean")
    conversation_id = customer_writes(sms, "+55 11 90000-0001", "Oi").id
    contact = contacts.create_contact(db, {"name": "Maria", "mobile": "+55 11 90000-0001",
                                           "fields": {"valor_parcela": "1234,5", "vencimento": "2025-11-15"}})
    db.get(Conversation, conversation_id).contact_id = contact.id
    db.commit()
    login(client, "sofia")
    panel = client.get(f"/inbox/{conversation_id}/fragments/contact").text
    assert '<dt>Valor da parcela</dt><dd data-field="valor_parcela">R$ 1.234,50</dd>' in panel
    assert '<dd data-field="vencimento">15/11/2025</dd>' in panel and 'data-field="acordo"' not in panel
    assert 'name="fields.valor_parcela" value="1.234,50"' in panel and 'name="fields.acordo"' in panel
    headers = {"X-CSRF-Token": page_csrf(client)}
    changed = client.patch(f"/api/conversations/{conversation_id}/contact", headers=headers,
                           json={"fields": {"valor_parcela": "99,90", "acordo": "sim", "vencimento": None}})
    assert changed.status_code == 200, changed.text
    assert changed.json()["fields"] == {"valor_parcela": "99.90", "acordo": True}
    refused = client.patch(f"/api/conversations/{conversation_id}/contact", headers=headers,
                           json={"fields": {"vencimento": "32/01/2025"}})
    assert refused.status_code == 422 and "vencimento: esperado uma data" in refused.json()["error"]["message"]
    panel = client.get(f"/inbox/{conversation_id}/fragments/contact").text
    assert '<dd data-field="acordo">sim</dd>' in panel and 'data-field="vencimento">' not in panel
