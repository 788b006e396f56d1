"""The product's words: gettext catalogs kept complete by Babel's extraction, and domain errors kept
as a sentence plus its parameters, said by the edge in the reader's language."""

from __future__ import annotations

import io
import re

import pytest

from contact_center.errors import InvalidInput, NotFound
from contact_center.phones import PhoneNumberError, identify
from contact_center.providers.whatsapp_cloud.templates import TemplateDefinition, TemplateValues, build_components
from contact_center.templates.rendering import TemplateError
from contact_center.messaging.models import Message
from contact_center.messaging.service import fail, queue_outbound
from contact_center.providers.whatsapp_cloud.errors import classify
from contact_center.translations import (Quantity, Words, as_words, catalog, extract, rewrite_stored, say_stored, store,
                                         translate)
from tests.web.test_web_ui import login, page_csrf

ENGLISH_WORDS = re.compile(r"\b(the|is|not|was|only|must|should|has|have|with|which|cannot)\b")


def test_no_message_in_the_code_is_missing_from_a_catalog():
    found = extract.extract()
    assert len(found.messages) > 700  # the UI's keys and the domain errors' sentences, found by Babel
    assert "nav.inbox" in found.messages and "js.network" in found.messages
    assert "no conversation with id {conversation_id}" in found.messages
    assert extract.check(found) == []


def test_the_check_catches_a_missing_translation_and_a_message_built_on_the_spot():
    found = extract.Found()
    source = (b'raise NotFound(f"no parrot with id {parrot_id}")\n'
              b'raise NotFound("no parrot with id {parrot_id}", parrot_id=7)\n'
              b'words = Words("the parrot " + name)\n'
              b't(f"status.{state}")\n')  # a key built at run time is fine
    read = extract._python({"NotFound"}, found)(io.BytesIO(source), None, None, {"filename": "parrots.py"})
    found.messages = {message: [f"parrots.py:{line}"] for line, _name, message, _ in read}
    assert found.messages == {"no parrot with id {parrot_id}": ["parrots.py:2"]}
    problems = extract.check(found)
    assert any("'no parrot with id {parrot_id}' is not in the pt-BR catalog" in p for p in problems)
    assert [p.split(" is raised")[0] for p in problems if "built on the spot" in p] == [
        "parrots.py:1: NotFound(...)", "parrots.py:3: Words(...)"]


def test_an_error_class_that_says_its_own_sentence_is_read_too():
    source = (b'class ParrotGone(Conflict):\n'
              b'    def __init__(self, parrot):\n'
              b'        super().__init__("the parrot {name} is gone", name=parrot.name)\n'
              b'class Helper:\n'
              b'    def __init__(self):\n'
              b'        super().__init__("not a refusal")\n')
    read = extract._python({"ParrotGone", "Conflict"}, extract.Found())(io.BytesIO(source), None, None,
                                                                        {"filename": "parrots.py"})
    assert [(line, message) for line, _name, message, _ in read] == [(3, "the parrot {name} is gone")]


def test_a_domain_error_keeps_its_sentence_and_parameters():
    refusal = NotFound("no conversation with id {conversation_id}", conversation_id=7)
    assert refusal.message == "no conversation with id 7"  # as written, for logs and API clients
    assert refusal.text("pt-BR") == "não existe conversa com id 7"
    assert refusal.text("en") == "no conversation with id 7"
    # A value that looks like a placeholder stays as written.
    assert NotFound("no conversation with id {conversation_id}", conversation_id="{x}").text("pt-BR").endswith("{x}")


def test_a_count_is_grouped_as_each_language_writes_it_and_an_id_is_not():
    refusal = InvalidInput("the message has {length} characters; the limit for {label} is {limit}",
                           length=Quantity(1_234_567), label="SMS", limit=Quantity(1600))
    assert refusal.text("pt-BR") == "a mensagem tem 1.234.567 caracteres; o limite para SMS é 1.600"
    assert refusal.text("en") == "the message has 1,234,567 characters; the limit for SMS is 1,600"
    assert refusal.message == refusal.text("en")
    assert NotFound("no conversation with id {conversation_id}", conversation_id=12345).text("pt-BR") == \
        "não existe conversa com id 12345"


