"""The contacts workspace in a real Chromium against the running product, the Kolmeya sandbox and
the WhatsApp sandbox: the list and a contact's page, starting a conversation (a text by SMS, an
approved template on WhatsApp outside the window, a refusal for an opted-out channel), and the CSV
import with its mapping, dry run, progress and rejections file."""

from __future__ import annotations

import csv
import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import run_whatsapp_product
from tests.browser.test_whatsapp_browser import digits, sms_sends, whatsapp_sends
from tests.conftest import BACKENDS
from tests.contacts.test_csv_import import cpf, formatted

pytestmark = pytest.mark.browser

@pytest.fixture(scope="module", params=BACKENDS)
def product(request, tmp_path_factory):
    yield from run_whatsapp_product(request, tmp_path_factory, 0.1)


def make_contact(product, name: str, **fields) -> dict:
    made = product.http.post("/api/contacts", json={"name": name, **fields}, headers=product.auth("sofia"))
    assert made.status_code == 201, made.text
    return made.json()


def test_the_list_finds_a_contact_by_a_written_phone_and_its_page_edits_and_opts_out(open_as, product):
    phone = product.new_phone()
    contact = make_contact(product, "Joana Prado", mobile=phone, email="joana@exemplo.com.br")
    page = open_as("sofia")
    page.click("#nav-contacts")
    page.wait_for_url("**/contacts")
    expect(page.locator("#nav-contacts")).to_have_class(re.compile("current"))
    page.fill("#contact-search", digits(phone))  # written another way than it was stored
    page.press("#contact-search", "Enter")
    expect(page.locator("#contacts-total")).to_have_text("1 contato")
    page.click(f"#contact-row-{contact['id']} [data-role=contact-link]")
    page.wait_for_url(f"**/contacts/{contact['id']}")
    expect(page.locator("#contact-name")).to_have_text("Joana Prado")
    expect(page.locator("#contact-conversations")).to_contain_text("Nenhuma conversa com este contato ainda.")

    form = page.locator("#contact-form")
    form.get_by_label("Nome").fill("Joana Prado Lima")
    form.get_by_label("CPF").fill("111.111.111-11")
    form.get_by_role("button", name="Salvar").click()
    expect(page.locator("#err-document")).to_contain_text("«111.111.111-11» não é um CPF válido")
    expect(page.locator("#form-errors")).to_have_text("Nada foi salvo: corrija os campos indicados.")
    assert product.http.get(f"/api/contacts/{contact['id']}", headers=product.auth("sofia")).json()["name"] == "Joana Prado"
    form.get_by_label("CPF").fill(formatted(cpf(901)))
    form.get_by_role("button", name="Salvar").click()
    expect(page.locator("#contact-saved")).to_have_text("Contato salvo.")
    expect(page.locator("#contact-name")).to_have_text("Joana Prado Lima")

    sms_row = page.locator("form[data-flag=opt_out_sms]")
    expect(sms_row.locator("[data-role=last-change]")).to_have_text("Nunca alterado")
    sms_row.locator("[data-role=toggle]").click()
    sms_row = page.locator("form[data-flag=opt_out_sms]")
    expect(sms_row.locator("[data-role=state]")).to_have_text("bloqueado")
    expect(sms_row.locator("[data-role=last-change]")).to_contain_text("Bloqueado por Sofia Reis em")
    # Writing by SMS is now refused, with the reason, and nothing reaches the sandbox.
    page.select_option("#nc-channel", value=str(product.channel_id))
    expect(page.locator(f"[data-for-channel='{product.channel_id}'] [data-role=opted-out]")).to_be_visible()
    page.fill("#nc-body", "Oi, Joana")
    page.click("#nc-send")
    expect(page.locator("#send-error")).to_contain_text("pediu para não receber mensagens por SMS: nada foi enviado")
    assert sms_sends(product, phone) == []
    assert page.errors == []


def test_nova_conversa_by_sms_and_by_whatsapp_template_lands_in_the_inbox(open_as, product):
    phone = product.new_phone()
    contact = make_contact(product, "Otávio Reis", mobile=phone)
    page = open_as("ana")
    page.goto(f"/contacts/{contact['id']}")

    page.select_option("#nc-channel", value=str(product.channel_id))
    expect(page.locator("input[name=mode][value=template]")).to_be_hidden()
    page.fill("#nc-body", "Olá Otávio, sua fatura vence amanhã.")
    page.click("#nc-send")
    page.wait_for_url(re.compile(r"/inbox/\d+$"))
    expect(page.locator(".entry.msg.out .body").last).to_have_text("Olá Otávio, sua fatura vence amanhã.")
    product.wait_for(lambda: sms_sends(product, phone), what="the SMS at the sandbox")
    assert len(sms_sends(product, phone)) == 1

    # WhatsApp: no conversation there yet, so the window is closed and only a template can go.
    page.goto(f"/contacts/{contact['id']}")
    page.select_option("#nc-channel", value=str(product.whatsapp_channel_id))
    expect(page.locator(f"[data-for-channel='{product.whatsapp_channel_id}'] [data-role=window-closed]")).to_be_visible()
    expect(page.locator("input[name=mode][value=text]")).to_be_disabled()
    expect(page.locator("#nc-body")).to_be_hidden()
    box = page.locator(f"[data-templates-for='{product.whatsapp_channel_id}']")
    box.locator("[data-role=template-picker]").select_option(label="cobranca_lembrete (pt_BR)")
    fields = box.locator("[data-template-panel]:visible input")
    expect(fields).to_have_count(3)
    fields.nth(0).fill("Otávio")
    fields.nth(1).fill("R$ 80,00")
    page.click("#nc-send")
    expect(page.locator("#send-error")).to_contain_text("preencha o parâmetro")  # the third is missing
    assert whatsapp_sends(product, phone) == []
    box = page.locator(f"[data-templates-for='{product.whatsapp_channel_id}']")
    fields = box.locator("[data-template-panel]:visible input")
    fields.nth(0).fill("Otávio")
    fields.nth(1).fill("R$ 80,00")
    fields.nth(2).fill("10/12")
    page.click("#nc-send")
    page.wait_for_url(re.compile(r"/inbox/\d+$"))
    expect(page.locator(".entry.msg.out.ct-template .body").last).to_have_text(
        "Olá Otávio, sua fatura de R$ 80,00 vence em 10/12.")
    [sent] = product.wait_for(lambda: whatsapp_sends(product, phone), what="the template at the sandbox")
    assert sent["payload"]["template"]["name"] == "cobranca_lembrete"

    # Both conversations are on the contact's page, with every message, newest first.
    page.goto(f"/contacts/{contact['id']}")
    expect(page.locator("#contact-conversations li")).to_have_count(2)
    bodies = page.locator("#contact-messages .message-line .body")
    expect(bodies.first).to_have_text("Olá Otávio, sua fatura de R$ 80,00 vence em 10/12.")
    expect(bodies.last).to_have_text("Olá Otávio, sua fatura vence amanhã.")
    assert page.errors == []


