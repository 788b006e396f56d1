"""Every action family writes its audit entry in the change's own transaction, naming who acted
(a user in the UI, an API token, a campaign, the system) and from where; a refused change writes
none. Entries are append-only: the database refuses to change or delete one."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from contact_center.audit.models import AuditEntry
from contact_center.auth.models import ApiToken
from contact_center.contacts.csv_io import export_contacts
from contact_center.providers.kolmeya.sandbox import SandboxServer


@pytest.fixture
def sandbox():
    with SandboxServer("sandbox-token", status_delay_seconds=30) as server:
        yield server


@pytest.fixture
def admin(make_user):
    user, token = make_user("root", "admin")
    return user, {"Authorization": f"Bearer {token}"}


def entries(db, action: str | None = None) -> list[AuditEntry]:
    db.expire_all()
    query = select(AuditEntry).order_by(AuditEntry.id)
    if action:
        query = query.where(AuditEntry.action == action)
    return list(db.scalars(query))


def count(db) -> int:
    return db.scalar(select(func.count()).select_from(AuditEntry))


def token_id_of(db, user_id: int) -> int:
    return db.scalar(select(ApiToken.id).where(ApiToken.user_id == user_id, ApiToken.name == "tests"))


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


# --- logins ------------------------------------------------------------------------------------------

def test_login_failed_login_and_logout_are_recorded_with_the_address(client, db, admin):
    user, _ = admin
    form = csrf_of(client.get("/login").text)
    client.post("/login", data={"username": "root", "password": "wrong password", "csrf_token": form})
    [failed] = entries(db, "auth.login_failed")
    assert (failed.actor_kind, failed.actor_id, failed.subject_id) == ("system", None, user.id)
    assert failed.client_address == "testclient" and failed.detail["username"] == "root"
    assert "wrong password" not in str(failed.detail) + failed.summary

    client.post("/login", data={"username": "root", "password": "correct horse", "csrf_token": form})
    [login] = entries(db, "auth.login")
    assert (login.actor_kind, login.actor_id, login.via, login.client_address) == ("user", user.id, "ui", "testclient")

    page = client.get("/inbox").text
    client.post("/logout", data={"csrf_token": re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)})
    [logout] = entries(db, "auth.logout")
    assert (logout.actor_kind, logout.actor_id, logout.via) == ("user", user.id, "ui")


# --- tokens and users --------------------------------------------------------------------------------

def test_token_create_and_revoke_name_the_token_that_acted(client, db, admin):
    user, headers = admin
    created = client.post("/api/tokens", json={"name": "ERP"}, headers=headers).json()
    assert client.delete(f"/api/tokens/{created['id']}", headers=headers).status_code == 200
    create, revoke = entries(db, "token.create")[-1], entries(db, "token.revoke")[0]
    for entry in (create, revoke):
        assert (entry.actor_kind, entry.actor_id, entry.token_id) == ("token", user.id, token_id_of(db, user.id))
        assert entry.subject_id == created["id"] and entry.detail["name"] == "ERP" and entry.via == "api"
        assert created["token"] not in str(entry.detail)  # the clear token is never kept

    before = count(db)
    assert client.post("/api/tokens", json={"name": "  "}, headers=headers).status_code == 422
    assert count(db) == before


def test_user_create_and_role_change_are_recorded_without_the_password(client, db, admin):
    _, headers = admin
    created = client.post("/api/users", json={"username": "bia", "name": "Bia", "password": "segredo-da-bia",
                                              "role": "agent"}, headers=headers).json()
    client.patch(f"/api/users/{created['id']}", json={"role": "supervisor", "password": "outro-segredo"},
                 headers=headers)
    [create] = entries(db, "user.create")[-1:]
    [change] = entries(db, "user.update")
    assert create.subject_id == change.subject_id == created["id"] and create.detail["role"] == "agent"
    assert change.detail["role"] == "agent → supervisor" and change.detail["password"] == "changed"
    assert "segredo" not in str([e.detail for e in entries(db)]) + "".join(e.summary for e in entries(db))

    before = count(db)
    assert client.patch(f"/api/users/{created['id']}", json={"role": "king"}, headers=headers).status_code == 422
    assert client.post("/api/users", json={"username": "bia", "name": "B", "password": "long enough"},
                       headers=headers).status_code == 409
    assert count(db) == before


# --- channels, templates -----------------------------------------------------------------------------

def test_channel_and_template_changes_are_recorded_and_refusals_are_not(client, db, admin, sandbox):
    user, headers = admin
    channel = client.post("/api/channels", json={"name": "SMS", "provider": "kolmeya_sandbox",
                                                 "credentials": {"token": "sandbox-token"},
                                                 "settings": {"base_url": sandbox.base_url}}, headers=headers).json()
    template = client.post("/api/templates", json={"name": "Aviso", "body": "Olá {{ contact.first_name }}"},
                           headers=headers).json()
    [channel_entry], [template_entry] = entries(db, "channel.create"), entries(db, "template.create")
    assert channel_entry.subject_id == channel["id"] and template_entry.subject_id == template["id"]
    assert {channel_entry.actor_kind, template_entry.actor_kind} == {"token"}
    assert "sandbox-token" not in str(channel_entry.detail)

    before = count(db)
    assert client.post("/api/channels", json={"name": "X", "provider": "nope"}, headers=headers).status_code == 422
    assert client.post("/api/templates", json={"name": "Ruim", "body": "{{ contact.nope }"},
                       headers=headers).status_code == 422
    assert count(db) == before


# --- sends and campaigns -----------------------------------------------------------------------------

@pytest.fixture
def channel(client, admin, sandbox):
    return client.post("/api/channels", json={"name": "SMS SANDBOX", "provider": "kolmeya_sandbox",
                                              "credentials": {"token": "sandbox-token"},
                                              "settings": {"base_url": sandbox.base_url}},
                       headers=admin[1]).json()


def test_a_send_by_token_names_the_token_and_a_refused_send_writes_nothing(client, db, admin, channel):
    user, headers = admin
    sent = client.post("/api/sms", json={"to": "(11) 90000-0001", "body": "Sua fatura venceu"}, headers=headers)
    assert sent.status_code == 202
    [entry] = entries(db, "sms.send")
    assert (entry.subject_type, entry.subject_id) == ("message", sent.json()["id"])
    assert (entry.actor_kind, entry.actor_id, entry.token_id) == ("token", user.id, token_id_of(db, user.id))
    assert entry.detail["to"] == "+5511900000001"

    before = count(db)
    assert client.post("/api/sms", json={"to": "abc", "body": "x"}, headers=headers).status_code == 422
    assert count(db) == before


def test_an_operators_reply_in_the_ui_names_the_user_and_the_address(client, db, make_user, channel, sms,
                                                                     customer_writes):
    user, _ = make_user("ana", "agent")
    conversation = customer_writes(sms, "+55 11 90000-0003", "Oi")
    db.commit()
    form = csrf_of(client.get("/login").text)
    client.post("/login", data={"username": "ana", "password": "correct horse", "csrf_token": form})
    page = client.get("/inbox").text
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    answer = client.post(f"/api/conversations/{conversation.id}/messages", json={"body": "Olá, como posso ajudar?"},
                         headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 202, answer.text
    [entry] = entries(db, "sms.send")
    assert (entry.actor_kind, entry.actor_id, entry.token_id, entry.via) == ("user", user.id, None, "ui")
    assert entry.client_address == "testclient"


def test_a_campaign_writes_one_entry_for_its_start_not_one_per_message(client, db, admin, channel):
    user, headers = admin
    for i in range(1, 6):
        client.post("/api/contacts", json={"name": f"Cliente {i}", "mobile": f"11 90000-000{i}"}, headers=headers)
    window = {"days": {d: {"start": "00:00", "end": "24:00"} for d in ("mon", "tue", "wed", "thu", "fri", "sat",
                                                                        "sun")}}
    campaign = client.post("/api/campaigns", json={"name": "Dezembro", "channel_id": channel["id"], "body": "Oi",
                                                   "search": "", "send_window": window}, headers=headers).json()
    assert client.post(f"/api/campaigns/{campaign['id']}/start", headers=headers).status_code == 200
    [start] = entries(db, "campaign.start")
    assert (start.subject_id, start.actor_kind, start.actor_id) == (campaign["id"], "token", user.id)
    assert entries(db, "sms.send") == []  # five messages went, each counted on the campaign, none in the log

    before = count(db)
    assert client.post(f"/api/campaigns/{campaign['id']}/resume", headers=headers).status_code == 409
    assert count(db) == before


# --- contacts, opt-outs, exports ---------------------------------------------------------------------

def test_contact_edits_name_the_fields_and_opt_outs_have_entries_of_their_own(client, db, admin):
    _, headers = admin
    contact = client.post("/api/contacts", json={"name": "Maria Souza", "mobile": "11 90000-0007"},
                          headers=headers).json()
    client.patch(f"/api/contacts/{contact['id']}", json={"email": "maria@example.com", "opt_out_sms": True},
                 headers=headers)
    [create], [update], [opt_out] = (entries(db, a) for a in ("contact.create", "contact.update",
                                                              "contact.opt_out_sms"))
    assert {create.subject_id, update.subject_id, opt_out.subject_id} == {contact["id"]}
    assert update.detail == {"fields": ["email"]}  # which fields, not their values
    assert "maria@example.com" not in update.summary

    before = count(db)
    assert client.patch(f"/api/contacts/{contact['id']}", json={"mobile": "abc"}, headers=headers).status_code == 422
    assert count(db) == before
    client.patch(f"/api/contacts/{contact['id']}", json={"opt_out_sms": False}, headers=headers)
    assert len(entries(db, "contact.opt_out_sms.cleared")) == 1
    assert client.delete(f"/api/contacts/{contact['id']}", headers=headers).status_code == 204
    assert len(entries(db, "contact.delete")) == 1


def test_contact_and_recipient_exports_are_recorded(client, db, admin, channel):
    _, headers = admin
    client.post("/api/contacts", json={"name": "Maria Souza", "mobile": "11 90000-0007"}, headers=headers)
    written = export_contacts(db, io.StringIO(), search="Maria")
    [entry] = entries(db, "contact.export")
    assert entry.detail == {"search": "Maria", "count": written} and written == 1
    export_contacts(db, io.StringIO(), tags_=["vip"])
    assert entries(db, "contact.export")[-1].detail == {"search": None, "tags": ["vip"], "count": 0}

    campaign = client.post("/api/campaigns", json={"name": "C", "channel_id": channel["id"], "body": "Oi",
                                                   "search": ""}, headers=headers).json()
    assert client.get(f"/api/campaigns/{campaign['id']}/recipients.csv", headers=headers).status_code == 200
    assert [e.subject_id for e in entries(db, "campaign.export")] == [campaign["id"]]


# --- append-only -------------------------------------------------------------------------------------

def test_the_database_refuses_to_change_or_delete_an_entry(client, db, admin):
    client.post("/api/tokens", json={"name": "ERP"}, headers=admin[1])
    entry = entries(db, "token.create")[-1]
    for statement in ("UPDATE audit_log SET action = 'token.nothing' WHERE id = :id",
                      "UPDATE audit_log SET detail = '{}' WHERE id = :id",
                      "UPDATE audit_log SET actor_id = NULL, redacted_at = at WHERE id = :id",
                      "DELETE FROM audit_log WHERE id = :id"):
        with pytest.raises(DBAPIError, match="append-only"):
            with db.begin_nested():
                db.execute(text(statement), {"id": entry.id})
    assert entries(db, "token.create")[-1].detail == entry.detail

    # The one update let through: an erasure's redaction, which stamps the entry.
    with db.begin_nested():
        db.execute(text("UPDATE audit_log SET detail = '{\"name\": \"[apagado]\"}', redacted_at = at WHERE id = :id"),
                   {"id": entry.id})
    redacted = entries(db, "token.create")[-1]
    assert redacted.detail == {"name": "[apagado]"} and redacted.redacted_at is not None


def test_the_api_has_no_way_to_change_or_delete_an_entry(client, db, admin):
    _, headers = admin
    client.post("/api/tokens", json={"name": "ERP"}, headers=headers)
    entry_id = entries(db)[-1].id
    before = [(e.id, e.action, e.detail) for e in entries(db)]
    for path in ("/api/audit", f"/api/audit/{entry_id}", "/api/audit.csv"):
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            response = client.request(method, path, headers=headers, json={"action": "x"})
            assert response.status_code == 405, (method, path, response.status_code)
    assert [(e.id, e.action, e.detail) for e in entries(db)] == before
    paths = client.get("/openapi.json").json()["paths"]
    assert {method for path, item in paths.items() if path.startswith("/api/audit") for method in item} == {"get"}
