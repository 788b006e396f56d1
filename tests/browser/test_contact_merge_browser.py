"""Merging duplicate contacts in a real Chromium against the running product: from a contact's page
(search, plan, confirm), from the likely-duplicates page (choosing the contact that stays), a
refusal that changes nothing, and the CSV import's preview and dry run of a business's field."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from contact_center.contacts import fields as custom_fields
from contact_center.contacts.models import Contact
from contact_center.inbox.models import Conversation
from contact_center.messaging.models import Message
from tests.browser.conftest import TEAM, run_product
from tests.browser.test_whatsapp_browser import digits
from tests.conftest import BACKENDS
from tests.contacts.test_csv_import import cpf, formatted

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module", params=BACKENDS)
def product(request, tmp_path_factory):
    yield from run_product(request, tmp_path_factory, team=(*TEAM, ("root", "Rita Admin", "admin")))


def make_contact(product, name: str, **fields) -> int:
    made = product.http.post("/api/contacts", json={"name": name, **fields}, headers=product.auth("sofia"))
    assert made.status_code == 201, made.text
    return made.json()["id"]


def stored(product, contact_id: int) -> dict:
    """The contact as the database has it: whether it is there, and its messages and conversations."""
    with product.runtime.session_factory() as session:
        return {"exists": session.get(Contact, contact_id) is not None,
                "messages": session.scalar(select(func.count()).select_from(Message)
                                           .where(Message.contact_id == contact_id)),
                "conversations": session.scalar(select(func.count()).select_from(Conversation)
                                                .where(Conversation.contact_id == contact_id))}


def test_merge_from_the_contact_page_moves_the_history_and_removes_the_other(open_as, product):
    phone, other_phone = product.new_phone(), product.new_phone()
    maria = make_contact(product, "Maria Souza", mobile=phone)
    other = make_contact(product, "Maria S.", mobile=other_phone, document=cpf(801))
    product.customer_writes(phone, "Oi, é a Maria")
    product.customer_writes(other_phone, "Sou a Maria, de outro número")
    product.customer_writes(other_phone, "Quero negociar a parcela")
    assert (stored(product, maria)["messages"], stored(product, other)["messages"]) == (1, 2)

    page = open_as("sofia")
    page.goto(f"/contacts/{maria}")
    page.click("#merge-start")
    page.wait_for_url(f"**/contacts/{maria}/merge")
    page.fill("#merge-q", digits(other_phone))  # the contacts search: any written form of the phone
    page.click("#merge-search-button")
    expect(page.locator("#merge-results tbody tr")).to_have_count(1)
    page.click(f"#merge-results tr[data-contact-id='{other}'] [data-role=pick]")

    plan = page.locator(f"#merge-plan [data-role=plan][data-other-id='{other}']")
    expect(plan.locator("[data-count=messages]")).to_have_text("2")
    expect(plan.locator("[data-count=conversations]")).to_have_text("1")
    expect(plan.locator("[data-count=conversations_joined]")).to_have_text("1")  # both wrote on the SMS channel
    expect(page.locator("#merge-survivor")).to_have_text(
        f"Fica o nome «Maria Souza»; fica o CPF {formatted(cpf(801))}.")
    expect(plan.locator("[data-role=taken] [data-field=phone]")).to_contain_text("Telefone")
    expect(plan).to_contain_text(f"O contato Maria S. (nº {other}) será removido.")
    assert stored(product, other)["exists"]  # seeing the plan changes nothing

    page.click("#merge-confirm")
    page.wait_for_url(re.compile(rf"/contacts/{maria}\?merged={other}$"))
    expect(page.locator("[data-role=merged]")).to_have_text(
        f"Maria S. (nº {other}) foi mesclado neste contato. Vieram para cá: mensagens, 2; conversas, 1.")
    expect(page.locator("#contact-messages .message-line")).to_have_count(3)
    expect(page.locator("#contact-conversations li")).to_have_count(1)
    expect(page.locator("#contact-form input[name=document]")).to_have_value(cpf(801))
    assert stored(product, other) == {"exists": False, "messages": 0, "conversations": 0}
    assert stored(product, maria) == {"exists": True, "messages": 3, "conversations": 1}
    page.goto(f"/contacts/{other}")
    expect(page.locator("#error-page")).to_be_visible()  # the other contact is gone
    assert page.errors == []


def test_a_refused_merge_says_why_and_changes_nothing(open_as, product):
    first = make_contact(product, "Pedro Alves", mobile=product.new_phone(), document=cpf(802))
    second = make_contact(product, "Pedro A.", mobile=product.new_phone(), document=cpf(803))
    third_phone = product.new_phone()
    third = make_contact(product, "Pedro Alves Lima", mobile=third_phone)
    product.customer_writes(third_phone, "Oi")

    page = open_as("sofia")
    page.goto(f"/contacts/{first}/merge")
    page.fill("#merge-q", formatted(cpf(803)))
    page.click("#merge-search-button")
    page.click(f"#merge-results tr[data-contact-id='{second}'] [data-role=pick]")
    expect(page.locator("#merge-error")).to_have_text(
        f"Pedro Alves (nº {first}, CPF {formatted(cpf(802))}) e Pedro A. (nº {second}, CPF {formatted(cpf(803))}) "
        "têm CPFs diferentes: são duas pessoas e não podem ser mesclados. Nada foi mesclado.")
    expect(page.locator("#merge-confirm")).to_have_count(0)

    page.goto(f"/contacts/{first}/merge?other={first}")
    expect(page.locator("#merge-error")).to_contain_text(f"o contato nº {first} não pode ser mesclado com ele mesmo")

    # The plan is on screen when someone else removes the other contact: the confirmation is refused.
    page.goto(f"/contacts/{first}/merge?other={third}")
    expect(page.locator("[data-count=messages]")).to_have_text("1")
    removed = product.http.delete(f"/api/contacts/{third}", headers=product.auth("sofia"))
    assert removed.status_code == 204, removed.text
    page.click("#merge-confirm")
    expect(page.locator("#merge-error")).to_have_text(
        f"Não há contato com o nº {third}: ele pode ter sido removido ou mesclado em outro. Nada foi mesclado.")
    assert stored(product, first) == {"exists": True, "messages": 0, "conversations": 0}
    assert stored(product, second)["exists"]
    assert page.errors == []


def test_merge_from_the_duplicates_page_into_the_contact_chosen_to_stay(open_as, product):
    page = open_as("sofia")
    page.goto("/contacts")
    page.click("#contact-duplicates-link")
    page.wait_for_url("**/contacts/duplicates")
    expect(page.locator("#duplicates-empty")).to_contain_text("Nenhum possível duplicado")

    shared, own = product.new_phone(), product.new_phone()
    oldest = make_contact(product, "Joana Prado", mobile=shared)
    # The same number as Joana's mobile, written as her landline: a likely duplicate.
    newer = make_contact(product, "Joana P. Prado", mobile=own, phone=digits(shared), create_anyway=True)
    product.customer_writes(shared, "Boa tarde")
    product.customer_writes(own, "Aqui é a Joana, do celular novo")
    page.reload()
    group = page.locator(f"[data-role=group][data-contacts='{oldest},{newer}']")
    expect(group.locator("h2")).to_have_text(f"Mesmo telefone: {shared}")
    expect(group.locator(f"[data-contact-id='{oldest}']")).to_contain_text("o mais antigo")
    expect(group.locator(f"input[name=survivor][value='{oldest}']")).to_be_checked()
    group.locator(f"input[name=survivor][value='{newer}']").check()  # keep the newer record instead
    group.locator("[data-role=merge]").click()

    page.wait_for_url(re.compile(rf"/contacts/{newer}/merge\?other={oldest}$"))
    expect(page.locator(f"[data-role=plan][data-other-id='{oldest}'] [data-count=messages]")).to_have_text("1")
    page.click("#merge-confirm")
    page.wait_for_url(re.compile(rf"/contacts/{newer}\?merged={oldest}$"))
    expect(page.locator("[data-role=merged]")).to_contain_text(f"Joana Prado (nº {oldest}) foi mesclado neste contato")
    expect(page.locator("#contact-messages .message-line")).to_have_count(2)
    assert stored(product, oldest) == {"exists": False, "messages": 0, "conversations": 0}
    assert stored(product, newer) == {"exists": True, "messages": 2, "conversations": 1}

    page.goto("/contacts/duplicates")
    expect(page.locator("#duplicates-empty")).to_be_visible()
    assert page.errors == []


def test_the_import_preview_and_dry_run_show_a_business_field_and_its_change(open_as, product, tmp_path):
    made = product.http.post("/api/contact-fields", json={"key": "valor_parcela", "label": "Valor da parcela",
                                                          "type": "money"}, headers=product.auth("root"))
    assert made.status_code == 201, made.text
    phone = product.new_phone()
    existing = make_contact(product, "Carla Menezes", mobile=phone, fields={"valor_parcela": "100,00"})
    upload = tmp_path / "parcelas.csv"
    upload.write_text(f"Nome;Celular;Valor da parcela\nCarla Menezes;{phone};250,00\n"
                      f"Cliente Novo;{product.new_phone()};10,00\n", encoding="utf-8")

    page = open_as("sofia")
    page.goto("/contacts/import")
    page.set_input_files("#import-file", str(upload))
    page.click("#upload-button")
    page.wait_for_url(re.compile(r"/contacts/import/\d+$"))
    expect(page.locator("#mapping-form tr[data-column='Valor da parcela'] select")).to_have_value("valor_parcela")
    preview = page.locator("#preview")
    expect(preview.locator("thead th[data-field=valor_parcela]")).to_have_text("Valor da parcela")
    expect(preview.locator("tr[data-line='2'] td[data-field=valor_parcela]")).to_have_text("R$ 250,00")
    expect(preview.locator("tr[data-line='3'] td[data-field=valor_parcela]")).to_have_text("R$ 10,00")

    page.click("#start-dry-run")
    result = page.locator("#dry-run-result")
    expect(result).to_be_visible(timeout=60_000)
    expect(result.locator("[data-count=updated]")).to_have_text("1")
    expect(result.locator("[data-count=changed]")).to_have_text("1")
    expect(result.locator("[data-role=changed-fields]")).to_contain_text("Valor da parcela: 1")
    change = result.locator(f"tr[data-contact-id='{existing}'][data-field=valor_parcela] td")
    expect(change).to_have_text(["2", "Carla Menezes", "Valor da parcela", "100,00", "250,00"])

    def value() -> object:
        with product.runtime.session_factory() as session:
            return custom_fields.values_for(session, [existing])[existing]["valor_parcela"]

    assert str(value()) == "100.00"  # a dry run writes nothing
    page.click("#run-import")
    expect(page.locator("#import-result")).to_be_visible(timeout=60_000)
    expect(page.locator(f"#import-result tr[data-contact-id='{existing}'][data-field=valor_parcela]")).to_contain_text(
        "250,00")
    assert str(value()) == "250.00"
    assert page.errors == []