def test_a_csv_import_with_mapping_dry_run_progress_and_rejections(open_as, product, tmp_path):
    existing = make_contact(product, "Carla Menezes", mobile="(31) 90000-0001", document=cpf(902))
    text = "\n".join(["Nome;Celular;CPF;Cidade",
                      f"Carla Menezes Souza;(31) 90000-0001;{formatted(cpf(902))};Belo Horizonte",
                      "Sem Número;;;Recife",
                      "Número Ruim;abc;;Recife",
                      *(f"Cliente {n:05d};+55 41 9{n:08d};;Curitiba" for n in range(1, 40_001))]) + "\n"
    upload = tmp_path / "clientes.csv"
    upload.write_bytes(text.encode("cp1252"))

    page = open_as("sofia")
    page.goto("/contacts")
    page.click("#import-contacts")
    page.set_input_files("#import-file", str(tmp_path / "clientes.csv"))
    page.click("#upload-button")
    page.wait_for_url(re.compile(r"/contacts/import/\d+$"))
    import_url = page.url
    expect(page.locator("#mapping")).to_contain_text("Lido como cp1252, separador «;».")
    mapping = page.locator("#mapping-form")
    expect(mapping.locator("tr[data-column=Celular] select")).to_have_value("mobile")
    expect(mapping.locator("tr[data-column=Cidade] select")).to_have_value("-")
    expect(mapping.locator("tr[data-column=Cidade] [data-role=example]")).to_have_text("Belo Horizonte")
    preview = page.locator("#preview")
    expect(preview.locator("tr[data-line='3']")).to_contain_text("Será rejeitada: a linha não tem telefone, celular nem CPF")
    expect(preview.locator("tr[data-line='2']")).to_contain_text(formatted(cpf(902)))

    mapping.locator("tr[data-column=Cidade] select").select_option("notes")
    page.click("#save-mapping")
    expect(page.locator("#preview thead")).to_contain_text("observações")
    expect(page.locator("#preview tr[data-line='2']")).to_contain_text("Belo Horizonte")

    page.click("#start-dry-run")
    result = page.locator("#dry-run-result")
    expect(result).to_be_visible(timeout=60_000)
    expect(result.locator("[data-count=created]")).to_have_text("40.000")
    expect(result.locator("[data-count=updated]")).to_have_text("1")
    expect(result.locator("[data-count=rejected]")).to_have_text("2")
    renamed = result.locator(f"tr[data-contact-id='{existing['id']}'][data-field=name]")
    expect(renamed).to_contain_text("Carla Menezes Souza")
    assert product.http.get(f"/api/contacts/{existing['id']}", headers=product.auth("sofia")).json()["name"] == "Carla Menezes"

    page.click("#run-import")
    expect(page.locator("#import-progress")).to_be_visible()
    expect(page.locator("#import-bar")).to_have_attribute("max", "40003")
    page.goto("/contacts")  # leave the page while it runs, then come back
    page.goto(import_url)
    done = page.locator("#import-result")
    expect(done).to_be_visible(timeout=60_000)
    expect(done).to_contain_text("40.000 criados, 1 atualizados, 2 rejeitadas.")
    assert product.http.get(f"/api/contacts/{existing['id']}", headers=product.auth("sofia")).json()["notes"] == "Belo Horizonte"

    with page.expect_download() as download:
        page.click("#rejections-download")
    saved = tmp_path / "rejeitadas.csv"
    download.value.save_as(saved)
    with open(saved, encoding="utf-8-sig", newline="") as handle:
        rejected = list(csv.reader(handle, delimiter=";"))
    assert rejected[0] == ["Nome", "Celular", "CPF", "Cidade", "linha", "campo", "motivo"]
    assert [r[:6] for r in rejected[1:]] == [["Sem Número", "", "", "Recife", "3", "telefone/celular/CPF"],
                                             ["Número Ruim", "abc", "", "Recife", "4", "celular"]]
    assert rejected[2][6].startswith("celular inválido")
    assert page.errors == []
