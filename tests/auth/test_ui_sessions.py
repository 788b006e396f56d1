"""UI sessions are records: logging out, an admin, and a new password, role or deactivation end
them on the server, so a copy of the cookie stops working; API tokens are not sessions."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select, update

from contact_center.audit.models import AuditEntry
from contact_center.auth import service as auth_service
from contact_center.auth.models import UiSession, User
from contact_center.db import utcnow
from contact_center.web.session import COOKIE

PASSWORD = "correct horse"


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def browser(app) -> TestClient:
    """Another browser: its own cookie jar."""
    return TestClient(app)


def log_in(client: TestClient, username: str, password: str = PASSWORD) -> TestClient:
    token = csrf_of(client.get("/login").text)
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                           follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/inbox", response.text
    return client


def logged_in(client: TestClient) -> bool:
    page = client.get("/inbox", follow_redirects=False)
    assert page.status_code in (200, 303), page.status_code
    return page.status_code == 200


def copy_of(app, client: TestClient) -> TestClient:
    """A browser holding a copy of `client`'s session cookie (as a thief would)."""
    thief = browser(app)
    thief.cookies.set(COOKIE, client.cookies.get(COOKIE))
    return thief


def page_csrf(client: TestClient) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', client.get("/inbox").text).group(1)


def sessions_of(db, user_id: int) -> list[UiSession]:
    db.expire_all()
    return list(db.scalars(select(UiSession).where(UiSession.user_id == user_id).order_by(UiSession.id)))


def audit_actions(db, user_id: int) -> list[str]:
    """The user's login and session entries (not user.create and user.update)."""
    return list(db.scalars(select(AuditEntry.action).where(AuditEntry.subject_id == user_id,
                                                           AuditEntry.subject_type == "user",
                                                           AuditEntry.action.like("auth.%"))
                           .order_by(AuditEntry.id)))


@pytest.fixture
def ana(make_user):
    user, token = make_user("ana", "agent")
    return user, {"Authorization": f"Bearer {token}"}


# --- logging out -------------------------------------------------------------------------------------

def test_a_cookie_copied_before_logout_fails_after_it(app, client, db, ana):
    user, _ = ana
    log_in(client, "ana")
    thief = copy_of(app, client)
    assert logged_in(thief)  # the copy works while the session lives...
    assert thief.get("/api/conversations").status_code == 200

    response = client.post("/logout", data={"csrf_token": page_csrf(client)}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?bye=1"

    # ...and not after: the server ended the session, whatever cookie is presented.
    denied = thief.get("/inbox", follow_redirects=False)
    assert denied.status_code == 303 and denied.headers["location"].startswith("/login")
    assert thief.get("/api/conversations").status_code == 401
    [record] = sessions_of(db, user.id)
    assert record.end_reason == "logout" and record.ended_at is not None
    assert audit_actions(db, user.id) == ["auth.login", "auth.logout"]


def test_the_session_token_is_kept_only_as_a_hash(client, db, app, ana):
    user, _ = ana
    log_in(client, "ana")
    key = app.state.settings.effective_secret_key()
    cookie = URLSafeTimedSerializer(key, salt="contact-center.ui-session.2").loads(client.cookies.get(COOKIE))
    [record] = sessions_of(db, user.id)
    assert len(cookie["s"]) >= 40
    assert cookie["s"] not in (record.token_hash, record.user_agent, record.client_address)
    assert record.token_hash != cookie["s"] and len(record.token_hash) == 64


def test_a_cookie_from_before_the_session_records_is_not_a_session(app, db, ana):
    user, _ = ana
    # What the previous version signed: user id, CSRF token, password fingerprint.
    import hashlib

    key = app.state.settings.effective_secret_key()
    old = URLSafeTimedSerializer(key, salt="contact-center.ui-session").dumps(
        {"u": user.id, "c": "x" * 32, "f": hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]})
    visitor = browser(app)
    visitor.cookies.set(COOKIE, old)
    assert not logged_in(visitor)
    assert visitor.get("/api/conversations").status_code == 401


def test_an_expired_session_is_no_session(client, db, ana):
    user, _ = ana
    log_in(client, "ana")
    assert logged_in(client)
    db.execute(update(UiSession).where(UiSession.user_id == user.id)
               .values(expires_at=utcnow() - timedelta(seconds=1)))
    db.commit()
    assert not logged_in(client)


