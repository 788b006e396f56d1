"""Fields a business defines for its contacts: validation by type, the API, filters, templates."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from contact_center.contacts import fields
from contact_center.contacts.fields import FieldDefinition, FieldValueError
from contact_center.contacts.models import Contact
from contact_center.settings import Settings
from contact_center.templates import service as templates


def _field(type_: str, choices: tuple[str, ...] = ()) -> FieldDefinition:
    return FieldDefinition(1, "campo", "Campo", type_, choices, 1)


@pytest.mark.parametrize("type_,raw,stored", [
    ("money", "1.234,56", 123456), ("money", "1234,56", 123456), ("money", "1234.56", 123456),
    ("money", "R$ 1.234,56", 123456), ("money", "1.234", 123400), ("money", "-5,5", -550), ("money", 12, 1200),
    ("money", 12.5, 1250), ("money", "0,99", 99), ("money", "1.234.567,89", 123456789),
    ("integer", "12", 12), ("integer", 7, 7), ("integer", "1.500", 1500), ("integer", "-3", -3),
    ("date", "15/11/2025", date(2025, 11, 15)), ("date", "2025-11-15", date(2025, 11, 15)),
    ("date", "5/1/2026", date(2026, 1, 5)),
    ("boolean", "sim", 1), ("boolean", "Não", 0), ("boolean", "nao", 0), ("boolean", True, 1), ("boolean", "0", 0),
    ("choice", "EM ABERTO", "em aberto"), ("choice", "quitado", "quitado"),
    ("text", "Contrato 2025/001", "Contrato 2025/001"),
    ("money", "", None), ("date", "  ", None), ("text", None, None),
])
def test_each_type_accepts_the_ways_brazilians_write_it(type_, raw, stored):
    assert fields.parse(_field(type_, ("em aberto", "quitado")), raw) == stored


@pytest.mark.parametrize("type_,raw,expected", [
    ("money", "1.234,567", "esperado um valor em reais, como 1.234,56"),
    ("money", "abc", "esperado um valor em reais, como 1.234,56"),
    ("money", "1,2,3", "esperado um valor em reais"),
    ("money", True, "esperado um valor em reais"),
    ("money", "1e9", "esperado um valor em reais"),
    ("integer", "1,5", "esperado um número inteiro, como 12"),
    ("integer", True, "esperado um número inteiro"),
    ("integer", "9" * 30, "esperado um número inteiro"),
    ("date", "31/02/2025", "esperado uma data, como 15/11/2025"),
    ("date", "2025/11/15", "esperado uma data"),
    ("date", 20251115, "esperado uma data"),
    ("boolean", "talvez", "esperado sim ou não"),
    ("choice", "cancelado", "esperado uma das opções: em aberto, quitado"),
    ("text", "x" * 501, "esperado um texto de até 500 caracteres"),
    ("text", 12, "esperado um texto"),
])
def test_a_value_of_the_wrong_form_names_the_field_and_what_is_expected(type_, raw, expected):
    with pytest.raises(FieldValueError) as caught:
        fields.parse(_field(type_, ("em aberto", "quitado")), raw)
    assert str(caught.value).startswith("campo: ") and expected in str(caught.value)


@pytest.fixture
def collections_fields(db):
    """The fields a collections business keeps: amount and due date of the next instalment, contract, status."""
    fields.add_field(db, key="valor_parcela", label="Valor da parcela", type="money")
    fields.add_field(db, key="vencimento", label="Vencimento", type="date")
    fields.add_field(db, key="contrato", label="Contrato", type="text")
    fields.add_field(db, key="parcelas", label="Parcelas em aberto", type="integer")
    fields.add_field(db, key="acordo", label="Tem acordo", type="boolean")
    fields.add_field(db, key="situacao", label="Situação", type="choice", choices=["em aberto", "quitado"])
    db.commit()


def test_admins_define_fields_agents_read_them(client, admin_headers, agent_headers):
    created = client.post("/api/contact-fields", json={"key": "valor_parcela", "label": "Valor da parcela",
                                                       "type": "money"}, headers=admin_headers)
    assert created.status_code == 201, created.text
    assert created.json() | {"id": 0} == {"id": 0, "key": "valor_parcela", "label": "Valor da parcela",
                                          "type": "money", "choices": None, "position": 1, "values": 0}
    refused = client.post("/api/contact-fields", json={"key": "x", "label": "X", "type": "text"},
                          headers=agent_headers)
    assert refused.status_code == 403
    listed = client.get("/api/contact-fields", headers=agent_headers)
    assert [f["key"] for f in listed.json()] == ["valor_parcela"]


@pytest.mark.parametrize("body,field,fragment", [
    ({"key": "Valor Parcela", "label": "V", "type": "money"}, "key", "letras minúsculas"),
    ({"key": "name", "label": "Nome", "type": "text"}, "key", "já é um dado do contato"),
    ({"key": "first_name", "label": "Nome", "type": "text"}, "key", "já é um dado do contato"),
    ({"key": "valor", "label": "V", "type": "float"}, "type", "text, integer, money, date, boolean, choice"),
    ({"key": "valor", "label": " ", "type": "money"}, "label", "rótulo é obrigatório"),
    ({"key": "situacao", "label": "S", "type": "choice"}, "choices", "ao menos uma opção"),
    ({"key": "situacao", "label": "S", "type": "text", "choices": ["a"]}, "choices", "só um campo do tipo choice"),
])
def test_a_bad_definition_is_refused_in_portuguese_and_stores_nothing(client, admin_headers, body, field, fragment):
    response = client.post("/api/contact-fields", json=body, headers=admin_headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert fragment in response.json()["error"]["message"]
    assert client.get("/api/contact-fields", headers=admin_headers).json() == []


def test_a_key_is_defined_once(client, admin_headers, collections_fields):
    again = client.post("/api/contact-fields", json={"key": "vencimento", "label": "V", "type": "date"},
                        headers=admin_headers)
    assert again.status_code == 409 and again.json()["error"]["field"] == "key"


def test_contacts_keep_and_answer_their_values(client, agent_headers, collections_fields):
    created = client.post("/api/contacts", json={
        "name": "Maria Souza", "mobile": "(11) 90000-0001",
        "fields": {"valor_parcela": "1.234,56", "vencimento": "15/11/2025", "acordo": "sim", "situacao": "Em aberto"},
    }, headers=agent_headers)
    assert created.status_code == 201, created.text
    assert created.json()["fields"] == {"valor_parcela": "1234.56", "vencimento": "2025-11-15", "acordo": True,
                                        "situacao": "em aberto"}
    contact_id = created.json()["id"]
    changed = client.patch(f"/api/contacts/{contact_id}", json={"fields": {"valor_parcela": 99.9, "acordo": None,
                                                                           "parcelas": "3"}}, headers=agent_headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["fields"] == {"valor_parcela": "99.90", "vencimento": "2025-11-15", "parcelas": 3,
                                        "situacao": "em aberto"}
    assert client.get(f"/api/contacts/{contact_id}", headers=agent_headers).json()["fields"] == changed.json()["fields"]


@pytest.mark.parametrize("values,field,fragment", [
    ({"valor_parcela": "12,345"}, "fields.valor_parcela", "valor_parcela: esperado um valor em reais, como 1.234,56"),
    ({"vencimento": "31/13/2025"}, "fields.vencimento", "vencimento: esperado uma data, como 15/11/2025"),
    ({"divida": "1"}, "fields.divida", "divida: campo desconhecido"),
])
def test_a_bad_value_is_a_422_naming_the_field_and_changes_nothing(client, agent_headers, collections_fields,
                                                                    values, field, fragment):
    contact = client.post("/api/contacts", json={"name": "Ana", "mobile": "11 90000-0002",
                                                 "fields": {"contrato": "C-1"}}, headers=agent_headers).json()
    response = client.patch(f"/api/contacts/{contact['id']}", json={"name": "Ana Paula", "fields": {
        "contrato": "C-2", **values}}, headers=agent_headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field and fragment in response.json()["error"]["message"]
    again = client.get(f"/api/contacts/{contact['id']}", headers=agent_headers).json()
    assert again["name"] == "Ana" and again["fields"] == {"contrato": "C-1"}
    created = client.post("/api/contacts", json={"name": "Bia", "fields": values}, headers=agent_headers)
    assert created.status_code == 422
    assert client.get("/api/contacts", headers=agent_headers).json()["total"] == 1


def test_list_filters_on_ranges_and_equality(client, agent_headers, collections_fields):
    people = [("Ana", "500,00", "2025-11-05", "em aberto"), ("Bia", "1.500,00", "2025-11-15", "em aberto"),
              ("Caio", "2.500,00", "2025-11-30", "quitado"), ("Davi", "3.000,00", "2025-12-01", "em aberto"),
              ("Eva", None, "2025-11-20", "em aberto")]
    for name, amount, due, status in people:
        values = {"vencimento": due, "situacao": status} | ({"valor_parcela": amount} if amount else {})
        assert client.post("/api/contacts", json={"name": name, "fields": values},
                           headers=agent_headers).status_code == 201

    def names(**params):
        response = client.get("/api/contacts", params=params, headers=agent_headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["total"] == len(page["items"])
        return [c["name"] for c in page["items"]]

    # Ordered by the field of the closed range (the due date), then id.
    assert names(**{"field.vencimento_from": "01/11/2025", "field.vencimento_to": "30/11/2025"}) == [
        "Ana", "Bia", "Eva", "Caio"]
    assert names(**{"field.vencimento_from": "2025-11-10", "field.vencimento_to": "2025-11-30",
                    "field.valor_parcela_min": "1000"}) == ["Bia", "Caio"]
    assert names(**{"field.valor_parcela_max": "1.500,00"}) == ["Ana", "Bia"]
    assert names(**{"field.situacao": "Quitado"}) == ["Caio"]
    assert names(**{"field.situacao": "em aberto", "search": "a"}) == ["Ana", "Bia", "Davi", "Eva"]
    assert names(**{"field.valor_parcela": "2500"}) == ["Caio"]
    assert names(**{"field.situacao": "em aberto", "search": "zz"}) == []


def test_a_filtered_count_stops_at_its_limit_and_says_so(client, agent_headers, collections_fields, monkeypatch):
    for i in range(4):
        client.post("/api/contacts", json={"name": f"C{i}", "fields": {"parcelas": i}}, headers=agent_headers)
    monkeypatch.setattr(fields, "COUNT_LIMIT", 2)
    page = client.get("/api/contacts", params={"field.parcelas_min": "1", "limit": 1}, headers=agent_headers).json()
    assert (page["total"], page["total_is_lower_bound"], [c["name"] for c in page["items"]]) == (2, True, ["C1"])
    page = client.get("/api/contacts", params={"field.parcelas_min": "2"}, headers=agent_headers).json()
    assert (page["total"], page["total_is_lower_bound"]) == (2, False)


@pytest.mark.parametrize("param,value,fragment", [
    ("field.vencimento_from", "amanhã", "field.vencimento_from: esperado uma data, como 15/11/2025"),
    ("field.divida_min", "1", "field.divida_min: campo desconhecido"),
    ("field.contrato_min", "a", "só campos de número, valor ou data têm intervalo"),
    ("field.situacao", "cancelado", "esperado uma das opções: em aberto, quitado"),
])
def test_a_bad_filter_is_a_422_naming_the_parameter(client, agent_headers, collections_fields, param, value, fragment):
    response = client.get("/api/contacts", params={param: value}, headers=agent_headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == param and fragment in response.json()["error"]["message"]


def test_removing_a_field_with_values_asks_for_confirmation(client, admin_headers, agent_headers,
                                                             collections_fields):
    for i in (1, 2):
        client.post("/api/contacts", json={"name": f"C{i}", "fields": {"contrato": f"C-{i}"}}, headers=agent_headers)
    refused = client.delete("/api/contact-fields/contrato", headers=admin_headers)
    assert refused.status_code == 409 and "2 contato(s)" in refused.json()["error"]["message"]
    assert client.delete("/api/contact-fields/contrato", headers=agent_headers).status_code == 403
    removed = client.delete("/api/contact-fields/contrato", params={"confirm": "true"}, headers=admin_headers)
    assert removed.json() == {"key": "contrato", "values_removed": 2}
    assert all(c["fields"] == {} for c in client.get("/api/contacts", headers=agent_headers).json()["items"])
    assert client.delete("/api/contact-fields/parcelas", headers=admin_headers).json()["values_removed"] == 0


def test_a_choice_held_by_contacts_stays(client, admin_headers, agent_headers, collections_fields):
    client.post("/api/contacts", json={"name": "C", "fields": {"situacao": "quitado"}}, headers=agent_headers)
    refused = client.patch("/api/contact-fields/situacao", json={"choices": ["em aberto"]}, headers=admin_headers)
    assert refused.status_code == 409 and "quitado" in refused.json()["error"]["message"]
    renamed = client.patch("/api/contact-fields/situacao", json={"label": "Status", "choices": ["em aberto",
                           "quitado", "em acordo"]}, headers=admin_headers)
    assert renamed.json()["label"] == "Status" and renamed.json()["values"] == 1


SEED_TEMPLATE = ("Olá {{ object.name }},\n\nSua parcela vence em {{ object.proxima_parcela_data }}.\n"
                 "Valor: R$ {{ object.proxima_parcela_valor }}")


def test_templates_read_fields_typed_with_brl_and_data(db, collections_fields):
    contact = Contact(name="Maria Souza")
    db.add(contact)
    db.flush()
    fields.set_values(db, contact, {"valor_parcela": "1234,56", "vencimento": "2025-11-15", "parcelas": 2,
                                    "acordo": "não"})
    db.commit()
    db.expire_all()
    contact = db.get(Contact, contact.id)
    body = ("{{ contact.first_name }}: {{ contact.valor_parcela|brl }} em {{ contact.vencimento|data }}; "
            "{{ contact.parcelas + 1 }} parcelas; {{ 'com' if contact.acordo else 'sem' }} acordo; "
            "dobro {{ (contact.valor_parcela * 2)|brl }}")
    text = templates.render_for(body, contact, None, Settings())
    assert text == "Maria: R$ 1.234,56 em 15/11/2025; 3 parcelas; sem acordo; dobro R$ 2.469,12"
    assert templates.render_for("{{ object.valor_parcela|brl }}", contact, None, Settings()) == "R$ 1.234,56"
    # A field this contact has no value of renders empty; brl and data on it say which field is missing.
    assert templates.render_for("[{{ contact.contrato }}]", contact, None, Settings()) == "[]"
    with pytest.raises(Exception, match="contrato has no value for this contact"):
        templates.render_for("{{ contact.contrato|brl }}", contact, None, Settings())


def test_the_seed_template_renders_against_a_contact(db):
    fields.add_field(db, key="proxima_parcela_data", label="Próxima parcela: data", type="date")
    fields.add_field(db, key="proxima_parcela_valor", label="Próxima parcela: valor", type="money")
    contact = Contact(name="João da Silva")
    db.add(contact)
    db.flush()
    fields.set_values(db, contact, {"proxima_parcela_data": "15/11/2025", "proxima_parcela_valor": "1.234,56"})
    db.commit()
    text = templates.render_for(SEED_TEMPLATE, contact, None, Settings())
    assert text == "Olá João da Silva,\n\nSua parcela vence em 2025-11-15.\nValor: R$ 1234.56"
    brazilian = SEED_TEMPLATE.replace("proxima_parcela_data }}", "proxima_parcela_data|data }}").replace(
        "R$ {{ object.proxima_parcela_valor }}", "{{ object.proxima_parcela_valor|brl }}")
    assert templates.render_for(brazilian, contact, None, Settings()).endswith(
        "vence em 15/11/2025.\nValor: R$ 1.234,56")


def test_the_template_check_knows_the_defined_fields(client, supervisor_headers, db, collections_fields):
    saved = client.post("/api/templates", json={"name": "Cobrança", "body": "Valor: {{ contact.valor_parcela|brl }}, "
                        "vence {{ object.vencimento|data }}"}, headers=supervisor_headers)
    assert saved.status_code == 201, saved.text
    preview = client.post(f"/api/templates/{saved.json()['id']}/preview", json={}, headers=supervisor_headers)
    assert preview.json()["text"] == "Valor: R$ 1.234,56, vence 15/11/2025"
    unknown = client.post("/api/templates", json={"name": "X", "body": "{{ contact.valor_parcel }}"},
                          headers=supervisor_headers)
    assert unknown.status_code == 422
    message = unknown.json()["error"]["message"]
    assert "unknown variable 'contact.valor_parcel'" in message and "contact.valor_parcela" in message


def test_values_for_reads_many_contacts_at_once(db, collections_fields):
    ids = []
    for i in range(3):
        contact = Contact(name=f"C{i}")
        db.add(contact)
        db.flush()
        fields.set_values(db, contact, {"valor_parcela": f"{i},50"} if i else {})
        ids.append(contact.id)
    assert fields.values_for(db, ids) == {ids[1]: {"valor_parcela": Decimal("1.50")},
                                          ids[2]: {"valor_parcela": Decimal("2.50")}}
