from __future__ import annotations

import pytest

from contact_center.providers.kolmeya.sandbox import SandboxServer


@pytest.fixture
def sandbox():
    with SandboxServer("sandbox-token", status_delay_seconds=30) as server:
        yield server


@pytest.fixture
def channel(client, admin_headers, sandbox):
    return client.post("/api/channels", json={
        "name": "SMS SANDBOX", "provider": "kolmeya_sandbox", "credentials": {"token": "sandbox-token"},
        "settings": {"base_url": sandbox.base_url, "price_per_segment": "0.07"}}, headers=admin_headers).json()


def test_send_to_a_written_number_is_stored_and_dispatched(client, admin_headers, channel, sandbox):
    response = client.post("/api/sms", json={"to": "(11) 90000-0001", "body": "Sua fatura venceu"},
                           headers=admin_headers)
    assert response.status_code == 202, response.text
    message = client.get(f"/api/messages/{response.json()['id']}", headers=admin_headers).json()
    assert message["status"] == "sent"  # the job ran right after commit (immediate queue in tests)
    assert message["phone_e164"] == "+5511900000001" and message["encoding"] == "GSM-7"
    assert [m["reference"] for m in sandbox.ledger()["messages"]] == [message["reference"]]


def test_template_send_renders_for_the_contact(client, admin_headers, channel, sandbox):
    contact = client.post("/api/contacts", json={"name": "João Silva", "mobile": "11 90000-0002"},
                          headers=admin_headers).json()
    template = client.post("/api/templates", json={"name": "t", "body": "Olá {{ contact.first_name }}!"},
                           headers=admin_headers).json()
    response = client.post("/api/sms", json={"contact_id": contact["id"], "template_id": template["id"]},
                           headers=admin_headers)
    assert response.status_code == 202
    assert response.json()["body"] == "Olá João!"
    assert sandbox.ledger()["messages"][0]["text"] == "Olá João!"


@pytest.mark.parametrize(
    "body,fragment",
    [
        ({"to": "abc", "body": "x"}, "'abc'"),
        ({"to": "11 90000-0001", "body": "   "}, "empty"),
        ({"to": "11 90000-0001", "body": "x" * 1601}, "1600"),
        ({"to": "11 90000-0001"}, "exactly one of 'body' and 'template_id'"),
        ({"body": "x"}, "exactly one of 'to' and 'contact_id'"),
    ],
)
def test_bad_sends_are_clear_and_store_nothing(client, admin_headers, channel, sandbox, body, fragment):
    response = client.post("/api/sms", json=body, headers=admin_headers)
    assert response.status_code == 422, response.text
    assert fragment in response.json()["error"]["message"]
    assert client.get("/api/messages", headers=admin_headers).json() == []
    assert sandbox.ledger()["messages"] == []


def test_a_send_to_an_opted_out_contact_is_refused_and_stores_nothing(client, admin_headers, channel, sandbox):
    """A single send is someone asking for this one message: they hear no, instead of a row quietly
    stored blocked. (A campaign records its opted-out recipients: test_bulk_preview_… below.)"""
    contact = client.post("/api/contacts", json={"name": "Ana", "mobile": "11 90000-0003", "opt_out_sms": True},
                          headers=admin_headers).json()
    for body in ({"contact_id": contact["id"], "body": "Oferta"}, {"to": "(11) 90000-0003", "body": "Oferta"}):
        response = client.post("/api/sms", json=body, headers=admin_headers)
        assert response.status_code == 409, response.text
        error = response.json()["error"]
        assert (error["code"], error["channel_kind"], error["field"]) == ("opted_out", "sms", "channel_id")
        assert "Ana opted out of SMS; nothing was stored" in error["message"]
    assert client.get("/api/messages", headers=admin_headers).json() == []
    assert client.get("/api/conversations", params={"status": "any"}, headers=admin_headers).json()["items"] == []
    assert sandbox.ledger()["messages"] == []


def test_no_channel_is_a_clear_error(client, admin_headers):
    response = client.post("/api/sms", json={"to": "11 90000-0001", "body": "x"}, headers=admin_headers)
    assert response.status_code == 404
    assert "no active SMS channel" in response.json()["error"]["message"]