def test_the_visit_is_noted_at_most_once_a_minute(client, db, ana):
    user, _ = ana
    log_in(client, "ana")

    def seen_ago(seconds: int):
        at = utcnow() - timedelta(seconds=seconds)
        db.execute(update(UiSession).where(UiSession.user_id == user.id).values(last_seen_at=at))
        db.commit()
        return at

    recent = seen_ago(30)
    assert logged_in(client)
    assert sessions_of(db, user.id)[0].last_seen_at == recent  # no write for a visit within the minute
    stale = seen_ago(120)
    assert logged_in(client)
    assert sessions_of(db, user.id)[0].last_seen_at > stale + timedelta(seconds=100)


# --- an admin ends them -------------------------------------------------------------------------------

def test_an_admin_ends_a_users_sessions_over_the_api_and_their_tokens_keep_working(
        app, client, db, ana, admin_headers, supervisor_headers):
    user, ana_token = ana
    laptop, phone = log_in(browser(app), "ana"), log_in(browser(app), "ana")
    listed = client.get(f"/api/users/{user.id}/sessions", headers=admin_headers)
    assert listed.status_code == 200
    rows = listed.json()
    assert len(rows) == 2 and all(row["active"] and row["end_reason"] is None for row in rows)
    assert rows[0]["user_agent"] == "testclient" and rows[0]["client_address"] == "testclient"
    assert not any("token" in key for row in rows for key in row)

    # Only admins; an unknown user is a clear 404.
    assert client.delete(f"/api/users/{user.id}/sessions", headers=supervisor_headers).status_code == 403
    assert client.get(f"/api/users/{user.id}/sessions", headers=ana_token).status_code == 403
    assert logged_in(laptop)
    missing = client.delete("/api/users/999999/sessions", headers=admin_headers)
    assert missing.status_code == 404 and "999999" in missing.json()["error"]["message"]

    ended = client.delete(f"/api/users/{user.id}/sessions", headers=admin_headers)
    assert ended.status_code == 200 and ended.json() == {"user_id": user.id, "ended": 2}
    assert not logged_in(laptop) and not logged_in(phone)
    assert laptop.get("/api/conversations").status_code == 401
    assert client.get("/api/me", headers=ana_token).status_code == 200  # API tokens are not UI sessions

    assert client.get(f"/api/users/{user.id}/sessions", headers=admin_headers).json() == []
    history = client.get(f"/api/users/{user.id}/sessions", params={"include_ended": True},
                         headers=admin_headers).json()
    assert [row["end_reason"] for row in history] == ["ended_by_admin", "ended_by_admin"]
    assert client.delete(f"/api/users/{user.id}/sessions", headers=admin_headers).json()["ended"] == 0
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "auth.sessions_ended"))
    assert entry.subject_id == user.id and entry.via == "api" and entry.detail["reason"] == "ended_by_admin"
    assert sorted(entry.detail["sessions"]) == sorted(row["id"] for row in history)


def test_an_admin_ends_one_session(app, client, db, ana, make_user, admin_headers):
    user, _ = ana
    laptop, phone = log_in(browser(app), "ana"), log_in(browser(app), "ana")
    laptop_session, phone_session = sessions_of(db, user.id)
    other, _ = make_user("bruno")
    wrong_user = client.delete(f"/api/users/{other.id}/sessions/{laptop_session.id}", headers=admin_headers)
    assert wrong_user.status_code == 404 and logged_in(laptop)

    ended = client.delete(f"/api/users/{user.id}/sessions/{laptop_session.id}", headers=admin_headers)
    assert ended.status_code == 200
    assert ended.json()["active"] is False and ended.json()["end_reason"] == "ended_by_admin"
    assert not logged_in(laptop) and logged_in(phone)


