"""A campaign run from the UI, in a real Chromium against the running product and the Kolmeya sandbox:
created from a CSV uploaded in the page, previewed with what will be skipped, started, followed live,
paused (the sandbox gets nothing more), resumed, and completed with every message sent exactly once."""

from __future__ import annotations

import re
import time
from collections import Counter

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

PER_MINUTE = 4  # two releases a minute apart: time to watch it, and to pause between them
NAMES = ("Ana", "Bruno", "Carla", "Diego", "Elisa", "Fábio", "Gabi", "Hugo")


def digits(phone: str) -> str:
    return "".join(ch for ch in phone if ch.isdigit())


def sends_to(product, phones: list[str]) -> list[str]:
    """The numbers the sandbox was asked to send to, among `phones` (one entry per send)."""
    wanted = {digits(p) for p in phones}
    return [digits(m["phone"]) for m in product.sandbox.ledger()["messages"] if digits(m["phone"]) in wanted]


def test_a_supervisor_runs_a_campaign_from_a_csv_and_pauses_and_resumes_it(open_as, product, tmp_path):
    phones = [product.new_phone() for _ in NAMES]
    lines = ["telefone;nome", *(f"{phone};{name} Souza" for phone, name in zip(phones, NAMES)),
             "12345;Número Errado", f"{digits(phones[0])};Ana de Novo"]  # one invalid, one repeated
    audience = tmp_path / "clientes.csv"
    audience.write_text("\n".join(lines) + "\n", encoding="utf-8")

    page = open_as("sofia")
    page.click("#nav-campaigns")
    expect(page.locator("#campaigns-empty")).to_contain_text("Nenhuma campanha ainda — crie a primeira")
    page.click("#new-campaign")
    page.wait_for_url("**/campaigns/new")

    page.click("#cf-preview")  # nothing filled in: each field says what it lacks, nothing is asked of the server
    expect(page.locator("#err-name")).to_have_text("Preencha este campo.")
    expect(page.locator("#err-body")).to_have_text("Preencha este campo.")
    expect(page.locator("#err-audience")).to_have_text("Escolha o arquivo CSV do público.")
    expect(page.locator("#cf-preview-panel")).to_be_hidden()

    page.get_by_label("Nome", exact=True).fill("Lembrete de fatura")
    page.get_by_label("Texto", exact=True).fill("Olá ")
    page.click("[data-variable='contact.first_name']")
    page.locator("#cf-body").press("End")
    page.locator("#cf-body").type(", sua fatura vence amanhã.")
    page.set_input_files("#cf-csv", str(audience))
    expect(page.locator("#cf-csv-info")).to_have_text("clientes.csv: 11 linhas")
    page.get_by_label("Limite de mensagens por minuto").fill(str(PER_MINUTE))
    # Any day, any hour: the test must not depend on when it runs.
    page.click("#cf-window summary")
    for row in page.locator("#cf-window tr[data-day]").all():
        row.locator("[data-role=day-on]").check()
        row.locator("[data-role=day-start]").fill("00:00")
        row.locator("[data-role=day-end]").fill("24:00")
    expect(page.locator("#cf-window-summary")).to_have_text("segunda a domingo 00:00–24:00")
    page.get_by_label("Datas bloqueadas (feriados)").fill("31/02/2026")  # the server's refusal shows by its field
    page.click("#cf-preview")
    expect(page.locator("#err-send_window")).to_contain_text("send_window.blocked_dates")
    expect(page.locator("#err-send_window")).to_contain_text("Informe uma data válida no formato AAAA-MM-DD")
    expect(page.locator("#err-name")).to_be_hidden()
    page.get_by_label("Datas bloqueadas (feriados)").fill("")

    page.click("#cf-preview")
    preview = page.locator("#cf-preview-panel")
    expect(preview).to_be_visible()
    expect(preview.locator("[data-pv=recipients]")).to_have_text("10")
    expect(preview.locator("[data-pv=sendable]")).to_have_text("8")
    expect(preview.locator("[data-pv=skipped] [data-reason=invalid_number]")).to_have_text("número inválido: 1")
    expect(preview.locator("[data-pv=skipped] [data-reason=duplicate]")).to_have_text("número repetido no público: 1")
    expect(preview.locator("[data-pv=cost]")).to_have_text(re.compile(r"R\$\s0,56"))  # 8 SMS at R$ 0,07
    expect(preview.locator("[data-pv=balance]")).to_have_text(re.compile(r"R\$\s1\.234,56"))
    expect(preview.locator("[data-pv=balance-warning]")).to_be_hidden()
    expect(preview.locator("[data-pv=messages] .pv-text").first).to_have_text("Olá Ana, sua fatura vence amanhã.")
    assert sends_to(product, phones) == []  # a preview sends nothing

    page.click("[data-create=start]")
    page.wait_for_url(re.compile(r"/campaigns/\d+$"))
    campaign_id = int(page.url.rsplit("/", 1)[1])
    status = page.locator("#campaign-status")
    count = lambda state: page.locator(f"[data-count={state}]")  # noqa: E731

    # The first minute's share goes out and the page follows it, without a reload.
    expect(status).to_have_text("Em envio")
    expect(count("delivered")).to_have_text(str(PER_MINUTE), timeout=20_000)
    expect(count("scheduled")).to_have_text(str(len(NAMES) - PER_MINUTE))
    expect(page.locator("#campaign-waiting")).to_have_text(f"limite de {PER_MINUTE} mensagens por minuto")
    first_batch_at = time.monotonic()
    assert len(sends_to(product, phones)) == PER_MINUTE
    expect(page.locator("#recipients-body tr")).to_have_count(len(NAMES))
    expect(page.locator("#campaign-skipped [data-reason=invalid_number]")).to_have_text("número inválido: 1")

    page.click("[data-action=pause]")
    expect(status).to_have_text("Pausada")
    expect(page.locator("[data-action=pause]")).to_be_hidden()
    expect(page.locator("[data-action=resume]")).to_be_visible()
    # Past the minute the cap waits for, a running campaign would send its next share: a paused one does not.
    while time.monotonic() < first_batch_at + 65:
        time.sleep(1)
    assert len(sends_to(product, phones)) == PER_MINUTE
    expect(count("scheduled")).to_have_text(str(len(NAMES) - PER_MINUTE))

    page.click("[data-action=resume]")
    expect(status).to_have_text("Concluída", timeout=30_000)
    expect(page.locator("[data-action]:visible")).to_have_count(0)

    sent = sends_to(product, phones)
    assert Counter(sent) == Counter(digits(p) for p in phones)  # every one of them, exactly once
    texts = sorted(m["text"] for m in product.sandbox.ledger()["messages"] if digits(m["phone"]) in set(sent))
    assert texts == sorted(f"Olá {name}, sua fatura vence amanhã." for name in NAMES)

    # A customer answers: the reply counts for the campaign.
    product.customer_replies(phones[1], "Já paguei, obrigado")
    product.wait_for(lambda: product.http.get(f"/api/campaigns/{campaign_id}", headers=product.auth("sofia"))
                     .json()["progress"]["replied"] == 1, what="the reply attributed to the campaign")
    page.reload()
    expect(count("replied")).to_have_text("1")
    expect(page.locator("[data-rate=reply]")).to_have_text("12,5%")  # 1 of 8
    page.select_option("#recipients-filter", "scheduled")
    expect(page.locator("#recipients-empty")).to_be_visible()
    expect(page.locator("#recipients-export")).to_have_attribute(
        "href", f"/api/campaigns/{campaign_id}/recipients.csv?status=scheduled")

    page.click("#nav-campaigns")
    row = page.locator(f"#campaign-row-{campaign_id}")
    expect(row.locator("[data-role=campaign-status]")).to_have_text("Concluída")
    expect(row.locator("[data-role=reply]")).to_have_text("12,5%")
    assert page.errors == []


def test_an_agent_follows_campaigns_but_cannot_create_one(open_as, product):
    page = open_as("ana")
    page.click("#nav-campaigns")
    expect(page.locator("h1")).to_have_text("Campanhas")
    expect(page.locator("#new-campaign")).to_have_count(0)
    page.goto("/campaigns/new")
    expect(page.locator("#error-page h1")).to_have_text("Sem permissão")
    expect(page.locator("#error-page [role=alert]")).to_contain_text("o seu perfil (Agente)")
    assert page.errors == []
