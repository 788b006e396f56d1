"""Wrong passwords are throttled per user name and per client address: the 11th in a minute gets
429 with Retry-After, without the password being checked; failures are rows and audit entries."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select, update

from contact_center.audit.models import AuditEntry
from contact_center.auth.models import LoginFailure
from contact_center.db import utcnow

PASSWORD = "correct horse"


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def from_address(app, address: str) -> TestClient:
    """A browser at `address`."""
    return TestClient(app, client=(address, 50000))


def attempt(client, username: str, password: str):
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token,
                                       "next": "/inbox"}, follow_redirects=False)


def failures(db, **where) -> int:
    db.expire_all()
    query = select(func.count()).select_from(LoginFailure)
    for column, value in where.items():
        query = query.where(getattr(LoginFailure, column) == value)
    return db.scalar(query)


def age_failures(db, seconds: int) -> None:
    """Move every recorded failure `seconds` into the past (instead of waiting)."""
    db.expire_all()
    for failure in db.scalars(select(LoginFailure)):
        failure.at -= timedelta(seconds=seconds)
    db.commit()


def date_failures(db, seconds_ago: int) -> None:
    """Every recorded failure happened `seconds_ago`: a wait that does not depend on how fast the
    attempts ran on a loaded machine."""
    db.execute(update(LoginFailure).values(at=utcnow() - timedelta(seconds=seconds_ago)))
    db.commit()


def waits(response) -> int:
    """The Retry-After of a refusal, checked to be what the page says too."""
    assert response.status_code == 429, response.status_code
    seconds = int(response.headers["retry-after"])
    assert 1 <= seconds <= 60
    assert f" {seconds} segundo" in response.text or f" {seconds} second" in response.text
    return seconds


@pytest.fixture
def ana(make_user):
    return make_user("ana", "agent")[0]


def test_the_11th_wrong_password_for_a_name_is_429_whatever_the_address(app, db, ana):
    for n in range(10):
        response = attempt(from_address(app, f"10.0.0.{n}"), "ana", f"wrong horse {n}")
        assert response.status_code == 401, n
        assert "Usuário ou senha incorretos." in response.text

    browser = from_address(app, "10.0.1.1")
    date_failures(db, 3)
    refused = attempt(browser, "ANA ", PASSWORD)  # the right password, and the name as login compares it
    assert 56 <= waits(refused) <= 57
    assert "Muitas tentativas de entrada com senha errada" in refused.text
    assert f"aguarde {refused.headers['retry-after']} segundos" in refused.text
    assert PASSWORD not in refused.text
    assert browser.get("/inbox", follow_redirects=False).status_code == 303  # not logged in

    # Recorded: ten failure rows and ten audit entries; the refusal itself wrote nothing.
    assert failures(db, username="ana") == 10
    entries = db.scalars(select(AuditEntry).where(AuditEntry.action == "auth.login_failed")).all()
    assert len(entries) == 10 and all(e.subject_id == ana.id and e.detail["username"] == "ana" for e in entries)
    assert {e.client_address for e in entries} == {f"10.0.0.{n}" for n in range(10)}
    assert db.scalar(select(func.count()).where(AuditEntry.action == "auth.login")) == 0

    # A minute later the window has moved on.
    age_failures(db, 61)
    assert attempt(browser, "ana", PASSWORD).status_code == 303
    assert browser.get("/inbox", follow_redirects=False).status_code == 200
    assert db.scalar(select(func.count()).where(AuditEntry.action == "auth.login")) == 1


def test_the_11th_wrong_password_from_an_address_is_429_whatever_the_name(app, db, ana):
    attacker = from_address(app, "203.0.113.7")
    for n in range(9):
        assert attempt(attacker, f"nobody{n}", "guess guess").status_code == 401  # unknown names count too
    assert attempt(attacker, "ana", "wrong horse").status_code == 401
    waits(attempt(attacker, "ana", PASSWORD))
    waits(attempt(attacker, "someone-else", "whatever"))
    assert failures(db, client_address="203.0.113.7") == 10

    # Ana at her own desk is not locked out by what another address did with her name once.
    assert attempt(from_address(app, "198.51.100.2"), "ana", PASSWORD).status_code == 303


def test_retry_after_counts_the_seconds_until_a_slot_frees(app, db, ana):
    browser = from_address(app, "10.9.9.9")
    for _ in range(10):
        attempt(browser, "ana", "wrong horse")
    date_failures(db, 50)  # they leave the window in 10 seconds
    assert 9 <= waits(attempt(browser, "ana", PASSWORD)) <= 10

    # An 11th failure, older (two attempts at once can both pass the check): a slot frees when the
    # 10th newest leaves the window, not the oldest.
    db.execute(insert(LoginFailure), [{"at": utcnow() - timedelta(seconds=59), "username": "ana",
                                       "client_address": "10.9.9.8"}])
    db.commit()
    assert 9 <= waits(attempt(browser, "ana", PASSWORD)) <= 10


def test_unknown_names_are_throttled_alike_and_say_nothing_more(app, db, ana):
    for n in range(10):
        attempt(from_address(app, f"10.1.0.{n}"), "nosuchuser", "guess guess")
    known, unknown = (attempt(from_address(app, "10.1.1.1"), name, "x" * 8) for name in ("ana", "nosuchuser"))
    assert known.status_code == 401 and unknown.status_code == 429
    assert failures(db, username="nosuchuser") == 10
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "auth.login_failed",
                                               AuditEntry.detail["username"].as_string() == "nosuchuser"))
    assert entry is not None and entry.subject_id is None


def test_the_page_speaks_the_users_language(app, db, ana):
    browser = from_address(app, "10.2.0.1")
    browser.cookies.set("cc_lang", "en")
    for _ in range(10):
        attempt(browser, "ana", "wrong horse")
    refused = attempt(browser, "ana", "wrong horse")
    assert refused.status_code == 429
    assert f"Too many login attempts with a wrong password. For your security, wait " \
           f"{refused.headers['retry-after']} seconds and try again." in refused.text


def test_failures_older_than_the_window_are_deleted(app, db, ana):
    db.execute(insert(LoginFailure), [{"at": utcnow() - timedelta(minutes=5), "username": "old",
                                       "client_address": "10.3.0.1"}] * 3)
    db.commit()
    assert failures(db) == 3
    attempt(from_address(app, "10.3.0.2"), "ana", "wrong horse")
    assert failures(db) == 1 and failures(db, username="ana") == 1


def test_a_failure_commits_over_real_http(live):
    """The answer is an error page, yet the request's transaction commits what it recorded."""
    http = httpx.Client(base_url=live.base_url, timeout=10)
    for _ in range(10):
        token = csrf_of(http.get("/login").text)
        response = http.post("/login", data={"username": "ana", "password": "wrong horse", "csrf_token": token})
        assert response.status_code == 401
    with live.runtime.engine.connect() as connection:  # another connection sees them: committed
        assert connection.scalar(select(func.count()).select_from(LoginFailure)
                                 .where(LoginFailure.username == "ana")) == 10
        assert connection.scalar(select(func.count()).select_from(AuditEntry)
                                 .where(AuditEntry.action == "auth.login_failed")) == 10
    token = csrf_of(http.get("/login").text)
    refused = http.post("/login", data={"username": "ana", "password": PASSWORD, "csrf_token": token})
    assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 60
    http.close()