def test_an_admin_ends_a_users_sessions_from_the_admin_page(app, client, db, ana, make_user):
    user, _ = ana
    make_user("root", "admin")
    agent = log_in(browser(app), "ana")
    log_in(client, "root")
    page = client.get("/admin/users").text
    assert f'action="/admin/users/{user.id}/sessions/end"' in page and "Encerrar sessões" in page

    forged = client.post(f"/admin/users/{user.id}/sessions/end", data={"csrf_token": "forged"})
    assert forged.status_code == 403 and logged_in(agent)

    done = client.post(f"/admin/users/{user.id}/sessions/end", data={"csrf_token": csrf_of(page)},
                       follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/admin/users?ok=sessions_ended"
    assert "Sessões encerradas." in client.get(done.headers["location"]).text
    assert not logged_in(agent)
    assert logged_in(client)  # the admin's own session was not touched
    client.get("/lang/en?next=/admin/users")
    assert "End sessions" in client.get("/admin/users").text


# --- changes to the user end them ---------------------------------------------------------------------

def test_a_new_password_a_new_role_and_deactivation_end_the_users_sessions(app, client, db, ana, admin_headers):
    user, ana_token = ana
    agent = log_in(browser(app), "ana")

    def patch(body: dict):
        response = client.patch(f"/api/users/{user.id}", json=body, headers=admin_headers)
        assert response.status_code == 200, response.text

    patch({"name": "Ana Lima"})  # a new name is no reason to log anyone out
    patch({"role": "agent"})  # nor the role she already has
    assert logged_in(agent)

    patch({"password": "another horse"})
    assert not logged_in(agent)
    agent = log_in(browser(app), "ana", "another horse")

    patch({"role": "supervisor"})
    assert not logged_in(agent)
    agent = log_in(browser(app), "ana", "another horse")

    refused = client.patch(f"/api/users/{user.id}", json={"role": "king"}, headers=admin_headers)
    assert refused.status_code == 422 and logged_in(agent)  # bad input changes nothing

    patch({"active": False})
    assert not logged_in(agent)
    assert [s.end_reason for s in sessions_of(db, user.id)] == ["password_changed", "role_changed", "deactivated"]
    ended = db.scalars(select(AuditEntry.detail).where(AuditEntry.action == "auth.sessions_ended")).all()
    assert [detail["reason"] for detail in ended] == ["password_changed", "role_changed", "deactivated"]
    assert client.get("/api/me", headers=ana_token).status_code == 401  # deactivated: the token too


def test_a_password_change_on_the_command_line_path_ends_sessions(app, db, ana):
    """The service every path calls (API, admin page, CLI): sessions end with the change."""
    user, _ = ana
    agent = log_in(browser(app), "ana")
    auth_service.update_user(db, db.get(User, user.id), password="another horse", via="cli")
    db.commit()
    assert not logged_in(agent)
    assert db.scalar(select(AuditEntry.via).where(AuditEntry.action == "auth.sessions_ended")) == "cli"


def test_the_admin_page_ends_sessions_on_a_new_role_or_password(app, client, db, ana, make_user):
    user, _ = ana
    make_user("root", "admin")
    log_in(client, "root")
    agent = log_in(browser(app), "ana")
    form = {"csrf_token": csrf_of(client.get("/admin/users").text), "name": "Ana", "role": "agent", "active": "1"}
    assert client.post(f"/admin/users/{user.id}", data=form, follow_redirects=False).status_code == 303
    assert logged_in(agent)  # the form sends every field; only real changes count
    client.post(f"/admin/users/{user.id}", data={**form, "role": "supervisor"}, follow_redirects=False)
    assert not logged_in(agent)
    agent = log_in(browser(app), "ana")
    client.post(f"/admin/users/{user.id}", data={**form, "password": "another horse"}, follow_redirects=False)
    assert not logged_in(agent)


def test_an_admin_changing_their_own_password_keeps_this_session_and_ends_the_others(app, client, db, make_user):
    root, _ = make_user("root", "admin")
    log_in(client, "root")
    other_browser = log_in(browser(app), "root")
    form = {"csrf_token": csrf_of(client.get("/admin/users").text), "name": "Root", "role": "admin",
            "active": "1", "password": "another horse"}
    response = client.post(f"/admin/users/{root.id}", data=form, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/admin/users?ok=saved"
    assert logged_in(client)
    assert not logged_in(other_browser)
    # The button on one's own row ends the other sessions too, never the one in use.
    other_browser = log_in(browser(app), "root", "another horse")
    page = client.get("/admin/users").text
    assert "Encerrar outras sessões" in page
    client.post(f"/admin/users/{root.id}/sessions/end", data={"csrf_token": csrf_of(page)})
    assert logged_in(client) and not logged_in(other_browser)


# --- the first run's password file --------------------------------------------------------------------

def test_a_new_password_for_the_first_admin_deletes_its_password_file(client, db, settings, make_user):
    admin, path = auth_service.ensure_first_admin(db, settings.data_dir)
    _, token = auth_service.create_token(db, admin, "tests")
    db.commit()
    headers = {"Authorization": f"Bearer {token}"}
    other, _ = make_user("bruno")
    assert client.patch(f"/api/users/{admin.id}", json={"name": "Chefe"}, headers=headers).status_code == 200
    assert client.patch(f"/api/users/{other.id}", json={"password": "bruno's horse"},
                        headers=headers).status_code == 200
    assert path.exists()  # not the admin's password yet
    assert client.patch(f"/api/users/{admin.id}", json={"password": "short"}, headers=headers).status_code == 422
    assert path.exists()  # refused: the file still holds the password that works
    assert client.patch(f"/api/users/{admin.id}", json={"password": "the admin's horse"},
                        headers=headers).status_code == 200
    assert not path.exists()
