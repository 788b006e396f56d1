"""The inbox REST API with API tokens: what each role gets, and clear 4xx answers that change nothing."""

from __future__ import annotations

import pytest

from contact_center.auth import service as auth_service
from contact_center.providers.kolmeya.sandbox import SandboxServer


@pytest.fixture
def sandbox():
    with SandboxServer("sandbox-token", status_delay_seconds=30) as server:
        yield server


@pytest.fixture
def team(db, people):
    """API headers for ana and bruno (agents), sofia (supervisor) and root (admin)."""
    headers = {name: {"Authorization": f"Bearer {auth_service.create_token(db, user, 'tests')[1]}"}
               for name, user in people.items()}
    db.commit()
    return headers


@pytest.fixture
def conversation_id(client, team, sandbox):
    client.post("/api/channels", json={
        "name": "SMS SANDBOX", "provider": "kolmeya_sandbox", "credentials": {"token": "sandbox-token"},
        "settings": {"base_url": sandbox.base_url}}, headers=team["root"]).raise_for_status()
    sent = client.post("/api/sms", json={"to": "(11) 90000-0001", "body": "Sua fatura venceu"}, headers=team["root"])
    assert sent.status_code == 202, sent.text
    return sent.json()["conversation_id"]


def test_every_inbox_route_needs_a_login(client, conversation_id):
    for method, path in (("get", "/api/conversations"), ("get", f"/api/conversations/{conversation_id}"),
                         ("post", f"/api/conversations/{conversation_id}/take"), ("get", "/api/quick-replies")):
        response = getattr(client, method)(path)
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "not_authenticated"


def test_list_and_take(client, team, conversation_id):
    page = client.get("/api/conversations", headers=team["ana"]).json()
    assert page["total"] == 1 and page["next_cursor"] is None
    item = page["items"][0]
    assert (item["status"], item["phone_e164"], item["last_body"], item["channel_name"]) == (
        "new", "+5511900000001", "Sua fatura venceu", "SMS SANDBOX")

    taken = client.post(f"/api/conversations/{conversation_id}/take", headers=team["ana"])
    assert taken.status_code == 200, taken.text
    assert (taken.json()["status"], taken.json()["assignee_name"]) == ("assigned", "Ana Lima")


def test_a_stale_take_is_a_409_naming_who_has_it(client, team, conversation_id):
    client.post(f"/api/conversations/{conversation_id}/take", headers=team["ana"]).raise_for_status()
    response = client.post(f"/api/conversations/{conversation_id}/take", headers=team["sofia"])
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "stale" and error["message"] == "Ana Lima is already handling this conversation"
    assert error["current"]["status"] == "assigned" and error["current"]["assignee_name"] == "Ana Lima"


def test_agents_get_403_on_someone_elses_conversation_and_it_stays_put(client, team, conversation_id):
    client.post(f"/api/conversations/{conversation_id}/take", headers=team["ana"]).raise_for_status()
    assert client.get("/api/conversations", headers=team["bruno"]).json()["total"] == 0
    for path in ("", "/timeline"):
        response = client.get(f"/api/conversations/{conversation_id}{path}", headers=team["bruno"])
        assert response.status_code == 403 and "Ana Lima is handling" in response.json()["error"]["message"]
    response = client.post(f"/api/conversations/{conversation_id}/messages", json={"body": "oi"},
                           headers=team["bruno"])
    assert response.status_code == 403
    assert client.get(f"/api/conversations/{conversation_id}", headers=team["ana"]).json()["assignee_name"] == "Ana Lima"


def test_send_from_the_inbox_goes_out(client, team, conversation_id, sandbox):
    response = client.post(f"/api/conversations/{conversation_id}/messages", json={"body": "Bom dia, Maria!"},
                           headers=team["bruno"])
    assert response.status_code == 202, response.text
    assert response.json()["status"] in ("queued", "sent")
    assert client.get(f"/api/conversations/{conversation_id}", headers=team["bruno"]).json()["assignee_name"] == "Bruno Dias"
    assert [m["text"] for m in sandbox.ledger()["messages"]] == ["Sua fatura venceu", "Bom dia, Maria!"]


def test_transfer_and_timeline(client, team, people, conversation_id):
    ids = {name: user.id for name, user in people.items()}
    assigned = client.post(f"/api/conversations/{conversation_id}/transfer", json={"assignee_id": ids["bruno"]},
                           headers=team["sofia"])
    assert assigned.status_code == 200 and assigned.json()["assignee_name"] == "Bruno Dias"
    passed = client.post(f"/api/conversations/{conversation_id}/transfer", json={"assignee_id": ids["ana"]},
                         headers=team["bruno"])
    assert passed.status_code == 204  # bruno no longer sees it
    timeline = client.get(f"/api/conversations/{conversation_id}/timeline", headers=team["ana"]).json()
    assert [(e["kind"], e.get("change") or e.get("body")) for e in timeline["entries"]] == [
        ("message", "Sua fatura venceu"), ("event", "assigned"), ("event", "transferred")]
    assert timeline["entries"][2]["previous_assignee_name"] == "Bruno Dias"