def test_bulk_preview_estimates_then_confirm_sends(client, admin_headers, channel, sandbox):
    for i, name in enumerate(["Ana Lima", "Bruno Sá", "Carla Dias"], start=1):
        client.post("/api/contacts", json={"name": name, "mobile": f"11 90000-000{i}"}, headers=admin_headers)
    no_phone = client.post("/api/contacts", json={"name": "Sem Telefone"}, headers=admin_headers).json()
    client.post("/api/contacts", json={"name": "Diego Opt", "mobile": "11 90000-0009", "opt_out_sms": True},
                headers=admin_headers)
    request = {"name": "Cobrança", "body": "Oi {{ contact.first_name }}, regularize hoje.", "search": ""}

    preview = client.post("/api/sms/bulk", json=request, headers=admin_headers)
    assert preview.status_code == 200, preview.text
    plan = preview.json()
    assert (plan["recipients"], plan["sendable"], plan["opted_out"]) == (5, 3, 1)
    assert plan["rejected"] == [{"where": f"contact {no_phone['id']}", "reason": "has no phone or mobile"}]
    assert plan["segments"] == 3 and plan["estimated_cost"] == "0.21"
    assert plan["balance"] == "9396.84" and plan["enough_balance"] is True
    assert plan["preview"][0]["text"] == "Oi Ana, regularize hoje."
    assert plan["campaign_id"] is None and sandbox.ledger()["messages"] == []

    started = client.post("/api/sms/bulk", json=request | {"confirm": True}, headers=admin_headers).json()
    progress = client.get(f"/api/campaigns/{started['campaign_id']}", headers=admin_headers).json()
    assert progress["by_status"] == {"sent": 3, "blocked": 1}
    assert sorted(m["text"] for m in sandbox.ledger()["messages"]) == [
        "Oi Ana, regularize hoje.", "Oi Bruno, regularize hoje.", "Oi Carla, regularize hoje."]


def test_bulk_from_csv_with_bad_lines(client, admin_headers, channel, sandbox):
    csv_text = "telefone;nome\n11 90000-0001;Ana\nnão é telefone;Bruno\n(11) 90000-0002;Carla\n"
    plan = client.post("/api/sms/bulk", json={"body": "Oi {{ contact.name }}", "csv": csv_text},
                       headers=admin_headers).json()
    assert plan["sendable"] == 2
    assert plan["rejected"][0]["where"] == "line 3" and "não é telefone" in plan["rejected"][0]["reason"]


def test_bulk_from_csv_uses_the_contact_a_number_belongs_to(client, admin_headers, channel, sandbox):
    client.post("/api/contacts", json={"name": "Ana Souza", "mobile": "(11) 90000-0001"}, headers=admin_headers)
    csv_text = "telefone;nome\n5511900000001;Aninha\n11 90000-0002;Carla\n"  # Ana's mobile, written another way
    plan = client.post("/api/sms/bulk", json={"body": "Oi {{ contact.name }}", "csv": csv_text},
                       headers=admin_headers).json()
    assert [p["text"] for p in plan["preview"]] == ["Oi Ana Souza", "Oi Carla"]


def test_bulk_with_a_template_typo_fails_before_storing(client, admin_headers, channel, sandbox):
    client.post("/api/contacts", json={"name": "Ana", "mobile": "11 90000-0001"}, headers=admin_headers)
    response = client.post("/api/sms/bulk", json={"body": "Oi {{ contact.nome }}", "search": "", "confirm": True},
                           headers=admin_headers)
    assert response.status_code == 422  # once, for the whole send: not once per recipient
    assert "unknown variable 'contact.nome'" in response.json()["error"]["message"]
    assert client.get("/api/campaigns", headers=admin_headers).json()["items"] == []
    assert sandbox.ledger()["messages"] == []


def test_agents_cannot_bulk_send(client, agent_headers, channel):
    response = client.post("/api/sms/bulk", json={"body": "x", "search": ""}, headers=agent_headers)
    assert response.status_code == 403


def test_a_field_named_body_is_named_in_the_error(client, admin_headers, channel):
    response = client.post("/api/sms", json={"to": "11 90000-0001", "body": 12}, headers=admin_headers)
    assert response.status_code == 422
    assert [p["field"] for p in response.json()["error"]["problems"]] == ["body"]
