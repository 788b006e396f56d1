"""Operators in a real Chromium: everything they see changes live, without a reload."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from contact_center.messaging.segments import count_segments

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=alert(1)>"


def open_conversation(page, conversation_id: int) -> None:
    page.click(f"#row-{conversation_id}")
    page.wait_for_url(f"**/inbox/{conversation_id}*")
    expect(page.locator("#conv-header")).to_be_visible()


def record_ticks(page, message_id: int) -> None:
    """Keep every delivery state the message shows, in order, in window.seenStates."""
    page.evaluate("""(id) => {
      window.seenStates = [];
      const note = () => {
        const ticks = document.querySelector(`#m-${id} [data-role=ticks]`);
        const status = ticks && ticks.dataset.status;
        if (status && window.seenStates[window.seenStates.length - 1] !== status) window.seenStates.push(status);
      };
      note();
      new MutationObserver(note).observe(document.getElementById('entries'),
                                         {subtree: true, childList: true, attributes: true});
    }""", message_id)


def test_login_rejects_a_wrong_password_and_lets_the_right_one_in(browser, product):
    context = browser.new_context(base_url=product.base_url)
    page = context.new_page()
    try:
        page.goto("/inbox")
        page.wait_for_url("**/login?next=/inbox")
        page.fill("input[name=username]", "ana")
        page.fill("input[name=password]", "wrong password")
        page.click("button[type=submit]")
        expect(page.locator(".alert.error")).to_have_text("Usuário ou senha incorretos.")
        page.fill("input[name=password]", "correct horse")
        page.click("button[type=submit]")
        page.wait_for_url("**/inbox")
        expect(page.locator(".me-name")).to_have_text("Ana Lima")
        expect(page.locator(".nav-link.current")).to_contain_text("Caixa de entrada")

        page.click("text=Sair")
        page.wait_for_url("**/login?bye=1")
        page.goto("/inbox")
        page.wait_for_url("**/login?next=/inbox")  # the session is gone
    finally:
        context.close()


def test_english_is_available(open_as):
    page = open_as("ana", lang="en")
    expect(page.locator(".nav-link.current")).to_contain_text("Inbox")
    expect(page.locator(".tab.current")).to_have_text("All")


def test_an_sms_goes_queued_sent_delivered_live_and_the_reply_appears(open_as, product):
    phone = product.new_phone()
    conversation_id = product.customer_writes(phone, "Oi, quero a segunda via do boleto")
    page = open_as("ana")
    open_conversation(page, conversation_id)
    expect(page.locator(".entry.msg.in .body").last).to_have_text("Oi, quero a segunda via do boleto")

    product.pause_dispatch()  # hold the job queue so the queued state is on screen for sure
    try:
        page.fill("#composer-body", "Claro! Já enviei o boleto para o seu e-mail.")
        expect(page.locator("#segment-counter")).to_contain_text("1 SMS")
        page.click("#composer-send")
        sent = page.locator(".entry.msg.out").last
        expect(sent.locator(".body")).to_have_text("Claro! Já enviei o boleto para o seu e-mail.")
        message_id = int(sent.get_attribute("data-message-id"))
        expect(sent.locator("[data-role=ticks]")).to_have_attribute("data-status", "queued")
        record_ticks(page, message_id)
    finally:
        product.resume_dispatch()

    ticks = page.locator(f"#m-{message_id} [data-role=ticks]")
    expect(ticks).to_have_attribute("data-status", "delivered", timeout=15_000)
    expect(ticks).to_have_text(re.compile("^✓✓"))
    seen = page.evaluate("window.seenStates")
    # "sending" (claimed by the dispatcher, same clock as queued) may show for a moment, never out of order
    assert [state for state in seen if state != "sending"] == ["queued", "sent", "delivered"], seen
    assert seen.index("delivered") > seen.index("sent") > seen.index("queued")
    # writing took the conversation: the header says so without a reload
    expect(page.locator("#conv-header [data-role=assignee]")).to_have_text("Atribuída a Ana Lima")

    product.customer_replies(phone, "Recebi, obrigada!")
    expect(page.locator(".entry.msg.in .body").last).to_have_text("Recebi, obrigada!")
    expect(page.locator(f"#row-{conversation_id} .preview-text")).to_have_text("Recebi, obrigada!")
    assert page.errors == []


def test_a_second_operator_sees_the_conversation_taken_and_a_stale_take_is_explained(open_as, product):
    conversation_id = product.customer_writes(product.new_phone(), "Bom dia, preciso de ajuda")
    ana, sofia, bruno = open_as("ana"), open_as("sofia"), open_as("bruno")
    open_conversation(ana, conversation_id)
    open_conversation(sofia, conversation_id)
    open_conversation(bruno, conversation_id)
    bruno.route("**/events*", lambda route: route.abort())  # bruno's page stops hearing news…
    bruno.reload()
    expect(bruno.locator("#conv-header [data-action=take]")).to_be_visible()

    ana.click("#conv-header [data-action=take]")
    expect(ana.locator("#conv-header [data-role=assignee]")).to_have_text("Atribuída a Ana Lima")

    # the supervisor's open page follows along, list row included
    expect(sofia.locator("#conv-header [data-role=assignee]")).to_have_text("Atribuída a Ana Lima")
    expect(sofia.locator("#conv-header [data-role=status]")).to_have_text("Em atendimento")
    expect(sofia.locator(f"#row-{conversation_id} .assignee")).to_have_text("Ana Lima")
    expect(sofia.locator(".entry.event").last).to_contain_text("Ana Lima assumiu a conversa")

    # …so bruno still sees "Take", clicks it, and is told who was quicker
    bruno.click("#conv-header [data-action=take]")
    expect(bruno.locator(".toast.error")).to_have_text("Ana Lima já está atendendo esta conversa.")


def test_an_agent_loses_sight_of_a_conversation_another_agent_took(open_as, product):
    conversation_id = product.customer_writes(product.new_phone(), "Alguém aí?")
    bruno = open_as("bruno")
    expect(bruno.locator(f"#row-{conversation_id}")).to_be_visible()
    took = product.http.post(f"/api/conversations/{conversation_id}/take", headers=product.auth("ana"))
    assert took.status_code == 200, took.text
    expect(bruno.locator(f"#row-{conversation_id}")).to_have_count(0)


def test_a_customer_message_with_markup_shows_as_text(open_as, product):
    conversation_id = product.customer_writes(product.new_phone(), XSS)
    page = open_as("sofia")
    expect(page.locator(f"#row-{conversation_id} .preview-text")).to_have_text(XSS)
    open_conversation(page, conversation_id)
    body = page.locator(".entry.msg.in .body").last
    expect(body).to_have_text(XSS)
    assert body.locator("img").count() == 0
    # and live: the same text arriving while the page is open
    product.customer_writes(page.locator("#conv-header .phone").inner_text(), XSS + " <script>alert(2)</script>")
    expect(page.locator(".entry.msg.in .body").last).to_have_text(XSS + " <script>alert(2)</script>")
    assert page.locator("#entries img, #entries script").count() == 0
    assert page.dialogs == [] and page.errors == []


def test_composer_counts_segments_like_the_server_and_inserts_templates(open_as, product):
    product.http.post("/api/contacts", json={"name": "Maria Souza", "mobile": "+55 11 98888-0001"},
                      headers=product.auth("sofia")).raise_for_status()
    template = product.http.post("/api/templates", json={
        "name": "Boas-vindas", "body": "Olá {{ contact.first_name }}, aqui é {{ user.name }}. Como posso ajudar?"},
        headers=product.auth("sofia"))
    assert template.status_code in (201, 409), template.text
    product.http.post("/api/quick-replies", json={"title": "Horário", "body": "Atendemos das 8h às 18h."},
                      headers=product.auth("sofia"))
    conversation_id = product.customer_writes("+55 11 98888-0001", "Oi")
    page = open_as("ana")
    open_conversation(page, conversation_id)

    samples = ["", "Ola", "Olá", "a" * 160, "a" * 161, "€" * 80, "😀" * 35, "ç" * 70, "ç" * 71, "x" * 152 + "€"]
    counted = page.evaluate("(samples) => samples.map(s => window.ContactCenter.countSegments(s))", samples)
    for text, js in zip(samples, counted, strict=True):
        python = count_segments(text)
        assert (js["encoding"], js["characters"], js["segments"], js["remaining"]) == (
            python.encoding, python.characters, python.segments, python.remaining), text

    page.fill("#composer-body", "Ola")
    expect(page.locator("#segment-counter")).to_contain_text("3 caracteres · 1 SMS · GSM-7")
    page.fill("#composer-body", "Olá")
    expect(page.locator("#segment-counter")).to_contain_text("1 SMS · UCS-2")
    page.fill("#composer-body", "a" * 161)
    expect(page.locator("#segment-counter")).to_contain_text("2 SMS")

    page.fill("#composer-body", "")
    page.select_option("#template-picker", label="Boas-vindas")
    expect(page.locator("#composer-body")).to_have_value("Olá Maria, aqui é Ana Lima. Como posso ajudar?")
    page.select_option("#quick-picker", label="Horário")
    expect(page.locator("#composer-body")).to_have_value(
        "Olá Maria, aqui é Ana Lima. Como posso ajudar?Atendemos das 8h às 18h.")


def test_the_contact_panel_creates_the_contact_and_the_page_follows(open_as, product):
    phone = product.new_phone()
    conversation_id = product.customer_writes(phone, "Oi, sou cliente novo")
    page = open_as("ana")
    open_conversation(page, conversation_id)
    expect(page.locator("#contact-panel")).to_contain_text("Este número ainda não é um contato.")

    page.fill("[data-form=contact-create] input[name=name]", "Helena Martins")
    page.fill("[data-form=contact-create] input[name=email]", "helena@exemplo.com.br")
    page.click("[data-form=contact-create] button[type=submit]")

    expect(page.locator("#contact-panel [data-role=contact-name]")).to_have_text("Helena Martins")
    expect(page.locator("#conv-header [data-role=title]")).to_have_text("Helena Martins")
    expect(page.locator(f"#row-{conversation_id} .row-title")).to_have_text("Helena Martins")
    expect(page.locator(".entry.event").last).to_contain_text("Ana Lima vinculou o contato Helena Martins")

    page.click("#contact-panel summary")
    page.fill("[data-form=contact-edit] input[name=mobile]", "123")  # the server's check, said in the page
    page.click("[data-form=contact-edit] button[type=submit]")
    expect(page.locator(".toast.error")).to_contain_text("123")
    page.fill("[data-form=contact-edit] input[name=mobile]", phone)
    page.fill("[data-form=contact-edit] input[name=email]", "helena.m@exemplo.com.br")
    page.click("[data-form=contact-edit] button[type=submit]")
    expect(page.locator("#contact-panel .facts")).to_contain_text("helena.m@exemplo.com.br")


def test_an_edit_in_progress_survives_a_colleague_changing_the_same_contact(open_as, product):
    phone = product.new_phone()
    conversation_id = product.customer_writes(phone, "Bom dia")
    created = product.http.post(f"/api/conversations/{conversation_id}/contact/new", json={"name": "Otávio Prado"},
                                headers=product.auth("sofia"))
    assert created.status_code == 201, created.text
    page = open_as("ana")
    open_conversation(page, conversation_id)
    page.click("#contact-panel summary")
    page.fill("[data-form=contact-edit] textarea[name=notes]", "Prefere contato à tarde")

    changed = product.http.patch(f"/api/conversations/{conversation_id}/contact",
                                 json={"name": "Otávio Prado", "email": "otavio@exemplo.com.br"},
                                 headers=product.auth("sofia"))
    assert changed.status_code == 200, changed.text

    expect(page.locator("#contact-panel .facts")).to_contain_text("otavio@exemplo.com.br")  # re-rendered live
    expect(page.locator("[data-form=contact-edit] textarea[name=notes]")).to_be_visible()
    expect(page.locator("[data-form=contact-edit] textarea[name=notes]")).to_have_value("Prefere contato à tarde")
    expect(page.locator("[data-form=contact-edit] input[name=email]")).to_have_value("otavio@exemplo.com.br")
