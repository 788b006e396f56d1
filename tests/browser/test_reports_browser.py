"""The reports page in a real Chromium against the running product: customers write in, operators
answer and close, and a supervisor reads the conversations and messages reports with their charts
in Portuguese and in English, narrows them by operator and downloads a table as CSV."""

from __future__ import annotations

import csv
import io
import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def answer_and_close(product, username: str, text: str) -> int:
    phone = product.new_phone()
    conversation_id = product.customer_writes(phone, "Oi, quero negociar minha dívida")
    sent = product.http.post(f"/api/conversations/{conversation_id}/messages", json={"body": text},
                             headers=product.auth(username))
    assert sent.status_code == 202, sent.text
    closed = product.http.post(f"/api/conversations/{conversation_id}/close", headers=product.auth(username))
    assert closed.status_code == 200, closed.text
    return conversation_id


def test_a_supervisor_reads_the_reports_with_charts_filters_and_csv(open_as, product, tmp_path):
    answer_and_close(product, "ana", "Olá! Posso ajudar com o acordo.")
    answer_and_close(product, "bruno", "Bom dia, vamos ver as opções.")
    answer_and_close(product, "ana", "Pronto, acordo enviado.")

    page = open_as("sofia")
    page.click("#nav-reports")
    page.wait_for_url("**/reports")
    expect(page.locator("#tab-messages")).to_have_attribute("aria-current", "page")
    expect(page.locator("#report-help")).to_contain_text("Taxa de entrega")
    # Three answers went out from the composer: the day's bar and the table beside it say so.
    daily = page.locator("#section-messages_per_day")
    expect(daily.locator("svg.chart title").first).to_have_text("Mensagens enviadas por dia, canal e estado final")
    expect(daily.locator("svg.chart rect title").first).to_contain_text(re.compile(r"\d"))
    today = daily.locator("[data-role=table] tbody tr").last
    expect(today.locator("td[data-col=total]")).to_have_text("3")

    page.click("#tab-conversations")
    section = page.locator("#section-response_times")
    expect(section.locator("h2")).to_have_text("Tempo de primeira resposta e de resolução por operador")
    expect(section.locator("svg.chart")).to_be_visible()
    rows = section.locator("[data-role=table] tbody tr")
    expect(rows).to_have_count(3)  # everyone, Ana, Bruno
    expect(rows.nth(0).locator("td[data-col=operator]")).to_have_text("Todos")
    expect(rows.nth(0).locator("td[data-col=first_responses]")).to_have_text("3")
    expect(rows.nth(1).locator("td[data-col=operator]")).to_have_text("Ana Lima")
    expect(rows.nth(1).locator("td[data-col=closed]")).to_have_text("2")

    page.select_option("#rf-operator", label="Bruno Dias")
    page.click("#rf-apply")
    expect(page).to_have_url(re.compile(r"operator=\d+"))
    expect(rows).to_have_count(2)  # everyone (Bruno's part), Bruno
    expect(rows.nth(1).locator("td[data-col=operator]")).to_have_text("Bruno Dias")
    expect(page.locator("#section-conversations_summary td[data-col=value]").first).to_have_text("1")

    with page.expect_download() as download_info:
        section.locator("[data-role=csv]").click()
    download = download_info.value
    assert download.suggested_filename.startswith("conversations-response_times-")
    path = tmp_path / "tempos.csv"
    download.save_as(path)
    lines = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    assert lines[0][:2] == ["Operador", "Primeiras respostas"]
    assert [line[0] for line in lines[1:]] == ["Todos", "Bruno Dias"]
    assert [line[1] for line in lines[1:]] == ["1", "1"]

    page.click("a[hreflang=en]")
    expect(section.locator("h2")).to_have_text("First-response and resolution time per operator")
    expect(page.locator("#report-period")).to_contain_text("Brasília time")
    expect(rows.nth(0).locator("td[data-col=operator]")).to_have_text("Everyone")
    expect(page.locator("#rf-operator")).to_have_value(re.compile(r"\d+"))  # the filter survived the switch

    page.fill("#rf-start", "")
    page.goto("/reports/conversations?start=2026-13-01")
    expect(page.locator("#report-error")).to_contain_text("Invalid date in “start”: “2026-13-01”")
    assert page.errors == []