@pytest.mark.parametrize("path,body,status,field", [
    ("transfer", {"assignee_id": 999}, 422, "assignee_id"),
    ("transfer", {}, 422, "assignee_id"),
    ("messages", {"body": ""}, 422, "body"),
    ("messages", {"body": "x" * 1601}, 422, "body"),
    ("messages", {"body": "oi", "channel_id": 999}, 422, "channel_id"),
    ("contact", {"contact_id": 999}, 404, None),
    ("contact/new", {"name": "Maria", "mobile": "123"}, 422, "mobile"),
    ("render-template", {"template_id": 1}, 422, "template_id"),
])
def test_bad_input_is_a_clear_4xx_and_changes_nothing(client, team, conversation_id, path, body, status, field):
    before = client.get(f"/api/conversations/{conversation_id}/timeline", headers=team["sofia"]).json()
    response = client.post(f"/api/conversations/{conversation_id}/{path}", json=body, headers=team["sofia"])
    assert response.status_code == status, response.text
    error = response.json()["error"]
    if field:
        assert error.get("field") == field or error["message"].startswith(f"{field}:"), error
    assert client.get(f"/api/conversations/{conversation_id}/timeline", headers=team["sofia"]).json() == before
    assert client.get(f"/api/conversations/{conversation_id}", headers=team["sofia"]).json()["status"] == "new"


def test_unknown_conversation_is_404(client, team):
    response = client.post("/api/conversations/424242/take", headers=team["ana"])
    assert response.status_code == 404 and "424242" in response.json()["error"]["message"]


def test_bad_filters_are_422(client, team):
    for params in ({"view": "everyone"}, {"status": "closed"}, {"before": "garbage"}, {"limit": 0}):
        response = client.get("/api/conversations", params=params, headers=team["sofia"])
        assert response.status_code == 422, params


def test_quick_replies_are_managed_by_supervisors(client, team):
    body = {"title": "Horário", "body": "Atendemos de segunda a sexta, das 8h às 18h."}
    assert client.post("/api/quick-replies", json=body, headers=team["ana"]).status_code == 403
    created = client.post("/api/quick-replies", json=body, headers=team["sofia"])
    assert created.status_code == 201
    assert [r["title"] for r in client.get("/api/quick-replies", headers=team["ana"]).json()] == ["Horário"]
    assert client.delete(f"/api/quick-replies/{created.json()['id']}", headers=team["sofia"]).status_code == 204


# --- what the composer refuses --------------------------------------------------------------------


def _stored_messages(client, headers) -> list[str]:
    return [m["body"] for m in client.get("/api/messages", headers=headers).json()]


def test_writing_to_a_contact_who_opted_out_is_refused_and_changes_nothing(client, team, conversation_id, sandbox):
    contact = client.post("/api/contacts", json={"name": "Maria Souza", "mobile": "(11) 90000-0001",
                                                 "opt_out_sms": True}, headers=team["root"]).json()
    client.post(f"/api/conversations/{conversation_id}/contact", json={"contact_id": contact["id"]},
                headers=team["ana"]).raise_for_status()
    before = _stored_messages(client, team["root"])

    response = client.post(f"/api/conversations/{conversation_id}/messages", json={"body": "Bom dia, Maria!"},
                           headers=team["ana"])
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert (error["code"], error["channel_kind"]) == ("opted_out", "sms")
    assert "Maria Souza opted out of SMS; nothing was stored" in error["message"]
    assert _stored_messages(client, team["root"]) == before  # not even a blocked one
    conversation = client.get(f"/api/conversations/{conversation_id}", headers=team["ana"]).json()
    assert (conversation["status"], conversation["assignee_name"]) == ("new", None)  # writing did not take it
    assert [m["text"] for m in sandbox.ledger()["messages"]] == ["Sua fatura venceu"]

    client.patch(f"/api/conversations/{conversation_id}/contact", json={"opt_out_sms": False},
                 headers=team["ana"]).raise_for_status()
    again = client.post(f"/api/conversations/{conversation_id}/messages", json={"body": "Bom dia, Maria!"},
                        headers=team["ana"])
    assert again.status_code == 202, again.text


@pytest.mark.parametrize("body", ["", "   \n\t "])
def test_an_empty_message_is_refused_and_changes_nothing(client, team, conversation_id, body):
    before = _stored_messages(client, team["root"])
    response = client.post(f"/api/conversations/{conversation_id}/messages", json={"body": body},
                           headers=team["ana"])
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error.get("field") == "body" or [p["field"] for p in error["problems"]] == ["body"]
    assert _stored_messages(client, team["root"]) == before
    assert client.get(f"/api/conversations/{conversation_id}", headers=team["ana"]).json()["status"] == "new"
