"""The UI over HTTP: sessions, CSRF, roles, escaping, languages, admin forms."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from contact_center.auth import service as auth_service
from contact_center.auth.models import User
from contact_center.inbox.models import Conversation
from contact_center.translations import catalog, is_key
from contact_center.web.session import COOKIE

XSS = "<img src=x onerror=alert(1)>"


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def login(client, username: str, password: str = "correct horse"):
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token,
                                       "next": "/inbox"}, follow_redirects=False)


def page_csrf(client) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', client.get("/inbox").text).group(1)


@pytest.fixture
def ana(make_user):
    return make_user("ana", "agent")[0]


@pytest.fixture
def sofia(make_user):
    return make_user("sofia", "supervisor")[0]


# --- sessions and CSRF -------------------------------------------------------------------------------

def test_pages_send_you_to_the_login_and_back(client, ana):
    response = client.get("/inbox?status=done", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/inbox%3Fstatus%3Ddone"
    assert client.get("/", follow_redirects=False).headers["location"].startswith("/login")
    logged = login(client, "ana")
    assert logged.status_code == 303 and logged.headers["location"] == "/inbox"
    page = client.get("/inbox")
    assert page.status_code == 200 and "Ana" in page.text


def test_login_needs_the_forms_csrf_token(client, ana):
    client.get("/login")
    response = client.post("/login", data={"username": "ana", "password": "correct horse", "csrf_token": "forged"},
                           follow_redirects=False)
    assert response.status_code == 403 and response.json()["error"]["code"] == "csrf_failed"
    assert client.get("/inbox", follow_redirects=False).status_code == 303  # not logged in


def test_a_wrong_password_says_so_and_logs_nobody_in(client, ana):
    response = login(client, "ana", "wrong horse")
    assert response.status_code == 401 and "Usuário ou senha incorretos." in response.text
    assert client.get("/inbox", follow_redirects=False).status_code == 303


def test_next_never_leaves_the_site(client, ana):
    for target in ("//evil.example/x", "https://evil.example", "/\\evil.example"):
        client.cookies.clear()
        token = csrf_of(client.get("/login").text)
        response = client.post("/login", data={"username": "ana", "password": "correct horse", "csrf_token": token,
                                               "next": target}, follow_redirects=False)
        assert response.headers["location"] == "/inbox", target


def test_a_tampered_cookie_is_no_session(client, ana):
    login(client, "ana")
    value = client.cookies.get(COOKIE)
    client.cookies.set(COOKIE, value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert client.get("/inbox", follow_redirects=False).status_code == 303


def test_changing_the_password_ends_existing_sessions(client, db, ana):
    login(client, "ana")
    assert client.get("/inbox", follow_redirects=False).status_code == 200
    auth_service.update_user(db, db.get(User, ana.id), password="another horse")
    db.commit()
    assert client.get("/inbox", follow_redirects=False).status_code == 303


def test_logout_needs_csrf_and_ends_the_session(client, ana):
    login(client, "ana")
    assert client.post("/logout", data={"csrf_token": "nope"}).status_code == 403
    assert client.get("/inbox", follow_redirects=False).status_code == 200
    response = client.post("/logout", data={"csrf_token": page_csrf(client)}, follow_redirects=False)
    assert response.headers["location"] == "/login?bye=1"
    assert client.get("/inbox", follow_redirects=False).status_code == 303


def test_the_api_with_the_cookie_needs_the_csrf_header(client, db, ana, sms, customer_writes):
    conversation_id = customer_writes(sms, "+55 11 90000-0001", "Oi").id
    login(client, "ana")
    refused = client.post(f"/api/conversations/{conversation_id}/take")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    assert db.get(Conversation, conversation_id).status == "new"
    taken = client.post(f"/api/conversations/{conversation_id}/take", headers={"X-CSRF-Token": page_csrf(client)})
    assert taken.status_code == 200 and taken.json()["status"] == "assigned"
    # reading needs no token
    assert client.get(f"/api/conversations/{conversation_id}").status_code == 200


def test_pages_forbid_inline_script_and_framing(client, ana):
    login(client, "ana")
    headers = client.get("/inbox").headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"


# --- what operators see ---------------------------------------------------------------------------------

def test_customer_text_and_names_are_rendered_as_text(client, db, sofia, sms, customer_writes):
    conversation_id = customer_writes(sms, "+55 11 90000-0001", XSS).id
    conversation = db.get(Conversation, conversation_id)
    from contact_center.contacts import service as contacts

    contact = contacts.create_contact(db, {"name": '"><script>alert(2)</script>', "mobile": "+55 11 90000-0001"})
    conversation.contact_id = contact.id
    db.commit()
    login(client, "sofia")
    for path in (f"/inbox/{conversation_id}", "/inbox", f"/inbox/fragments/row/{conversation_id}",
                 f"/inbox/{conversation_id}/fragments/timeline", f"/inbox/{conversation_id}/fragments/contact",
                 f"/inbox/{conversation_id}/fragments/header"):
        response = client.get(path)
        assert response.status_code == 200, path
        html = response.text
        assert "<img src=x" not in html and "<script>alert" not in html, path
        # ...and the text is there, escaped: a fragment that left it out would prove nothing.
        assert "&lt;img src=x" in html or "&lt;script&gt;alert(2)" in html, path
    page = client.get(f"/inbox/{conversation_id}").text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&#34;&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in page


def test_an_agent_gets_a_clear_page_for_someone_elses_conversation(client, db, make_user, ana, sms, customer_writes):
    from contact_center.inbox import workflow

    bruno = make_user("bruno", "agent")[0]
    conversation_id = customer_writes(sms, "+55 11 90000-0001", "Oi").id
    workflow.take(db, conversation_id, db.get(User, bruno.id))
    db.commit()
    login(client, "ana")
    page = client.get(f"/inbox/{conversation_id}", headers={"Accept": "text/html"})
    assert page.status_code == 403 and "a conversa está com outro operador" in page.text
    assert f'id="row-{conversation_id}"' not in client.get("/inbox").text
    assert client.get(f"/inbox/fragments/row/{conversation_id}").status_code == 204
    assert client.get("/inbox/999999", headers={"Accept": "text/html"}).status_code == 404


def test_filters_and_bad_filters(client, sofia, sms, customer_writes):
    first = customer_writes(sms, "+55 11 90000-0001", "Oi").id
    customer_writes(sms, "+55 21 90000-0002", "Olá")
    login(client, "sofia")
    page = client.get("/inbox", params={"q": "11 90000-0001"}).text
    assert f'id="row-{first}"' in page and page.count('data-activity=') == 1
    assert client.get("/inbox", params={"status": "closed"}, headers={"Accept": "text/html"}).status_code == 422
    assert client.get("/inbox", params={"channel": "abc"}).status_code == 422
    assert client.get(f"/inbox/fragments/row/{first}", params={"status": "done"}).status_code == 204
    counts = client.get("/inbox/counts", params={"view": "unassigned"}).json()
    assert counts == {"unread": 2, "total": 2}


def test_english_on_request(client, ana):
    login(client, "ana")
    assert "Caixa de entrada" in client.get("/inbox").text
    client.get("/lang/en?next=/inbox")
    page = client.get("/inbox").text
    assert "Inbox" in page and "Caixa de entrada" not in page and '<html lang="en">' in page
    client.get("/lang/klingon?next=/inbox")
    assert '<html lang="en">' in client.get("/inbox").text


def test_every_portuguese_text_has_an_english_one():
    pt, en = catalog("pt-BR"), catalog("en")
    missing = sorted(key for key in pt if is_key(key) and key not in en)
    assert missing == []
    placeholders = re.compile(r"\{(\w+)\}")
    for key, text in pt.items():
        if is_key(key) and "{{" not in text:
            assert set(placeholders.findall(text)) == set(placeholders.findall(en[key])), key


def test_unread_messages_count_in_the_header(client, sofia, sms, customer_writes):
    customer_writes(sms, "+55 11 90000-0001", "1")
    customer_writes(sms, "+55 11 90000-0001", "2")
    login(client, "sofia")
    page = client.get("/inbox").text
    assert 'id="unread-badge" data-count="2"' in page and "<title>(2) Contact Center</title>" in page


# --- admin pages -------------------------------------------------------------------------------------------

def test_admin_pages_are_for_admins(client, ana):
    login(client, "ana")
    assert client.get("/admin/users", headers={"Accept": "text/html"}).status_code == 403
    assert client.get("/admin/quick-replies", headers={"Accept": "text/html"}).status_code == 403


def test_an_admin_creates_an_operator_and_bad_input_creates_nothing(client, db, make_user):
    make_user("root", "admin")
    login(client, "root")
    token = csrf_of(client.get("/admin/users").text)
    bad = client.post("/admin/users", data={"csrf_token": token, "username": "joao", "name": "João Silva",
                                            "password": "short", "role": "agent"})
    assert bad.status_code == 422 and "a senha deve ter pelo menos 8 caracteres" in bad.text
    assert db.scalar(select(User.id).where(User.username == "joao")) is None
    made = client.post("/admin/users", data={"csrf_token": token, "username": "joao", "name": "João Silva",
                                             "password": "long enough", "role": "supervisor"}, follow_redirects=False)
    assert made.status_code == 303 and made.headers["location"] == "/admin/users?ok=created"
    assert db.scalar(select(User.role).where(User.username == "joao")) == "supervisor"
    forged = client.post("/admin/users", data={"csrf_token": "x", "username": "eve", "name": "Eve",
                                               "password": "long enough"})
    assert forged.status_code == 403 and db.scalar(select(User.id).where(User.username == "eve")) is None


def test_a_supervisor_manages_quick_replies(client, db, sofia):
    login(client, "sofia")
    token = csrf_of(client.get("/admin/quick-replies").text)
    response = client.post("/admin/quick-replies", data={"csrf_token": token, "title": "Horário",
                                                         "body": "Das 8h às 18h"}, follow_redirects=False)
    assert response.status_code == 303
    assert "Das 8h às 18h" in client.get("/admin/quick-replies").text
