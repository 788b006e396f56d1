"""WhatsApp and SMS customers in one inbox, in a real Chromium, with the product talking to the real
WhatsApp sandbox (which signs and posts Meta's webhooks to us) and the Kolmeya sandbox."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import run_whatsapp_product
from tests.conftest import BACKENDS

pytestmark = pytest.mark.browser

@pytest.fixture(scope="module", params=BACKENDS)
def product(request, tmp_path_factory):
    """Statuses a little apart so each tick shows."""
    yield from run_whatsapp_product(request, tmp_path_factory, 0.3)


def digits(phone: str) -> str:
    return "".join(ch for ch in phone if ch.isdigit())


def wa_customer_writes(product, phone: str, **message) -> dict:
    """A customer writes on WhatsApp through the sandbox; returns the conversation and its message ids."""
    sent = product.whatsapp.inbound(from_=phone, name=message.pop("name", "Carla Nunes"), **message)
    wamid = sent["messages"][0]["id"]

    def arrived():
        found = product.http.get("/api/conversations", params={"q": phone, "status": "any"},
                                 headers=product.auth("sofia")).json()["items"]
        if not found:
            return None
        timeline = product.http.get(f"/api/conversations/{found[0]['id']}/timeline",
                                    headers=product.auth("sofia")).json()["entries"]
        ids = [e["id"] for e in timeline if e["kind"] == "message" and e["direction"] == "in"]
        return (found[0]["id"], ids[-1]) if ids and len(ids) >= message.get("count", 1) else None

    conversation_id, message_id = product.wait_for(arrived, what=f"the WhatsApp message {wamid}")
    return {"conversation_id": conversation_id, "message_id": message_id, "wamid": wamid}


def open_conversation(page, conversation_id: int) -> None:
    page.click(f"#row-{conversation_id}")
    page.wait_for_url(f"**/inbox/{conversation_id}*")
    expect(page.locator("#conv-header")).to_be_visible()


def whatsapp_sends(product, to: str) -> list[dict]:
    return [m for m in product.whatsapp.ledger()["messages"] if m["to"] == digits(to)]


def sms_sends(product, to: str) -> list[dict]:
    return [m for m in product.sandbox.ledger()["messages"] if digits(m["phone"]).endswith(digits(to)[-8:])]


def test_a_whatsapp_and_an_sms_customer_are_each_answered_on_their_channel(open_as, product):
    sms_phone, wa_phone = product.new_phone(), product.new_phone()
    sms_conversation = product.customer_writes(sms_phone, "Oi, escrevo por SMS")
    wa = wa_customer_writes(product, wa_phone, type="text", text="Oi, escrevo pelo WhatsApp")

    page = open_as("ana")
    expect(page.locator(f"#row-{sms_conversation} .ch-sms")).to_be_visible()
    expect(page.locator(f"#row-{wa['conversation_id']} .ch-whatsapp")).to_be_visible()

    open_conversation(page, wa["conversation_id"])
    expect(page.locator(".entry.msg.in .body").last).to_have_text("Oi, escrevo pelo WhatsApp")
    expect(page.locator("#window-line")).to_have_text(re.compile(r"^Janela fecha em 2[34] h \d+ min$"))
    page.fill("#composer-body", "Olá Carla! Como posso ajudar?")
    page.click("#composer-send")
    answer = page.locator(".entry.msg.out").last
    expect(answer.locator(".body")).to_have_text("Olá Carla! Como posso ajudar?")
    # The sandbox reports sent, delivered, read: the ticks follow, ending blue.
    expect(answer.locator("[data-role=ticks]")).to_have_attribute("data-status", "read")
    expect(answer.locator(".ticks.tk-read")).to_have_text(re.compile("✓✓"))

    open_conversation(page, sms_conversation)
    expect(page.locator("#window-line")).to_have_count(0)  # SMS has no window
    page.fill("#composer-body", "Olá! Respondo por SMS.")
    page.click("#composer-send")
    expect(page.locator(".entry.msg.out .body").last).to_have_text("Olá! Respondo por SMS.")

    product.wait_for(lambda: sms_sends(product, sms_phone), what="the SMS at the Kolmeya sandbox")
    assert [m["payload"]["text"]["body"] for m in whatsapp_sends(product, wa_phone)] == ["Olá Carla! Como posso ajudar?"]
    assert [m["text"] for m in sms_sends(product, sms_phone)] == ["Olá! Respondo por SMS."]
    assert whatsapp_sends(product, sms_phone) == []
    assert page.errors == []


def test_a_reply_quotes_the_customers_message_and_reactions_show_on_it(open_as, product):
    phone = product.new_phone()
    first = wa_customer_writes(product, phone, type="text", text="Qual o valor da fatura?")
    page = open_as("ana")
    open_conversation(page, first["conversation_id"])
    bubble = page.locator(f"#m-{first['message_id']}")
    bubble.locator("[data-reply-to]").click()
    expect(page.locator("#reply-bar")).to_contain_text("Qual o valor da fatura?")
    page.fill("#composer-body", "São R$ 120,00.")
    page.click("#composer-send")
    answer = page.locator(".entry.msg.out").last
    expect(answer.locator("[data-role=quoted]")).to_have_text("Qual o valor da fatura?")
    product.wait_for(lambda: whatsapp_sends(product, phone), what="the answer at the sandbox")
    [sent] = whatsapp_sends(product, phone)
    assert sent["payload"]["context"] == {"message_id": first["wamid"]}

    # The customer reacts to our answer: the emoji sits on it, not in a bubble of its own.
    product.whatsapp.inbound(from_=phone, name="Carla Nunes", type="reaction", message_id=sent["wamid"], emoji="👍")
    expect(answer.locator("[data-role=reactions]")).to_have_text("👍")
    expect(page.locator(".entry.ct-reaction")).to_have_count(0)
    product.whatsapp.inbound(from_=phone, name="Carla Nunes", type="reaction", message_id=sent["wamid"])
    expect(answer.locator("[data-role=reactions]")).to_have_count(0)  # removed
    assert page.errors == []


def test_an_image_and_a_voice_note_are_shown(open_as, product):
    phone = product.new_phone()
    image = wa_customer_writes(product, phone, type="image", caption="Foto do medidor")
    voice = wa_customer_writes(product, phone, type="voice", count=2)
    page = open_as("ana")
    open_conversation(page, image["conversation_id"])
    photo, note = page.locator(f"#m-{image['message_id']}"), page.locator(f"#m-{voice['message_id']}")
    expect(photo.locator("[data-role=media]")).to_have_attribute("data-kind", "image")
    expect(photo.locator(".caption")).to_have_text("Foto do medidor")
    expect(note.locator("[data-role=media]")).to_have_attribute("data-kind", "voice")
    # Once fetched (content.media.stored), the page redraws the bubbles by itself.
    image_tag = photo.locator(f"img[src='/api/messages/{image['message_id']}/media']")
    expect(image_tag).to_be_visible(timeout=30_000)
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=image_tag.element_handle())
    expect(note.locator(f"audio[controls][src='/api/messages/{voice['message_id']}/media']")).to_have_count(1)


def test_other_kinds_of_message_read_as_an_operator_expects(open_as, product):
    phone = product.new_phone()
    where = wa_customer_writes(product, phone, type="location", latitude=-23.5614, longitude=-46.6559,
                               location_name="Av. Paulista, 1000")
    wa_customer_writes(product, phone, type="unsupported", count=2)
    page = open_as("ana")
    open_conversation(page, where["conversation_id"])
    link = page.locator(f"#m-{where['message_id']} [data-role=location]")
    expect(link).to_contain_text("Av. Paulista, 1000")
    assert link.get_attribute("href").startswith("https://www.openstreetmap.org/?mlat=-23.5614&mlon=-46.6559")
    expect(page.locator(".entry.ct-unsupported .body")).to_have_text("Tipo de mensagem não suportado")

    # While the page is open: a contact card, a chosen option, then an edit and a deletion
    # that show on the messages they change.
    card = wa_customer_writes(product, phone, type="contacts", contact_name="Maria Exemplo",
                              contact_phone="+55 11 90000-0002", count=3)
    expect(page.locator(f"#m-{card['message_id']} [data-role=shared-contacts]")).to_contain_text("Maria Exemplo")
    choice = wa_customer_writes(product, phone, type="interactive", list_id="boleto", title="Segunda via", count=4)
    expect(page.locator(f"#m-{choice['message_id']} .choice")).to_have_text("Escolheu: Segunda via")
    typo = wa_customer_writes(product, phone, type="text", text="Meu CPF é 000", count=5)
    product.whatsapp.inbound(from_=phone, name="Carla Nunes", type="edit", message_id=typo["wamid"],
                             text="Meu CPF é 000.000.000-00")
    edited = page.locator(f"#m-{typo['message_id']}")
    expect(edited.locator(".body")).to_have_text("Meu CPF é 000.000.000-00")
    expect(edited.locator("[data-role=edited]")).to_have_text("editada")
    product.whatsapp.inbound(from_=phone, name="Carla Nunes", type="revoke", message_id=typo["wamid"])
    expect(edited.locator(".body")).to_have_text("🚫 Mensagem apagada pelo cliente")
    expect(page.locator(".entry.ct-edit, .entry.ct-revoke")).to_have_count(0)
    assert page.errors == []


def test_after_the_window_closes_only_an_approved_template_goes_out(open_as, product):
    phone = product.new_phone()
    old = wa_customer_writes(product, phone, type="text", text="Oi, ainda estão aí?", ago_seconds=25 * 3600)
    page = open_as("ana")
    open_conversation(page, old["conversation_id"])
    expect(page.locator("#window-line")).to_have_text("Janela fechada — envie um modelo aprovado")
    expect(page.locator("#composer-body")).to_be_disabled()
    expect(page.locator("#composer-send")).to_be_disabled()

    picker = page.locator("#wa-template-picker")
    expect(picker).to_be_visible()  # opened by itself once the window is closed
    names = picker.locator("option").all_inner_texts()
    assert any(n.startswith("cobranca_lembrete") for n in names)
    assert not any(n.startswith(("promocao_relampago", "pesquisa_satisfacao")) for n in names)  # not sendable
    picker.select_option(label="cobranca_lembrete · pt_BR · UTILITY")
    form = page.locator(".wa-template:visible")
    fields = form.locator("input[data-path]")
    expect(fields).to_have_count(3)
    fields.nth(0).fill("Carla")
    fields.nth(1).fill("R$      120,00")  # more than 4 spaces in a row: WhatsApp refuses it
    fields.nth(2).fill("10/12")
    form.locator("[data-role=send-template]").click()
    error = fields.nth(1).locator("xpath=..").locator("[data-role=field-error]")
    expect(error).to_contain_text("mais de 4 espaços seguidos")
    assert whatsapp_sends(product, phone) == []

    fields.nth(1).fill("R$ 120,00")
    form.locator("[data-role=send-template]").click()
    sent = page.locator(".entry.msg.out.ct-template").last
    expect(sent.locator(".body")).to_have_text("Olá Carla, sua fatura de R$ 120,00 vence em 10/12.")
    expect(sent.locator("[data-role=ticks]")).to_have_attribute("data-status", "read")
    [out] = product.wait_for(lambda: whatsapp_sends(product, phone), what="the template at the sandbox")
    assert (out["type"], out["payload"]["template"]["name"]) == ("template", "cobranca_lembrete")
    assert page.errors == []


def test_an_admin_sees_the_whatsapp_channel_its_callback_status_and_synced_templates(open_as, product):
    page = open_as("root")
    page.goto("/admin/channels")
    page.click("a[data-role=channel-link]:has-text('WhatsApp SANDBOX')")
    page.wait_for_url(f"**/admin/channels/{product.whatsapp_channel_id}")
    expect(page.locator("[data-role=callback-url]")).to_have_text(f"{product.base_url}/whatsapp/webhook")
    expect(page.locator("[data-role=verify-token]")).not_to_be_empty()
    details = page.locator("[data-role=status-details]")
    expect(details).to_contain_text("Contact Center Sandbox")  # the number's display name at Meta
    expect(details).to_contain_text("GREEN")
    page.click("#sync-templates")
    expect(page.locator("[data-role=synced]")).to_contain_text("Modelos sincronizados")
    expect(page.locator("tr[data-template=cobranca_lembrete] [data-role=template-status]")).to_have_text("APPROVED")
    expect(page.locator("tr[data-template=promocao_relampago] [data-role=template-status]")).to_have_text("REJECTED")
    # Secrets are never shown back.
    assert product.whatsapp.token not in page.content()

    # Editing keeps the stored secrets when their fields are left empty.
    form = page.locator("#edit-whatsapp-channel")
    form.locator("input[name=api_version]").fill("v23.0")
    form.locator("button[type=submit]").click()
    expect(page.locator(".admin-body > .alert.ok")).to_have_text("Alterações salvas.")
    expect(page.locator("[data-role=status-details]")).to_contain_text("GREEN")  # still reaches the sandbox
    assert page.errors == []


PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63fcff"
                    "9f0100050401020d0a2db40000000049454e44ae426082")


def test_an_operator_sends_a_picture_from_the_composer_with_its_caption(open_as, product, tmp_path):
    phone = product.new_phone()
    wrote = wa_customer_writes(product, phone, type="text", text="Pode mandar o comprovante?")
    picture = tmp_path / "comprovante.png"
    picture.write_bytes(PNG)
    page = open_as("ana")
    open_conversation(page, wrote["conversation_id"])
    page.fill("#composer-body", "Segue o comprovante")
    page.set_input_files("#composer-file", str(picture))
    answer = page.locator(".entry.msg.out").last
    expect(answer.locator("[data-role=media]")).to_have_attribute("data-kind", "image")
    expect(page.locator("#composer-body")).to_have_value("")  # the caption went with the file
    product.wait_for(lambda: whatsapp_sends(product, phone), what="the picture at the sandbox")
    [sent] = whatsapp_sends(product, phone)
    assert (sent["type"], sent["payload"]["image"]["caption"]) == ("image", "Segue o comprovante")
    uploaded = [m for m in product.whatsapp.ledger()["media"] if m["id"] == sent["payload"]["image"]["id"]]
    assert [(m["origin"], m["file_size"]) for m in uploaded] == [("upload", len(PNG))]  # uploaded, sent by id
    assert page.errors == []


def test_an_undeliverable_whatsapp_message_is_sent_again_by_sms_from_the_timeline(open_as, product):
    phone = product.new_phone()
    wa = wa_customer_writes(product, phone, type="text", text="Oi, mandem a segunda via")
    product.whatsapp.configure(fail_numbers={digits(phone): 131026})  # WhatsApp reports it undeliverable
    page = open_as("ana")
    open_conversation(page, wa["conversation_id"])
    page.fill("#composer-body", "Segue a segunda via do boleto")
    page.click("#composer-send")
    failed = page.locator(".entry.msg.out").last
    expect(failed.locator("[data-role=reason]")).to_contain_text("Não entregue")
    offer = failed.locator("[data-sms-fallback]")
    expect(offer).to_have_text("Enviar por SMS")
    failed = page.locator(f"#m-{offer.get_attribute('data-sms-fallback')}")  # the SMS will come after it
    offer.click()
    expect(failed.locator("[data-role=fallback]")).to_contain_text("Reenviada por SMS")
    expect(failed.locator("[data-sms-fallback]")).to_have_count(0)
    again = page.locator(".entry.msg.out").last
    expect(again.locator(".body")).to_have_text("Segue a segunda via do boleto")
    expect(again.locator("[data-role=fallback-of]")).to_have_text("Enviada por SMS após falha no WhatsApp")
    [sms] = product.wait_for(lambda: sms_sends(product, phone), what="the fallback SMS at the Kolmeya sandbox")
    assert sms["text"] == "Segue a segunda via do boleto"
    assert [m["status"] for m in whatsapp_sends(product, phone)] == ["failed"]
    assert page.errors == []


def test_a_channel_paused_by_a_rejected_token_shows_why_above_the_composer(open_as, product):
    phone = product.new_phone()
    wa = wa_customer_writes(product, phone, type="text", text="Oi")
    product.whatsapp.configure(fail_next=[190], fail_only=["messages"])
    page = open_as("ana")
    open_conversation(page, wa["conversation_id"])
    page.fill("#composer-body", "Olá!")
    page.click("#composer-send")
    expect(page.locator(".entry.msg.out .body").last).to_have_text("Olá!")
    product.wait_for(lambda: product.http.get(f"/api/channels/{product.whatsapp_channel_id}/status",
                                              headers=product.auth("root")).json().get("paused_reason"),
                     what="the channel paused by the rejected token")
    page.reload()
    expect(page.locator("#conv-header")).to_have_attribute("data-paused", "1")
    banner = page.locator("#paused-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("pausado")
    assert whatsapp_sends(product, phone) == []
    # The admin gives the channel its token again: it resumes and what waited goes out.
    answer = product.http.patch(f"/api/channels/{product.whatsapp_channel_id}", headers=product.auth("root"),
                                json={"credentials": {"access_token": product.whatsapp.token}})
    assert answer.status_code == 200, answer.text
    product.wait_for(lambda: whatsapp_sends(product, phone), what="the message that waited for the channel")
    assert page.errors == []