def test_a_refusal_written_in_portuguese_has_an_english_text():
    refusal = InvalidInput("escolha um canal ativo", field="channel_id")
    assert refusal.text("pt-BR") == "escolha um canal ativo"
    assert refusal.text("en") == "choose an active channel"


def test_phone_and_cpf_errors_are_said_in_portuguese():
    with pytest.raises(PhoneNumberError) as caught:
        identify("9000-0001")
    assert str(caught.value) == "'9000-0001' is missing the area code (DDD): only 8 digits"
    assert caught.value.text("pt-BR") == "'9000-0001' está sem o DDD: só 8 dígitos"


def test_a_template_error_is_composed_in_each_language():
    definition = TemplateDefinition(id="1", name="boas_vindas", language="pt_BR", status="APPROVED",
                                    category="MARKETING", parameter_format="NAMED", body_text="Olá {{nome}}",
                                    body_parameters=("nome",))
    with pytest.raises(InvalidInput) as caught:
        build_components(definition, TemplateValues(body={"nome": "   "}))
    assert caught.value.message == 'body parameter "nome" of the template "boas_vindas" is empty'
    portuguese = caught.value.text("pt-BR")
    assert '"boas_vindas"' in portuguese and '"nome"' in portuguese
    assert not ENGLISH_WORDS.search(portuguese), portuguese
    with pytest.raises(TemplateError) as unknown:
        from contact_center.templates.rendering import compile_template
        compile_template("Olá {{ contact.name")
    assert unknown.value.text("pt-BR").startswith("linha 1: erro de sintaxe:")


def test_words_inside_words_are_translated_too():
    phrase = Words('the template "{name}"', name="cobranca")
    assert translate("pt-BR", "{quoted} has no header; remove the header parameters", quoted=phrase) == (
        'o modelo "cobranca" não tem cabeçalho; remova os parâmetros do cabeçalho')


def test_a_reason_is_kept_as_words_and_said_when_read():
    opted_out = store(Words("not sent: the contact opted out of SMS"))
    assert opted_out == "not sent: the contact opted out of SMS"  # nothing to fill: kept readable, as it is
    assert say_stored(opted_out, "pt-BR") == "não enviada: o contato pediu para não receber SMS"
    gave_up = store(Words("gave up after {attempts} attempts: {reason}", attempts=5, reason="Número inválido"))
    assert say_stored(gave_up, "pt-BR") == "desistimos depois de 5 tentativas: Número inválido"
    assert say_stored(gave_up, "en") == say_stored(gave_up, None) == "gave up after 5 attempts: Número inválido"
    paused = store(Words("{reason} (channel paused)", reason=as_words(gave_up)))  # a stored reason in a longer one
    assert say_stored(paused, "pt-BR") == "desistimos depois de 5 tentativas: Número inválido (canal pausado)"
    assert store("Número inválido") == say_stored("Número inválido", "en") == "Número inválido"  # a provider's text
    assert say_stored(None, "pt-BR") is None


def test_an_erasure_scrubs_what_a_stored_reason_quotes():
    quoted = 'Kolmeya: "Zé D\'Ávila" +5511900000001 refused'  # a provider's text quoting the customer
    stored = store(Words("gave up after {attempts} attempts: {reason}", attempts=2,
                         reason=as_words(store(Words("{reason} (channel paused)", reason=quoted)))))
    scrub = lambda text: text.replace('"Zé D\'Ávila"', "[apagado]").replace("+5511900000001", "[apagado]")
    clean = rewrite_stored(stored, scrub)
    assert say_stored(clean, "pt-BR") == "desistimos depois de 2 tentativas: Kolmeya: [apagado] [apagado] refused " \
                                         "(canal pausado)"
    assert "Ávila" not in clean and "900000001" not in clean
    assert rewrite_stored("Número +5511900000001 inválido", scrub) == "Número [apagado] inválido"


# --- at the edge --------------------------------------------------------------------------------------

