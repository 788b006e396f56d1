"""The audit log page in a real Chromium against the running product: a supervisor finds their own
login, filters by action and by subject, goes back a page, and downloads the filter as CSV (which
the log then shows too); an agent has no way in."""

from __future__ import annotations

import csv
import io

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_a_supervisor_browses_filters_and_exports_the_audit_log(open_as, product):
    phone = product.new_phone()
    created = product.http.post("/api/contacts", json={"name": "Cliente Auditada", "mobile": phone},
                                headers=product.auth("sofia"))
    assert created.status_code == 201, created.text
    contact_id = created.json()["id"]
    product.http.patch(f"/api/contacts/{contact_id}", json={"email": "auditada@example.com"},
                       headers=product.auth("sofia"))

    page = open_as("sofia")
    page.click("#nav-audit")
    page.wait_for_url("**/audit")
    expect(page.locator("h1")).to_have_text("Registro de auditoria")
    first_row = page.locator("#audit-table tbody tr").first
    expect(first_row.locator("[data-role=action]")).to_have_text("Entrada no sistema")  # newest first: the login
    expect(first_row.locator("[data-role=actor]")).to_contain_text("sofia")

    page.select_option("#audit-action", "contact.update")
    page.click("#audit-apply")
    rows = page.locator("#audit-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("[data-role=subject]")).to_have_text(f"Contato #{contact_id}")
    expect(rows.first.locator("[data-role=summary]")).to_have_text("fields: ['email']")
    expect(rows.first.locator("[data-role=actor]")).to_contain_text("Token de API")

    page.select_option("#audit-action", "")
    page.select_option("#audit-subject-type", "contact")
    page.fill("#audit-subject-id", str(contact_id))
    page.click("#audit-apply")
    expect(page.locator("#audit-table tbody tr [data-role=action]")).to_have_text(["Contato alterado",
                                                                                 "Contato criado"])

    page.fill("#audit-subject-id", "abc")
    page.click("#audit-apply")
    expect(page.locator("#audit-error")).to_contain_text("subject_id deve ser um número inteiro positivo")

    page.fill("#audit-subject-id", str(contact_id))
    page.click("#audit-apply")
    with page.expect_download() as download:
        page.click("#audit-csv")
    rows_csv = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert [(r["action"], r["subject_id"]) for r in rows_csv] == [("contact.update", str(contact_id)),
                                                                   ("contact.create", str(contact_id))]
    page.goto("/audit?action=audit.export")
    expect(page.locator("#audit-table tbody tr [data-role=action]")).to_have_text(["Auditoria exportada"])
    assert page.errors == []


def test_an_agent_sees_no_audit_log(open_as):
    page = open_as("ana")
    expect(page.locator("#nav-audit")).to_have_count(0)
    response = page.goto("/audit")
    assert response.status == 403
