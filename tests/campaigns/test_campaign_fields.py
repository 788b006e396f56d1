"""Campaign messages read the business's contact fields: checked once against the defined keys,
and rendered per recipient from values read with the recipients (a query per chunk, not per contact)."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from contact_center.campaigns import content
from contact_center.campaigns import service as campaigns
from contact_center.contacts import fields
from contact_center.contacts import service as contacts
from contact_center.errors import InvalidInput
from contact_center.settings import Settings

BODY = "Oi {{ contact.first_name }}, parcela de {{ contact.valor_parcela|brl }} vence {{ object.vencimento|data }}."


def test_each_recipient_gets_its_own_values_without_a_query_each(db, engine, sms):
    fields.add_field(db, key="valor_parcela", label="Valor da parcela", type="money")
    fields.add_field(db, key="vencimento", label="Vencimento", type="date")
    for i in range(1, 31):
        contacts.create_contact(db, {"name": f"Cliente{i} Teste", "mobile": f"11 90000-{i:04d}", "fields": {
            "valor_parcela": f"{i}.000,00", "vencimento": f"{i % 28 + 1:02d}/12/2025"} if i != 7 else {}})
    db.commit()
    db.expire_all()
    render = content.render_for(db, sms, body=BODY, whatsapp_template_id=None, parameters=None, user=None,
                                settings=Settings())
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        texts, refused = {}, {}
        for recipient in campaigns.contacts_matching(db, ""):
            try:
                texts[recipient.contact.name] = render(recipient.contact).text
            except Exception as exc:
                refused[recipient.contact.name] = str(exc)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert texts["Cliente1 Teste"] == "Oi Cliente1, parcela de R$ 1.000,00 vence 02/12/2025."
    assert texts["Cliente30 Teste"] == "Oi Cliente30, parcela de R$ 30.000,00 vence 03/12/2025."
    assert len(texts) == 29 and list(refused) == ["Cliente7 Teste"]
    assert "valor_parcela has no value for this contact" in refused["Cliente7 Teste"]
    assert len(statements) <= 3, statements  # the contacts, their values, the empty last chunk


def test_an_unknown_field_refuses_the_campaign_naming_it(db, sms):
    fields.add_field(db, key="valor_parcela", label="Valor da parcela", type="money")
    with pytest.raises(InvalidInput) as refused:
        content.render_for(db, sms, body="{{ contact.valor_parcel|brl }}", whatsapp_template_id=None,
                           parameters=None, user=None, settings=Settings())
    assert "unknown variable 'contact.valor_parcel'" in refused.value.message
    assert "contact.valor_parcela" in refused.value.message
