"""GraphClient against the WhatsApp sandbox, over real HTTP."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from contact_center.providers.whatsapp_cloud.client import (
    GraphClient,
    MediaTooLarge,
    SendResponse,
    recipient_digits,
    recipient_field,
)
from contact_center.providers.whatsapp_cloud.errors import (
    DAY_SECONDS,
    GraphConnectionError,
    GraphError,
    GraphResponseError,
    GraphTimeout,
    classify,
    reason_for,
)
from contact_center.providers.whatsapp_cloud.sandbox import SandboxServer

SP = "+55 11 90000-0001"  # area 11: WhatsApp knows it with the ninth digit
SC = "+55 48 99191-0234"  # area 48: an older account, 12-digit wa_id


def sent(sandbox: SandboxServer) -> list[dict[str, Any]]:
    return sandbox.ledger()["messages"]


def test_send_text_body_and_answer(sandbox: SandboxServer) -> None:
    with sandbox.client() as client:
        first = client.send_text(SP, "Olá, tudo bem?", callback_data="cc-msg-1")
        reply = client.send_text("5548991910234", "Segue o link: https://exemplo.com.br", reply_to="wamid.IN1",
                                 preview_url=True)

    assert first == SendResponse(first.wamid, "5511900000001", "5511900000001", "accepted")
    assert first.wamid.startswith("wamid.") and not first.held
    assert (reply.input, reply.wa_id) == ("5548991910234", "554891910234")
    a, b = sent(sandbox)
    assert a["payload"] == {
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": "5511900000001", "type": "text",
        "text": {"body": "Olá, tudo bem?", "preview_url": False}, "biz_opaque_callback_data": "cc-msg-1",
    }
    assert b["payload"]["context"] == {"message_id": "wamid.IN1"}
    assert b["payload"]["text"]["preview_url"] is True
    assert "biz_opaque_callback_data" not in b["payload"]


@pytest.mark.parametrize(
    ("configured", "expected"),
    [(None, "accepted"), ("held_for_quality_assessment", "held_for_quality_assessment"), ("paused", "paused")],
)
def test_message_status_absent_held_or_paused(sandbox_factory: Any, configured: str | None, expected: str) -> None:
    sandbox = sandbox_factory(message_status=configured)
    with sandbox.client() as client:
        answer = client.send_text(SP, "Oi")
    assert answer.message_status == expected
    assert answer.held == (expected != "accepted")


def test_send_templates(sandbox: SandboxServer) -> None:
    with sandbox.client() as client:
        client.send_template(SP, "cobranca_lembrete", "pt_BR", [
            {"type": "body", "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "R$ 120,00"},
                                            {"type": "text", "text": "10/12"}]},
        ], callback_data="cc-2")
        client.send_template(SP, "boas_vindas", "pt_BR", [
            {"type": "body", "parameters": [{"type": "text", "parameter_name": "first_name", "text": "Ana"}]},
        ])
        client.send_template(SP, "segunda_via_boleto", "pt_BR", [
            {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://exemplo.com.br/b.png"}}]},
            {"type": "body", "parameters": [{"type": "text", "text": "Ana"}]},
            {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "123"}]},
        ])
    first = sent(sandbox)[0]["payload"]
    assert first["type"] == "template" and first["biz_opaque_callback_data"] == "cc-2"
    assert first["template"]["name"] == "cobranca_lembrete"
    assert first["template"]["language"] == {"code": "pt_BR"}


@pytest.mark.parametrize(
    ("name", "components", "code"),
    [
        ("cobranca_lembrete", [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}], 132000),
        ("boas_vindas", [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}], 132012),
        ("segunda_via_boleto", [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}], 132012),
        ("promocao_relampago", [{"type": "body", "parameters": [{"type": "text", "text": "30"}]}], 132001),
        ("pesquisa_satisfacao", [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}], 132015),
        ("nao_existe", [], 132001),
    ],
)
def test_template_mismatches_fail_with_a_reason(
    sandbox: SandboxServer, name: str, components: list[dict[str, Any]], code: int
) -> None:
    with sandbox.client() as client, pytest.raises(GraphError) as caught:
        client.send_template(SP, name, "pt_BR", components)
    error = caught.value
    assert (error.code, error.http_status, error.action.kind) == (code, 400, "fail")
    assert not error.retryable and not error.outcome_unknown
    assert error.details and error.details in error.reason.text("pt-BR")
    assert error.fbtrace_id
    assert sent(sandbox) == []


def test_media_reaction_and_mark_read(sandbox: SandboxServer) -> None:
    with sandbox.client() as client:
        media_id = client.upload_media(b"%PDF-1.4 boleto", "application/pdf", "boleto.pdf")
        client.send_media(SP, "document", media_id=media_id, caption="Seu boleto", filename="boleto.pdf")
        client.send_media(SP, "image", link="https://exemplo.com.br/foto.jpg", reply_to="wamid.IN1")
        client.send_reaction(SP, "wamid.IN1", "👍")
        client.mark_read("wamid.IN1")
        client.mark_read("wamid.IN2", typing=True)
        with pytest.raises(ValueError):
            client.send_media(SP, "image", media_id=media_id, link="https://exemplo.com.br/x.jpg")
        with pytest.raises(GraphError) as caught:
            client.send_media(SP, "image", media_id="999")  # never uploaded
        assert caught.value.code == 131053 and caught.value.action.max_attempts == 3

    ledger = sandbox.ledger()
    document, image, reaction = (m["payload"] for m in ledger["messages"])
    assert document["document"] == {"id": media_id, "caption": "Seu boleto", "filename": "boleto.pdf"}
    assert image["image"] == {"link": "https://exemplo.com.br/foto.jpg"} and image["context"]["message_id"] == "wamid.IN1"
    assert reaction["reaction"] == {"message_id": "wamid.IN1", "emoji": "👍"}
    assert [(r["message_id"], r["typing_indicator"]) for r in ledger["reads"]] == [
        ("wamid.IN1", None), ("wamid.IN2", {"type": "text"})]
    assert ledger["media"][0]["filename"] == "boleto.pdf"


def test_upload_info_download_and_expiry(sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(media_url_ttl_seconds=0.3)
    content = bytes(range(256)) * 40
    with sandbox.client() as client:
        media_id = client.upload_media(content, "image/jpeg", "foto.jpg")
        info = client.media_info(media_id)
        assert (info.mime_type, info.file_size, info.sha256) == ("image/jpeg", len(content),
                                                                  hashlib.sha256(content).hexdigest())
        downloaded = client.download(info.url)
        assert hashlib.sha256(downloaded).hexdigest() == info.sha256

        with pytest.raises(MediaTooLarge):
            client.download(info.url, max_bytes=1000)
        with sandbox.client(access_token="wrong-token") as stranger, pytest.raises(GraphError) as refused:
            stranger.download(info.url)
        assert refused.value.http_status == 401

        time.sleep(0.4)
        with pytest.raises(GraphError) as expired:
            client.download(info.url)
        assert expired.value.http_status == 404 and "sig=" not in str(expired.value)
        assert client.download(client.media_info(media_id).url) == content  # a fresh URL works


def test_templates_follow_cursor_pages(sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(templates_page_limit=2)
    with sandbox.client() as client:
        templates = list(client.templates())
    assert [t["name"] for t in templates] == [
        "cobranca_lembrete", "boas_vindas", "segunda_via_boleto", "promocao_relampago", "pesquisa_satisfacao"]
    assert {t["status"] for t in templates} == {"APPROVED", "REJECTED", "PAUSED"}
    assert templates[1]["parameter_format"] == "NAMED"
    pages = [c for c in sandbox.ledger()["api_calls"] if c["endpoint"] == "templates"]
    assert len(pages) == 3


def test_templates_need_the_waba_id(sandbox: SandboxServer) -> None:
    client = GraphClient(sandbox.token, phone_number_id=sandbox.phone_number_id, base_url=sandbox.base_url)
    with client, pytest.raises(ValueError):
        list(client.templates())


def test_phone_number(sandbox: SandboxServer) -> None:
    with sandbox.client(api_version="v25.0") as client:
        info = client.phone_number()
    assert (info.display_phone_number, info.verified_name, info.quality_rating, info.messaging_limit_tier) == (
        "+55 11 90000-0099", "Contact Center Sandbox", "GREEN", "TIER_1K")
    assert info.raw["throughput"] == {"level": "STANDARD"}


def test_wrong_token_pauses_the_channel_without_echoing_the_token(sandbox: SandboxServer) -> None:
    token = "EAAGsecret0123456789"
    with sandbox.client(access_token=f"Bearer {token}") as client, pytest.raises(GraphError) as caught:
        client.send_text(SP, "Oi")
    error = caught.value
    assert (error.code, error.http_status, error.action.kind) == (190, 401, "pause_channel")
    assert error.reason.text("pt-BR").startswith("Token de acesso do WhatsApp expirado ou inválido")
    assert token not in str(error) and token not in repr(client)


@pytest.mark.parametrize(
    ("code", "http_status", "kind", "retryable"),
    [
        (131047, 400, "fail", False),
        (131026, 400, "fail", False),
        (131056, 400, "retry_recipient", True),
        (131049, 400, "wait", True),
        (131050, 400, "opt_out", False),
        (80007, 429, "throttle_channel", True),
        (368, 400, "pause_channel", False),
    ],
)
def test_synchronous_errors(sandbox: SandboxServer, code: int, http_status: int, kind: str, retryable: bool) -> None:
    sandbox.configure(fail_next=[code])
    with sandbox.client() as client, pytest.raises(GraphError) as caught:
        client.send_text(SP, "Oi")
    error = caught.value
    assert (error.code, error.http_status, error.action.kind, error.retryable) == (code, http_status, kind, retryable)
    assert not error.outcome_unknown
    if code == 131049:
        assert error.retry_after_seconds == DAY_SECONDS


def test_throughput_limit_gives_retry_after(sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(retry_after_seconds=7)
    sandbox.configure(fail_next=[130429])
    with sandbox.client() as client:
        with pytest.raises(GraphError) as caught:
            client.send_text(SP, "Oi")
        assert client.send_text(SP, "Oi").wamid  # only the next call failed
    error = caught.value
    assert (error.code, error.http_status, error.action.kind) == (130429, 429, "throttle_channel")
    assert error.retryable and error.retry_after_seconds == 7.0


@pytest.mark.parametrize("mode", ["http500", "http503", 131000, "html"])
def test_unreadable_or_server_answers_leave_a_send_unknown(sandbox: SandboxServer, mode: Any) -> None:
    sandbox.configure(fail_next=[mode])
    with sandbox.client() as client, pytest.raises(GraphError) as caught:
        client.send_text(SP, "Oi")
    assert caught.value.outcome_unknown and caught.value.retryable
    if mode == "html":
        assert isinstance(caught.value, GraphResponseError) and caught.value.http_status == 200


def test_a_failed_read_is_not_an_unknown_outcome(sandbox: SandboxServer) -> None:
    sandbox.configure(fail_next=["http500"], fail_only=["templates"])
    with sandbox.client() as client, pytest.raises(GraphError) as caught:
        list(client.templates())
    assert caught.value.retryable and not caught.value.outcome_unknown


def test_timeout_after_sending_is_an_unknown_outcome(sandbox: SandboxServer) -> None:
    sandbox.configure(fail_next=["timeout"])
    with sandbox.client(timeout=0.3) as client, pytest.raises(GraphTimeout) as caught:
        client.send_text(SP, "Oi")
    assert caught.value.outcome_unknown and caught.value.retryable
    assert len(sent(sandbox)) == 1  # the sandbox, like Meta, carried it out


def test_refused_connection_sent_nothing() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    client = GraphClient("t0ken", phone_number_id="1", base_url=f"http://127.0.0.1:{port}", timeout=1)
    with client, pytest.raises(GraphConnectionError) as caught:
        client.send_text(SP, "Oi")
    assert caught.value.retryable and not caught.value.outcome_unknown


def test_token_echoed_by_a_proxy_is_redacted() -> None:
    class Echo(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            said = json.dumps({"error": {"message": f"bad header {self.headers['Authorization']}", "code": 100,
                                         "error_data": {"details": self.headers["Authorization"]}}}).encode()
            self.send_response(400)
            self.send_header("Content-Length", str(len(said)))
            self.end_headers()
            self.wfile.write(said)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        client = GraphClient("EAAGverysecret", phone_number_id="1", base_url=f"http://127.0.0.1:{server.server_address[1]}")
        with client, pytest.raises(GraphError) as caught:
            client.send_text(SP, "Oi")
    finally:
        server.shutdown()
        server.server_close()
    assert "EAAGverysecret" not in str(caught.value) and "EAAGverysecret" not in (caught.value.details or "")
    assert "[token]" in str(caught.value)


def test_recipient_is_digits() -> None:
    assert recipient_digits("+55 (48) 99191-0234") == "5548991910234"
    with pytest.raises(ValueError):
        recipient_digits("BR.1502576394655843")


def test_a_phone_goes_as_to_and_a_user_id_as_recipient() -> None:
    assert recipient_field("+55 (48) 99191-0234") == {"to": "5548991910234"}
    assert recipient_field("BR.1502576394655843") == {"recipient": "BR.1502576394655843"}
    with pytest.raises(ValueError):
        recipient_field("br.150 nope")


@pytest.mark.parametrize(
    ("code", "http_status", "kind"),
    [
        (131047, 400, "fail"), (131026, 400, "fail"), (130429, 429, "throttle_channel"),
        (131056, 400, "retry_recipient"), (131049, 400, "wait"), (131048, 400, "pause_campaign"),
        (131050, 400, "opt_out"),
        (132000, 400, "fail"), (132001, 400, "fail"), (132005, 400, "fail"), (132007, 400, "fail"),
        (132008, 400, "fail"), (132012, 400, "fail"), (132015, 400, "fail"), (132016, 400, "fail"),
        (131051, 400, "fail"), (131052, 400, "retry"), (131053, 400, "retry"), (131000, 500, "retry"),
        (131016, 503, "retry"), (2, 503, "retry"), (135000, 400, "retry"), (4, 400, "throttle_channel"),
        (80007, 400, "throttle_channel"), (190, 401, "pause_channel"), (0, 401, "pause_channel"),
        (10, 403, "pause_channel"), (200, 403, "pause_channel"), (299, 403, "pause_channel"),
        (368, 400, "pause_channel"), (131031, 400, "pause_channel"), (131042, 400, "pause_channel"),
        (None, 429, "throttle_channel"), (None, 502, "retry"), (None, 401, "pause_channel"),
        (None, 400, "fail"), (999999, 400, "fail"),
    ],
)
def test_classify(code: int | None, http_status: int, kind: str) -> None:
    action = classify(code, http_status)
    assert action.kind == kind
    assert action.reason.text("pt-BR") != action.reason.text("en")  # said in each reader's language
    if code in (131052, 131053):
        assert action.max_attempts == 3


def test_reasons_in_portuguese_and_english() -> None:
    assert classify(131047, 400).reason.text("pt-BR") == (
        "Janela de 24 horas fechada: o cliente não escreve há mais de 24 horas; envie um modelo aprovado")
    assert classify(131047, 400).reason.text("en") == (
        "24-hour window closed: the customer has not written for more than 24 hours; send an approved template")
    assert reason_for(131026, None).text("pt-BR") == (
        "Não entregue: o número não usa WhatsApp, tem um aplicativo antigo ou bloqueou a empresa")
    assert reason_for(132000, "body: number of params (1) does not match (3)").text("pt-BR").endswith(
        "(detalhe: body: number of params (1) does not match (3))")
    assert reason_for(424242, "").text("pt-BR") == "Erro 424242 do WhatsApp"
    assert reason_for(424242, "").text("en") == "WhatsApp error 424242"
    assert classify(131049, 400).min_delay_seconds == DAY_SECONDS
