"""Contact fields in a real Chromium: an admin defines one on its page, an operator fills it in
on the contact panel of a conversation and sees it shown the Brazilian way."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import TEAM, run_product
from tests.conftest import BACKENDS

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module", params=BACKENDS)
def product(request, tmp_path_factory):
    yield from run_product(request, tmp_path_factory, team=(*TEAM, ("root", "Rita Admin", "admin")))


def test_an_admin_defines_a_field_and_an_operator_fills_it_in(open_as, product):
    admin = open_as("root")
    admin.goto("/admin/contact-fields")
    expect(admin.locator("[data-role=no-fields]")).to_contain_text("Nenhum campo ainda")
    form = admin.locator("[data-role=new-field]")
    form.locator("input[name=key]").fill("valor_parcela")
    form.locator("input[name=label]").fill("Valor da parcela")
    form.locator("select[name=type]").select_option("money")
    form.locator("button[type=submit]").click()
    expect(admin.locator("[data-field=valor_parcela]")).to_contain_text("contact.valor_parcela")

    phone = product.new_phone()
    created = product.http.post("/api/contacts", json={"name": "Helena Martins", "mobile": phone},
                                headers=product.auth("sofia"))
    assert created.status_code == 201, created.text
    conversation_id = product.customer_writes(phone, "Quanto devo?")  # reaches Helena's contact

    page = open_as("sofia")
    page.click(f"#row-{conversation_id}")
    page.wait_for_url(f"**/inbox/{conversation_id}*")
    expect(page.locator("#contact-panel [data-role=contact-name]")).to_have_text("Helena Martins")
    page.click("#contact-panel summary")
    page.fill("[data-form=contact-edit] input[name='fields.valor_parcela']", "12,345")
    page.click("[data-form=contact-edit] button[type=submit]")
    expect(page.locator(".toast.error")).to_contain_text("valor_parcela: esperado um valor em reais, como 1.234,56")
    page.fill("[data-form=contact-edit] input[name='fields.valor_parcela']", "1.234,56")
    page.click("[data-form=contact-edit] button[type=submit]")
    expect(page.locator(".toast.ok")).to_contain_text("Contato salvo")
    expect(page.locator("#contact-panel [data-field=valor_parcela]")).to_have_text("R$ 1.234,56")
    assert page.errors == [] and admin.errors == []