def test_a_messages_reason_is_said_in_each_readers_language(client, db, sms, customer_writes, make_user,
                                                            agent_headers):
    conversation = customer_writes(sms, "+55 11 90000-0001")
    message = queue_outbound(db, channel=sms, phone="+55 11 90000-0001", body="Oi", origin="api")
    fail(message, Words("{reason} (code {code})", reason=classify(131026, 400).reason, code=131026))
    db.commit()
    assert db.get(Message, message.id).status_reason.startswith('{"words":')  # no one language's text
    english = "not delivered: the number does not use WhatsApp, has an old app or blocked the business (code 131026)"
    portuguese = ("Não entregue: o número não usa WhatsApp, tem um aplicativo antigo ou bloqueou a empresa "
                  "(código 131026)")
    api = client.get(f"/api/messages/{message.id}", headers=agent_headers)
    assert api.json()["status_reason"] == english
    asked = client.get(f"/api/messages/{message.id}", headers={**agent_headers, "Accept-Language": "pt-BR"})
    assert asked.json()["status_reason"] == portuguese
    listed = client.get("/api/messages", params={"conversation_id": conversation.id}, headers=agent_headers)
    assert [m["status_reason"] for m in listed.json() if m["id"] == message.id] == [english]

    make_user("bia", "agent")
    login(client, "bia")
    timeline = client.get(f"/inbox/{conversation.id}/fragments/timeline")
    assert timeline.status_code == 200 and portuguese in timeline.text and english not in timeline.text
    client.get("/lang/en?next=/inbox")
    assert english in client.get(f"/inbox/{conversation.id}/fragments/timeline").text


def test_the_api_answers_in_the_language_it_is_asked_for(client, agent_headers):
    plain = client.get("/api/conversations/999999", headers=agent_headers)
    assert plain.status_code == 404
    assert plain.json()["error"]["message"] == "no conversation with id 999999"  # unchanged for API clients
    asked = client.get("/api/conversations/999999", headers={**agent_headers, "Accept-Language": "pt-BR,pt;q=0.9"})
    assert asked.json()["error"] == {"code": "not_found", "message": "não existe conversa com id 999999"}
    english = client.get("/api/conversations/999999", headers={**agent_headers, "Accept-Language": "en-US"})
    assert english.json()["error"]["message"] == "no conversation with id 999999"


def test_validation_errors_in_portuguese(client, agent_headers):
    answer = client.post("/api/sms", json={"body": "oi"}, headers={**agent_headers, "Accept-Language": "pt-BR"})
    assert answer.status_code == 422
    problems = answer.json()["error"]["problems"]
    assert problems and not any(ENGLISH_WORDS.search(p["message"]) for p in problems), problems
    english = client.post("/api/sms", json={"body": "oi"}, headers=agent_headers)
    assert "exactly one of 'to' and 'contact_id'" in english.json()["error"]["message"]


def test_the_page_script_reads_errors_in_the_operators_language(client, make_user):
    make_user("ana", "agent")
    login(client, "ana")
    headers = {"X-Requested-With": "fetch", "X-CSRF-Token": page_csrf(client)}
    answer = client.post("/api/conversations/999999/take", headers=headers)
    assert answer.status_code == 404 and answer.json()["error"]["message"] == "não existe conversa com id 999999"
    client.get("/lang/en?next=/inbox")
    answer = client.post("/api/conversations/999999/take", headers=headers)
    assert answer.json()["error"]["message"] == "no conversation with id 999999"


def test_an_error_page_says_the_refusal_in_portuguese(client, make_user):
    make_user("ana", "agent")
    login(client, "ana")
    page = client.get("/contacts/999999", headers={"Accept": "text/html"})
    assert page.status_code == 404
    detail = re.search(r'id="error-detail">([^<]+)<', page.text)
    assert detail and "contato" in detail.group(1) and not ENGLISH_WORDS.search(detail.group(1)), page.text[-800:]


def test_every_catalog_reads_back_whole():
    pt, en = catalog("pt-BR"), catalog("en")
    assert pt["nav.inbox"] == "Caixa de entrada" and en["nav.inbox"] == "Inbox"
    assert all(value.strip() for value in pt.values())
