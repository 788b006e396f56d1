"""The WhatsApp sandbox speaks the Graph API and posts signed webhooks to a real receiving server."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx
import pytest

from contact_center.providers.whatsapp_cloud.errors import reason_for
from contact_center.providers.whatsapp_cloud.sandbox import SandboxServer
from contact_center.providers.whatsapp_cloud.webhooks import sign

from .conftest import Received, WebhookReceiver

SP = "5511900000001"
SC = "+55 48 99191-0234"


def statuses(received: list[Received]) -> list[tuple[str, str]]:
    return [(s["id"], s["status"]) for r in received for s in r.statuses()]


def send_text(sandbox: SandboxServer, to: str = SP, **kwargs: Any) -> str:
    with sandbox.client() as client:
        return client.send_text(to, "Olá", **kwargs).wamid


def test_status_webhooks_are_signed_over_the_exact_bytes(
    sandbox: SandboxServer, receiver: WebhookReceiver
) -> None:
    wamid = send_text(sandbox, callback_data="cc-msg-7")
    received = receiver.wait_for(3)

    assert statuses(received) == [(wamid, "sent"), (wamid, "delivered"), (wamid, "read")]
    for post in received:
        expected = hmac.new(sandbox.app_secret.encode(), post.raw, hashlib.sha256).hexdigest()
        assert post.headers["X-Hub-Signature-256"] == f"sha256={expected}" == sign(post.raw, sandbox.app_secret)
        assert post.headers["Content-Type"] == "application/json"
    body = received[0].body
    assert body["object"] == "whatsapp_business_account"
    [entry] = body["entry"]
    assert entry["id"] == sandbox.waba_id
    [change] = entry["changes"]
    assert change["field"] == "messages"
    assert change["value"]["messaging_product"] == "whatsapp"
    assert change["value"]["metadata"] == {"display_phone_number": "5511900000099",
                                           "phone_number_id": sandbox.phone_number_id}
    [status] = change["value"]["statuses"]
    assert status["recipient_id"] == SP and status["biz_opaque_callback_data"] == "cc-msg-7"
    assert status["timestamp"].isdigit()
    assert status["pricing"] == {"pricing_model": "PMP", "category": "service",
                                 "type": "free_customer_service"}
    # Re-serialising changes the bytes, so a receiver must verify what it got, not what it parsed.
    assert json.dumps(body).encode() != received[0].raw


def test_non_ascii_is_escaped_in_the_signed_bytes(sandbox: SandboxServer, receiver: WebhookReceiver) -> None:
    sandbox.inbound(from_=SC, name="João Ação", text="Olá, ação ✓ 👍")
    [post] = receiver.wait_for(1)
    post.raw.decode("ascii")  # nothing but ASCII on the wire
    assert b"\\u00e3" in post.raw and b"\\ud83d\\udc4d" in post.raw
    [message] = post.messages()
    assert message["text"]["body"] == "Olá, ação ✓ 👍"
    assert post.changes()[0]["value"]["contacts"][0]["profile"]["name"] == "João Ação"


def test_delivered_can_be_skipped(sandbox_factory: Any, receiver: WebhookReceiver) -> None:
    sandbox = sandbox_factory(status_script=["sent", "read"])
    wamid = send_text(sandbox)
    assert statuses(receiver.wait_for(2)) == [(wamid, "sent"), (wamid, "read")]


def test_out_of_order_statuses(sandbox_factory: Any, receiver: WebhookReceiver) -> None:
    sandbox = sandbox_factory(out_of_order=True)
    wamid = send_text(sandbox)
    assert [s for _, s in statuses(receiver.wait_for(3))] == ["read", "delivered", "sent"]
    [message] = sandbox.ledger()["messages"]
    assert message["wamid"] == wamid
    assert [h["status"] for h in message["history"]] == ["sent", "delivered", "read"]  # the truth, in order


def test_duplicated_callbacks(sandbox_factory: Any, receiver: WebhookReceiver) -> None:
    sandbox = sandbox_factory(duplicate_callbacks=True)
    send_text(sandbox)
    received = receiver.wait_for(6)
    assert len(received) == 6
    assert len(set(statuses(received))) == 3  # a replay is recognisable by (wamid, status)
    assert received[0].raw == received[1].raw


def test_statuses_batched_in_one_post(sandbox_factory: Any, receiver: WebhookReceiver) -> None:
    sandbox = sandbox_factory(status_batch=True)
    wamid = send_text(sandbox)
    [post] = receiver.wait_for(1)
    assert statuses([post]) == [(wamid, "sent"), (wamid, "delivered"), (wamid, "read")]


def test_not_on_whatsapp_fails_with_131026(sandbox_factory: Any, receiver: WebhookReceiver) -> None:
    sandbox = sandbox_factory(not_on_whatsapp=["5511900000005"], fail_numbers={"5511900000006": 131049})
    wamid = send_text(sandbox, "5511900000005")
    held = send_text(sandbox, "5511900000006")
    received = receiver.wait_for(2)
    by_id = {s["id"]: s for r in received for s in r.statuses()}
    failed = by_id[wamid]
    assert failed["status"] == "failed" and "pricing" not in failed
    [error] = failed["errors"]
    assert error["code"] == 131026 and error["title"] and error["message"]
    assert error["error_data"]["details"] == "Message Undeliverable."
    assert reason_for(error["code"], error["error_data"]["details"]).text("pt-BR").startswith("Não entregue")
    assert by_id[held]["errors"][0]["code"] == 131049


def test_fail_with_a_chosen_code(sandbox_factory: Any, receiver: WebhookReceiver) -> None:
    sandbox = sandbox_factory(fail_with=131047)
    send_text(sandbox)
    [post] = receiver.wait_for(1)
    assert [(s["status"], s["errors"][0]["code"]) for s in post.statuses()] == [("failed", 131047)]


def test_held_messages_report_no_status(sandbox_factory: Any, receiver: WebhookReceiver) -> None:
    sandbox = sandbox_factory(message_status="held_for_quality_assessment", status_delay_seconds=0)
    send_text(sandbox)
    with pytest.raises(AssertionError):
        receiver.wait_for(1, timeout=0.3)


def test_failed_webhooks_are_retried(sandbox_factory: Any, receiver: WebhookReceiver) -> None:
    sandbox = sandbox_factory(status_script=["sent"])
    receiver.fail_first = 2
    send_text(sandbox)
    receiver.wait_for(1)
    attempts = [(c["attempt"], c["status_code"]) for c in sandbox.ledger()["callbacks"]]
    assert attempts == [(1, 500), (2, 500), (3, 200)]


def test_ninth_digit_learning(sandbox: SandboxServer, receiver: WebhookReceiver) -> None:
    with sandbox.client() as client:
        answers = {to: client.send_text(to, "Oi").wa_id for to in
                   ("5548991910234", "5511900000001", "5521990000002", "554833330000")}
    assert answers == {"5548991910234": "554891910234", "5511900000001": "5511900000001",
                       "5521990000002": "5521990000002", "554833330000": "554833330000"}
    assert sandbox.ledger()["wa_ids"]["5548991910234"] == "554891910234"
    sandbox.configure(wa_ids={"5548991910235": "5548991910235"})  # an exception to the rule
    with sandbox.client() as client:
        assert client.send_text("5548991910235", "Oi").wa_id == "5548991910235"

    result = sandbox.inbound(from_=SC, name="Ana", text="Oi", deliver=False)
    [message] = result["messages"]
    assert message["from"] == "554891910234"
    contact = result["payload"]["entry"][0]["changes"][0]["value"]["contacts"][0]
    assert contact["wa_id"] == "554891910234" and contact["user_id"].startswith("BR.")
    assert message["from_user_id"] == contact["user_id"]


def test_sender_with_only_a_user_id(sandbox: SandboxServer, receiver: WebhookReceiver) -> None:
    sandbox.inbound(user_id="BR.1502576394655843", name="Ana", username="ana.exemplo", text="Oi")
    [post] = receiver.wait_for(1)
    value = post.changes()[0]["value"]
    [message] = value["messages"]
    assert "from" not in message and message["from_user_id"] == "BR.1502576394655843"
    [contact] = value["contacts"]
    assert "wa_id" not in contact
    assert contact == {"profile": {"name": "Ana", "username": "ana.exemplo"}, "user_id": "BR.1502576394655843"}


def test_a_send_to_a_user_id_is_reported_by_that_id(sandbox: SandboxServer, receiver: WebhookReceiver) -> None:
    with sandbox.client() as client:
        answer = client.send_text("BR.1502576394655843", "Olá")
    assert answer.wa_id is None  # Meta does not give their phone away
    received = receiver.wait_for(3)
    assert statuses(received) == [(answer.wamid, s) for s in ("sent", "delivered", "read")]
    for status in (s for r in received for s in r.statuses()):
        assert status["recipient_user_id"] == "BR.1502576394655843" and "recipient_id" not in status
    [sent] = sandbox.ledger()["messages"]
    assert (sent["recipient"], sent["to"]) == ("BR.1502576394655843", "")


INBOUND = [
    ({"type": "text", "text": "Quero a segunda via", "context": "wamid.OUT1", "forwarded": True},
     lambda m: m["text"]["body"] == "Quero a segunda via" and m["context"]["id"] == "wamid.OUT1"
     and m["context"]["forwarded"] is True),
    ({"type": "image", "caption": "Comprovante"}, lambda m: m["image"]["caption"] == "Comprovante"),
    ({"type": "sticker"}, lambda m: m["sticker"]["animated"] is False),
    ({"type": "audio"}, lambda m: "voice" not in m["audio"]),
    ({"type": "voice"}, lambda m: m["type"] == "audio" and m["audio"]["voice"] is True),
    ({"type": "video", "caption": "Vídeo"}, lambda m: m["video"]["mime_type"] == "video/mp4"),
    ({"type": "document", "filename": "contrato.pdf", "caption": "Assinado"},
     lambda m: m["document"]["filename"] == "contrato.pdf" and m["document"]["caption"] == "Assinado"),
    ({"type": "location", "latitude": -27.5954, "longitude": -48.548, "location_name": "Loja Centro",
      "address": "Rua A, 1"},
     lambda m: m["location"] == {"latitude": -27.5954, "longitude": -48.548, "name": "Loja Centro",
                                 "address": "Rua A, 1"}),
    ({"type": "contacts", "contact_name": "Maria Exemplo", "contact_phone": "+55 11 90000-0002"},
     lambda m: m["contacts"][0]["phones"][0] == {"phone": "+5511900000002", "wa_id": "5511900000002",
                                                 "type": "CELL"}),
    ({"type": "interactive", "button_id": "confirmar", "title": "Confirmar"},
     lambda m: m["interactive"] == {"type": "button_reply", "button_reply": {"id": "confirmar", "title": "Confirmar"}}),
    ({"type": "interactive", "list_id": "plano-2", "title": "Plano 2", "description": "Mensal"},
     lambda m: m["interactive"]["list_reply"] == {"id": "plano-2", "title": "Plano 2", "description": "Mensal"}),
    ({"type": "button", "payload": "PAGAR", "title": "Pagar agora", "context": "wamid.TPL1"},
     lambda m: m["button"] == {"payload": "PAGAR", "text": "Pagar agora"} and m["context"]["id"] == "wamid.TPL1"),
    ({"type": "reaction", "message_id": "wamid.OUT1", "emoji": "❤️"},
     lambda m: m["reaction"] == {"message_id": "wamid.OUT1", "emoji": "❤️"}),
    ({"type": "reaction", "message_id": "wamid.OUT1"}, lambda m: m["reaction"] == {"message_id": "wamid.OUT1"}),
    ({"type": "unsupported"}, lambda m: m["errors"][0]["code"] == 131051),
    ({"type": "edit", "message_id": "wamid.IN9", "text": "corrigido"},
     lambda m: m["edit"]["original_message_id"] == "wamid.IN9"),
    ({"type": "revoke", "message_id": "wamid.IN9"}, lambda m: m["revoke"] == {"original_message_id": "wamid.IN9"}),
    ({"type": "system", "system": "user_changed_number", "new_phone": "+55 11 90000-0003"},
     lambda m: m["system"]["type"] == "user_changed_number" and m["system"]["new_wa_id"] == "5511900000003"),
    ({"type": "system", "system": "user_changed_user_id", "new_user_id": "BR.2000000000000001"},
     lambda m: m["system"] == {"body": "User changed their business-scoped user id",
                               "type": "user_changed_user_id", "new_user_id": "BR.2000000000000001"}),
]


@pytest.mark.parametrize(("fields", "check"), INBOUND, ids=lambda v: v.get("type") if isinstance(v, dict) else "")
def test_inbound_types(sandbox: SandboxServer, receiver: WebhookReceiver, fields: dict[str, Any], check: Any) -> None:
    result = sandbox.inbound(from_=SP, name="Ana", **fields)
    assert result["delivery"]["status_code"] == 200
    [post] = receiver.wait_for(1)
    [message] = post.messages()
    assert message["from"] == SP and message["id"].startswith("wamid.") and message["timestamp"].isdigit()
    assert check(message), message
    value = post.changes()[0]["value"]
    assert ("contacts" in value) == (fields["type"] != "system")  # Meta sends none with a system message


@pytest.mark.parametrize("kind", ["image", "sticker", "audio", "voice", "video", "document"])
def test_inbound_media_is_served_with_its_sha256(sandbox: SandboxServer, kind: str) -> None:
    result = sandbox.inbound(from_=SP, type=kind, deliver=False)
    part = result["messages"][0]["audio" if kind == "voice" else kind]
    with sandbox.client() as client:
        info = client.media_info(part["id"])
        content = client.download(info.url)
    assert hashlib.sha256(content).hexdigest() == part["sha256"] == info.sha256
    assert info.mime_type == part["mime_type"] and info.file_size == len(content) > 0


def test_inbound_batched_in_one_post_or_several_entries(sandbox: SandboxServer, receiver: WebhookReceiver) -> None:
    sandbox.inbound(messages=[{"from": SP, "text": "Oi"}, {"from": SC, "text": "Bom dia"}])
    sandbox.inbound(messages=[{"from": SP, "text": "Um"}, {"from": SP, "text": "Dois"}], separate_entries=True)
    one, two = receiver.wait_for(2)
    [change] = one.changes()
    assert [m["text"]["body"] for m in change["value"]["messages"]] == ["Oi", "Bom dia"]
    assert [c["wa_id"] for c in change["value"]["contacts"]] == [SP, "554891910234"]
    assert len(two.body["entry"]) == 2 and [m["text"]["body"] for m in two.messages()] == ["Um", "Dois"]


def test_inbound_refuses_what_meta_never_sends(sandbox: SandboxServer) -> None:
    for body in ({"text": "Oi"}, {"from": SP, "type": "poll"}, {"from": SP, "type": "location"}):
        response = httpx.post(sandbox.control_url + "/inbound", json=body, timeout=5)
        assert response.status_code == 400 and response.json()["error"]


def test_template_status_update(sandbox: SandboxServer, receiver: WebhookReceiver) -> None:
    with sandbox.client() as client:
        client.send_template(SP, "cobranca_lembrete", "pt_BR", [{"type": "body", "parameters": [
            {"type": "text", "text": t} for t in ("Ana", "R$ 1,00", "10/12")]}])
    receiver.wait_for(3)
    sandbox.template_status("cobranca_lembrete", "PAUSED")
    post = receiver.wait_for(4)[-1]
    [change] = post.changes()
    assert change["field"] == "message_template_status_update"
    assert change["value"] == {"event": "PAUSED", "message_template_id": 900000000000001,
                               "message_template_name": "cobranca_lembrete", "message_template_language": "pt_BR",
                               "reason": "NONE"}
    with sandbox.client() as client:
        assert next(t for t in client.templates() if t["name"] == "cobranca_lembrete")["status"] == "PAUSED"


def test_marketing_opt_out(sandbox: SandboxServer, receiver: WebhookReceiver) -> None:
    sandbox.user_preferences("stop", from_=SC)
    [post] = receiver.wait_for(1)
    [change] = post.changes()
    assert change["field"] == "user_preferences"
    [preference] = change["value"]["user_preferences"]
    assert (preference["wa_id"], preference["value"], preference["category"]) == (
        "554891910234", "stop", "marketing_messages")

    named = [{"type": "body", "parameters": [{"type": "text", "parameter_name": "first_name", "text": "Ana"}]}]
    with sandbox.client() as client:
        wamid = client.send_template("5548991910234", "boas_vindas", "pt_BR", named).wamid
    failed = receiver.wait_for(2)[-1].statuses()[0]
    assert (failed["id"], failed["status"], failed["errors"][0]["code"]) == (wamid, "failed", 131050)


def test_customer_service_window(sandbox_factory: Any, receiver: WebhookReceiver) -> None:
    sandbox = sandbox_factory(enforce_window=True, status_script=["sent"])
    outside = send_text(sandbox)
    sandbox.inbound(from_=SP, text="Oi")
    inside = send_text(sandbox)
    received = receiver.wait_for(3)
    by_id = {s["id"]: s for r in received for s in r.statuses()}
    assert by_id[outside]["errors"][0]["code"] == 131047
    assert by_id[inside]["status"] == "sent"


def test_graph_paths_versions_and_token(sandbox: SandboxServer) -> None:
    url = f"{sandbox.base_url}/v21.0/{sandbox.phone_number_id}"
    ok = httpx.get(url, headers={"Authorization": f"Bearer {sandbox.token}"}, timeout=5)
    assert ok.status_code == 200 and ok.json()["id"] == sandbox.phone_number_id
    wrong = httpx.get(url, headers={"Authorization": "Bearer nope"}, timeout=5)
    assert wrong.status_code == 401
    error = wrong.json()["error"]
    assert (error["type"], error["code"]) == ("OAuthException", 190) and error["fbtrace_id"]
    latest = httpx.get(f"{sandbox.base_url}/latest/{sandbox.phone_number_id}",
                       headers={"Authorization": f"Bearer {sandbox.token}"}, timeout=5)
    assert latest.status_code == 400


def test_config_reset_and_bad_settings(sandbox: SandboxServer) -> None:
    send_text(sandbox)
    config = sandbox.configure(status_script=["sent", "read"], fail_next=[131056])
    assert config["status_script"] == ["sent", "read"] and config["fail_next"] == [131056]
    assert config["app_secret"] == "***"
    for bad in ({"status_script": ["entregue"]}, {"fail_next": ["slow"]}, {"nao_existe": 1}):
        response = httpx.post(sandbox.control_url + "/config", json=bad, timeout=5)
        assert response.status_code == 400
    sandbox.reset()
    ledger = sandbox.ledger()
    assert ledger["messages"] == [] and ledger["callbacks"] == []
    assert httpx.get(sandbox.control_url + "/config", timeout=5).json()["status_script"] == ["sent", "delivered", "read"]
