"""The UI on a phone (390 × 844) and a laptop (1366 px), its empty states, its error pages and
what the composer refuses, in a real Chromium against the running product.

The first test needs the product as this module's fixture starts it: without a conversation or
a campaign (each module has a product of its own, tests run in file order)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from contact_center.auth import service as auth_service
from contact_center.auth.models import User
from contact_center.db import transaction
from tests.live import PASSWORD

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 768}
# Words of an English sentence that are no Portuguese word ("no" is one; the product's name is left out).
ENGLISH = re.compile(r"\b(the|is|are|not|page|found|you|your|this|that|error|server|was|with|back|to|for|and|of|"
                     r"allowed|something|went|wrong|please|try|again|here|nothing)\b", re.I)
PORTUGUESE = re.compile(r"\b(não|página|voltar|você|nada|erro|permissão|conversa)\b", re.I)


def words(page) -> str:
    return page.evaluate("() => document.body.innerText").replace("Contact Center", "")


def overflow(page) -> tuple[int, int]:
    """(the document's width, the window's): equal when nothing sticks out sideways."""
    return tuple(page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]"))


def assert_fits(page, where: str) -> None:
    width, window = overflow(page)
    assert width <= window, f"{where}: the page is {width} px wide on a {window} px screen"


def cut_off(page, selector: str) -> list[str]:
    """The entries matching `selector` that are on screen but not whole: clipped text, or past an edge."""
    return page.evaluate("""(selector) => [...document.querySelectorAll(selector)].filter(el => {
        const box = el.getBoundingClientRect();
        if (!box.width || !el.offsetParent) return false;
        return el.scrollWidth > el.clientWidth + 1 || box.left < 0 || box.right > window.innerWidth + 0.5;
      }).map(el => el.textContent.trim())""", selector)


def add_admin(product, username: str = "rita") -> None:
    """An admin besides the team (the admin pages are theirs)."""
    with transaction(product.runtime.session_factory) as session:
        if session.scalar(select(User.id).where(User.username == username)) is None:
            auth_service.create_user(session, username=username, name="Rita Admin", password=PASSWORD, role="admin")


def link_contact(product, conversation_id: int, name: str, phone: str, **flags) -> int:
    headers = product.auth("sofia")
    contact = product.http.post("/api/contacts", json={"name": name, "mobile": phone, **flags}, headers=headers)
    assert contact.status_code == 201, contact.text
    linked = product.http.post(f"/api/conversations/{conversation_id}/contact",
                               json={"contact_id": contact.json()["id"]}, headers=headers)
    assert linked.status_code == 200, linked.text
    return contact.json()["id"]


# --- empty states (first: the product has no conversation and no campaign yet) -----------------------

def test_empty_states_say_what_to_do_next(open_as, product):
    add_admin(product)
    page = open_as("sofia")
    empty = page.locator("#list-empty")
    expect(empty).to_contain_text("Nenhuma conversa ainda — importe contatos ou inicie uma conversa")
    expect(empty.locator("a[href='/contacts']")).to_have_text("Importar contatos")
    expect(empty.locator("a[href='/campaigns/new']")).to_have_text("Enviar uma campanha")

    page.fill("input[name=q]", "ninguém com este nome")
    page.press("input[name=q]", "Enter")
    page.wait_for_url(re.compile(r".*/inbox\?.*q=ningu"))
    expect(empty).to_contain_text("Nenhuma conversa corresponde a este filtro.")
    page.click("#list-clear-filter")
    page.wait_for_url(re.compile(r".*/inbox$"))
    expect(page.locator("input[name=q]")).to_have_value("")

    page.goto("/campaigns")
    expect(page.locator("#campaigns-empty")).to_contain_text("Nenhuma campanha ainda — crie a primeira.")
    page.goto("/admin/quick-replies")
    expect(page.locator("#admin-empty")).to_have_text(
        "Nenhuma resposta rápida ainda — crie a primeira no formulário abaixo.")

    agent = open_as("ana", lang="en")
    expect(agent.locator("#list-empty")).to_contain_text("No conversations yet — import contacts or start a conversation")
    expect(agent.locator("#list-empty")).to_contain_text("When a customer writes, the conversation shows up here.")
    expect(agent.locator("#list-empty a[href='/campaigns/new']")).to_have_count(0)  # agents do not send campaigns

    admin = open_as("rita")
    admin.goto("/admin/templates")
    expect(admin.locator("#admin-empty")).to_have_text("Nenhum modelo ainda — crie o primeiro no formulário abaixo.")


# --- error pages -------------------------------------------------------------------------------------

def test_error_pages_are_in_portuguese_with_a_way_back(browser, open_as, product):
    page = open_as("ana")
    for path, title in (("/nada", "Página não encontrada"), ("/inbox/999999", "Página não encontrada"),
                        ("/admin/users", "Sem permissão"), ("/admin", "Sem permissão")):
        response = page.goto(path)
        assert response.status == (404 if "ncontrada" in title else 403), path
        expect(page.locator("#error-page h1")).to_have_text(title)
        if path == "/inbox/999999":  # the refusal's own words, in Portuguese
            expect(page.locator("#error-detail")).to_have_text("não existe conversa com id 999999")
        text = words(page)
        assert not ENGLISH.findall(text), f"{path}: English on a Portuguese page: {ENGLISH.findall(text)} in {text!r}"
        expect(page.locator(".me-name")).to_have_text("Ana Lima")  # in the product's layout
    page.click("#error-back")
    page.wait_for_url("**/inbox")

    visitor = browser.new_context(base_url=product.base_url).new_page()
    try:
        assert visitor.goto("/nada").status == 404
        assert not ENGLISH.findall(words(visitor))
        visitor.click("#error-back")
        visitor.wait_for_url("**/login")
    finally:
        visitor.context.close()


def test_error_pages_are_in_english_when_chosen(open_as):
    page = open_as("ana", lang="en")
    page.goto("/nada")
    expect(page.locator("#error-page h1")).to_have_text("Page not found")
    page.goto("/admin/users")
    expect(page.locator("#error-page h1")).to_have_text("Not allowed")
    expect(page.locator("#error-page")).to_contain_text("your role (Agent)")
    assert not PORTUGUESE.findall(words(page)), words(page)
    expect(page.locator("#error-back")).to_have_text("Back to the inbox")


def test_a_server_error_is_a_page_with_a_request_id_and_no_traceback(open_as, product):
    def broken_page():
        raise RuntimeError("token=segredo-do-banco")

    product.app.add_api_route("/inbox/quebrada", broken_page, include_in_schema=False)
    page = open_as("ana")
    response = page.goto("/inbox/quebrada")
    assert response.status == 500
    expect(page.locator("#error-page h1")).to_have_text("Erro no servidor")
    request_id = page.locator("#request-id").text_content()
    assert re.fullmatch(r"[0-9a-f]{12}", request_id) and response.headers["x-request-id"] == request_id
    html = page.content()
    assert "segredo" not in html and "Traceback" not in html and "RuntimeError" not in html
    assert not ENGLISH.findall(words(page)), words(page)
    page.click("#error-back")
    page.wait_for_url("**/inbox")


# --- a phone ---------------------------------------------------------------------------------------

def test_on_a_phone_the_inbox_shows_one_pane_at_a_time_and_the_back_button_works(open_as, product):
    phone = product.new_phone()
    conversation_id = product.customer_writes(phone, "Oi, preciso da segunda via")
    link_contact(product, conversation_id, "Helena Prado", phone)
    page = open_as("ana")
    page.set_viewport_size(PHONE)
    page.reload()

    lists, conversation, contact = (page.locator(s) for s in (".list-pane", ".conversation-pane", ".contact-pane"))
    expect(lists).to_be_visible()
    expect(conversation).to_be_hidden()
    expect(page.locator(".topbar .nav-link").first).to_be_hidden()  # folded into the menu
    assert_fits(page, "the list")
    page.click("#menu-toggle")
    expect(page.locator("#menu-toggle")).to_have_attribute("aria-expanded", "true")
    expect(page.locator("#nav-campaigns")).to_be_visible()
    assert cut_off(page, "#topbar-menu .nav-link, #topbar-menu button") == []
    assert_fits(page, "the open menu")
    page.keyboard.press("Escape")
    expect(page.locator("#nav-campaigns")).to_be_hidden()

    page.click(f"#row-{conversation_id}")
    page.wait_for_url(f"**/inbox/{conversation_id}")
    expect(conversation).to_be_visible()
    expect(lists).to_be_hidden()
    expect(page.locator(".entry.msg.in .body").last).to_have_text("Oi, preciso da segunda via")
    expect(page.locator("#composer-send")).to_be_visible()
    assert_fits(page, "the conversation")

    page.click("#show-contact")
    page.wait_for_url(f"**/inbox/{conversation_id}#contato")
    expect(contact).to_be_visible()
    expect(conversation).to_be_hidden()
    expect(page.locator("#contact-panel [data-role=contact-name]")).to_have_text("Helena Prado")
    assert_fits(page, "the contact")

    page.go_back()  # the phone's back button: contact → conversation → list
    expect(conversation).to_be_visible()
    expect(contact).to_be_hidden()
    page.go_back()
    page.wait_for_url(re.compile(r".*/inbox$"))
    expect(lists).to_be_visible()
    expect(conversation).to_be_hidden()

    page.goto(f"/inbox/{conversation_id}")
    page.click("#show-contact")
    page.click("#back-to-conversation")
    expect(conversation).to_be_visible()
    page.click("#back-to-list")
    page.wait_for_url(re.compile(r".*/inbox$"))
    expect(lists).to_be_visible()


def test_nothing_is_wider_than_a_phone(open_as, product):
    add_admin(product)
    for username, paths in (("sofia", ("/inbox", "/campaigns", "/campaigns/new", "/admin/quick-replies")),
                            ("rita", ("/admin/users", "/admin/channels", f"/admin/channels/{product.channel_id}",
                                      "/admin/templates", "/nada"))):
        page = open_as(username)
        page.set_viewport_size(PHONE)
        for path in paths:
            page.goto(path)
            assert_fits(page, path)
            assert cut_off(page, ".admin-tabs a, .tab") == [], path


# --- a laptop ----------------------------------------------------------------------------------------

def test_at_1366_px_no_tab_or_menu_entry_is_cut_off(open_as, product):
    add_admin(product)
    conversation_id = product.customer_writes(product.new_phone(), "Bom dia")
    page = open_as("rita")
    page.set_viewport_size(LAPTOP)
    for path in ("/inbox", f"/inbox/{conversation_id}", "/campaigns", "/campaigns/new", "/admin/users",
                 "/admin/channels", "/admin/templates", "/admin/quick-replies"):
        page.goto(path)
        assert_fits(page, path)
        if page.locator("#menu-toggle").is_visible():  # folded: every entry whole in the open menu
            page.click("#menu-toggle")
        entries = ".topbar .nav-link, .topbar button, .topbar .me, .tab, .admin-tabs a"
        assert cut_off(page, entries) == [], path
    expect(page.locator(".topbar .nav-link").first).to_be_visible()


# --- the composer ------------------------------------------------------------------------------------

def test_the_composer_says_a_contact_opted_out_and_refuses_an_empty_message(open_as, product):
    phone = product.new_phone()
    conversation_id = product.customer_writes(phone, "Não quero mais SMS")
    link_contact(product, conversation_id, "Otávio Lins", phone, opt_out_sms=True)
    page = open_as("ana")
    posts = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST"
            and request.url.endswith("/messages") else None)
    page.goto(f"/inbox/{conversation_id}")

    notice = page.locator("#composer-opted-out")
    expect(notice).to_have_text("Otávio Lins pediu para não receber mensagens por SMS. O envio por este canal está "
                                "bloqueado; escolha outro canal ou registre no contato se ele mudar de ideia.")
    expect(page.locator("#composer-send")).to_be_disabled()
    page.fill("#composer-body", "Oferta imperdível")
    page.press("#composer-body", "Control+Enter")  # the shortcut is refused too
    expect(page.locator("#composer-error")).to_contain_text("o contato pediu para não receber mensagens por SMS")
    assert posts == []

    page.click("#contact-panel summary")  # the customer changed their mind: the operator records it
    page.uncheck("#contact-panel input[name=opt_out_sms]")
    page.click("#contact-panel [data-form=contact-edit] button[type=submit]")
    expect(notice).to_be_hidden()
    expect(page.locator("#composer-send")).to_be_enabled()

    page.fill("#composer-body", "   \n  ")
    page.click("#composer-send")
    expect(page.locator("#composer-error")).to_have_text("A mensagem está vazia: escreva o texto antes de enviar.")
    assert posts == []  # refused in the page, without a round trip
    page.fill("#composer-body", "Tudo certo, Otávio!")
    expect(page.locator("#composer-error")).to_be_hidden()
    page.click("#composer-send")
    expect(page.locator(".entry.msg.out .body").last).to_have_text("Tudo certo, Otávio!")
    assert len(posts) == 1
    assert page.errors == []
